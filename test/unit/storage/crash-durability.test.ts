// The storage over the simulator's disk (test/sim/sim-file-system.ts), crashed at a chosen point with every
// unsynced byte and name lost: what a step reported durable must be there afterwards. These are the cases the
// seeded simulation found; each fails without its fix.

import { expect } from 'chai';
import { Prng } from '../../../src/prng.js';
import { EntryType } from '../../../src/raft/types.js';
import type { Entry, SnapshotMeta } from '../../../src/raft/types.js';
import { DiskLog } from '../../../src/storage/raft-log.js';
import { MetaStore } from '../../../src/storage/raft-meta-store.js';
import type { SimFileSystem } from '../../sim/sim-file-system.js';
import { attachImmediate, immediateDisk } from '../../support/immediate-disk.js';

const conf = { voters: ['n1'], votersOutgoing: [], learners: [] };
const LOSE_ALL = { keep: 0, tear: 0, loseNames: true };

function crash(fs: SimFileSystem): void {
  fs.crash(new Prng(1), LOSE_ALL);
  attachImmediate(fs);
}

const done = (fn: (cb: (e: Error | null) => void) => void) =>
  new Promise<void>((resolve, reject) => fn((e) => (e ? reject(e) : resolve())));

const meta = (fs: SimFileSystem) =>
  MetaStore.create(fs, '/data/raft', {
    hardState: { term: 1, vote: '', commit: 0 },
    storageId: 's',
    clusterId: 'c',
    nodeId: 'n1',
  });

describe('storage on a disk that crashes: what was reported durable survives', () => {
  it('the metadata of a first start survives a crash right after it (its new directory is synced into its parent)', () => {
    const fs = immediateDisk();
    meta(fs);
    crash(fs);
    expect(MetaStore.open(fs, '/data/raft')?.meta.nodeId).to.equal('n1');
  });

  it("a new log directory's entries survive a crash once written (the directory is synced into its parent)", async () => {
    const fs = immediateDisk();
    const m = meta(fs);
    const snapshot: SnapshotMeta = { index: 0, term: 0, conf };
    const opts = { fileSystem: fs, maxSegmentBytes: 1 << 16, maxCacheBytes: 0, sync: true, snapshot, meta: m };
    const log = DiskLog.open('/data/raft/log', opts);
    const e: Entry = { index: 1, term: 1, type: EntryType.Normal, data: Buffer.from('x') };
    await done((cb) => log.write(null, [e], cb));
    crash(fs);
    expect(DiskLog.open('/data/raft/log', { ...opts, meta: MetaStore.open(fs, '/data/raft')! }).lastIndex()).to.equal(
      1,
    );
  });
});
