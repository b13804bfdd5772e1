// A ReplicaLog over a MemoryStorage for replica unit tests: reads go to the storage, and each write is handed
// to the test (`write`), which decides when it completes (appending to the storage then, or never).

import type { ReplicaLog, ReplicaStateMachine } from '../../src/replica/env.js';
import type { MemoryStorage } from '../../src/raft/memory-storage.js';
import type { Entry, HardState } from '../../src/raft/types.js';

export function memoryReplicaLog(
  storage: MemoryStorage,
  hard: HardState,
  write: (hardState: HardState | null, entries: Entry[], done: (err: Error | null) => void) => void,
): ReplicaLog {
  return {
    initialHardState: () => ({ ...hard }),
    snapshotMeta: () => storage.snapshotMeta(),
    firstIndex: () => storage.firstIndex(),
    lastIndex: () => storage.lastIndex(),
    term: (i) => storage.term(i),
    entries: (lo, hi, max) => storage.entries(lo, hi, max),
    write,
    snapshotSaved: () => {},
    beginReset: () => {},
    commitReset: (_m, done) => done(null),
  };
}

/** A state machine that applies anything (result 0) and has no snapshots to fetch. */
export const nullStateMachine: ReplicaStateMachine<number> = {
  apply: (es) => es.map(() => 0),
  saveSnapshot: (_m, done) => done(null),
  fetchSnapshot: (_f, _m, done) => done(new Error('no snapshots here')),
  installSnapshot: (_s, done) => done(null),
  discardSnapshot: () => {},
};
