// What the replica writes, and in which order: a configuration entry always starts a write of its own, and
// that write carries a commit hint covering every configuration entry before it, so a node that restarts
// knows they are committed and applies them before it may campaign (a removed node must not be elected by
// the old voters alone). The hint never runs ahead of the durable log.

import { expect } from 'chai';
import { Replica, DEFAULT_REPLICA_OPTIONS } from '../../../src/replica/replica.js';
import type { ReplicaLog } from '../../../src/replica/env.js';
import { memoryReplicaLog, nullStateMachine } from '../../support/replica-log.js';
import { MemoryStorage } from '../../../src/raft/memory-storage.js';
import { ConfChangeOp, EntryType } from '../../../src/raft/types.js';
import type { Entry, HardState, SnapshotMeta } from '../../../src/raft/types.js';

interface Write {
  hard: HardState | null;
  entries: Entry[];
}

function recordingLog(
  storage: MemoryStorage,
  hard: HardState,
  writes: Write[],
  later: (fn: () => void) => void,
): ReplicaLog {
  return memoryReplicaLog(storage, hard, (h, entries, done) => {
    writes.push({ hard: h && { ...h }, entries: [...entries] });
    later(() => {
      storage.append(entries);
      done(null);
    });
  });
}

describe('replica persistence order', () => {
  it('a configuration entry starts its own write, whose commit hint covers the configuration entries before it', () => {
    const conf = { voters: ['n1'], votersOutgoing: [], learners: [] };
    const boot: SnapshotMeta = { index: 1, term: 1, conf, peers: [{ id: 'n1', address: 'sim://n1' }] };
    const storage = new MemoryStorage(conf);
    storage.applySnapshot(boot);
    const writes: Write[] = [];
    const tasks: (() => void)[] = [];
    const later = (fn: () => void) => tasks.push(fn);
    const run = () => {
      for (let i = 0; i < 10_000 && tasks.length > 0; i++) tasks.shift()!();
    };
    let now = 0;
    const replica = new Replica<number>(
      'n1',
      { ...DEFAULT_REPLICA_OPTIONS, tickMs: 10 },
      {
        log: recordingLog(storage, { term: 1, vote: '', commit: 1 }, writes, later),
        stateMachine: nullStateMachine,
        transport: { send: () => {} },
        clock: { now: () => now, defer: later },
        random: () => 0.5,
        checkInvariants: true,
      },
    );
    replica.start();
    for (let t = 0; t < 40 && !replica.isLeader; t++) {
      now += 10;
      replica.tick();
      run();
    }
    expect(replica.isLeader).to.equal(true);
    const add = (id: string, cb: () => void) =>
      replica.proposeConfChange(
        { changes: [{ op: ConfChangeOp.AddLearner, peer: { id, address: `sim://${id}` } }], leaveJoint: false },
        (e) => (e ? expect.fail(e.message) : cb()),
      );
    const cmd = () => replica.propose(new TextEncoder().encode('x'), undefined, () => {});
    // Commands and configuration changes proposed in the same turn are handed to the disk together.
    cmd();
    add('n2', () => {});
    cmd();
    run();
    cmd();
    add('n3', () => {});
    cmd();
    run();
    const confIndexes: number[] = [];
    for (const w of writes) {
      w.entries.forEach((e, i) => {
        if (e.type !== EntryType.ConfChange) return;
        expect(i, `configuration entry ${e.index} opens its write`).to.equal(0);
        expect(w.hard, `the write of ${e.index} carries a hard state`).to.not.equal(null);
        for (const earlier of confIndexes)
          expect(w.hard!.commit, `its commit hint covers configuration entry ${earlier}`).to.be.at.least(earlier);
        confIndexes.push(e.index);
      });
    }
    expect(confIndexes).to.have.length(2);
    // The hint never covers an entry that is not durable before the write starts.
    let durable = 1;
    for (const w of writes) {
      if (w.hard) expect(w.hard.commit).to.be.at.most(durable);
      if (w.entries.length > 0) durable = w.entries[w.entries.length - 1]!.index;
    }
  });
});
