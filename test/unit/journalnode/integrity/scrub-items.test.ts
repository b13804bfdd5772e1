// What a scrub pass checks, on real files: a finalized journal segment against the CRC recorded when it was
// written, closed Raft log segments frame by frame, snapshots (manifest and files), each finalized segment's
// bytes read once per pass although snapshots hold links to it; a byte flipped in any of them is a finding
// that names the file and the range, and an untouched data directory has none.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { scrubItems } from '../../../../journalnode/integrity/scrub-items.js';
import type { ScrubItem } from '../../../../journalnode/integrity/scrubber.js';
import { JournalStateMachine } from '../../../../journalnode/state/journal-state-machine.js';
import type { StateMachineOptions } from '../../../../journalnode/state/journal-state-machine.js';
import { encodeRecords } from '../../../../src/edit-records.js';
import { qjournal } from '../../../../src/gen/proto.js';
import { EntryType } from '../../../../src/raft/types.js';
import type { Entry, SnapshotMeta } from '../../../../src/raft/types.js';
import { nodeFileSystem } from '../../../../src/storage/node-file-system.js';
import { DiskLog } from '../../../../src/storage/raft-log.js';
import { MetaStore } from '../../../../src/storage/raft-meta-store.js';

const pb = qjournal.journal;
const ns = { namespaceId: 7, clusterId: 'CID-1', blockPoolId: 'BP-1' };
const quiet = { info() {}, warn() {}, error() {}, debug() {} };
const conf = { voters: ['n1'], votersOutgoing: [], learners: [] };

function cmd(index: number, c: qjournal.journal.ICommand): Entry {
  return { index, term: 1, type: EntryType.Normal, data: pb.Command.encode({ jid: 'ns1', ...c }).finish() };
}
const writes = (first: number, n: number, segmentTxid = 1) => ({
  appendRecords: {
    epoch: 1,
    segmentTxid,
    firstTxid: first,
    count: n,
    records: encodeRecords(
      first,
      Array.from({ length: n }, (_, i) => Buffer.from(`edit ${first + i} `.padEnd(200, 'x'))),
    ),
  },
});

/** Flips one byte of a file in place. */
function flip(file: string, offset: number): void {
  const b = fs.readFileSync(file);
  b[offset] = b[offset]! ^ 0x40;
  fs.writeFileSync(file, b);
}

/** Runs every item to its end; returns the findings (each item's error) and the bytes read. */
function runPass(items: ScrubItem[]): {
  findings: { kind: string; file: string; range: string; error: string }[];
  bytes: number;
} {
  const findings: { kind: string; file: string; range: string; error: string }[] = [];
  let bytes = 0;
  for (const it of items) {
    for (;;) {
      let r: { bytes: number; done: boolean } | null;
      try {
        r = it.step(4096);
      } catch (e) {
        findings.push({
          kind: it.kind,
          file: (e as { file?: string }).file ?? it.file,
          range: it.range,
          error: (e as Error).message,
        });
        break;
      }
      if (r === null) break;
      bytes += r.bytes;
      if (r.done) break;
    }
  }
  return { findings, bytes };
}

