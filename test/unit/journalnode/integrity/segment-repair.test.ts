// Repairing a damaged segment file from the peers, on three real data directories holding the same journal:
// a finalized segment (and the snapshot linking it) rewritten in place from a copy the majority agrees on; a
// peer whose copy differs or that is unreachable leaves no majority, and nothing is written; a peer that sends
// other bytes than it described is passed over, and when every copy fails nothing is written; the prefix of the
// in-progress file a snapshot holds is repaired the same way.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { describeFile, readFileChunk } from '../../../../journalnode/integrity/file-service.js';
import { repairSegment } from '../../../../journalnode/integrity/segment-repair.js';
import type {
  FileRef,
  RepairOutcome,
  RepairSource,
  SegmentRepairJob,
} from '../../../../journalnode/integrity/segment-repair.js';
import { JournalStateMachine } from '../../../../journalnode/state/journal-state-machine.js';
import type { StateMachineOptions } from '../../../../journalnode/state/journal-state-machine.js';
import type { SegmentFile } from '../../../../journalnode/state/segment-file.js';
import { encodeRecords } from '../../../../src/edit-records.js';
import { qjournal } from '../../../../src/gen/proto.js';
import { EntryType } from '../../../../src/raft/types.js';
import type { Entry } from '../../../../src/raft/types.js';
import { nodeFileSystem } from '../../../../src/storage/node-file-system.js';

const pb = qjournal.journal;
const ns = { namespaceId: 7, clusterId: 'CID-1', blockPoolId: 'BP-1' };
const quiet = { info() {}, warn() {}, error() {}, debug() {} };
const conf = { voters: ['n1', 'n2', 'n3'], votersOutgoing: [], learners: [] };
const cmd = (index: number, c: qjournal.journal.ICommand): Entry => ({
  index,
  term: 1,
  type: EntryType.Normal,
  data: pb.Command.encode({ jid: 'ns1', ...c }).finish(),
});
const writes = (first: number, n: number, segmentTxid: number) => ({
  appendRecords: {
    epoch: 1,
    segmentTxid,
    firstTxid: first,
    count: n,
    records: encodeRecords(
      first,
      Array.from({ length: n }, (_, i) => Buffer.from(`edit ${first + i} `.padEnd(300, 'y'))),
    ),
  },
});

function flip(file: string, offset: number): void {
  const b = fs.readFileSync(file);
  b[offset] = b[offset]! ^ 0x10;
  fs.writeFileSync(file, b);
}

