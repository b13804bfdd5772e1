// The driver's handle on the core (etcd's RawNode): inputs validated at the boundary, outputs bundled into a
// Ready that says what to persist, what to send now, what to send once persisted, and what to apply.

import { assert, AssertionError } from '../assert.js';
import { captureState, checkInvariants } from './invariants.js';
import { Raft } from './raft.js';
import type { ProposeResult, RaftConfig, RaftOutput } from './raft.js';
import type { LogStorage } from './log.js';
import { confMembers, isVoter, MessageType, NONE, StateType } from './types.js';
import type { ConfChange, ConfState, HardState, Message, NodeId, SnapshotMeta } from './types.js';
import type { ProgressState } from './progress.js';

export interface SoftState {
  lead: NodeId;
  state: StateType;
}

export interface Ready extends RaftOutput {
  /** Changed since the last Ready (soft state is never persisted). */
  softState: SoftState | null;
  /** Changed since the last Ready; term and vote must be durable before persistedMessages go out. */
  hardState: HardState | null;
}

export interface FollowerStatus {
  match: number;
  next: number;
  state: ProgressState;
  inflight: number;
  recentActive: boolean;
  pendingSnapshot: number;
}

export interface RaftStatus {
  id: NodeId;
  term: number;
  vote: NodeId;
  lead: NodeId;
  state: StateType;
  commitIndex: number;
  appliedIndex: number;
  firstIndex: number;
  lastIndex: number;
  /** Last index durable on this node's disk. */
  stableIndex: number;
  conf: ConfState;
  leadTransferee: NodeId;
  /** Leader only: every other member's replication progress. */
  progress: Record<NodeId, FollowerStatus>;
}

const RESPONSE_TYPES = new Set([
  MessageType.AppResp,
  MessageType.VoteResp,
  MessageType.PreVoteResp,
  MessageType.HeartbeatResp,
  MessageType.SnapStatus,
  MessageType.ReadIndexResp,
]);

/**
 * How far ahead of this node's term a message's term may be. Terms grow by one per election round, and
 * pre-vote keeps a partitioned node from inflating its own, so a real gap is a few thousand at the most.
 */
export const MAX_TERM_JUMP = 1_000_000;

