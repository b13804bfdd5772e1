// JournalNode settings: defaults and the validation of every field with an error that names it (the command
// line and the config file are read by cli-args.ts). Raft settings carry braft's names where braft has one.

import { checkHostPort, isNodeId, NODE_ID_RULE } from '../src/ids.js';
import type { Peer } from '../src/raft/types.js';

export interface JournalNodeConfig {
  id: string;
  /** Bind address (host:port). */
  listen: string;
  dataDir: string;
  /** Initial configuration, used only when the data directory is empty (braft's initial_conf). */
  peers: Peer[];
  /**
   * Instead of --peers: members of a running cluster to join. The node starts empty and waits for the
   * leader to replicate to it once an operator adds it (qjm add-peer). Used only on an empty directory.
   */
  join: string[];
  /** The address peers dial this node at, when it differs from --listen (NAT, containers, proxies). */
  advertise: string;

  // Raft (braft names in brackets)
  electionTimeoutMs: number; // [election_timeout_ms]
  electionHeartbeatFactor: number; // heartbeat interval = electionTimeoutMs / this
  snapshotIntervalS: number; // [snapshot_interval_s]; 0 = only by log size
  snapshotLogBytes: number; // snapshot once this many bytes were applied since the last one
  catchupMargin: number; // [catchup_margin]
  sync: boolean; // [raft_sync] fdatasync the log before acknowledging
  maxAppendBufferBytes: number; // [raft_max_append_buffer_size] bytes one log write (one fsync) carries
  leaderBatch: number; // [raft_leader_batch] entries one log write carries
  maxEntriesPerAppend: number; // [raft_max_entries_size]
  maxAppendBodyBytes: number; // [raft_max_body_size]
  maxLogSegmentBytes: number; // [raft_max_segment_size]
  logPreallocateBytes: number; // zero-filled space kept ahead of the log's end (faster fdatasync); 0 = off
  maxSnapshotChunkBytes: number; // [raft_max_byte_count_per_rpc]
  applyBatch: number; // [raft_apply_batch] entries applied per batch
  maxInflightAppends: number; // appends in flight to one follower
  maxUncommittedBytes: number; // proposals beyond this are refused with BUSY
  keepEntriesAfterSnapshot: number;
  keepSnapshots: number;

  // Journal
  maxRecordBytes: number;
  maxBatchBytes: number;
  cacheBytesPerJournal: number;
  proposalTimeoutMs: number;
  readTimeoutMs: number;
  maxWaitMs: number; // longest long-poll a reader may ask for

  // Transport
  peerHoldMs: number; // how long a peer's request is held to piggyback the answer
  peerRequestTimeoutMs: number;
  maxPeerQueueBytes: number;
  maxLogCacheBytes: number;

  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
}

export const DEFAULTS: Omit<JournalNodeConfig, 'id' | 'listen' | 'dataDir' | 'peers' | 'join' | 'advertise'> = {
  electionTimeoutMs: 1000,
  electionHeartbeatFactor: 10,
  snapshotIntervalS: 3600,
  snapshotLogBytes: 256 << 20,
  catchupMargin: 1000,
  sync: true,
  maxAppendBufferBytes: 16 << 20,
  leaderBatch: 4096,
  maxEntriesPerAppend: 1024,
  maxAppendBodyBytes: 16 << 20,
  maxLogSegmentBytes: 64 << 20,
  logPreallocateBytes: 4 << 20,
  maxSnapshotChunkBytes: 1 << 20,
  applyBatch: 1024,
  maxInflightAppends: 8,
  maxUncommittedBytes: 256 << 20,
  keepEntriesAfterSnapshot: 10_000,
  keepSnapshots: 2,
  maxRecordBytes: 1 << 20,
  maxBatchBytes: 8 << 20,
  cacheBytesPerJournal: 16 << 20,
  proposalTimeoutMs: 20_000,
  readTimeoutMs: 10_000,
  maxWaitMs: 60_000,
  peerHoldMs: 10,
  peerRequestTimeoutMs: 5000,
  maxPeerQueueBytes: 64 << 20,
  maxLogCacheBytes: 16 << 20,
  logLevel: 'info',
};

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const INT_FIELDS: { [K in keyof typeof DEFAULTS]?: [min: number, max: number] } = {
  electionTimeoutMs: [50, 600_000],
  electionHeartbeatFactor: [2, 1000],
  snapshotIntervalS: [0, 365 * 86400],
  snapshotLogBytes: [1 << 10, 2 ** 50],
  catchupMargin: [0, 1e12],
  maxAppendBufferBytes: [1 << 10, 1 << 30],
  leaderBatch: [1, 1 << 20],
  maxEntriesPerAppend: [1, 1 << 20],
  maxAppendBodyBytes: [1 << 10, 1 << 30],
  maxLogSegmentBytes: [1 << 16, 1 << 30],
  logPreallocateBytes: [0, 1 << 30],
  maxSnapshotChunkBytes: [1 << 10, 1 << 28],
  applyBatch: [1, 1 << 20],
  maxInflightAppends: [1, 1024],
  maxUncommittedBytes: [1 << 16, 2 ** 40],
  keepEntriesAfterSnapshot: [0, 1e9],
  keepSnapshots: [1, 100],
  maxRecordBytes: [1, 1 << 28],
  maxBatchBytes: [1, 1 << 28],
  cacheBytesPerJournal: [0, 1 << 30],
  proposalTimeoutMs: [100, 3_600_000],
  readTimeoutMs: [100, 3_600_000],
  maxWaitMs: [0, 3_600_000],
  peerHoldMs: [0, 1000],
  peerRequestTimeoutMs: [100, 600_000],
  maxPeerQueueBytes: [1 << 16, 2 ** 31],
  maxLogCacheBytes: [0, 2 ** 31],
};

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