describe('segment repair from the peers', () => {
  let root: string;
  const nodes = new Map<string, JournalStateMachine>();

  const opts = (dataDir: string): StateMachineOptions => ({
    fileSystem: nodeFileSystem,
    dataDir,
    cacheBytesPerJournal: 0,
    maxSnapshotChunkBytes: 4096,
    keepSnapshots: 2,
    source: null,
    logger: quiet,
  });

  beforeEach(async () => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-repair-'));
    for (const id of ['n1', 'n2', 'n3']) {
      const dir = path.join(root, id);
      JournalStateMachine.bootstrap(opts(dir), { index: 1, term: 1, conf, peers: [] });
      const sm = JournalStateMachine.open(opts(dir));
      const entries = [
        cmd(2, { format: { nsInfo: ns } }),
        cmd(3, { newEpoch: { nsInfo: ns, writerId: 'w' } }),
        cmd(4, { startSegment: { epoch: 1, txid: 1, layoutVersion: -64 } }),
      ];
      for (let i = 0; i < 30; i++) entries.push(cmd(5 + i, writes(1 + 10 * i, 10, 1)));
      entries.push(cmd(35, { finalizeSegment: { epoch: 1, firstTxid: 1, lastTxid: 300 } }));
      entries.push(cmd(36, { startSegment: { epoch: 1, txid: 301, layoutVersion: -64 } }));
      for (let i = 0; i < 10; i++) entries.push(cmd(37 + i, writes(301 + 10 * i, 10, 301)));
      sm.apply(entries);
      await new Promise<void>((res, rej) =>
        sm.saveSnapshot({ index: 46, term: 1, conf, peers: [] }, (e) => (e ? rej(e) : res())),
      );
      nodes.set(id, sm);
    }
  });
  afterEach(() => {
    for (const sm of nodes.values()) sm.close();
    nodes.clear();
    fs.rmSync(root, { recursive: true, force: true });
  });

  const sm = (id: string) => nodes.get(id)!;
  const seg = (id: string, i: number): SegmentFile => sm(id).journal('ns1')!.segments[i]!;
  const never = () => false;

  /** The peers, served by the file service of their own state machines; `tamper` alters what one of them does. */
  function source(tamper: Partial<Record<string, 'unreachable' | 'lies' | 'other-copy'>> = {}): RepairSource {
    return {
      describe: (peer, ref, cb) => {
        if (tamper[peer] === 'unreachable') return cb(new Error('ECONNREFUSED'));
        const h = describeFile(sm(peer), never, ref);
        if (tamper[peer] === 'other-copy' && h) return cb(null, { ...h, crc32: (h.crc32 + 1) >>> 0 });
        cb(null, h);
      },
      chunk: (peer, ref, offset, length, cb) => {
        if (tamper[peer] === 'unreachable') return cb(new Error('ECONNREFUSED'));
        const bytes = readFileChunk(sm(peer), never, ref, offset, length);
        if (tamper[peer] === 'lies') bytes[0] = bytes[0]! ^ 1;
        cb(null, bytes);
      },
    };
  }

  function finalizedJob(id: string): SegmentRepairJob {
    const s = seg(id, 0);
    return {
      ref: { jid: 'ns1', file: s.name, sizeBytes: s.sizeBytes },
      path: s.path,
      expected: { sizeBytes: s.sizeBytes, crc32: s.crc32 },
      firstTxId: s.firstTxId,
      lastTxId: s.lastTxId,
      stillWanted: () => true,
    };
  }

  const run = (src: RepairSource, job: SegmentRepairJob) =>
    new Promise<RepairOutcome>((resolve) =>
      repairSegment(
        {
          fileSystem: nodeFileSystem,
          selfId: 'n1',
          voters: () => ['n1', 'n2', 'n3'],
          members: () => ['n1', 'n2', 'n3'],
          source: src,
          maxChunkBytes: 4096,
        },
        job,
        resolve,
      ),
    );

  it('a finalized segment is rewritten in place from the majority copy; the snapshot linking it is sound again', async () => {
    const file = seg('n1', 0).path;
    const good = fs.readFileSync(seg('n2', 0).path);
    expect(fs.readFileSync(file).equals(good)).to.equal(true);
    flip(file, 20_000);
    const linked = sm('n1').snapshots.filePath(46, 'ns1', seg('n1', 0).name);
    expect(fs.readFileSync(linked).equals(good)).to.equal(false);
    const out = await run(source(), finalizedJob('n1'));
    expect(out.ok, out.note).to.equal(true);
    expect(out.note).to.match(/with the copy of n2 \(3 of 3 voters \(n1, n2, n3\) agree/);
    expect(fs.readFileSync(file).equals(good)).to.equal(true);
    expect(fs.readFileSync(linked).equals(good)).to.equal(true);
    expect(fs.readdirSync(path.dirname(file)).filter((n) => n.startsWith('.repair'))).to.deep.equal([]);
    const r = seg('n1', 0).read(1, 1000, 1 << 20);
    expect([r.firstTxId, r.count]).to.deep.equal([1, 300]);
  });

  it('one peer holds another copy and the other is unreachable: no majority, nothing written, both named', async () => {
    const file = seg('n1', 0).path;
    flip(file, 20_000);
    const damaged = fs.readFileSync(file);
    const out = await run(source({ n2: 'other-copy', n3: 'unreachable' }), finalizedJob('n1'));
    expect(out.ok).to.equal(false);
    expect(out.note).to.match(/^no majority copy: 1 of 3 voters \(n1\) agree/);
    expect(out.note).to.match(/n2 has \d+ bytes, CRC [0-9a-f]{8}/);
    expect(out.note).to.match(/n3 unreachable \(ECONNREFUSED\)/);
    expect(fs.readFileSync(file).equals(damaged)).to.equal(true);
  });

  it('a peer that sends other bytes than it described is passed over for the next', async () => {
    const file = seg('n1', 0).path;
    flip(file, 20_000);
    const out = await run(source({ n2: 'lies' }), finalizedJob('n1'));
    expect(out.ok, out.note).to.equal(true);
    expect(out.note).to.match(/with the copy of n3/);
    expect(fs.readFileSync(file).equals(fs.readFileSync(seg('n3', 0).path))).to.equal(true);
  });

  it('every copy sends other bytes: the repair stops short and writes nothing', async () => {
    const file = seg('n1', 0).path;
    flip(file, 20_000);
    const damaged = fs.readFileSync(file);
    const out = await run(source({ n2: 'lies', n3: 'lies' }), finalizedJob('n1'));
    expect(out.ok).to.equal(false);
    expect(out.note).to.match(/every copy failed: n2: .*CRC.*; n3: .*CRC/);
    expect(fs.readFileSync(file).equals(damaged)).to.equal(true);
  });

  it('the prefix of the in-progress file a snapshot holds is repaired in place, as the manifest recorded it', async () => {
    const live = seg('n1', 1);
    const recorded = sm('n1').snapshots.manifestOf(46)!.journals[0]!.segments[1]!;
    expect(recorded.inProgress).to.equal(true);
    flip(live.path, 100);
    const ref: FileRef = { jid: 'ns1', file: live.name, sizeBytes: recorded.sizeBytes };
    const out = await run(source(), {
      ref,
      path: live.path,
      expected: { sizeBytes: recorded.sizeBytes, crc32: recorded.crc32 },
      firstTxId: live.firstTxId,
      lastTxId: null,
      stillWanted: () => true,
    });
    expect(out.ok, out.note).to.equal(true);
    expect(fs.readFileSync(live.path).equals(fs.readFileSync(seg('n2', 1).path))).to.equal(true);
  });
});