function isSafeIndex(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

/** Why a message from a peer cannot be stepped, or null. Structural checks only: state checks are Raft's. */
export function validateMessage(m: Message, self: NodeId): string | null {
  if (m.to !== self) return `addressed to ${m.to}`;
  if (m.from === NONE || m.from === self) return `bad sender ${JSON.stringify(m.from)}`;
  if (!(m.type in MessageType) || m.type === MessageType.None) return `unknown type ${m.type}`;
  if (
    !isSafeIndex(m.term) ||
    !isSafeIndex(m.logTerm) ||
    !isSafeIndex(m.index) ||
    !isSafeIndex(m.commit) ||
    !isSafeIndex(m.rejectHint)
  ) {
    return 'an index or term is not a safe non-negative integer';
  }
  if (
    (m.type === MessageType.App || m.type === MessageType.Vote || m.type === MessageType.PreVote) &&
    m.logTerm > m.term
  ) {
    return `log term ${m.logTerm} above the message term ${m.term}`;
  }
  if (m.entries.length > 0) {
    if (m.type !== MessageType.App) return 'entries on a non-append message';
    let prevTerm = m.logTerm;
    for (let i = 0; i < m.entries.length; i++) {
      const e = m.entries[i]!;
      if (e.index !== m.index + 1 + i) return `entry ${i} has index ${e.index}, expected ${m.index + 1 + i}`;
      if (!isSafeIndex(e.term) || e.term < prevTerm || e.term > m.term)
        return `entry ${e.index} has term ${e.term} out of order`;
      prevTerm = e.term;
    }
  }
  if (m.type === MessageType.Snap) {
    const s = m.snapshot;
    if (!s || !isSafeIndex(s.index) || !isSafeIndex(s.term) || s.index === 0 || s.term > m.term)
      return 'bad snapshot metadata';
    if (!s.conf || s.conf.voters.length === 0) return 'snapshot without a configuration';
  }
  return null;
}

export class RawNode {
  readonly raft: Raft;
  private prevHard: HardState;
  private prevSoft: SoftState;
  private outstanding: Ready | null = null;
  private readonly checking: boolean;
  /** While set, no Ready carries committed entries: the driver's state machine cannot take them now. */
  private applyHeld = false;

  /** With checkInvariants, every input is checked against the core's invariants (tests and simulation). */
  constructor(
    config: RaftConfig,
    storage: LogStorage,
    hardState: HardState,
    options: { checkInvariants?: boolean } = {},
  ) {
    this.raft = new Raft(config, storage, hardState);
    this.prevHard = this.raft.hardState();
    this.prevSoft = { lead: this.raft.lead, state: this.raft.state };
    this.checking = options.checkInvariants === true;
  }

  /** Runs one input of the core; when checking, a violated invariant throws (a programmer error). */
  private input<T>(fn: () => T): T {
    if (!this.checking) return fn();
    const before = captureState(this.raft);
    const out = fn();
    const violations = checkInvariants(before, this.raft);
    if (violations.length > 0)
      throw new AssertionError(`raft invariants violated on ${this.raft.id}: ${violations.join('; ')}`);
    return out;
  }

  /**
   * One tick of time. `mayCampaign` false: a follower counts the time (a leader's lease on its vote expires) but
   * does not campaign when its election timeout passes (the driver's identity rules: a floor, a stand-down).
   */
  tick(mayCampaign = true): void {
    this.input(() => this.raft.tick(mayCampaign));
  }

  /** Steps a message from a peer. Malformed, misaddressed or unsolicited input is dropped, never trusted. */
  step(m: Message): boolean {
    const problem = validateMessage(m, this.raft.id);
    if (problem !== null) {
      this.debug({ problem, type: m.type, from: m.from }, 'dropping invalid message');
      return false;
    }
    if (RESPONSE_TYPES.has(m.type) && !this.raft.progress.has(m.from) && m.type !== MessageType.ReadIndexResp) {
      this.debug({ type: MessageType[m.type], from: m.from }, 'dropping response from a non-member');
      return false;
    }
    // Only members speak for the cluster (see Raft.admits).
    if (!this.raft.admits(m.from, m.type)) {
      this.debug({ type: MessageType[m.type], from: m.from }, 'dropping a message from a non-member');
      return false;
    }
    if (m.term > this.raft.term + MAX_TERM_JUMP) {
      // No election history moves a term this far at once: a forged or corrupt term would otherwise end the
      // cluster's ability to elect (terms cannot pass 2^53-1).
      this.raft.logger.warn(
        { type: MessageType[m.type], from: m.from, term: m.term, ourTerm: this.raft.term },
        'dropping a message whose term jumps too far ahead',
      );
      return false;
    }
    this.input(() => this.raft.step(m));
    return true;
  }

  propose(data: Uint8Array, expectedTerm?: number): ProposeResult {
    return this.input(() => this.raft.propose(data, expectedTerm));
  }

  proposeConfChange(cc: ConfChange, expectedTerm?: number): ProposeResult {
    return this.input(() => this.raft.proposeConfChange(cc, expectedTerm));
  }

  readIndex(context: Uint8Array): void {
    this.input(() => this.raft.readIndex(context));
  }

  transferLeader(to: NodeId): { ok: boolean; detail?: string } {
    return this.input(() => this.raft.transferLeader(to));
  }

  /** Stops leading or campaigning, keeping the term (the driver's identity rules: a node that stands down). */
  stepDown(): void {
    this.input(() => this.raft.stepDown());
  }

  /** Starts an election now (tests, and an operator's explicit request). */
  campaign(): void {
    if (this.raft.state !== StateType.Leader)
      this.input(() => this.raft.campaign(this.raft.config.preVote ? 'pre-vote' : 'election'));
  }

  reportUnreachable(id: NodeId): void {
    this.input(() => this.raft.reportUnreachable(id));
  }

  /** The driver made entries up to `index` of `term` durable (every earlier write included). */
  persisted(index: number, term: number): void {
    this.input(() => this.raft.persisted(index, term));
  }

  /**
   * The snapshot image was fetched (ok) or the fetch failed. When this returns true the driver must reset
   * its storage to the snapshot (synchronously for reads; durably through its ordered write queue, ahead
   * of any later write) and then call restore(meta).
   */
  snapshotFetched(meta: SnapshotMeta, ok: boolean): boolean {
    return this.input(() => this.raft.snapshotFetched(meta, ok));
  }

  restore(meta: SnapshotMeta): void {
    this.input(() => this.raft.restore(meta));
  }

  /**
   * Reset-peers (a majority lost for good), step one: every entry of this node's log is declared committed.
   * The driver first makes its whole log durable, and takes no peer input until the reset is done.
   */
  forceCommitLog(): void {
    this.input(() => this.raft.forceCommitLog());
  }

  /**
   * Reset-peers, step two, once everything is applied: the configuration becomes `conf`, and a committed
   * no-op of a new term is appended. The driver makes `conf` durable by a snapshot at that no-op's index.
   */
  forceConfiguration(conf: ConfState): void {
    this.input(() => this.raft.forceConfiguration(conf));
  }

  // ---------------------------------------------------------------- what the driver may read

  get term(): number {
    return this.raft.term;
  }

  /** The current configuration (a copy). */
  conf(): ConfState {
    const c = this.raft.conf;
    return { voters: [...c.voters], votersOutgoing: [...c.votersOutgoing], learners: [...c.learners] };
  }

  /** A configuration change was proposed and is not applied yet: the next one must wait. */
  confChangePending(): boolean {
    return this.raft.confChangePending();
  }

  lastIndex(): number {
    return this.raft.log.lastIndex();
  }

  appliedIndex(): number {
    return this.raft.log.applied;
  }

  committedIndex(): number {
    return this.raft.log.committed;
  }

  /** The last index durable on this node's disk (entries past it are not yet written). */
  stableIndex(): number {
    return this.raft.log.stableIndex();
  }

  /** The term of the entry at index, if the log (or its snapshot) still knows it. */
  termAt(index: number): number | undefined {
    return this.raft.log.term(index);
  }

  /**
   * Leader only: what `id` has acknowledged, or undefined when this node does not track it (not leading,
   * or not a member). `recentlyActive`: heard from within the current election timeout.
   */
  followerProgress(id: NodeId): { match: number; next: number; recentlyActive: boolean } | undefined {
    if (this.raft.state !== StateType.Leader) return undefined;
    const pr = this.raft.progress.get(id);
    return pr ? { match: pr.match, next: pr.next, recentlyActive: pr.recentActive } : undefined;
  }

  hasReady(): boolean {
    const r = this.raft;
    if (r.hasOutput(this.applyHeld)) return true;
    if (r.lead !== this.prevSoft.lead || r.state !== this.prevSoft.state) return true;
    return !this.hardStateEqual(r.hardState(), this.prevHard);
  }

  ready(): Ready {
    assert(this.outstanding === null, 'rawnode: ready() called before advance() of the previous Ready');
    const r = this.raft;
    const out = r.takeOutput(this.applyHeld);
    const hs = r.hardState();
    const soft: SoftState = { lead: r.lead, state: r.state };
    const rd: Ready = {
      softState: soft.lead !== this.prevSoft.lead || soft.state !== this.prevSoft.state ? soft : null,
      hardState: this.hardStateEqual(hs, this.prevHard) ? null : hs,
      ...out,
    };
    if (rd.hardState) this.prevHard = rd.hardState;
    if (rd.softState) this.prevSoft = rd.softState;
    this.outstanding = rd;
    return rd;
  }

  /**
   * The driver has handed the Ready's entries to storage and applied its committed entries — or only the
   * first `appliedCount` of them (its state machine ran short of a resource): the rest come again in a
   * later Ready.
   */
  advance(rd: Ready, appliedCount = rd.committedEntries.length): void {
    assert(this.outstanding === rd, 'rawnode: advance() of a Ready that is not outstanding');
    assert(appliedCount >= 0 && appliedCount <= rd.committedEntries.length, 'rawnode: applied count outside the Ready');
    this.outstanding = null;
    const applied =
      appliedCount === rd.committedEntries.length ? rd.committedEntries : rd.committedEntries.slice(0, appliedCount);
    this.input(() => this.raft.appliedTo(applied));
  }

  /**
   * Holds committed entries back from every Ready (held) or lets them through again: while the driver's state
   * machine cannot take them (a resource shortage), the rest of the Ready loop goes on.
   */
  holdApply(held: boolean): void {
    this.applyHeld = held;
  }

  status(): RaftStatus {
    const r = this.raft;
    const progress: Record<NodeId, FollowerStatus> = {};
    if (r.state === StateType.Leader) {
      for (const [id, pr] of r.progress) {
        if (id === r.id) continue;
        progress[id] = {
          match: pr.match,
          next: pr.next,
          state: pr.state,
          inflight: pr.inflights.count,
          recentActive: pr.recentActive,
          pendingSnapshot: pr.pendingSnapshot,
        };
      }
    }
    const { id, term, vote, lead, state } = r;
    return {
      id,
      term,
      vote,
      lead,
      state,
      commitIndex: r.log.committed,
      appliedIndex: r.log.applied,
      firstIndex: r.log.firstIndex(),
      lastIndex: r.log.lastIndex(),
      stableIndex: r.log.stableIndex(),
      conf: { voters: [...r.conf.voters], votersOutgoing: [...r.conf.votersOutgoing], learners: [...r.conf.learners] },
      leadTransferee: r.leadTransferee,
      progress,
    };
  }

  isVoter(id: NodeId): boolean {
    return isVoter(this.raft.conf, id);
  }

  members(): NodeId[] {
    return confMembers(this.raft.conf);
  }

  private debug(fields: Record<string, unknown>, msg: string): void {
    this.raft.logger.debug(fields, msg);
  }

  private hardStateEqual(a: HardState, b: HardState): boolean {
    return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
  }
}
