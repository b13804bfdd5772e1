// The Raft core's vocabulary: entries, messages, hard state, configurations, snapshot metadata, and the
// core's own configuration and results.
// Field names and enum values match proto/raft.proto exactly, so a core object encodes as-is.

import type { Logger } from '../logger.js';
import type { RaftSettings } from '../settings.js';

export type NodeId = string;
/** No node: no leader known, no vote cast. */
export const NONE: NodeId = '';

export enum EntryType {
  Normal = 0,
  ConfChange = 1,
}

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

/** A membership configuration; a non-empty votersOutgoing means joint consensus (C_old,new). */
export interface ConfState {
  voters: NodeId[];
  votersOutgoing: NodeId[];
  learners: NodeId[];
}

export interface Peer {
  id: NodeId;
  address: string;
  /** In a configuration: the storage the member is bound to ('' or absent: not bound). Never read by the core. */
  storageId?: string;
}

export interface SnapshotMeta {
  index: number;
  term: number;
  conf: ConfState;
  /** The address book of the members at `index`; carried for the driver, never read by the core. */
  peers?: Peer[];
  /** The reset generation (absent: 0); carried for the driver, never read by the core. */
  generation?: number;
}

export enum ConfChangeOp {
  AddVoter = 0,
  Remove = 1,
  AddLearner = 2,
}

export interface ConfChangeItem {
  op: ConfChangeOp;
  peer: Peer;
}

export interface ConfChange {
  changes: ConfChangeItem[];
  leaveJoint: boolean;
}

/** Encodes a ConfChange as entry data and back; decode throws on bytes that are not one. */
export interface ConfChangeCodec {
  encode(cc: ConfChange): Uint8Array;
  decode(data: Uint8Array): ConfChange;
}

export enum MessageType {
  None = 0,
  App = 1,
  AppResp = 2,
  Vote = 3,
  VoteResp = 4,
  PreVote = 5,
  PreVoteResp = 6,
  Heartbeat = 7,
  HeartbeatResp = 8,
  Snap = 9,
  SnapStatus = 10,
  TimeoutNow = 11,
  ReadIndex = 12,
  ReadIndexResp = 13,
  /** Not Raft's: a leader tells a follower the floor its lost disk must reach again (src/replica/identity.ts). */
  Floor = 14,
}

export interface Message {
  type: MessageType;
  to: NodeId;
  from: NodeId;
  term: number;
  logTerm: number;
  index: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  rejectHint: number;
  context: Uint8Array;
  snapshot: SnapshotMeta | null;
}

const EMPTY = new Uint8Array(0);

/** A message with every field defaulted, then the given ones. */
export function makeMessage(fields: Partial<Message> & Pick<Message, 'type' | 'to' | 'from'>): Message {
  return {
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    context: EMPTY,
    snapshot: null,
    ...fields,
  };
}

export enum StateType {
  Follower = 'follower',
  PreCandidate = 'pre-candidate',
  Candidate = 'candidate',
  Leader = 'leader',
}

export function emptyConf(): ConfState {
  return { voters: [], votersOutgoing: [], learners: [] };
}

export function cloneConf(c: ConfState): ConfState {
  return { voters: [...c.voters], votersOutgoing: [...c.votersOutgoing], learners: [...c.learners] };
}

export function isJoint(c: ConfState): boolean {
  return c.votersOutgoing.length > 0;
}

/** The messages only a leader sends (appends, heartbeats, snapshots): a node hears them from a leader its configuration does not name. */
export function isLeaderMessage(type: MessageType): boolean {
  return type === MessageType.App || type === MessageType.Heartbeat || type === MessageType.Snap;
}

/** Every node the configuration replicates to: voters of both halves and learners, each once. */
export function confMembers(c: ConfState): NodeId[] {
  return [...new Set([...c.voters, ...c.votersOutgoing, ...c.learners])];
}

export function isVoter(c: ConfState, id: NodeId): boolean {
  return c.voters.includes(id) || c.votersOutgoing.includes(id);
}

