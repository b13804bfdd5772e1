// A wait for an applied index (what a ReadIndex read is served after) during a snapshot install: the core
// has moved to the snapshot's index, but the state machine still holds the old state until the image is in
// place, so the wait must last until then. Found by the simulator (a read served on the old state).

import { expect } from 'chai';
import { Replica, DEFAULT_REPLICA_OPTIONS } from '../../../src/replica/replica.js';
import { storageFailure } from '../../../src/replica/env.js';
import type { ReplicaLog, ReplicaStateMachine, StagedSnapshot } from '../../../src/replica/env.js';
import { MemoryStorage } from '../../../src/raft/memory-storage.js';
import { makeMessage, MessageType } from '../../../src/raft/types.js';
import type { SnapshotMeta } from '../../../src/raft/types.js';

/** A follower replica whose fetches fail with `fetchError`; it is sent a snapshot. */
function followerFetchFailing(fetchError: Error): { replica: Replica<number>; fetches: () => number } {
  const conf = { voters: ['n1', 'n2'], votersOutgoing: [], learners: [] };
  const storage = new MemoryStorage(conf);
  storage.applySnapshot({ index: 1, term: 1, conf });
  const log: ReplicaLog = {
    initialHardState: () => ({ term: 1, vote: '', commit: 1 }),
    snapshotMeta: () => storage.snapshotMeta(),
    firstIndex: () => storage.firstIndex(),
    lastIndex: () => storage.lastIndex(),
    term: (i) => storage.term(i),
    entries: (lo, hi, max) => storage.entries(lo, hi, max),
    write: (_h, entries, done) => {
      storage.append(entries);
      done(null);
    },
    snapshotSaved: () => {},
    beginReset: () => {},
    commitReset: (_m, done) => done(null),
  };
  let fetches = 0;
  const stateMachine: ReplicaStateMachine<number> = {
    apply: (es) => es.map(() => 0),
    saveSnapshot: (_m, done) => done(null),
    fetchSnapshot: (_from, _meta, done) => {
      fetches++;
      done(fetchError);
    },
    installSnapshot: (_s, done) => done(null),
    discardSnapshot: () => {},
  };
  const tasks: (() => void)[] = [];
  const replica = new Replica<number>(
    'n2',
    { ...DEFAULT_REPLICA_OPTIONS, tickMs: 10 },
    {
      log,
      stateMachine,
      transport: { send: () => {} },
      clock: { now: () => 0, defer: (fn) => tasks.push(fn) },
      random: () => 0.5,
    },
  );
  replica.start();
  replica.receive([
    makeMessage({ type: MessageType.Snap, to: 'n2', from: 'n1', term: 2, snapshot: { index: 10, term: 2, conf } }),
  ]);
  for (let i = 0; i < 1000 && tasks.length > 0; i++) tasks.shift()!();
  return { replica, fetches: () => fetches };
}

describe('replica snapshot install and applied-index waits', () => {
  it('a fetch that failed on its own storage (a sync of the staging area) stops the replica: never fetched again and trusted', () => {
    const { replica, fetches } = followerFetchFailing(storageFailure(new Error('EIO: sync failed')));
    expect(fetches()).to.equal(1);
    expect(replica.status().fatal).to.match(/EIO/);
  });

  it('a fetch that failed for any other reason (the network, the peer) is only reported: the node fetches again', () => {
    const { replica } = followerFetchFailing(new Error('peer unreachable'));
    expect(replica.status().fatal).to.equal(null);
  });

  it("a wait for the snapshot's index is answered only once the image is installed", () => {
    const conf = { voters: ['n1', 'n2'], votersOutgoing: [], learners: [] };
    const storage = new MemoryStorage(conf);
    storage.applySnapshot({ index: 1, term: 1, conf });
    let pending: SnapshotMeta | null = null;
    const log: ReplicaLog = {
      initialHardState: () => ({ term: 1, vote: '', commit: 1 }),
      snapshotMeta: () => pending ?? storage.snapshotMeta(),
      firstIndex: () => (pending ? pending.index + 1 : storage.firstIndex()),
      lastIndex: () => (pending ? pending.index : storage.lastIndex()),
      term: (i) => (pending ? (i === pending.index ? pending.term : undefined) : storage.term(i)),
      entries: (lo, hi, max) => storage.entries(lo, hi, max),
      write: (_h, entries, done) => {
        storage.append(entries);
        done(null);
      },
      snapshotSaved: () => {},
      beginReset: (meta) => (pending = meta),
      commitReset: (meta, done) => {
        storage.applySnapshot(meta);
        pending = null;
        done(null);
      },
    };
    let finishInstall: (() => void) | null = null;
    const stateMachine: ReplicaStateMachine<number> = {
      apply: (es) => es.map(() => 0),
      saveSnapshot: (_m, done) => done(null),
      fetchSnapshot: (_from, meta, done) => done(null, { meta } as StagedSnapshot),
      installSnapshot: (_s, done) => (finishInstall = () => done(null)),
      discardSnapshot: () => {},
    };
    const tasks: (() => void)[] = [];
    const run = () => {
      for (let i = 0; i < 1000 && tasks.length > 0; i++) tasks.shift()!();
    };
    const replica = new Replica<number>(
      'n2',
      { ...DEFAULT_REPLICA_OPTIONS, tickMs: 10 },
      {
        log,
        stateMachine: stateMachine,
        transport: { send: () => {} },
        clock: { now: () => 0, defer: (fn) => tasks.push(fn) },
        random: () => 0.5,
        checkInvariants: true,
      },
    );
    replica.start();
    run();
    replica.receive([
      makeMessage({ type: MessageType.Snap, to: 'n2', from: 'n1', term: 2, snapshot: { index: 10, term: 2, conf } }),
    ]);
    run();
    expect(finishInstall, 'the install is under way').to.not.equal(null);
    let served: number | null = null;
    replica.waitApplied(10, 1000, (e, index) => (served = e ? -1 : index!));
    run();
    expect(served, 'not served on the old state').to.equal(null);
    expect(replica.appliedIndex).to.equal(1);
    finishInstall!();
    run();
    expect(served).to.equal(10);
  });
});
