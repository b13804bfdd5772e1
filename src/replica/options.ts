// The replica driver's options: the settings of src/settings.ts under their own names, plus what the driver
// derives from them (the Raft tick, bounds in bytes). deriveReplicaOptions() is the one place a node's
// settings become driver and core options.

import { DEFAULT_SETTINGS, pickSettings, REPLICA_SETTING_NAMES } from '../settings.js';
import type { ReplicaSettings, Settings } from '../settings.js';
import type { RaftConfig } from '../raft/types.js';

/** The core's options the driver passes through as they are (their meaning is RaftConfig's). */
type CoreOptions = Pick<
  RaftConfig,
  | 'electionTicks'
  | 'electionJitterTicks'
  | 'heartbeatTicks'
  | 'maxInflightBytes'
  | 'maxApplyBytes'
  | 'maxPendingReads'
  | 'preVote'
  | 'checkQuorum'
>;

export interface ReplicaOptions extends ReplicaSettings, CoreOptions {
  /** One Raft tick. */
  tickMs: number;
  /** Write jobs queued for the disk; beyond, a leader refuses proposals (BUSY) and peer input is dropped. */
  maxPersistJobs: number;
  /** Take a snapshot after this many applied entries; 0 = never by count. */
  snapshotEntries: number;
  changePeersTimeoutMs: number;
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
    // A node bounds the readers waiting on it (maxWaitingReads): long-polls, and apart from them the reads
    // waiting for the leader's confirmation.
    maxPendingReads: s.maxWaitingReads,
    // Each turn queues at most one job per Ready and one write drains them all (group commit): thousands
    // queued means the disk has stalled, and taking more would only grow memory.
    maxPersistJobs: 4096,
    snapshotEntries: 0,
    changePeersTimeoutMs: Math.max(60_000, s.electionTimeoutMs * 60),
    preVote: true,
    checkQuorum: true,
  };
}

/** The options of a node with every setting at its default (tests start from these). */
export const DEFAULT_REPLICA_OPTIONS: ReplicaOptions = deriveReplicaOptions(DEFAULT_SETTINGS);
