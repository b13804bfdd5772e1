// A node's settings as the options of its storage: the Raft log's (segment size, preallocation, cache, the
// torn-write bound) and the journal state machine's (cache, snapshot chunks and count). One place, used by
// the JournalNode's wiring and by the simulator, so the simulated storage runs as a configured node's does.

import type { Settings } from '../src/settings.js';

export function diskLogSettings(s: Settings) {
  return {
    maxSegmentBytes: s.maxLogSegmentBytes,
    preallocateBytes: s.logPreallocateBytes,
    // One log write carries a write batch plus the entry that overflows it (the log splits anything larger):
    // an entry is at most a journal batch and its command's few fields.
    tornWriteBytes: s.maxAppendBufferBytes + s.maxBatchBytes + (4 << 10),
    maxCacheBytes: s.maxLogCacheBytes,
    sync: s.sync,
  };
}

export function stateMachineSettings(s: Settings) {
  return {
    cacheBytesPerJournal: s.cacheBytesPerJournal,
    maxWaitingReads: s.maxWaitingReads,
    maxSnapshotChunkBytes: s.maxSnapshotChunkBytes,
    keepSnapshots: s.keepSnapshots,
  };
}
