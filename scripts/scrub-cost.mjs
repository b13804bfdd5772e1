// What the scrubber costs a node in CPU, measured in CPU time (so a loaded machine skews it less than a
// throughput run): a data directory with closed Raft log segments (entries of 256 KiB, as a busy writer's
// batches) and a finalized journal segment that a snapshot links, then whole scrub passes over it, 128 KiB a
// step as the node takes them, the bytes read from the page cache (they were just written: the CPU of the
// reads and the CRCs, not the disk's time). Prints the CPU per MiB of each kind and what the default rate
// (and the busy rate, a sixteenth) costs of one core.
// Usage (after npm run build): node scripts/scrub-cost.mjs [MiB of log, default 256] [MiB of segment, default 128]

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { scrubItems } from '../dist/journalnode/integrity/scrub-items.js';
import { JournalStateMachine } from '../dist/journalnode/state/journal-state-machine.js';
import { encodeRecords } from '../dist/src/edit-records.js';
import { qjournal } from '../dist/src/gen/proto.js';
import { DEFAULT_SETTINGS } from '../dist/src/settings.js';
import { nodeFileSystem } from '../dist/src/storage/node-file-system.js';
import { DiskLog } from '../dist/src/storage/raft-log.js';
import { MetaStore } from '../dist/src/storage/raft-meta-store.js';

const logMiB = Number(process.argv[2] ?? 256);
const segMiB = Number(process.argv[3] ?? 128);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-scrub-cost-'));
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const conf = { voters: ['n1'], votersOutgoing: [], learners: [] };
const pb = qjournal.journal;
const cmd = (index, c) => ({ index, term: 1, type: 0, data: pb.Command.encode({ jid: 'ns1', ...c }).finish() });

try {
  const smOpts = {
    fileSystem: nodeFileSystem,
    dataDir: dir,
    cacheBytesPerJournal: 0,
    maxSnapshotChunkBytes: 1 << 20,
    keepSnapshots: 2,
    source: null,
    logger: quiet,
  };
  JournalStateMachine.bootstrap(smOpts, { index: 1, term: 1, conf, peers: [] });
  const sm = JournalStateMachine.open(smOpts);
  const meta = MetaStore.create(nodeFileSystem, path.join(dir, 'raft'), {
    hardState: { term: 1, vote: '', commit: 1 },
    storageId: 's',
    clusterId: 'c',
    nodeId: 'n1',
  });
  const log = DiskLog.open(path.join(dir, 'raft', 'log'), {
    fileSystem: nodeFileSystem,
    maxSegmentBytes: DEFAULT_SETTINGS.maxLogSegmentBytes,
    maxCacheBytes: 0,
    sync: false,
    snapshot: sm.snapshotMeta,
    meta,
  });
  // The journal: records of 1 KiB in batches of 256 (one Raft entry each), one finalized segment.
  const head = [
    cmd(2, { format: { nsInfo: { namespaceId: 1 } } }),
    cmd(3, { newEpoch: { nsInfo: { namespaceId: 1 }, writerId: 'w' } }),
    cmd(4, { startSegment: { epoch: 1, txid: 1, layoutVersion: -64 } }),
  ];
  sm.apply(head);
  let index = 5;
  let txid = 1;
  const entries = [...head];
  const record = Buffer.alloc(1024, 'r');
  while (txid * 1040 < segMiB << 20) {
    const e = cmd(index++, {
      journal: {
        epoch: 1,
        segmentTxid: 1,
        firstTxid: txid,
        count: 256,
        records: encodeRecords(
          txid,
          Array.from({ length: 256 }, () => record),
        ),
      },
    });
    sm.apply([e]);
    entries.push(e);
    txid += 256;
  }
  sm.apply([cmd(index++, { finalizeSegment: { epoch: 1, firstTxid: 1, lastTxid: txid - 1 } })]);
  // The log: the same entries, again until it holds logMiB (closed segments of 64 MiB).
  const write = (batch) => new Promise((res, rej) => log.write(null, batch, (e) => (e ? rej(e) : res())));
  let bytes = 0;
  for (let i = 0; bytes < logMiB << 20; i++) {
    const batch = entries.slice(0, 16).map((e) => ({ ...e, index: 2 + i * 16 + entries.indexOf(e) }));
    await write(batch);
    bytes += batch.reduce((n, e) => n + e.data.byteLength, 0);
  }
  await new Promise((res, rej) =>
    sm.saveSnapshot({ index: index - 1, term: 1, conf, peers: [] }, (e) => (e ? rej(e) : res())),
  );
  const perKind = { log: { bytes: 0, cpuUs: 0 }, segment: { bytes: 0, cpuUs: 0 }, snapshot: { bytes: 0, cpuUs: 0 } };
  for (let pass = 0; pass < 3; pass++) {
    for (const item of scrubItems({ fileSystem: nodeFileSystem, diskLog: log, stateMachine: sm })) {
      for (;;) {
        const t0 = process.cpuUsage();
        const r = item.step(128 << 10);
        const t = process.cpuUsage(t0);
        if (r === null) break;
        perKind[item.kind].bytes += r.bytes;
        perKind[item.kind].cpuUs += t.user + t.system;
        if (r.done) break;
      }
    }
  }
  const rate = DEFAULT_SETTINGS.scrubBytesPerS;
  for (const [kind, k] of Object.entries(perKind)) {
    if (k.bytes === 0) continue;
    const usPerMiB = k.cpuUs / (k.bytes / 2 ** 20);
    console.log(
      `${kind}: ${(k.bytes / 2 ** 20).toFixed(0)} MiB scrubbed, ${(usPerMiB / 1000).toFixed(2)} ms CPU per MiB: ` +
        `${((usPerMiB * (rate / 2 ** 20)) / 1e4).toFixed(2)}% of a core at ${rate / 2 ** 20} MiB/s, ` +
        `${((usPerMiB * (rate / 2 ** 20)) / 16e4).toFixed(3)}% while the node writes (a sixteenth)`,
    );
  }
  log.close();
  sm.close();
} finally {
  fs.rmSync(dir, { recursive: true, force: true });
}