/** Validates a complete configuration; throws ConfigError naming the first bad field. */
export function validateConfig(c: Partial<JournalNodeConfig>): JournalNodeConfig {
  const bad = (field: string, why: string): never => {
    throw new ConfigError(`invalid ${field}: ${why}`);
  };
  if (!isNodeId(c.id)) bad('id', `expected ${NODE_ID_RULE}`);
  if (typeof c.listen !== 'string') bad('listen', 'missing (e.g. --listen 127.0.0.1:8485)');
  const hp = checkHostPort(c.listen!, 'listen');
  if (hp) bad('listen', hp);
  if (typeof c.dataDir !== 'string' || c.dataDir.length === 0) bad('dataDir', 'missing (e.g. --data ./data/n1)');
  const join = c.join ?? [];
  const peers = c.peers ?? [];
  if (!Array.isArray(join)) bad('join', 'expected a list of host:port');
  for (const a of join) {
    const e = checkHostPort(a);
    if (e) bad('join', e);
  }
  if (!Array.isArray(peers) || (peers.length === 0 && join.length === 0)) {
    bad('peers', 'missing: --peers n1=127.0.0.1:8485,n2=127.0.0.1:8486,n3=127.0.0.1:8487 for a new cluster, or --join <members> to join one');
  }
  if (peers.length > 0 && join.length > 0) bad('join', 'give --peers (a new cluster) or --join (an existing one), not both');
  const ids = new Set<string>();
  for (const p of peers) {
    if (!isNodeId(p.id)) bad('peers', `bad peer id ${JSON.stringify(p.id)}`);
    if (ids.has(p.id)) bad('peers', `peer ${p.id} named twice`);
    ids.add(p.id);
    const e = checkHostPort(p.address);
    if (e) bad('peers', `peer ${p.id}: ${e}`);
  }
  if (peers.length > 0 && !ids.has(c.id!)) bad('peers', `this node's id ${c.id} is not among the peers`);
  const advertise = c.advertise ?? peers.find((p) => p.id === c.id)?.address ?? c.listen!;
  const ae = checkHostPort(advertise);
  if (ae) bad('advertise', ae);
  if (/^(0\.0\.0\.0|\[::\]):/.test(advertise)) bad('advertise', `${advertise} is a wildcard bind address: peers cannot dial it; give --advertise host:port`);
  const out: Record<string, unknown> = { ...c, peers, join, advertise };
  for (const [k, range] of Object.entries(INT_FIELDS)) {
    const v = out[k];
    if (typeof v !== 'number' || !Number.isInteger(v)) bad(k, `expected an integer, got ${JSON.stringify(v)}`);
    const [lo, hi] = range!;
    if ((v as number) < lo || (v as number) > hi) bad(k, `${v} is outside [${lo}, ${hi}]`);
  }
  if (typeof c.sync !== 'boolean') bad('sync', 'expected true or false');
  if (!LOG_LEVELS.includes(String(c.logLevel))) bad('logLevel', `expected one of ${LOG_LEVELS.join(', ')}`);
  if (c.electionTimeoutMs! / c.electionHeartbeatFactor! < 5) bad('electionHeartbeatFactor', 'the heartbeat interval would be under 5 ms');
  if (c.maxBatchBytes! > c.maxAppendBodyBytes!) bad('maxBatchBytes', `must not exceed maxAppendBodyBytes (${c.maxAppendBodyBytes})`);
  if (c.maxRecordBytes! > c.maxBatchBytes!) bad('maxRecordBytes', `must not exceed maxBatchBytes (${c.maxBatchBytes})`);
  return out as unknown as JournalNodeConfig;
}
