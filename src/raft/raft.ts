// The Raft roles and rules: election (pre-vote, stickiness, check-quorum), replication with flow control
// and fast backtracking, commitment, ReadIndex, leadership transfer and configuration changes.
// Pure: input is step/tick/propose; output is queued messages and log state read by RawNode.ready().

import { assert, unreachable } from '../assert.js';
import { autoConfChange, committedConfChange, validateConfChange } from './confchange.js';
import { bytesEqual } from './bytes.js';
import { RaftLog } from './log.js';
import type { LogStorage, RaftLogView } from './log.js';
import type { Progress } from './progress.js';
import { VoteResult } from './quorum.js';
import { ReadIndex } from './read-only.js';
import { Replication } from './replication.js';
import { ProgressTracker } from './tracker.js';
import {
  admitsFrom,
  cloneConf,
  confMembers,
  EntryType,
  isJoint,
  isLeaderMessage,
  isVoter,
  makeMessage,
  MessageType,
  NONE,
  StateType,
} from './types.js';
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  NodeId,
  ProposeError,
  ProposeResult,
  RaftConfig,
  RaftOutput,
  SnapshotMeta,
} from './types.js';
import { silentLogger } from '../logger.js';
import type { Logger } from '../logger.js';

export type { ProposeError, ProposeResult, RaftConfig, RaftOutput, ReadState } from './types.js';

type InboundSnapshot =
  | { phase: 'none' }
  | { phase: 'asked'; request: { meta: SnapshotMeta; from: NodeId } }
  | { phase: 'fetching' };

/** Vote-request context marking a campaign started by a leadership transfer: it overrides stickiness. */
export const CAMPAIGN_TRANSFER = new TextEncoder().encode('transfer');

const AFTER_PERSIST = new Set([MessageType.AppResp, MessageType.Vote, MessageType.VoteResp, MessageType.SnapStatus]);

export class Raft {
  readonly id: NodeId;
  readonly config: Readonly<RaftConfig>;
  readonly logger: Logger;

  // Invariant: currentTerm never decreases; votedFor changes only with the term (or from NONE).
  private currentTerm = 0;
  private votedFor: NodeId = NONE;
  // Invariant: leaderId === id exactly when role is Leader.
  private leaderId: NodeId = NONE;
  private role = StateType.Follower;
  private readonly raftLog: RaftLog;

  private configuration: ConfState;
  private readonly tracker: ProgressTracker;

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  /**
   * As a follower: the last index known to hold the current leader's entry (an append it accepted, or a
   * snapshot, in this term). A heartbeat's commit index goes no further: the leader caps it at what it
   * believes we match, and a log restored from an older copy (or a disk that lied) no longer holds what we
   * acknowledged — committing past this point could commit entries the leader never had. In memory only:
   * after a restart nothing is vouched for until an append checks it.
   */
  private leaderMatchIndex = 0;
  private randomizedElectionTimeout = 0;

  /** The voter this leader hands leadership to; NONE when no transfer is under way. */
  private transferee: NodeId = NONE;
  /** Index of the last configuration change proposed by this leader; no new change until it is applied. */
  private pendingConfIndex = 0;
  /** The last configuration entry applied left a joint configuration: a leader confirms it (maybeAutoConfChange). */
  private leaveToConfirm = false;
  private readonly replication: Replication;
  private readonly reads: ReadIndex;

  /**
   * A snapshot the leader told this follower to install: asked (until RawNode hands it to the driver), then
   * fetching (until the driver reports it fetched or failed).
   */
  private inboundSnapshot: InboundSnapshot = { phase: 'none' };

  /** Messages that may leave at once, and those that wait until this node's writes are durable. */
  private messages: Message[] = [];
  private messagesAfterPersist: Message[] = [];

  constructor(config: RaftConfig, storage: LogStorage, hardState: HardState) {
    assert(config.id !== NONE, 'raft: id must not be empty');
    assert(
      config.heartbeatTicks > 0 && config.electionTicks > config.heartbeatTicks,
      'raft: need electionTicks > heartbeatTicks > 0',
    );
    assert(config.maxEntriesPerAppend > 0 && config.maxAppendBodyBytes > 0, 'raft: append bounds must be positive');
    this.config = config;
    this.id = config.id;
    this.tracker = new ProgressTracker(config);
    this.reads = new ReadIndex({ id: this.id, send: (m) => this.send(m) }, config.maxPendingReads);
    this.logger = config.logger ?? silentLogger;
    this.raftLog = new RaftLog(storage);
    this.configuration = cloneConf(storage.snapshotMeta().conf);
    this.replication = new Replication({
      id: this.id,
      config,
      logger: this.logger,
      log: this.raftLog,
      tracker: this.tracker,
      term: () => this.currentTerm,
      conf: () => this.configuration,
      members: () => this.members(),
      send: (m) => this.send(m),
    });
    if (hardState.term > 0 || hardState.vote !== NONE) {
      this.currentTerm = hardState.term;
      this.votedFor = hardState.vote;
    }
    // The commit hint is only trusted as far as this log reaches.
    this.raftLog.commitTo(Math.min(hardState.commit, this.raftLog.lastIndex()));
    this.becomeFollower(this.currentTerm, NONE);
  }

