// Storage that runs out of file descriptors (EMFILE: a connection flood) is not a failing disk: a log write, an
// apply or a snapshot interrupted by it is retried after a backoff; the replica never enters its fatal state,
// applies every entry exactly once and in order, and carries on by itself once descriptors are back. Any
// other error (EIO) still stops it, as before.

import { expect } from 'chai';
import { ApplyInterrupted } from '../../../src/replica/env.js';
import type { ReplicaLog, ReplicaStateMachine } from '../../../src/replica/env.js';
import { DEFAULT_REPLICA_OPTIONS, Replica } from '../../../src/replica/replica.js';
import { MemoryStorage } from '../../../src/raft/memory-storage.js';
import type { Entry, SnapshotMeta } from '../../../src/raft/types.js';
import type { ReplicaOptions } from '../../../src/replica/replica.js';

function errno(code: string): Error {
  return Object.assign(new Error(`${code}: simulated`), { code });
}

interface Faults {
  /** Errors the next log writes fail with, in turn. */
  writes: string[];
  /** Applies that stop after this many entries with EMFILE, in turn. */
  applies: number[];
  /** Errors the next snapshots fail with, in turn. */
  snapshots: string[];
}

/** One voter on a manual clock, with a log, a state machine and snapshots that fail as `faults` says. */
function node(faults: Faults, options: Partial<ReplicaOptions> = {}) {
  const conf = { voters: ['n1'], votersOutgoing: [], learners: [] };
  const storage = new MemoryStorage(conf);
  storage.applySnapshot({ index: 1, term: 1, conf, peers: [{ id: 'n1', address: 'sim://n1' }] });
  const tasks: (() => void)[] = [];
  const later = (fn: () => void) => tasks.push(fn);
  const applied: string[] = [];
  /** The index of every snapshot the state machine was asked to save. */
  const saves: number[] = [];
  const log: ReplicaLog = {
    initialHardState: () => ({ term: 1, vote: '', commit: 1 }),
    snapshotMeta: () => storage.snapshotMeta(),
    firstIndex: () => storage.firstIndex(),
    lastIndex: () => storage.lastIndex(),
    term: (i) => storage.term(i),
    entries: (lo, hi, max) => storage.entries(lo, hi, max),
    write(_h, entries, done) {
      const fail = faults.writes.shift();
      later(() => {
        if (fail) return done(errno(fail));
        storage.append(entries);
        done(null);
      });
    },
    snapshotSaved: () => {},
    beginReset: () => {},
    commitReset: (_m, done) => done(null),
  };
  const stateMachine: ReplicaStateMachine<string> = {
    apply(es: readonly Entry[]) {
      const stopAt = faults.applies[0];
      const out: string[] = [];
      for (const e of es) {
        if (stopAt !== undefined && out.length === stopAt) {
          faults.applies.shift();
          throw new ApplyInterrupted(out, errno('EMFILE'));
        }
        const text = new TextDecoder().decode(e.data);
        applied.push(text);
        out.push(text);
      }
      return out;
    },
    saveSnapshot(m: SnapshotMeta, done) {
      saves.push(m.index);
      const fail = faults.snapshots.shift();
      later(() => done(fail ? errno(fail) : null));
    },
    fetchSnapshot: (_f, _m, done) => done(new Error('no snapshots here')),
    installSnapshot: (_s, done) => done(null),
    discardSnapshot: () => {},
  };
  let now = 0;
  const replica = new Replica<string>(
    'n1',
    { ...DEFAULT_REPLICA_OPTIONS, tickMs: 10, ...options },
    {
      log,
      stateMachine,
      transport: { send: () => {} },
      clock: { now: () => now, defer: later },
      random: () => 0.5,
      checkInvariants: true,
    },
  );
  const run = () => {
    for (let i = 0; i < 10_000 && tasks.length > 0; i++) tasks.shift()!();
  };
  const tick = (n = 1) => {
    for (let i = 0; i < n; i++) {
      now += 10;
      replica.tick();
      run();
    }
  };
  replica.start();
  run();
  tick(40);
  expect(replica.isLeader, 'a single voter leads').to.equal(true);
  return { replica, applied, saves, run, tick };
}

