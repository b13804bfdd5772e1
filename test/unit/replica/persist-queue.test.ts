// The persist queue is bounded: when the disk stalls, jobs stop piling up at maxPersistJobs. A follower
// drops the peer input that would add more (Raft resends it), a leader refuses proposals with BUSY; once the
// disk is back, everything queued is written and the node goes on.

import { expect } from 'chai';
import { Replica, DEFAULT_REPLICA_OPTIONS } from '../../../src/replica/replica.js';
import { memoryReplicaLog, nullStateMachine } from '../../support/replica-log.js';
import { MemoryStorage } from '../../../src/raft/memory-storage.js';
import { EntryType, makeMessage, MessageType } from '../../../src/raft/types.js';
import type { Entry, NodeId } from '../../../src/raft/types.js';
import type { QjmError } from '../../../src/errors.js';

const MAX_JOBS = 8;

/** A node whose disk holds every write until released. */
function stalledNode(id: NodeId, voters: NodeId[]) {
  const conf = { voters, votersOutgoing: [], learners: [] };
  const storage = new MemoryStorage(conf);
  storage.applySnapshot({ index: 1, term: 1, conf, peers: voters.map((v) => ({ id: v, address: `sim://${v}` })) });
  const held: (() => void)[] = [];
  const log = memoryReplicaLog(storage, { term: 1, vote: '', commit: 1 }, (_h, entries, done) =>
    held.push(() => {
      if (entries.length > 0) storage.append(entries);
      done(null);
    }),
  );
  const tasks: (() => void)[] = [];
  const run = () => {
    for (let i = 0; i < 100_000 && tasks.length > 0; i++) tasks.shift()!();
  };
  let now = 0;
  const replica = new Replica<number>(
    id,
    { ...DEFAULT_REPLICA_OPTIONS, tickMs: 10, maxPersistJobs: MAX_JOBS },
    {
      log,
      stateMachine: nullStateMachine,
      transport: { send: () => {} },
      clock: { now: () => now, defer: (fn) => tasks.push(fn) },
      random: () => 0.5,
      checkInvariants: true,
    },
  );
  replica.start();
  run();
  const releaseDisk = () => {
    while (held.length > 0) {
      held.shift()!();
      run();
    }
  };
  const tick = () => {
    now += 10;
    replica.tick();
    run();
  };
  return { replica, storage, run, releaseDisk, tick, held };
}

const entry = (index: number): Entry => ({ index, term: 1, type: EntryType.Normal, data: new Uint8Array([index]) });
/** The leader n2's append of one entry after `prev`. */
const append = (prev: number) =>
  makeMessage({
    type: MessageType.App,
    from: 'n2',
    to: 'n1',
    term: 1,
    index: prev,
    logTerm: 1,
    entries: [entry(prev + 1)],
  });

describe('persist queue bound', () => {
  it('a follower whose disk stalls queues at most maxPersistJobs writes, dropping further appends; it catches up after', () => {
    const n = stalledNode('n1', ['n1', 'n2']);
    // The leader n2 sends one entry per append, each in a turn of its own (each makes a write job).
    for (let k = 1; k <= 100; k++) {
      n.replica.receive([append(k)]);
      n.run();
      expect(n.replica.status().persistQueueJobs, `after append ${k}`).to.be.at.most(MAX_JOBS + 1);
    }
    const taken = n.replica.rawNode.lastIndex();
    expect(taken, 'appends past the bound were dropped').to.be.below(1 + 100);
    n.releaseDisk();
    expect(n.replica.status().persistQueueJobs).to.equal(0);
    expect(n.storage.lastIndex(), 'everything taken is durable').to.equal(taken);
    // Raft resends what was dropped: the next append is taken again.
    n.replica.receive([append(taken)]);
    n.run();
    n.releaseDisk();
    expect(n.storage.lastIndex()).to.equal(taken + 1);
  });

  it('a leader whose disk stalls refuses proposals with BUSY once maxPersistJobs writes are queued', () => {
    const n = stalledNode('n1', ['n1']);
    for (let t = 0; t < 40 && !n.replica.isLeader; t++) {
      n.tick();
      n.releaseDisk();
    }
    expect(n.replica.isLeader).to.equal(true);
    const refused: string[] = [];
    for (let k = 0; k < 50; k++) {
      n.replica.propose(new Uint8Array([k]), undefined, (e: QjmError | null) => {
        if (e) refused.push(e.errorName);
      });
      n.run();
    }
    expect(n.replica.status().persistQueueJobs).to.be.at.most(MAX_JOBS + 1);
    expect(refused.length, 'proposals past the bound').to.be.greaterThan(0);
    expect(new Set(refused)).to.deep.equal(new Set(['BUSY']));
    n.releaseDisk();
    let applied = false;
    n.replica.propose(new Uint8Array([99]), undefined, (e) => (applied = e === null));
    n.run();
    n.releaseDisk();
    expect(applied, 'the disk is back: proposals go through').to.equal(true);
  });
});
