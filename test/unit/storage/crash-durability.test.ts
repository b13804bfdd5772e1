// The storage over the simulator's disk (test/sim/sim-file-system.ts), crashed at a chosen point with every
// unsynced byte and name lost: what a step reported durable must be there afterwards. These are the cases the
// seeded simulation found; each fails without its fix.

import { expect } from 'chai';
import { qjournal } from '../../../src/gen/proto.js';
import { encodeRecords } from '../../../src/edit-records.js';
import { Prng } from '../../../src/prng.js';
import { EntryType } from '../../../src/raft/types.js';
import type { Entry, SnapshotMeta } from '../../../src/raft/types.js';
import { isStorageFailure } from '../../../src/replica/env.js';
import { DiskLog } from '../../../src/storage/raft-log.js';
import { MetaStore } from '../../../src/storage/raft-meta-store.js';
import { JournalStateMachine } from '../../../journalnode/state/journal-state-machine.js';
import type { SnapshotSource, StateMachineOptions } from '../../../journalnode/state/journal-state-machine.js';
import type { SimFileSystem } from '../../sim/sim-file-system.js';
import { attachImmediate, immediateDisk } from '../../support/immediate-disk.js';

const pb = qjournal.journal;
const quiet = { info() {}, warn() {}, error() {}, debug() {} };
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

  /** A leader's state machine with one journal and a snapshot, and a follower about to fetch it. */
  async function leaderAndFollower() {
    const options = (fileSystem: SimFileSystem, source: SnapshotSource | null): StateMachineOptions => ({
      fileSystem,
      dataDir: '/data',
      cacheBytesPerJournal: 0,
      maxSnapshotChunkBytes: 1024,
      keepSnapshots: 2,
      source,
      logger: quiet,
    });
    const boot = { index: 1, term: 1, conf, peers: [{ id: 'n1', address: 'x:1' }] };
    const leaderDisk = immediateDisk('a');
    JournalStateMachine.bootstrap(options(leaderDisk, null), boot);
    const leader = JournalStateMachine.open(options(leaderDisk, null));
    const cmds: qjournal.journal.ICommand[] = [
      { jid: 'ns1', format: { nsInfo: { namespaceId: 1 } } },
      { jid: 'ns1', newEpoch: { nsInfo: { namespaceId: 1 }, writerId: 'w' } },
      { jid: 'ns1', startSegment: { epoch: 1, txid: 1 } },
      {
        jid: 'ns1',
        appendRecords: {
          epoch: 1,
          segmentTxid: 1,
          firstTxid: 1,
          count: 2,
          records: encodeRecords(1, [Buffer.from('a'), Buffer.from('b')]),
        },
      },
    ];
    leader.apply(
      cmds.map((c, i) => ({ index: i + 2, term: 1, type: EntryType.Normal, data: pb.Command.encode(c).finish() })),
    );
    const index = cmds.length + 1;
    await done((cb) => leader.saveSnapshot({ index, term: 1, conf }, cb));
    const source: SnapshotSource = () => ({
      manifest: (_min, cb) => setImmediate(() => cb(null, leader.snapshots.newest()!.manifest)),
      chunk: (i, f, offset, length, cb) =>
        setImmediate(() => cb(null, leader.snapshots.readChunk(i, f.jid, f.file, offset, length))),
    });
    const followerDisk = immediateDisk('b');
    JournalStateMachine.bootstrap(options(followerDisk, null), boot);
    const follower = JournalStateMachine.open(options(followerDisk, source));
    const fetch = () =>
      new Promise<Parameters<JournalStateMachine['installSnapshot']>[0]>((resolve, reject) =>
        follower.fetchSnapshot('n1', { index, term: 1, conf }, (e, s) => (e ? reject(e) : resolve(s!))),
      );
    return {
      index,
      follower,
      followerDisk,
      fetch,
      reopen: () => JournalStateMachine.open(options(followerDisk, null)),
    };
  }

  it('an installed snapshot survives a crash right after the install (the staged journals are named durably)', async () => {
    const { index, follower, followerDisk, fetch, reopen } = await leaderAndFollower();
    const staged = await fetch();
    await done((cb) => follower.installSnapshot(staged, cb));
    crash(followerDisk);
    const again = reopen();
    expect(again.snapshotMeta.index).to.equal(index);
    expect(again.journal('ns1')!.readEdits(1, 10, 1 << 20, true).count).to.equal(2);
  });

  it("a sync that fails while a snapshot is staged is the node's storage failing, not a fetch to try again", async () => {
    const { followerDisk, fetch } = await leaderAndFollower();
    followerDisk.faults.syncEio = 1;
    const err = await fetch().then(
      () => null,
      (e: Error) => e,
    );
    expect(err?.message).to.match(/EIO/);
    expect(isStorageFailure(err), 'marked: the replica stops on it').to.equal(true);
  });
});