/**
 * What an entry counts for beyond its data in every byte bound (batches, queues, the uncommitted limit): a
 * rough size of its term, index and type, so that empty entries still count.
 */
export const ENTRY_OVERHEAD_BYTES = 24;

/** An entry's size in every byte bound: its data and ENTRY_OVERHEAD_BYTES. */
export function entryBytes(e: Entry): number {
  return e.data.byteLength + ENTRY_OVERHEAD_BYTES;
}

/**
 * The core's configuration. Fields named in src/settings.ts mean what the schema says there (same names at
 * every layer); the rest are derived by the driver (ticks, byte bounds) or injected (randomness, logging).
 */
export interface RaftConfig extends RaftSettings {
  id: NodeId;
  /** Election timeout in ticks; a follower's randomized timeout is drawn from [electionTicks, electionTicks + electionJitterTicks). */
  electionTicks: number;
  /**
   * Width of the randomization (the Raft paper's [T, 2T) is electionJitterTicks = electionTicks). Always given:
   * what a node uses is decided once, in deriveReplicaOptions (src/replica/options.ts).
   */
  electionJitterTicks: number;
  heartbeatTicks: number;
  /** Bytes in flight to one follower in Replicate state (0: no byte bound). */
  maxInflightBytes: number;
  /** Bytes of committed entries one Ready hands out. */
  maxApplyBytes: number;
  /**
   * ReadIndex requests a leader holds for confirmation at once (its own and its followers'); beyond, refused.
   * The driver bounds its own waiting reads by the same number.
   */
  maxPendingReads: number;
  /** A follower silent in Snapshot state for this many ticks is probed again. */
  snapshotTimeoutTicks: number;
  preVote: boolean;
  checkQuorum: boolean;
  /** How configuration changes are stored in log entries (the wire format lives outside the core). */
  confChangeCodec: ConfChangeCodec;
  /** Injected randomness in [0, 1): a seeded PRNG in the simulator. */
  random: () => number;
  logger?: Logger;
}

export type ProposeError =
  | 'not-leader'
  | 'term-mismatch'
  | 'transferring'
  | 'busy'
  | 'conf-change-pending'
  | 'invalid-conf-change';

export type ProposeResult =
  | { ok: true; index: number; term: number }
  | { ok: false; error: ProposeError; leader: NodeId; term: number; detail?: string };

export interface ReadState {
  context: Uint8Array;
  /** The read may be served once the applied index reaches this. */
  index: number;
  /** False when the read was refused (no leader, leadership lost, nothing committed in the leader's term). */
  ok: boolean;
}

/** What the core hands its driver through RawNode's Ready, besides soft and hard state. */
export interface RaftOutput {
  /** Entries to append; the first may be at or below the durable last index, which then truncates the log. */
  entries: Entry[];
  /** Messages that may be sent at once (a leader's appends go out while its own write is in flight). */
  messages: Message[];
  /** Messages to send only after this Ready's hardState and entries (and every earlier write) are durable. */
  persistedMessages: Message[];
  /** Entries to apply, in order; all durable here and committed. */
  committedEntries: Entry[];
  readStates: ReadState[];
  /** The leader asked this follower to install a snapshot: fetch it from `from`, then call snapshotFetched. */
  snapshotToFetch: { meta: SnapshotMeta; from: NodeId } | null;
}

/** Whether a message of this type from `from` is admitted under `conf`: only members speak for the cluster, with two exceptions. */
export function admitsFrom(conf: ConfState, from: NodeId, type: MessageType): boolean {
  const members = confMembers(conf);
  // A node whose configuration is still empty (it joined and waits for the leader's snapshot) cannot tell
  // members from others yet: its transport admits only the members it learned when it joined.
  if (members.length === 0 || members.includes(from)) return true;
  // A leader this configuration does not name yet (this node lags behind the change that added it), or no
  // longer names (removed, it leads until its leave is confirmed), must still be heard: otherwise a lagging
  // node never learns the change. The term rules apply to it as to anyone.
  return isLeaderMessage(type);
}
