// The simulated nodes' settings, in one place: the node's own schema (src/settings.ts) and the node's own
// derivations (deriveReplicaOptions, journalnode/storage-options.ts), with times scaled down ten times (an
// election timeout of 100 ms: a 10 ms tick, elections in [100, 150) ms as on a node) and sizes small enough
// that a few seconds of simulated writes roll log segments over, snapshot every few entries, compact, evict
// caches and move snapshots in several chunks. Every value is one the schema accepts; the sizes a seed draws
// vary per seed.

import { DEFAULT_SETTINGS, SETTINGS } from '../../src/settings.js';
import type { Settings } from '../../src/settings.js';
import type { Prng } from '../../src/prng.js';
import { deriveReplicaOptions } from '../../src/replica/options.js';
import type { ReplicaOptions } from '../../src/replica/options.js';
import { diskLogSettings, stateMachineSettings } from '../../journalnode/storage-options.js';

/** Simulated time runs this many times faster than a node's: its timeouts are divided by it. */
export const SIM_TIME_SCALE = 10;

/** The settings of one run (the same on every node of it), drawn from the seed. */
export function drawSimSettings(rng: Prng): Settings {
  const s: Settings = {
    ...DEFAULT_SETTINGS,
    electionTimeoutMs: DEFAULT_SETTINGS.electionTimeoutMs / SIM_TIME_SCALE,
    proposalTimeoutMs: DEFAULT_SETTINGS.proposalTimeoutMs / SIM_TIME_SCALE,
    readTimeoutMs: DEFAULT_SETTINGS.readTimeoutMs / SIM_TIME_SCALE,
    maxEntriesPerAppend: rng.pick([4, 16, 64]),
    maxAppendBodyBytes: rng.pick([4096, 16384]),
    maxInflightAppends: rng.pick([1, 2, 4, 8]),
    maxUncommittedBytes: SETTINGS.maxUncommittedBytes.min,
    maxAppendBufferBytes: rng.pick([1024, 4096]),
    // The writers' batches stay under it (journal-clients.ts): a log write is then at most ~24 KiB, far less
    // than a segment, so damage further from the end than one write is corruption, not a torn write.
    maxBatchBytes: 16 << 10,
    leaderBatch: rng.pick([1, 8, 4096]),
    snapshotLogBytes: rng.int(8 * 1024, 48 * 1024),
    snapshotIntervalS: 0,
    keepEntriesAfterSnapshot: rng.int(0, 20),
    catchupMargin: rng.pick([0, 5, 50, 1000]),
    maxLogSegmentBytes: SETTINGS.maxLogSegmentBytes.min,
    logPreallocateBytes: rng.pick([0, 4096, 32 * 1024]),
    maxLogCacheBytes: rng.pick([0, 8192, 1 << 20]),
    maxSnapshotChunkBytes: rng.pick([SETTINGS.maxSnapshotChunkBytes.min, 4096, 16384]),
    cacheBytesPerJournal: rng.pick([0, 4096, 1 << 20]),
  };
  return s;
}

/** The replica's options for these settings, as a node derives them (time-based bounds scaled like the rest). */
export function simReplicaOptions(s: Settings): ReplicaOptions {
  const o = deriveReplicaOptions(s);
  return { ...o, changePeersTimeoutMs: o.changePeersTimeoutMs / SIM_TIME_SCALE };
}

export { diskLogSettings, stateMachineSettings };
