// The Raft roles and rules: election (pre-vote, stickiness, check-quorum), replication with flow control
// and fast backtracking, commitment, ReadIndex, leadership transfer and configuration changes.
// Pure: input is step/tick/propose; output is queued messages and log state read by RawNode.ready().

import { assert, unreachable } from '../assert.js';
import { applyConfChange, validateConfChange } from './confchange.js';
import { bytesEqual } from './bytes.js';
import { RaftLog } from './log.js';
import type { LogStorage } from './log.js';
import { type Progress, ProgressState } from './progress.js';
import { VoteResult } from './quorum.js';
import { ReadOnlyQueue } from './read-only.js';
import type { PendingRead } from './read-only.js';
import { ProgressTracker } from './tracker.js';
import {
  cloneConf,
  confMembers,
  EntryType,
  entryBytes,
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
  ReadState,
  SnapshotMeta,
} from './types.js';
import { silentLogger } from '../logger.js';
import type { Logger } from '../logger.js';

export type { ProposeError, ProposeResult, RaftConfig, ReadState } from './types.js';

/** Vote-request context marking a campaign started by a leadership transfer: it overrides stickiness. */
export const CAMPAIGN_TRANSFER = new TextEncoder().encode('transfer');

const AFTER_PERSIST = new Set([MessageType.AppResp, MessageType.Vote, MessageType.VoteResp, MessageType.SnapStatus]);

export class Raft {
  readonly id: NodeId;
  term = 0;
  vote: NodeId = NONE;
  lead: NodeId = NONE;
  state = StateType.Follower;
  readonly log: RaftLog;

  conf: ConfState;
  readonly tracker: ProgressTracker;

  electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;

  leadTransferee: NodeId = NONE;
  /** Index of the last configuration change proposed by this leader; no new change until it is applied. */
  pendingConfIndex = 0;
  /** The last configuration entry applied left a joint configuration: a leader confirms it (maybeAutoConfChange). */
  private leaveToConfirm = false;
  /** Bytes of entries appended by this leader and not yet committed. */
  private uncommittedBytes = 0;
  /**
   * Follower: the last index this log was shown, in this term, to hold as its leader's (an append it accepted:
   * the check on the entry before it passed). A heartbeat's commit index is believed only that far: it rests on
   * the leader's match index, what this node acknowledged, and a log restored from an older copy no longer
   * holds that (its entries there may be of another term).
   */
  private matchedIndex = 0;
  /** Followers need appends (new entries or a newer commit index); sent once per Ready, batching proposals. */
  private bcastPending = false;

  private readonly reads = new ReadOnlyQueue();
  readStates: ReadState[] = [];

  /** The snapshot this follower was told to install, until the driver reports it fetched (or failed). */
  snapshotToFetch: { meta: SnapshotMeta; from: NodeId } | null = null;
  snapshotFetchPending = false;

  msgs: Message[] = [];
  msgsAfterPersist: Message[] = [];

  readonly cfg: RaftConfig;
  readonly logger: Logger;

  constructor(cfg: RaftConfig, storage: LogStorage, hardState: HardState) {
    assert(cfg.id !== NONE, 'raft: id must not be empty');
    assert(
      cfg.heartbeatTicks > 0 && cfg.electionTicks > cfg.heartbeatTicks,
      'raft: need electionTicks > heartbeatTicks > 0',
    );
    assert(cfg.maxEntriesPerAppend > 0 && cfg.maxAppendBodyBytes > 0, 'raft: append bounds must be positive');
    this.cfg = cfg;
    this.id = cfg.id;
    this.tracker = new ProgressTracker(cfg);
    this.logger = cfg.logger ?? silentLogger;
    this.log = new RaftLog(storage);
    this.conf = cloneConf(storage.snapshotMeta().conf);
    if (hardState.term > 0 || hardState.vote !== NONE) {
      this.term = hardState.term;
      this.vote = hardState.vote;
    }
    // The commit hint is only trusted as far as this log reaches.
    this.log.commitTo(Math.min(hardState.commit, this.log.lastIndex()));
    this.becomeFollower(this.term, NONE);
  }

  // ---------------------------------------------------------------- state queries

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  /** Whether a message of this type from `from` is admitted: only members speak for the cluster, with two exceptions. */
  admits(from: NodeId, type: MessageType): boolean {
    const members = confMembers(this.conf);
    // A node whose configuration is still empty (it joined and waits for the leader's snapshot) cannot tell
    // members from others yet: its transport admits only the members it learned when it joined.
    if (members.length === 0 || members.includes(from)) return true;
    // A leader this configuration does not name yet (this node lags behind the change that added it), or no
    // longer names (removed, it leads until its leave is confirmed), must still be heard: otherwise a lagging
    // node never learns the change. The term rules apply to it as to anyone.
    return isLeaderMessage(type);
  }

  /** A voter of the current configuration, so it may campaign. */
  promotable(): boolean {
    return isVoter(this.conf, this.id);
  }