describe('scrub items', () => {
  let dir: string;
  let stateMachine: JournalStateMachine;
  let log: DiskLog;

  const opts = (): StateMachineOptions => ({
    fileSystem: nodeFileSystem,
    dataDir: dir,
    cacheBytesPerJournal: 1 << 20,
    maxSnapshotChunkBytes: 1 << 16,
    keepSnapshots: 2,
    source: null,
    logger: quiet,
  });

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-scrub-'));
    JournalStateMachine.bootstrap(opts(), { index: 1, term: 1, conf, peers: [{ id: 'n1', address: 'x:1' }] });
    stateMachine = JournalStateMachine.open(opts());
    const meta = MetaStore.create(nodeFileSystem, path.join(dir, 'raft'), {
      hardState: { term: 1, vote: '', commit: 1 },
      storageId: 's',
      clusterId: 'c',
      nodeId: 'n1',
    });
    log = DiskLog.open(path.join(dir, 'raft', 'log'), {
      fileSystem: nodeFileSystem,
      maxSegmentBytes: 1 << 16,
      maxCacheBytes: 0,
      sync: false,
      snapshot: stateMachine.snapshotMeta,
      meta,
    });
    const entries: Entry[] = [
      cmd(2, { format: { nsInfo: ns } }),
      cmd(3, { newEpoch: { nsInfo: ns, writerId: 'w' } }),
      cmd(4, { startSegment: { epoch: 1, txid: 1, layoutVersion: -64 } }),
    ];
    let txid = 1;
    for (let i = 5; i < 400; i++, txid += 10) entries.push(cmd(i, writes(txid, 10)));
    entries.push(cmd(400, { finalizeSegment: { epoch: 1, firstTxid: 1, lastTxid: txid - 1 } }));
    entries.push(cmd(401, { startSegment: { epoch: 1, txid, layoutVersion: -64 } }));
    entries.push(cmd(402, writes(txid, 10, txid)));
    for (let i = 0; i < entries.length; i += 20) {
      const part = entries.slice(i, i + 20);
      await new Promise<void>((res, rej) => log.write(null, part, (e) => (e ? rej(e) : res())));
    }
    stateMachine.apply(entries);
    const meta402: SnapshotMeta = { index: 402, term: 1, conf, peers: [] };
    await new Promise<void>((res, rej) => stateMachine.saveSnapshot(meta402, (e) => (e ? rej(e) : res())));
  });
  afterEach(() => {
    log.close();
    stateMachine.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const finalized = () => stateMachine.journal('ns1')!.segments[0]!;
  const parts = () => ({ fileSystem: nodeFileSystem, diskLog: log, stateMachine });

  it('an untouched data directory: no finding, and each finalized segment read once though a snapshot links it', () => {
    expect(log.closedSegments().length).to.be.at.least(2);
    const { findings, bytes } = runPass(scrubItems(parts()));
    expect(findings).to.deep.equal([]);
    const inProgress = stateMachine.journal('ns1')!.segments[1]!;
    const closedLogBytes = log.closedSegments().reduce((n, s) => n + fs.statSync(s.file).size - 32, 0);
    // The finalized segment once, the in-progress file's prefix (only the snapshot holds it), the closed log segments.
    expect(bytes).to.equal(finalized().sizeBytes + inProgress.sizeBytes + closedLogBytes);
  });

  it('a byte flipped in a finalized segment: a segment finding naming the file and the txids', () => {
    flip(finalized().path, 5000);
    const { findings } = runPass(scrubItems(parts()));
    expect(findings.map((f) => [f.kind, f.file, f.range])).to.deep.equal([
      ['segment', finalized().path, `journal ns1 txids 1-${finalized().lastTxId}`],
    ]);
    expect(findings[0]!.error).to.match(/CRC mismatch/);
  });

  it('a byte flipped in a closed Raft log segment: a log finding naming the file and the indexes', () => {
    const seg = log.closedSegments()[1]!;
    flip(seg.file, 3000);
    const { findings } = runPass(scrubItems(parts()));
    expect(findings.map((f) => [f.kind, f.file, f.range])).to.deep.equal([
      ['log', seg.file, `Raft log entries ${seg.first}-${seg.last}`],
    ]);
  });

  it("a byte flipped in a snapshot's manifest, or in the in-progress file's prefix it holds: snapshot findings", () => {
    const snapDir = stateMachine.snapshots.dirOf(402);
    flip(path.join(snapDir, 'manifest.pb'), 20);
    expect(runPass(scrubItems(parts())).findings.map((f) => [f.kind, f.file])).to.deep.equal([['snapshot', snapDir]]);
    fs.rmSync(snapDir, { recursive: true });
    const meta403: SnapshotMeta = { index: 402, term: 1, conf, peers: [] };
    return new Promise<void>((res, rej) => stateMachine.saveSnapshot(meta403, (e) => (e ? rej(e) : res()))).then(() => {
      const inProgress = stateMachine.journal('ns1')!.segments[1]!;
      flip(inProgress.path, 100);
      const found = runPass(scrubItems(parts())).findings;
      expect(found.map((f) => [f.kind, f.range])).to.deep.equal([['snapshot', 'snapshot 402']]);
      expect(found[0]!.error).to.match(/does not match the CRC of its manifest/);
    });
  });

  it('items that went away meanwhile (a compacted log segment) are skipped, not damage', () => {
    const items = scrubItems(parts());
    const seg = log.closedSegments()[0]!;
    log.snapshotSaved({ index: 402, term: 1, conf, peers: [] }, seg.last);
    const { findings } = runPass(items);
    expect(findings).to.deep.equal([]);
  });
});