  // ---------------------------------------------------------------- what RawNode, invariants and tests read

  get term(): number {
    return this.currentTerm;
  }

  get vote(): NodeId {
    return this.votedFor;
  }

  get lead(): NodeId {
    return this.leaderId;
  }

  get state(): StateType {
    return this.role;
  }

  /** The log's indexes and terms; only the core changes them. */
  get log(): RaftLogView {
    return this.raftLog;
  }

  /** The configuration in force (replaced, never changed in place). */
  get conf(): Readonly<ConfState> {
    return this.configuration;
  }

  /** Replication progress of every member (meaningful on the leader). */
  get progress(): ReadonlyMap<NodeId, Readonly<Progress>> {
    return this.tracker.progress;
  }

  /** The voter this leader is handing leadership to, or NONE. */
  get leadTransferee(): NodeId {
    return this.transferee;
  }

  hardState(): HardState {
    return { term: this.currentTerm, vote: this.votedFor, commit: this.raftLog.committed };
  }

  /** A configuration change was proposed and is not applied yet: the next one must wait. */
  confChangePending(): boolean {
    return this.pendingConfIndex > this.raftLog.applied;
  }

  /** Whether a message of this type from `from` is admitted (see admitsFrom). */
  admits(from: NodeId, type: MessageType): boolean {
    return admitsFrom(this.configuration, from, type);
  }

  /** A voter of the current configuration, so it may campaign. */
  private promotable(): boolean {
    return isVoter(this.configuration, this.id);
  }

  private members(): NodeId[] {
    return confMembers(this.configuration);
  }

  private voters(): NodeId[] {
    return [...new Set([...this.configuration.voters, ...this.configuration.votersOutgoing])];
  }

  // ---------------------------------------------------------------- output (RawNode bundles it into a Ready)

  /**
   * Whether there is anything for a Ready besides soft and hard state (RawNode compares those itself).
   * `applyHeld`: committed entries do not count (the driver cannot apply them now).
   */
  hasOutput(applyHeld = false): boolean {
    return (
      this.replication.broadcastDue ||
      this.messages.length > 0 ||
      this.messagesAfterPersist.length > 0 ||
      this.reads.hasStates ||
      this.inboundSnapshot.phase === 'asked' ||
      this.raftLog.unstable.nextEntries().length > 0 ||
      (!applyHeld && this.raftLog.hasNextCommittedEntries())
    );
  }

  /**
   * Everything the driver must act on now, handed over once: pending appends are sent first (so proposals
   * since the last Ready leave in one append per follower), entries not yet handed to storage are marked as
   * being written, and the snapshot to fetch is marked as fetching. `applyHeld`: no committed entries (they
   * stay for a later Ready).
   */
  takeOutput(applyHeld = false): RaftOutput {
    this.replication.flushBroadcast(this.role === StateType.Leader);
    const out: RaftOutput = {
      entries: this.raftLog.unstable.nextEntries(),
      messages: this.messages,
      persistedMessages: this.messagesAfterPersist,
      committedEntries: applyHeld
        ? []
        : this.raftLog.nextCommittedEntries(this.config.maxApplyBytes, this.config.applyBatch),
      readStates: this.reads.takeStates(),
      snapshotToFetch: this.inboundSnapshot.phase === 'asked' ? this.inboundSnapshot.request : null,
    };
    this.messages = [];
    this.messagesAfterPersist = [];
    this.raftLog.unstable.acceptInProgress();
    if (out.snapshotToFetch !== null) this.inboundSnapshot = { phase: 'fetching' };
    return out;
  }

  /** Stops leading or campaigning, keeping the term (the driver's identity rules: a node that stands down). */
  stepDown(): void {
    if (this.role !== StateType.Follower || this.leaderId !== NONE) this.becomeFollower(this.currentTerm, NONE);
  }

