// The replica driver's options: the settings of src/settings.ts under their own names, plus what the driver
// derives from them (the Raft tick, bounds in bytes). deriveReplicaOptions() is the one place a node's
// settings become driver and core options.

import { DEFAULT_SETTINGS, pickSettings, REPLICA_SETTING_NAMES } from '../settings.js';
import type { ReplicaSettings, Settings } from '../settings.js';

export interface ReplicaOptions extends ReplicaSettings {
  /** One Raft tick. */
  tickMs: number;
  /** Election timeout, in ticks. */
  electionTicks: number;
  /** Randomization width of election timeouts, in ticks: timeouts are drawn from [T, T + jitter). */
  electionJitterTicks: number;
  heartbeatTicks: number;
  /** Bytes in flight to one follower in Replicate state. */
  maxInflightBytes: number;
  /** Bytes of committed entries applied in one batch. */
  maxApplyBytes: number;
  /** Take a snapshot after this many applied entries; 0 = never by count. */
  snapshotEntries: number;
  changePeersTimeoutMs: number;
  preVote: boolean;
  checkQuorum: boolean;
}

/** A JournalNode's settings as replica options. */
export function deriveReplicaOptions(s: Settings): ReplicaOptions {
  return {
    ...pickSettings(s, REPLICA_SETTING_NAMES),
    tickMs: Math.max(1, Math.floor(s.electionTimeoutMs / s.electionHeartbeatFactor)),
    electionTicks: s.electionHeartbeatFactor,
    // Timeouts in [T, 1.5 T): with pre-vote a split vote needs two timeouts within a network delay of each
    // other, so the narrower range costs almost nothing and bounds failover detection at 1.5 T.
    electionJitterTicks: Math.max(1, Math.floor(s.electionHeartbeatFactor / 2)),
    heartbeatTicks: 1,
    maxInflightBytes: s.maxAppendBodyBytes * s.maxInflightAppends,
    maxApplyBytes: s.maxAppendBodyBytes,
    snapshotEntries: 0,
    changePeersTimeoutMs: Math.max(60_000, s.electionTimeoutMs * 60),
    preVote: true,
    checkQuorum: true,
  };
}

/** The options of a node with every setting at its default (tests start from these). */
export const DEFAULT_REPLICA_OPTIONS: ReplicaOptions = deriveReplicaOptions(DEFAULT_SETTINGS);