function propose(replica: Replica<string>, text: string, results: string[]): void {
  replica.propose(new TextEncoder().encode(text), undefined, (e, r) => results.push(e ? `error ${e.code}` : r!.value));
}

describe('a replica short of file descriptors', () => {
  it('a log write that fails with EMFILE (then ENFILE) is retried; the proposals commit; no fatal state', () => {
    const faults: Faults = { writes: [], applies: [], snapshots: [] };
    const n = node(faults);
    faults.writes.push('EMFILE', 'ENFILE', 'EMFILE');
    const results: string[] = [];
    for (const t of ['a', 'b', 'c']) propose(n.replica, t, results);
    n.run();
    expect(results, 'nothing acknowledged while the write cannot be made').to.deep.equal([]);
    expect(n.replica.status().fatal).to.equal(null);
    n.tick(100);
    expect(results).to.deep.equal(['a', 'b', 'c']);
    expect(n.applied).to.deep.equal(['a', 'b', 'c']);
    expect(n.replica.status().fatal).to.equal(null);
  });

  it('an apply interrupted by EMFILE resumes where it stopped: every entry once, in order', () => {
    const faults: Faults = { writes: [], applies: [], snapshots: [] };
    const n = node(faults);
    faults.applies.push(2, 0, 1);
    const results: string[] = [];
    for (const t of ['a', 'b', 'c', 'd', 'e']) propose(n.replica, t, results);
    n.run();
    expect(n.applied, 'applied up to the interruption').to.deep.equal(['a', 'b']);
    n.tick(100);
    expect(n.applied).to.deep.equal(['a', 'b', 'c', 'd', 'e']);
    expect(results).to.deep.equal(['a', 'b', 'c', 'd', 'e']);
    expect(n.replica.status().fatal).to.equal(null);
    // It keeps working afterwards.
    propose(n.replica, 'f', results);
    n.run();
    expect(results.at(-1)).to.equal('f');
  });

  it('a snapshot that fails with EMFILE answers BUSY and is taken later; an EIO is still fatal', () => {
    const faults: Faults = { writes: [], applies: [], snapshots: ['EMFILE'] };
    const n = node(faults);
    const results: string[] = [];
    propose(n.replica, 'a', results);
    n.run();
    let answer = '';
    n.replica.takeSnapshot((e, index) => (answer = e ? e.code : `index ${index}`));
    n.run();
    expect(answer).to.equal('QJM_ERR_BUSY');
    expect(n.replica.status().fatal).to.equal(null);
    n.replica.takeSnapshot((e, index) => (answer = e ? e.code : `index ${index}`));
    n.run();
    expect(answer).to.match(/^index \d+$/);
    // A real disk failure stops the replica for good, as it always did.
    faults.writes.push('EIO');
    propose(n.replica, 'b', results);
    n.run();
    n.tick(5);
    expect(n.replica.status().fatal).to.match(/EIO/);
    expect(results.at(-1)).to.equal('error QJM_ERR_STORAGE_FAILED');
  });

  it('a snapshot due by size that fails with EMFILE is taken after the backoff, with nothing more applied', () => {
    const faults: Faults = { writes: [], applies: [], snapshots: [] };
    const n = node(faults, { snapshotEntries: 0, snapshotLogBytes: 3, snapshotIntervalS: 0 });
    faults.snapshots.push('EMFILE');
    const results: string[] = [];
    propose(n.replica, 'abc', results);
    n.run();
    expect(results).to.deep.equal(['abc']);
    expect(n.saves, 'due by its bytes, tried once').to.have.length(1);
    // The bytes it would have covered still count: the retry finds it due again.
    n.tick(20);
    expect(n.saves, 'taken again after the backoff').to.have.length(2);
    expect(n.replica.status().fatal).to.equal(null);
  });
});