  /**
   * Test hook: step down without a new term, as check-quorum does. For scenarios that need a leader to lose
   * its role at a chosen moment; nothing shipped calls it.
   */
  stepDownForTest(): void {
    this.becomeFollower(this.currentTerm, NONE);
  }

  // ---------------------------------------------------------------- role transitions

  private reset(term: number): void {
    assert(term >= this.currentTerm, () => `raft: term ${this.currentTerm} going back to ${term}`);
    if (this.currentTerm !== term) {
      this.currentTerm = term;
      this.votedFor = NONE;
    }
    this.leaderId = NONE;
    this.leaderMatchIndex = 0;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout =
      this.config.electionTicks + Math.floor(this.config.random() * this.config.electionJitterTicks);
    this.transferee = NONE;
    this.tracker.resetVotes();
    this.pendingConfIndex = 0;
    this.replication.reset();
    this.reads.failAll();
    this.resetProgress();
  }

  private resetProgress(): void {
    // The leader counts itself only for what is durable on its own disk.
    this.tracker.reset(this.members(), this.raftLog.lastIndex() + 1, this.id, this.raftLog.stableIndex());
  }

  private becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.leaderId = lead;
    this.role = StateType.Follower;
  }

  private becomePreCandidate(): void {
    assert(this.role !== StateType.Leader, 'raft: leader cannot become pre-candidate');
    // Pre-vote changes neither term nor vote: a node that cannot win never disturbs the cluster.
    this.tracker.resetVotes();
    this.leaderId = NONE;
    this.role = StateType.PreCandidate;
  }

  private becomeCandidate(): void {
    assert(this.role !== StateType.Leader, 'raft: leader cannot become candidate');
    this.reset(this.currentTerm + 1);
    this.votedFor = this.id;
    this.role = StateType.Candidate;
  }

  private becomeLeader(): void {
    assert(this.role === StateType.Candidate, 'raft: only a candidate becomes leader');
    this.reset(this.currentTerm);
    this.leaderId = this.id;
    this.role = StateType.Leader;
    const self = this.tracker.progress.get(this.id);
    if (self) self.becomeReplicate();
    // Configuration changes wait until everything before this term is applied.
    this.pendingConfIndex = this.raftLog.lastIndex();
    // The no-op of this term: committing it commits every earlier entry (Figure 8) and enables ReadIndex.
    const ok = this.replication.append([{ term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) }]);
    assert(ok, 'raft: empty entry refused');
    this.logger.info({ term: this.currentTerm, lastIndex: this.raftLog.lastIndex() }, 'became leader');
  }

  // ---------------------------------------------------------------- time

  tick(mayCampaign = true): void {
    if (this.role === StateType.Leader) this.tickHeartbeat();
    else this.tickElection(mayCampaign);
  }

  private tickElection(mayCampaign: boolean): void {
    this.electionElapsed++;
    if (mayCampaign && this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.campaign(this.config.preVote ? 'pre-vote' : 'election');
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.config.electionTicks) {
      this.electionElapsed = 0;
      if (this.config.checkQuorum && !this.tracker.quorumActive(this.configuration, this.id)) {
        this.logger.warn({ term: this.currentTerm }, 'stepping down: no quorum heard from within an election timeout');
        this.becomeFollower(this.currentTerm, NONE);
        return;
      }
      if (this.transferee !== NONE) {
        this.logger.info({ to: this.transferee }, 'leadership transfer timed out');
        this.transferee = NONE;
      }
    }
    this.replication.tickSnapshots();
    if (this.heartbeatElapsed >= this.config.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.replication.heartbeat(this.reads.lastContext());
    }
  }

  // ---------------------------------------------------------------- elections

  campaign(kind: 'pre-vote' | 'election' | 'transfer'): void {
    if (!this.promotable()) {
      this.logger.debug({}, 'not campaigning: not a voter');
      return;
    }
    if (this.inboundSnapshot.phase === 'fetching') {
      // A node mid-way through installing a snapshot has a log that is about to be replaced.
      this.logger.debug({}, 'not campaigning: installing a snapshot');
      return;
    }
    if (this.raftLog.hasUnappliedConfChange(this.config.maxApplyBytes)) {
      // Configurations take effect when applied. A node that knows a configuration entry is committed but
      // still counts votes in the one before could be elected by the old voters alone, after the new ones
      // committed entries it lacks (a removed node restarting, say). Apply first (etcd's rule).
      this.logger.debug({}, 'not campaigning: committed configuration changes are not applied yet');
      return;
    }
    let voteType: MessageType;
    let term: number;
    if (kind === 'pre-vote') {
      this.becomePreCandidate();
      voteType = MessageType.PreVote;
      term = this.currentTerm + 1;
    } else {
      this.becomeCandidate();
      voteType = MessageType.Vote;
      term = this.currentTerm;
    }
    if (this.poll(this.id, true) === VoteResult.Won) {
      // A single-voter configuration wins at once.
      if (kind === 'pre-vote') this.campaign('election');
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.raftLog.lastIndex();
    const lastTerm = this.raftLog.lastTerm();
    for (const id of this.voters()) {
      if (id === this.id) continue;
      const context = kind === 'transfer' ? CAMPAIGN_TRANSFER : new Uint8Array(0);
      this.send(
        makeMessage({ type: voteType, to: id, from: this.id, term, index: lastIndex, logTerm: lastTerm, context }),
      );
    }
    this.logger.info({ term, kind }, kind === 'pre-vote' ? 'started pre-vote' : 'started election');
  }

  private poll(id: NodeId, granted: boolean): VoteResult {
    return this.tracker.recordVote(this.configuration, id, granted);
  }

  // ---------------------------------------------------------------- message input

  step(m: Message): void {
    if (m.term > this.currentTerm) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        const force = bytesEqual(m.context, CAMPAIGN_TRANSFER);
        // Stickiness: while this node heard from a live leader within an election timeout, it does not help
        // anyone depose it (a leader counts as having heard from itself). A follower measures that in its own
        // ticks, which are out of phase with the candidate's: a candidate whose timer fired after exactly
        // electionTicks can find this node one tick short and be ignored, which costs the cluster a whole
        // extra election timeout after a leader dies. So a follower gives up the lease one tick early. This
        // is liveness only: reads are served by ReadIndex, never by lease.
        const lease = this.role === StateType.Leader ? this.config.electionTicks : this.config.electionTicks - 1;
        const inLease = this.config.checkQuorum && this.leaderId !== NONE && this.electionElapsed < lease;
        if (!force && inLease) {
          this.logger.debug({ from: m.from, term: m.term, lead: this.leaderId }, 'ignoring vote request: leader lease');
          return;
        }
      }
      if (m.type === MessageType.PreVote) {
        // Never change term on a pre-vote request.
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // A granted pre-vote carries the term we would campaign at; the term moves only when we do.
      } else if (isLeaderMessage(m.type)) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.currentTerm) {
      if (
        (this.config.checkQuorum || this.config.preVote) &&
        (m.type === MessageType.Heartbeat || m.type === MessageType.App)
      ) {
        // A stale leader (e.g. after a pause or partition) learns our term from this and steps down.
        this.send(makeMessage({ type: MessageType.AppResp, to: m.from, from: this.id }));
      } else if (m.type === MessageType.PreVote) {
        const refusal = { term: this.currentTerm, reject: true };
        this.send(makeMessage({ type: MessageType.PreVoteResp, to: m.from, from: this.id, ...refusal }));
      } else {
        this.logger.debug(
          { type: MessageType[m.type], from: m.from, term: m.term },
          'ignoring message from a lower term',
        );
      }
      return;
    }

    switch (m.type) {
      case MessageType.Vote:
      case MessageType.PreVote:
        this.handleVoteRequest(m);
        return;
      default:
        break;
    }
    switch (this.role) {
      case StateType.Leader:
        this.stepLeader(m);
        return;
      case StateType.Candidate:
      case StateType.PreCandidate:
        this.stepCandidate(m);
        return;
      case StateType.Follower:
        this.stepFollower(m);
        return;
      default:
        unreachable(this.role, 'state');
    }
  }

  private handleVoteRequest(m: Message): void {
    const respType = m.type === MessageType.Vote ? MessageType.VoteResp : MessageType.PreVoteResp;
    const canVote =
      this.votedFor === m.from ||
      (this.votedFor === NONE && this.leaderId === NONE) ||
      (m.type === MessageType.PreVote && m.term > this.currentTerm);
    if (canVote && this.raftLog.isUpToDate(m.index, m.logTerm)) {
      // A granted pre-vote answers with the term asked about, so the pre-candidate counts it.
      this.send(makeMessage({ type: respType, to: m.from, from: this.id, term: m.term }));
      if (m.type === MessageType.Vote) {
        this.electionElapsed = 0;
        this.votedFor = m.from;
      }
    } else {
      this.send(makeMessage({ type: respType, to: m.from, from: this.id, term: this.currentTerm, reject: true }));
    }
  }

  private stepLeader(m: Message): void {
    const pr = this.tracker.progress.get(m.from);
    if (
      (m.type === MessageType.AppResp || m.type === MessageType.SnapStatus) &&
      !m.reject &&
      m.index > this.raftLog.lastIndex()
    ) {
      // Nobody can acknowledge entries this leader does not have: a faulty or forged peer.
      this.logger.warn(
        { from: m.from, index: m.index, lastIndex: this.raftLog.lastIndex() },
        'dropping an acknowledgement past the end of the log',
      );
      return;
    }
    switch (m.type) {
      case MessageType.AppResp:
        if (!pr) return;
        if (this.replication.onAppendResponse(m, pr) && m.from === this.transferee) {
          if (pr.match !== this.raftLog.lastIndex()) return;
          this.logger.info({ to: m.from }, 'transferee caught up: sending TimeoutNow');
          this.send(makeMessage({ type: MessageType.TimeoutNow, to: m.from, from: this.id }));
        }
        return;
      case MessageType.HeartbeatResp:
        if (!pr) return;
        this.replication.onHeartbeatResponse(m.from, pr, m.reject);
        if (m.context.byteLength > 0) this.reads.ack(m.from, m.context, this.configuration);
        return;
      case MessageType.SnapStatus:
        if (pr) this.replication.onSnapshotStatus(m, pr);
        return;
      case MessageType.ReadIndex:
        if (pr) this.handleReadIndex(m.context, m.from);
        return;
      default:
        this.logger.debug({ type: MessageType[m.type], from: m.from }, 'leader ignoring message');
    }
  }

  private stepCandidate(m: Message): void {
    const myVoteResp = this.role === StateType.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp;
    switch (m.type) {
      case MessageType.App:
      case MessageType.Heartbeat:
      case MessageType.Snap:
        // A leader exists for this term.
        this.becomeFollower(m.term, m.from);
        this.stepFollower(m);
        return;
      case MessageType.VoteResp:
      case MessageType.PreVoteResp: {
        if (m.type !== myVoteResp) return;
        const res = this.poll(m.from, !m.reject);
        if (res === VoteResult.Won) {
          if (this.role === StateType.PreCandidate) this.campaign('election');
          else {
            this.becomeLeader();
          }
        } else if (res === VoteResult.Lost) {
          // A pre-vote rejection with a higher term already moved our term in step().
          this.becomeFollower(this.currentTerm, NONE);
        }
        return;
      }
      case MessageType.TimeoutNow:
        this.logger.debug({ from: m.from }, 'candidate ignoring TimeoutNow');
        return;
      default:
        this.logger.debug({ type: MessageType[m.type], from: m.from }, 'candidate ignoring message');
    }
  }

  private stepFollower(m: Message): void {
    if (isLeaderMessage(m.type)) {
      if (this.leaderId !== NONE && this.leaderId !== m.from) {
        // A term has one leader: a second one is a faulty or forged peer, never Raft. Its input is dropped.
        this.logger.warn(
          { from: m.from, lead: this.leaderId, term: this.currentTerm, type: MessageType[m.type] },
          'dropping a leader message from a second leader of this term',
        );
        return;
      }
      // The leader of this term is alive.
      this.electionElapsed = 0;
      this.leaderId = m.from;
    }
    switch (m.type) {
      case MessageType.App:
        this.handleAppendEntries(m);
        return;
      case MessageType.Heartbeat:
        this.handleHeartbeat(m);
        return;
      case MessageType.Snap:
        this.handleSnapshot(m);
        return;
      case MessageType.TimeoutNow:
        if (m.from !== this.leaderId) return;
        this.logger.info({ from: m.from }, 'TimeoutNow from leader: campaigning for a transfer');
        this.campaign('transfer');
        return;
      case MessageType.ReadIndexResp:
        if (m.from !== this.leaderId) return;
        this.reads.answered(m.context, m.index, !m.reject);
        return;
      default:
        this.logger.debug({ type: MessageType[m.type], from: m.from }, 'follower ignoring message');
    }
  }

  private handleHeartbeat(m: Message): void {
    this.raftLog.commitTo(Math.min(m.commit, this.leaderMatchIndex));
    // A commit index we could not take (nothing vouched for that far since a restart or a new leader): the
    // answer asks for an append, whose consistency check tells the leader where this log really is.
    const unverified = m.commit > this.raftLog.committed;
    const answer = { type: MessageType.HeartbeatResp, to: m.from, from: this.id, context: m.context };
    this.send(makeMessage({ ...answer, reject: unverified }));
  }

  private handleAppendEntries(m: Message): void {
    if (m.index < this.raftLog.committed) {
      // Entries up to our commit index match the leader's by Log Matching: report where we are.
      this.reportCommitted(m.from);
      return;
    }
    const lastNew = this.raftLog.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.leaderMatchIndex = Math.max(this.leaderMatchIndex, lastNew);
      this.send(makeMessage({ type: MessageType.AppResp, to: m.from, from: this.id, index: lastNew }));
      return;
    }
    // No match at m.index: hint the last index we may match, and our term there.
    const hintIndex = Math.min(m.index, this.raftLog.lastIndex());
    const hint = this.raftLog.findConflictByTerm(hintIndex, m.logTerm);
    this.logger.debug({ from: m.from, index: m.index, logTerm: m.logTerm, hintIndex: hint.index }, 'rejecting append');
    const rejection = { index: m.index, reject: true, rejectHint: hint.index, logTerm: hint.term };
    this.send(makeMessage({ type: MessageType.AppResp, to: m.from, from: this.id, ...rejection }));
  }

  private handleSnapshot(m: Message): void {
    const meta = m.snapshot;
    if (!meta) return;
    if (meta.index <= this.raftLog.committed) {
      this.reportCommitted(m.from);
      return;
    }
    if (this.raftLog.matchTerm(meta.index, meta.term)) {
      // We already hold the snapshot's last entry: just learn that it is committed.
      this.raftLog.commitTo(meta.index);
      this.leaderMatchIndex = Math.max(this.leaderMatchIndex, meta.index);
      this.reportCommitted(m.from);
      return;
    }
    const pending = this.inboundSnapshot;
    if (pending.phase === 'fetching' || (pending.phase === 'asked' && pending.request.meta.index >= meta.index)) {
      return; // already fetching one at least as new
    }
    this.logger.info({ from: m.from, index: meta.index, term: meta.term }, 'asked to install a snapshot');
    this.inboundSnapshot = { phase: 'asked', request: { meta, from: m.from } };
  }

  // ---------------------------------------------------------------- snapshot install (driver callbacks)

  /**
   * The driver fetched the snapshot image (ok) or gave up. Returns true if the snapshot must be installed:
   * the driver then resets its storage to it before any further call. Returns false if it became stale.
   */
  snapshotFetched(meta: SnapshotMeta, ok: boolean): boolean {
    this.inboundSnapshot = { phase: 'none' };
    // Reported to the leader of this term, if this node knows one.
    const lead = this.leaderId;
    if (!ok) {
      if (lead !== NONE)
        this.send(makeMessage({ type: MessageType.SnapStatus, to: lead, from: this.id, reject: true }));
      return false;
    }
    const committed = this.raftLog.committed;
    if (meta.index <= committed) {
      this.logger.info({ index: meta.index, committed }, 'fetched snapshot is stale: discarding');
      if (lead !== NONE) this.reportCommitted(lead);
      return false;
    }
    return true;
  }

  /** The driver has reset its storage to the snapshot; the log and configuration now start from it. */
  restore(meta: SnapshotMeta): void {
    this.raftLog.restore(meta);
    this.leaderMatchIndex = meta.index;
    this.configuration = cloneConf(meta.conf);
    this.resetProgress();
    this.logger.info({ index: meta.index, term: meta.term }, 'installed snapshot');
    if (this.leaderId !== NONE) {
      this.send(makeMessage({ type: MessageType.SnapStatus, to: this.leaderId, from: this.id, index: meta.index }));
    }
  }

  // ---------------------------------------------------------------- reset-peers (driver calls, in this order)

  /**
   * Reset-peers, first step: a majority is lost for good and the operator declared this node's log the
   * truth. Steps down and commits every entry it holds (the driver made them all durable first), so the
   * configuration entries among them apply in order before the new configuration is forced.
   */
  forceCommitLog(): void {
    assert(this.raftLog.stableIndex() === this.raftLog.lastIndex(), 'raft: force-commit with entries not yet durable');
    assert(this.inboundSnapshot.phase === 'none', 'raft: force-commit during a snapshot install');
    if (this.role !== StateType.Follower || this.leaderId !== NONE) this.becomeFollower(this.currentTerm, NONE);
    this.raftLog.commitTo(this.raftLog.lastIndex());
  }

  /**
   * Reset-peers, second step (every entry applied): `conf` replaces the configuration at once. A no-op in a
   * new term, committed by fiat, gives the snapshot that makes `conf` durable an index of its own, newer
   * than anything this node's log holds.
   */
  forceConfiguration(conf: ConfState): void {
    assert(
      this.raftLog.applied === this.raftLog.lastIndex(),
      'raft: forcing a configuration before the log is applied',
    );
    assert(
      conf.votersOutgoing.length === 0 && conf.voters.length > 0,
      'raft: a forced configuration is a simple one with voters',
    );
    this.configuration = cloneConf(conf);
    this.becomeFollower(this.currentTerm + 1, NONE);
    const index = this.raftLog.lastIndex() + 1;
    this.raftLog.append([{ term: this.currentTerm, index, type: EntryType.Normal, data: new Uint8Array(0) }]);
    this.raftLog.commitTo(index);
    this.logger.warn(
      { term: this.currentTerm, index, voters: conf.voters, learners: conf.learners },
      'configuration forced by reset-peers',
    );
  }

  // ---------------------------------------------------------------- output messages

  /** Tells `to` this node's log matches up to its commit index (an append answered from what is committed). */
  private reportCommitted(to: NodeId): void {
    this.send(makeMessage({ type: MessageType.AppResp, to, from: this.id, index: this.raftLog.committed }));
  }

  private send(m: Message): void {
    if (
      m.term === 0 &&
      m.type !== MessageType.PreVoteResp &&
      m.type !== MessageType.VoteResp &&
      m.type !== MessageType.PreVote
    ) {
      m.term = this.currentTerm;
    }
    assert(m.to !== this.id, 'raft: sending to self');
    if (AFTER_PERSIST.has(m.type)) this.messagesAfterPersist.push(m);
    else this.messages.push(m);
  }

  // ---------------------------------------------------------------- durability (driver callback)

  /** Entries up to `index` (of `term`) are durable on this node's disk. */
  persisted(index: number, term: number): void {
    this.raftLog.unstable.stableTo(index, term);
    if (this.role !== StateType.Leader) return;
    const self = this.tracker.progress.get(this.id);
    if (self?.maybeUpdate(this.raftLog.stableIndex())) this.replication.maybeCommit();
  }

  // ---------------------------------------------------------------- proposals

  propose(data: Uint8Array, expectedTerm?: number): ProposeResult {
    const refused = this.checkProposal(expectedTerm);
    if (refused) return refused;
    const e: Entry = { term: 0, index: 0, type: EntryType.Normal, data };
    if (!this.replication.append([e])) return this.refuse('busy', 'too many uncommitted bytes');
    return { ok: true, index: e.index, term: e.term };
  }

  proposeConfChange(cc: ConfChange, expectedTerm?: number): ProposeResult {
    const refused = this.checkProposal(expectedTerm);
    if (refused) return refused;
    if (this.pendingConfIndex > this.raftLog.applied) {
      return this.refuse('conf-change-pending', `configuration change at ${this.pendingConfIndex} not yet applied`);
    }
    const problem =
      cc.changes.length === 0 && !cc.leaveJoint ? 'no changes' : validateConfChange(this.configuration, cc);
    if (problem) return this.refuse('invalid-conf-change', problem);
    const e: Entry = { term: 0, index: 0, type: EntryType.ConfChange, data: this.config.confChangeCodec.encode(cc) };
    if (!this.replication.append([e])) return this.refuse('busy', 'too many uncommitted bytes');
    this.pendingConfIndex = e.index;
    return { ok: true, index: e.index, term: e.term };
  }

  private checkProposal(expectedTerm: number | undefined): ProposeResult | null {
    if (this.role !== StateType.Leader) return this.refuse('not-leader');
    if (expectedTerm !== undefined && expectedTerm !== this.currentTerm) {
      return this.refuse('term-mismatch', `expected term ${expectedTerm}, leader is at ${this.currentTerm}`);
    }
    if (this.transferee !== NONE) return this.refuse('transferring', `transferring leadership to ${this.transferee}`);
    return null;
  }

  private refuse(error: ProposeError, detail?: string): ProposeResult {
    return detail === undefined
      ? { ok: false, error, leader: this.leaderId, term: this.currentTerm }
      : { ok: false, error, leader: this.leaderId, term: this.currentTerm, detail };
  }

  // ---------------------------------------------------------------- applying (called as entries are handed out)

  /** Entries up to `index` are handed to the application; configuration changes among them take effect. */
  appliedTo(ents: Entry[]): void {
    if (ents.length === 0) return;
    for (const e of ents) {
      if (e.type === EntryType.ConfChange) this.applyConfEntry(e);
    }
    this.raftLog.appliedTo(ents[ents.length - 1]!.index);
    this.maybeAutoConfChange();
  }

  private applyConfEntry(e: Entry): void {
    const change = committedConfChange(this.configuration, e.data, this.config.confChangeCodec);
    if ('ignored' in change) {
      this.logger.warn({ index: e.index, why: change.ignored }, 'committed configuration entry ignored');
      return;
    }
    const { cc, next } = change;
    this.logger.info(
      { index: e.index, voters: next.voters, outgoing: next.votersOutgoing, learners: next.learners },
      'configuration applied',
    );
    this.configuration = next;
    this.tracker.sync(confMembers(next), this.raftLog.lastIndex() + 1);
    this.leaveToConfirm = cc.leaveJoint;
    if (this.role !== StateType.Leader) return;
    if (!isVoter(next, this.id) && !isJoint(next) && !this.leaveToConfirm) {
      // A leader removed by a committed configuration tells the others it is committed (so they apply it now,
      // not after the next election), then steps down. It leads C_new until then, counting only C_new's votes.
      this.logger.info({ term: this.currentTerm }, 'removed from the configuration: stepping down');
      this.replication.heartbeat(undefined);
      this.becomeFollower(this.currentTerm, NONE);
      return;
    }
    if (this.transferee !== NONE && !isVoter(next, this.transferee)) this.transferee = NONE;
    // The quorum changed: entries may now be committed. Either way the members (new ones among them) need
    // appends, so the broadcast is due whatever maybeCommit says.
    this.replication.maybeCommit();
    this.replication.markBroadcast();
  }

  /**
   * The leader's own configuration entries: leaving a joint configuration once it is applied, then confirming
   * the leave with an empty change. A node holding the confirmation durably knows the leave committed (a write
   * that starts with a configuration entry carries the commit hint), so once the confirmation commits, a
   * majority of the new voters restart in the new configuration even if every removed voter is gone for good;
   * otherwise a restart could fall back to the joint configuration, which needs the removed voters.
   */
  private maybeAutoConfChange(): void {
    if (this.role !== StateType.Leader || this.pendingConfIndex > this.raftLog.applied || this.transferee !== NONE)
      return;
    const cc = autoConfChange(this.configuration, this.leaveToConfirm);
    if (cc === null) return;
    const e: Entry = { term: 0, index: 0, type: EntryType.ConfChange, data: this.config.confChangeCodec.encode(cc) };
    if (this.replication.append([e])) {
      this.pendingConfIndex = e.index;
      this.logger.info({ index: e.index }, cc.leaveJoint ? 'leaving joint configuration' : 'confirming the leave');
    }
  }

  // ---------------------------------------------------------------- ReadIndex

  readIndex(context: Uint8Array): void {
    if (this.role === StateType.Leader) {
      this.handleReadIndex(context, this.id);
      return;
    }
    if (this.leaderId === NONE) {
      this.reads.answered(context, 0, false);
      return;
    }
    this.send(makeMessage({ type: MessageType.ReadIndex, to: this.leaderId, from: this.id, context }));
  }

  private handleReadIndex(context: Uint8Array, from: NodeId): void {
    // A new leader does not know the commit index of its predecessor until it commits in its own term
    // (etcd issue 7331): refuse until then.
    if (this.raftLog.term(this.raftLog.committed) !== this.currentTerm)
      return this.reads.answer({ index: 0, context, from }, false);
    const req = { index: this.raftLog.committed, context, from };
    if (this.voters().length === 1 && this.voters()[0] === this.id) return this.reads.answer(req, true);
    if (this.reads.request(req) === 'queued') this.replication.heartbeat(context);
  }

  // ---------------------------------------------------------------- leadership transfer

  transferLeader(to: NodeId): { ok: boolean; detail?: string } {
    if (this.role !== StateType.Leader) return { ok: false, detail: 'not the leader' };
    if (to === this.id) return { ok: true };
    if (!isVoter(this.configuration, to)) return { ok: false, detail: `${to} is not a voter` };
    if (this.transferee === to) return { ok: true };
    this.transferee = to;
    // The transfer must finish within one election timeout, or it is abandoned.
    this.electionElapsed = 0;
    const pr = this.tracker.progress.get(to)!;
    this.logger.info({ to, match: pr.match, lastIndex: this.raftLog.lastIndex() }, 'transferring leadership');
    if (pr.match === this.raftLog.lastIndex()) {
      this.send(makeMessage({ type: MessageType.TimeoutNow, to, from: this.id }));
    } else {
      this.replication.maybeSendAppend(to, true);
    }
    return { ok: true };
  }

  /** A transport failure to `id`: a pipelining follower goes back to probing. */
  reportUnreachable(id: NodeId): void {
    if (this.role === StateType.Leader) this.replication.unreachable(id);
  }
}