  private members(): NodeId[] {
    return confMembers(this.conf);
  }

  private voters(): NodeId[] {
    return [...new Set([...this.conf.voters, ...this.conf.votersOutgoing])];
  }

  /** Replication progress of every member (meaningful on the leader). */
  get progress(): Map<NodeId, Progress> {
    return this.tracker.progress;
  }

  hasPendingBroadcast(): boolean {
    return this.bcastPending;
  }

  // ---------------------------------------------------------------- role transitions

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.lead = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout =
      this.cfg.electionTicks + Math.floor(this.cfg.random() * this.cfg.electionJitterTicks);
    this.leadTransferee = NONE;
    this.tracker.resetVotes();
    this.pendingConfIndex = 0;
    this.uncommittedBytes = 0;
    this.bcastPending = false;
    this.matchedIndex = 0;
    this.failPendingReads();
    this.resetProgress();
  }

  private resetProgress(): void {
    // The leader counts itself only for what is durable on its own disk.
    this.tracker.reset(this.members(), this.log.lastIndex() + 1, this.id, this.log.stableIndex());
  }

  becomeFollower(term: number, lead: NodeId): void {
    this.reset(term);
    this.lead = lead;
    this.state = StateType.Follower;
  }

  private becomePreCandidate(): void {
    assert(this.state !== StateType.Leader, 'raft: leader cannot become pre-candidate');
    // Pre-vote changes neither term nor vote: a node that cannot win never disturbs the cluster.
    this.tracker.resetVotes();
    this.lead = NONE;
    this.state = StateType.PreCandidate;
  }

  private becomeCandidate(): void {
    assert(this.state !== StateType.Leader, 'raft: leader cannot become candidate');
    this.reset(this.term + 1);
    this.vote = this.id;
    this.state = StateType.Candidate;
  }

  private becomeLeader(): void {
    assert(this.state === StateType.Candidate, 'raft: only a candidate becomes leader');
    this.reset(this.term);
    this.lead = this.id;
    this.state = StateType.Leader;
    const self = this.progress.get(this.id);
    if (self) self.becomeReplicate();
    // Configuration changes wait until everything before this term is applied.
    this.pendingConfIndex = this.log.lastIndex();
    // The no-op of this term: committing it commits every earlier entry (Figure 8) and enables ReadIndex.
    const ok = this.appendEntries([{ term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) }]);
    assert(ok, 'raft: empty entry refused');
    this.logger.info({ term: this.term, lastIndex: this.log.lastIndex() }, 'became leader');
  }

  // ---------------------------------------------------------------- time

  tick(mayCampaign = true): void {
    if (this.state === StateType.Leader) this.tickHeartbeat();
    else this.tickElection(mayCampaign);
  }

  private tickElection(mayCampaign: boolean): void {
    this.electionElapsed++;
    if (mayCampaign && this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.campaign(this.cfg.preVote ? 'pre-vote' : 'election');
    }
  }

  private tickHeartbeat(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.cfg.electionTicks) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum && !this.tracker.quorumActive(this.conf, this.id)) {
        this.logger.warn({ term: this.term }, 'stepping down: no quorum heard from within an election timeout');
        this.becomeFollower(this.term, NONE);
        return;
      }
      if (this.leadTransferee !== NONE) {
        this.logger.info({ to: this.leadTransferee }, 'leadership transfer timed out');
        this.leadTransferee = NONE;
      }
    }
    for (const [id, pr] of this.progress) {
      if (id === this.id || pr.state !== ProgressState.Snapshot) continue;
      if (++pr.snapshotElapsedTicks >= this.cfg.snapshotTimeoutTicks) {
        this.logger.info({ to: id }, 'snapshot install unanswered: probing again');
        pr.becomeProbe();
      } else if (pr.snapshotElapsedTicks % this.cfg.electionTicks === 0) {
        // The follower may have restarted and lost its fetch. Asking again costs nothing: a follower still
        // fetching ignores the request, one that restarted starts over at once rather than at the timeout.
        this.resendSnapshot(id, pr);
      }
    }
    if (this.heartbeatElapsed >= this.cfg.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat(this.reads.lastContext());
    }
  }

  // ---------------------------------------------------------------- elections

  campaign(kind: 'pre-vote' | 'election' | 'transfer'): void {
    if (!this.promotable()) {
      this.logger.debug({}, 'not campaigning: not a voter');
      return;
    }
    if (this.snapshotFetchPending) {
      // A node mid-way through installing a snapshot has a log that is about to be replaced.
      this.logger.debug({}, 'not campaigning: installing a snapshot');
      return;
    }
    if (this.hasUnappliedConfChanges()) {
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
      term = this.term + 1;
    } else {
      this.becomeCandidate();
      voteType = MessageType.Vote;
      term = this.term;
    }
    if (this.poll(this.id, true) === VoteResult.Won) {
      // A single-voter configuration wins at once.
      if (kind === 'pre-vote') this.campaign('election');
      else this.becomeLeader();
      return;
    }
    const lastIndex = this.log.lastIndex();
    const lastTerm = this.log.lastTerm();
    for (const id of this.voters()) {
      if (id === this.id) continue;
      const context = kind === 'transfer' ? CAMPAIGN_TRANSFER : new Uint8Array(0);
      this.send(
        makeMessage({ type: voteType, to: id, from: this.id, term, index: lastIndex, logTerm: lastTerm, context }),
      );
    }
    this.logger.info({ term, kind }, kind === 'pre-vote' ? 'started pre-vote' : 'started election');
  }

  /** A configuration entry is committed and not yet applied. */
  private hasUnappliedConfChanges(): boolean {
    const hi = this.log.committed + 1;
    for (let lo = this.log.applied + 1; lo < hi; ) {
      const page = this.log.entries(lo, hi, this.cfg.maxApplyBytes);
      if (page.some((e) => e.type === EntryType.ConfChange)) return true;
      lo += page.length;
    }
    return false;
  }

  private poll(id: NodeId, granted: boolean): VoteResult {
    return this.tracker.recordVote(this.conf, id, granted);
  }

  // ---------------------------------------------------------------- message input

  step(m: Message): void {
    if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        const force = bytesEqual(m.context, CAMPAIGN_TRANSFER);
        // Stickiness: while this node heard from a live leader within an election timeout, it does not help
        // anyone depose it (a leader counts as having heard from itself). A follower measures that in its own
        // ticks, which are out of phase with the candidate's: a candidate whose timer fired after exactly
        // electionTicks can find this node one tick short and be ignored, which costs the cluster a whole
        // extra election timeout after a leader dies. So a follower gives up the lease one tick early. This
        // is liveness only: reads are served by ReadIndex, never by lease.
        const lease = this.state === StateType.Leader ? this.cfg.electionTicks : this.cfg.electionTicks - 1;
        const inLease = this.cfg.checkQuorum && this.lead !== NONE && this.electionElapsed < lease;
        if (!force && inLease) {
          this.logger.debug({ from: m.from, term: m.term, lead: this.lead }, 'ignoring vote request: leader lease');
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
    } else if (m.term < this.term) {
      if (
        (this.cfg.checkQuorum || this.cfg.preVote) &&
        (m.type === MessageType.Heartbeat || m.type === MessageType.App)
      ) {
        // A stale leader (e.g. after a pause or partition) learns our term from this and steps down.
        this.send(makeMessage({ type: MessageType.AppResp, to: m.from, from: this.id }));
      } else if (m.type === MessageType.PreVote) {
        this.send(
          makeMessage({ type: MessageType.PreVoteResp, to: m.from, from: this.id, term: this.term, reject: true }),
        );
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
    switch (this.state) {
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
        unreachable(this.state, 'state');
    }
  }

  private handleVoteRequest(m: Message): void {
    const respType = m.type === MessageType.Vote ? MessageType.VoteResp : MessageType.PreVoteResp;
    const canVote =
      this.vote === m.from ||
      (this.vote === NONE && this.lead === NONE) ||
      (m.type === MessageType.PreVote && m.term > this.term);
    if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
      // A granted pre-vote answers with the term asked about, so the pre-candidate counts it.
      this.send(makeMessage({ type: respType, to: m.from, from: this.id, term: m.term }));
      if (m.type === MessageType.Vote) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      this.send(makeMessage({ type: respType, to: m.from, from: this.id, term: this.term, reject: true }));
    }
  }

  private stepLeader(m: Message): void {
    const pr = this.progress.get(m.from);
    if (
      (m.type === MessageType.AppResp || m.type === MessageType.SnapStatus) &&
      !m.reject &&
      m.index > this.log.lastIndex()
    ) {
      // Nobody can acknowledge entries this leader does not have: a faulty or forged peer.
      this.logger.warn(
        { from: m.from, index: m.index, lastIndex: this.log.lastIndex() },
        'dropping an acknowledgement past the end of the log',
      );
      return;
    }
    switch (m.type) {
      case MessageType.AppResp:
        if (!pr) return;
        pr.recentActive = true;
        this.handleAppendResponse(m, pr);
        return;
      case MessageType.HeartbeatResp:
        if (!pr) return;
        pr.recentActive = true;
        pr.probeSent = false;
        if (pr.state === ProgressState.Replicate && pr.inflights.full()) {
          // Every append in the window may have been lost: an empty append at the window's end makes the
          // follower report where it really is (accept frees the window, reject falls back to probing).
          this.sendEmptyAppend(m.from, pr);
        } else if (pr.match < this.log.lastIndex() || pr.state === ProgressState.Probe || m.reject) {
          // (A follower that could not believe the commit index it was told: an append shows where it matches.)
          this.maybeSendAppend(m.from, true);
        }
        if (m.context.byteLength > 0)
          for (const r of this.reads.ack(m.from, m.context, this.conf)) this.answerRead(r, true);
        return;
      case MessageType.SnapStatus:
        if (!pr || pr.state !== ProgressState.Snapshot) return;
        pr.recentActive = true;
        if (m.reject) {
          this.logger.info({ from: m.from }, 'follower failed to install snapshot: will retry');
          pr.pendingSnapshot = 0;
          pr.becomeProbe();
        } else {
          pr.maybeUpdate(m.index);
          pr.becomeProbe();
          this.maybeSendAppend(m.from, true);
        }
        return;
      case MessageType.ReadIndex:
        if (!pr) return;
        this.handleReadIndex(m.context, m.from);
        return;
      default:
        this.logger.debug({ type: MessageType[m.type], from: m.from }, 'leader ignoring message');
    }
  }

  private handleAppendResponse(m: Message, pr: Progress): void {
    if (m.reject) {
      // The follower's hint: it may match at most at rejectHint, whose term it has as logTerm. Our own
      // last entry at or below that hint with a term <= logTerm is where probing resumes.
      let nextProbe = m.rejectHint;
      if (m.logTerm > 0) nextProbe = this.log.findConflictByTerm(m.rejectHint, m.logTerm).index;
      if (pr.state !== ProgressState.Snapshot && m.index === pr.next - 1 && m.rejectHint < pr.match) {
        // A follower's hint never falls below what it acknowledged unless its disk lost durable entries (a
        // fault outside the model: a data directory restored from an older copy). Re-replicate from where it
        // really is rather than probing (or, replicating, ignoring its answer as stale) forever.
        this.logger.warn(
          { from: m.from, match: pr.match, hint: m.rejectHint },
          'follower lost entries it had acknowledged: re-replicating',
        );
        // (Probing resumes from the entry it rejected: becomeProbe before match is forgotten.)
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        pr.match = 0;
      }
      if (pr.maybeDecrTo(m.index, nextProbe)) {
        this.logger.debug({ from: m.from, rejected: m.index, next: pr.next }, 'append rejected: backing up');
        if (pr.state === ProgressState.Replicate) pr.becomeProbe();
        this.maybeSendAppend(m.from, true);
      }
      return;
    }
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) {
      if (wasPaused && !pr.isPaused()) this.maybeSendAppend(m.from, false);
      return;
    }
    switch (pr.state) {
      case ProgressState.Probe:
        pr.becomeReplicate();
        break;
      case ProgressState.Snapshot:
        if (pr.match >= pr.pendingSnapshot) {
          pr.becomeProbe();
          pr.becomeReplicate();
        }
        break;
      case ProgressState.Replicate:
        pr.inflights.freeLE(m.index);
        break;
    }
    // A new commit index is not broadcast on its own: it rides on the next append or heartbeat (within
    // a tick). An exchange per follower per commit would double the messages of every write.
    this.maybeCommit();
    // Keep the pipeline full for this follower.
    while (this.maybeSendAppend(m.from, false)) {
      /* send until paused or caught up */
    }
    if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
      this.logger.info({ to: m.from }, 'transferee caught up: sending TimeoutNow');
      this.send(makeMessage({ type: MessageType.TimeoutNow, to: m.from, from: this.id }));
    }
  }

  private stepCandidate(m: Message): void {
    const myVoteResp = this.state === StateType.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp;
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
          if (this.state === StateType.PreCandidate) this.campaign('election');
          else {
            this.becomeLeader();
          }
        } else if (res === VoteResult.Lost) {
          // A pre-vote rejection with a higher term already moved our term in step().
          this.becomeFollower(this.term, NONE);
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
      if (this.lead !== NONE && this.lead !== m.from) {
        // A term has one leader: a second one is a faulty or forged peer, never Raft. Its input is dropped.
        this.logger.warn(
          { from: m.from, lead: this.lead, term: this.term, type: MessageType[m.type] },
          'dropping a leader message from a second leader of this term',
        );
        return;
      }
      // The leader of this term is alive.
      this.electionElapsed = 0;
      this.lead = m.from;
    }
    switch (m.type) {
      case MessageType.App:
        this.handleAppendEntries(m);
        return;
      case MessageType.Heartbeat: {
        const commit = Math.min(m.commit, this.log.lastIndex(), Math.max(this.matchedIndex, this.log.committed));
        this.log.commitTo(commit);
        // Told to commit further than it can believe: the leader's next append checks where the logs match.
        this.send(
          makeMessage({
            type: MessageType.HeartbeatResp,
            to: m.from,
            from: this.id,
            context: m.context,
            reject: commit < m.commit,
          }),
        );
        return;
      }
      case MessageType.Snap:
        this.handleSnapshot(m);
        return;
      case MessageType.TimeoutNow:
        if (m.from !== this.lead) return;
        this.logger.info({ from: m.from }, 'TimeoutNow from leader: campaigning for a transfer');
        this.campaign('transfer');
        return;
      case MessageType.ReadIndexResp:
        if (m.from !== this.lead) return;
        this.readStates.push({ context: m.context, index: m.index, ok: !m.reject });
        return;
      default:
        this.logger.debug({ type: MessageType[m.type], from: m.from }, 'follower ignoring message');
    }
  }

  private handleAppendEntries(m: Message): void {
    if (m.index < this.log.committed) {
      // Entries up to our commit index match the leader's by Log Matching: report where we are.
      this.send(makeMessage({ type: MessageType.AppResp, to: m.from, from: this.id, index: this.log.committed }));
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    if (lastNew !== undefined) {
      this.matchedIndex = Math.max(this.matchedIndex, lastNew);
      this.send(makeMessage({ type: MessageType.AppResp, to: m.from, from: this.id, index: lastNew }));
      return;
    }
    // No match at m.index: hint the last index we may match, and our term there.
    const hintIndex = Math.min(m.index, this.log.lastIndex());
    const hint = this.log.findConflictByTerm(hintIndex, m.logTerm);
    this.logger.debug({ from: m.from, index: m.index, logTerm: m.logTerm, hintIndex: hint.index }, 'rejecting append');
    this.send(
      makeMessage({
        type: MessageType.AppResp,
        to: m.from,
        from: this.id,
        index: m.index,
        reject: true,
        rejectHint: hint.index,
        logTerm: hint.term,
      }),
    );
  }

  private handleSnapshot(m: Message): void {
    const meta = m.snapshot;
    if (!meta) return;
    if (meta.index <= this.log.committed) {
      this.send(makeMessage({ type: MessageType.AppResp, to: m.from, from: this.id, index: this.log.committed }));
      return;
    }
    if (this.log.matchTerm(meta.index, meta.term)) {
      // We already hold the snapshot's last entry: just learn that it is committed.
      this.log.commitTo(meta.index);
      this.send(makeMessage({ type: MessageType.AppResp, to: m.from, from: this.id, index: this.log.committed }));
      return;
    }
    if (this.snapshotFetchPending || (this.snapshotToFetch && this.snapshotToFetch.meta.index >= meta.index)) {
      return; // already fetching one at least as new
    }
    this.logger.info({ from: m.from, index: meta.index, term: meta.term }, 'asked to install a snapshot');
    this.snapshotToFetch = { meta, from: m.from };
  }

  // ---------------------------------------------------------------- snapshot install (driver callbacks)

  /** Called by RawNode when the fetch request is handed to the driver. */
  takeSnapshotToFetch(): { meta: SnapshotMeta; from: NodeId } | null {
    const s = this.snapshotToFetch;
    if (s) {
      this.snapshotToFetch = null;
      this.snapshotFetchPending = true;
    }
    return s;
  }

  /**
   * The driver fetched the snapshot image (ok) or gave up. Returns true if the snapshot must be installed:
   * the driver then resets its storage to it before any further call. Returns false if it became stale.
   */
  snapshotFetched(meta: SnapshotMeta, ok: boolean): boolean {
    this.snapshotFetchPending = false;
    const reportTo = this.lead !== NONE ? this.lead : NONE;
    if (!ok) {
      if (reportTo !== NONE) {
        this.send(makeMessage({ type: MessageType.SnapStatus, to: reportTo, from: this.id, reject: true }));
      }
      return false;
    }
    if (meta.index <= this.log.committed) {
      this.logger.info({ index: meta.index, committed: this.log.committed }, 'fetched snapshot is stale: discarding');
      if (reportTo !== NONE) {
        this.send(makeMessage({ type: MessageType.AppResp, to: reportTo, from: this.id, index: this.log.committed }));
      }
      return false;
    }
    return true;
  }

  /** The driver has reset its storage to the snapshot; the log and configuration now start from it. */
  restore(meta: SnapshotMeta): void {
    this.log.restore(meta);
    this.conf = cloneConf(meta.conf);
    this.resetProgress();
    this.logger.info({ index: meta.index, term: meta.term }, 'installed snapshot');
    if (this.lead !== NONE) {
      this.send(makeMessage({ type: MessageType.SnapStatus, to: this.lead, from: this.id, index: meta.index }));
    }
  }

  // ---------------------------------------------------------------- reset-peers (driver calls, in this order)

  /**
   * Reset-peers, first step: a majority is lost for good and the operator declared this node's log the
   * truth. Steps down and commits every entry it holds (the driver made them all durable first), so the
   * configuration entries among them apply in order before the new configuration is forced.
   */
  forceCommitLog(): void {
    assert(this.log.stableIndex() === this.log.lastIndex(), 'raft: force-commit with entries not yet durable');
    assert(!this.snapshotFetchPending && this.snapshotToFetch === null, 'raft: force-commit during a snapshot install');
    if (this.state !== StateType.Follower || this.lead !== NONE) this.becomeFollower(this.term, NONE);
    this.log.commitTo(this.log.lastIndex());
  }

  /**
   * Reset-peers, second step (every entry applied): `conf` replaces the configuration at once. A no-op in a
   * new term, committed by fiat, gives the snapshot that makes `conf` durable an index of its own, newer
   * than anything this node's log holds.
   */
  forceConfiguration(conf: ConfState): void {
    assert(this.log.applied === this.log.lastIndex(), 'raft: forcing a configuration before the log is applied');
    assert(
      conf.votersOutgoing.length === 0 && conf.voters.length > 0,
      'raft: a forced configuration is a simple one with voters',
    );
    this.conf = cloneConf(conf);
    this.becomeFollower(this.term + 1, NONE);
    const index = this.log.lastIndex() + 1;
    this.log.append([{ term: this.term, index, type: EntryType.Normal, data: new Uint8Array(0) }]);
    this.log.commitTo(index);
    this.logger.warn(
      { term: this.term, index, voters: conf.voters, learners: conf.learners },
      'configuration forced by reset-peers',
    );
  }

  // ---------------------------------------------------------------- replication (leader)

  private send(m: Message): void {
    if (
      m.term === 0 &&
      m.type !== MessageType.PreVoteResp &&
      m.type !== MessageType.VoteResp &&
      m.type !== MessageType.PreVote
    ) {
      m.term = this.term;
    }
    assert(m.to !== this.id, 'raft: sending to self');
    if (AFTER_PERSIST.has(m.type)) this.msgsAfterPersist.push(m);
    else this.msgs.push(m);
  }

  /**
   * Sends the next append to `to` if its flow control allows. Without `sendIfEmpty`, only an append that
   * carries entries goes out: a follower learns a new commit index with the next entries or heartbeat.
   * Returns true if a message was sent.
   */
  private maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const pr = this.progress.get(to);
    if (!pr || to === this.id || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm === undefined || pr.next < this.log.firstIndex()) {
      return this.sendSnapshot(to, pr);
    }
    const lastIndex = this.log.lastIndex();
    let ents: Entry[] = [];
    if (pr.next <= lastIndex) {
      const hi = Math.min(lastIndex + 1, pr.next + this.cfg.maxEntriesPerAppend);
      ents = this.log.entries(pr.next, hi, this.cfg.maxAppendBodyBytes);
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    this.send(
      makeMessage({
        type: MessageType.App,
        to,
        from: this.id,
        index: prevIndex,
        logTerm: prevTerm,
        entries: ents,
        commit: this.log.committed,
      }),
    );
    if (ents.length > 0) {
      let bytes = 0;
      for (const e of ents) bytes += entryBytes(e);
      pr.sentEntries(ents[ents.length - 1]!.index, bytes);
    } else if (pr.state === ProgressState.Probe) {
      pr.probeSent = true;
    }
    return true;
  }

  private sendEmptyAppend(to: NodeId, pr: Progress): void {
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm === undefined || prevIndex < this.log.firstIndex() - 1) {
      // The window's end is compacted away: rediscover the follower (which leads to a snapshot).
      pr.becomeProbe();
      this.maybeSendAppend(to, true);
      return;
    }
    this.send(
      makeMessage({
        type: MessageType.App,
        to,
        from: this.id,
        index: prevIndex,
        logTerm: prevTerm,
        commit: this.log.committed,
      }),
    );
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    const meta = this.log.storage.snapshotMeta();
    if (meta.index === 0) {
      this.logger.warn({ to }, 'follower needs compacted entries but no snapshot exists');
      return false;
    }
    pr.becomeSnapshot(meta.index);
    this.logger.info({ to, index: meta.index, term: meta.term }, 'sending snapshot');
    this.sendSnap(to, meta);
    return true;
  }

  private resendSnapshot(to: NodeId, pr: Progress): void {
    const meta = this.log.storage.snapshotMeta();
    if (meta.index < pr.pendingSnapshot) return;
    pr.pendingSnapshot = meta.index;
    this.sendSnap(to, meta);
  }

  private sendSnap(to: NodeId, meta: SnapshotMeta): void {
    this.send(
      makeMessage({
        type: MessageType.Snap,
        to,
        from: this.id,
        snapshot: { index: meta.index, term: meta.term, conf: cloneConf(meta.conf) },
      }),
    );
  }

  /** Sends pending appends to every follower (new entries, or a commit index they have not seen). */
  flushBroadcast(): void {
    if (!this.bcastPending) return;
    this.bcastPending = false;
    if (this.state !== StateType.Leader) return;
    for (const id of this.members()) {
      if (id === this.id) continue;
      while (this.maybeSendAppend(id, false)) {
        /* fill the window */
      }
    }
  }

  private bcastHeartbeat(context: Uint8Array | undefined): void {
    for (const id of this.members()) {
      if (id === this.id) continue;
      // Never tell a follower to commit past what it is known to hold.
      const commit = Math.min(this.progress.get(id)!.match, this.log.committed);
      this.send(
        makeMessage({
          type: MessageType.Heartbeat,
          to: id,
          from: this.id,
          commit,
          context: context ?? new Uint8Array(0),
        }),
      );
    }
  }

  private maybeCommit(): boolean {
    const ci = this.tracker.committed(this.conf);
    const before = this.log.committed;
    if (!this.log.maybeCommit(ci, this.term)) return false;
    this.reduceUncommitted(before, this.log.committed);
    return true;
  }

  private reduceUncommitted(from: number, to: number): void {
    if (this.uncommittedBytes === 0) return;
    let freed = 0;
    const lo = Math.max(from + 1, this.log.firstIndex());
    if (lo <= to) for (const e of this.log.entries(lo, to + 1, Number.MAX_SAFE_INTEGER)) freed += entryBytes(e);
    this.uncommittedBytes = Math.max(0, this.uncommittedBytes - freed);
  }

  /** Appends entries at the end of the leader's log in the current term. False if over the uncommitted bound. */
  private appendEntries(ents: Entry[]): boolean {
    let bytes = 0;
    for (const e of ents) bytes += entryBytes(e);
    if (this.uncommittedBytes > 0 && this.uncommittedBytes + bytes > this.cfg.maxUncommittedBytes) return false;
    let li = this.log.lastIndex();
    for (const e of ents) {
      e.term = this.term;
      e.index = ++li;
    }
    this.log.append(ents);
    this.uncommittedBytes += bytes;
    this.bcastPending = true;
    // A single-voter configuration commits once its own write is durable (see persisted()).
    return true;
  }

  // ---------------------------------------------------------------- durability (driver callback)

  /** Entries up to `index` (of `term`) are durable on this node's disk. */
  persisted(index: number, term: number): void {
    this.log.unstable.stableTo(index, term);
    if (this.state !== StateType.Leader) return;
    const self = this.progress.get(this.id);
    if (self?.maybeUpdate(this.log.stableIndex())) this.maybeCommit();
  }

  // ---------------------------------------------------------------- proposals

  propose(data: Uint8Array, expectedTerm?: number): ProposeResult {
    const refused = this.checkProposal(expectedTerm);
    if (refused) return refused;
    const e: Entry = { term: 0, index: 0, type: EntryType.Normal, data };
    if (!this.appendEntries([e])) return this.refuse('busy', 'too many uncommitted bytes');
    return { ok: true, index: e.index, term: e.term };
  }

  proposeConfChange(cc: ConfChange, expectedTerm?: number): ProposeResult {
    const refused = this.checkProposal(expectedTerm);
    if (refused) return refused;
    if (this.pendingConfIndex > this.log.applied) {
      return this.refuse('conf-change-pending', `configuration change at ${this.pendingConfIndex} not yet applied`);
    }
    const problem = cc.changes.length === 0 && !cc.leaveJoint ? 'no changes' : validateConfChange(this.conf, cc);
    if (problem) return this.refuse('invalid-conf-change', problem);
    const e: Entry = { term: 0, index: 0, type: EntryType.ConfChange, data: this.cfg.confChangeCodec.encode(cc) };
    if (!this.appendEntries([e])) return this.refuse('busy', 'too many uncommitted bytes');
    this.pendingConfIndex = e.index;
    return { ok: true, index: e.index, term: e.term };
  }

  private checkProposal(expectedTerm: number | undefined): ProposeResult | null {
    if (this.state !== StateType.Leader) return this.refuse('not-leader');
    if (expectedTerm !== undefined && expectedTerm !== this.term) {
      return this.refuse('term-mismatch', `expected term ${expectedTerm}, leader is at ${this.term}`);
    }
    if (this.leadTransferee !== NONE)
      return this.refuse('transferring', `transferring leadership to ${this.leadTransferee}`);
    return null;
  }

  private refuse(error: ProposeError, detail?: string): ProposeResult {
    return detail === undefined
      ? { ok: false, error, leader: this.lead, term: this.term }
      : { ok: false, error, leader: this.lead, term: this.term, detail };
  }

  // ---------------------------------------------------------------- applying (called as entries are handed out)

  /** Entries up to `index` are handed to the application; configuration changes among them take effect. */
  appliedTo(ents: Entry[]): void {
    if (ents.length === 0) return;
    for (const e of ents) {
      if (e.type === EntryType.ConfChange) this.applyConfEntry(e);
    }
    this.log.appliedTo(ents[ents.length - 1]!.index);
    this.maybeAutoConfChange();
  }

  private applyConfEntry(e: Entry): void {
    // A committed configuration entry that does not decode, or does not fit the configuration it applies to
    // (only a buggy or forged proposer writes one: proposals are validated), changes nothing. Every replica
    // applies it to the same configuration, so every replica skips it alike.
    let cc: ConfChange;
    try {
      cc = this.cfg.confChangeCodec.decode(e.data);
    } catch (err) {
      this.logger.warn(
        { index: e.index, error: (err as Error).message },
        'committed configuration entry does not decode: ignored',
      );
      return;
    }
    const problem = validateConfChange(this.conf, cc);
    if (problem !== null) {
      this.logger.warn(
        { index: e.index, problem },
        'committed configuration entry does not apply to the configuration: ignored',
      );
      return;
    }
    const next = applyConfChange(this.conf, cc);
    this.logger.info(
      { index: e.index, voters: next.voters, outgoing: next.votersOutgoing, learners: next.learners },
      'configuration applied',
    );
    this.conf = next;
    this.tracker.sync(confMembers(next), this.log.lastIndex() + 1);
    this.leaveToConfirm = cc.leaveJoint;
    if (this.state !== StateType.Leader) return;
    if (!isVoter(next, this.id) && !isJoint(next) && !this.leaveToConfirm) {
      // A leader removed by a committed configuration tells the others it is committed (so they apply it now,
      // not after the next election), then steps down. It leads C_new until then, counting only C_new's votes.
      this.logger.info({ term: this.term }, 'removed from the configuration: stepping down');
      this.bcastHeartbeat(undefined);
      this.becomeFollower(this.term, NONE);
      return;
    }
    if (this.leadTransferee !== NONE && !isVoter(next, this.leadTransferee)) this.leadTransferee = NONE;
    // The quorum changed: entries may now be committed (or reads confirmed).
    if (this.maybeCommit()) this.bcastPending = true;
    this.bcastPending = true;
  }

  /**
   * The leader's own configuration entries: leaving a joint configuration once it is applied, then confirming
   * the leave with an empty change. A node holding the confirmation durably knows the leave committed (a write
   * that starts with a configuration entry carries the commit hint), so once the confirmation commits, a
   * majority of the new voters restart in the new configuration even if every removed voter is gone for good;
   * otherwise a restart could fall back to the joint configuration, which needs the removed voters.
   */
  private maybeAutoConfChange(): void {
    if (this.state !== StateType.Leader || this.pendingConfIndex > this.log.applied || this.leadTransferee !== NONE)
      return;
    let cc: ConfChange;
    if (isJoint(this.conf)) cc = { changes: [], leaveJoint: true };
    else if (this.leaveToConfirm) cc = { changes: [], leaveJoint: false };
    else return;
    const e: Entry = { term: 0, index: 0, type: EntryType.ConfChange, data: this.cfg.confChangeCodec.encode(cc) };
    if (this.appendEntries([e])) {
      this.pendingConfIndex = e.index;
      this.logger.info(
        { index: e.index },
        cc.leaveJoint ? 'leaving joint configuration' : 'confirming the new configuration',
      );
    }
  }

  // ---------------------------------------------------------------- ReadIndex

  readIndex(context: Uint8Array): void {
    if (this.state === StateType.Leader) {
      this.handleReadIndex(context, this.id);
      return;
    }
    if (this.lead === NONE) {
      this.readStates.push({ context, index: 0, ok: false });
      return;
    }
    this.send(makeMessage({ type: MessageType.ReadIndex, to: this.lead, from: this.id, context }));
  }

  private handleReadIndex(context: Uint8Array, from: NodeId): void {
    // A new leader does not know the commit index of its predecessor until it commits in its own term
    // (etcd issue 7331): refuse until then.
    if (this.log.term(this.log.committed) !== this.term) return this.answerRead({ index: 0, context, from }, false);
    const req = { index: this.log.committed, context, from };
    if (this.voters().length === 1 && this.voters()[0] === this.id) return this.answerRead(req, true);
    if (this.reads.add(req, this.id)) this.bcastHeartbeat(context);
  }

  private answerRead(r: PendingRead, ok: boolean): void {
    if (r.from === this.id) {
      this.readStates.push({ context: r.context, index: r.index, ok });
    } else {
      this.send(
        makeMessage({
          type: MessageType.ReadIndexResp,
          to: r.from,
          from: this.id,
          index: r.index,
          context: r.context,
          reject: !ok,
        }),
      );
    }
  }

  private failPendingReads(): void {
    for (const r of this.reads.drain()) {
      if (r.from === this.id) this.readStates.push({ context: r.context, index: 0, ok: false });
    }
  }

  // ---------------------------------------------------------------- leadership transfer

  transferLeader(to: NodeId): { ok: boolean; detail?: string } {
    if (this.state !== StateType.Leader) return { ok: false, detail: 'not the leader' };
    if (to === this.id) return { ok: true };
    if (!isVoter(this.conf, to)) return { ok: false, detail: `${to} is not a voter` };
    if (this.leadTransferee === to) return { ok: true };
    this.leadTransferee = to;
    // The transfer must finish within one election timeout, or it is abandoned.
    this.electionElapsed = 0;
    const pr = this.progress.get(to)!;
    this.logger.info({ to, match: pr.match, lastIndex: this.log.lastIndex() }, 'transferring leadership');
    if (pr.match === this.log.lastIndex()) {
      this.send(makeMessage({ type: MessageType.TimeoutNow, to, from: this.id }));
    } else {
      this.maybeSendAppend(to, true);
    }
    return { ok: true };
  }

  /** A transport failure to `id`: a pipelining follower goes back to probing. */
  reportUnreachable(id: NodeId): void {
    const pr = this.progress.get(id);
    if (this.state !== StateType.Leader || !pr) return;
    if (pr.state === ProgressState.Replicate) pr.becomeProbe();
  }
}
