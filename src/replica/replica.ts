// The driver that runs the pure Raft core against a durable log, a state machine and a transport: for each
// Ready it queues the writes (persist-queue.ts: group commit, in order), sends, applies and advances.
// Snapshots (taken, fetched, installed as a persist job) are in snapshots.ts, what clients wait on in
// client-waits.ts, membership changes in membership.ts, leadership transfer in leader-transfer.ts, the
// majority-lost emergency in reset-peers.ts, the identity rules (storage bindings, generations, floors) in
// identity.ts, the backoff after a resource shortage in shortage-retry.ts; a full disk is a phase of its own
// here (it waits for space, then resumes as a follower; disk-full.ts). Environment-agnostic: see env.ts.

import { assert, AssertionError } from '../assert.js';
import type { QjmError } from '../errors.js';
import { confChangeCodec, decodeConfChange } from '../transport/raft-codec.js';
import { RawNode } from '../raft/raw-node.js';
import type { RaftStatus, Ready, SoftState } from '../raft/raw-node.js';
import type { ProposeResult, RaftConfig } from '../raft/raft.js';
import { silentLogger } from '../logger.js';
import type { Logger } from '../logger.js';
import { ConfChangeOp, confMembers, EntryType, type MessageType, NONE, StateType } from '../raft/types.js';
import type { ConfChange, Entry, Message, NodeId, Peer, SnapshotMeta } from '../raft/types.js';
import type { DiskSpace, ReplicaClock, ReplicaLog, ReplicaStateMachine, ReplicaTransport } from './env.js';
import { ApplyInterrupted, isDiskFull, isStorageFailure } from './env.js';
import { SHORTAGE_FIRST_RETRY_MS, SHORTAGE_MAX_RETRY_MS, ShortageRetry } from './shortage-retry.js';
import { ClientWaits, qjmError as err } from './client-waits.js';
import type { Callback, ProposalResult } from './client-waits.js';
import { LeaderTransfer, transferTarget } from './leader-transfer.js';
import { MembershipChange } from './membership.js';
import type { ReplicaOptions } from './options.js';
import { PeerDirectory } from './peer-directory.js';
import { PersistQueue } from './persist-queue.js';
import { PeersReset, resetProblem } from './reset-peers.js';
import type { ResetResult } from './reset-peers.js';
import { Snapshots } from './snapshots.js';
import { diskFullRefusal, freeBytesAt } from './disk-full.js';
import type { DiskFullStatus } from './disk-full.js';
import { SyncHealth } from './sync-health.js';
import { AckLatency } from './ack-latency.js';
import type { LatencySummary } from './latency-window.js';
import { IdentityGate } from './identity.js';
import type * as Id from './identity.js';

export type { Callback, ProposalResult } from './client-waits.js';
export type { ReplicaOptions } from './options.js';
export type { ResetResult } from './reset-peers.js';
export type { DiskFullStatus } from './disk-full.js';
export { diskFullText } from './disk-full.js';
export type { BatchEnvelope, IdentityNotice, IdentityStatus, IdentityVerdict } from './identity.js';
export { DEFAULT_REPLICA_OPTIONS, deriveReplicaOptions } from './options.js';

export interface ReplicaListener {
  onRoleChange?(state: StateType, lead: NodeId, term: number): void;
  onConfigurationApplied?(index: number, voters: NodeId[], learners: NodeId[]): void;
  /** Reset-peers is about to commit (committedIndex, lastIndex] by fiat: no quorum confirmed those entries. */
  onCommitByFiat?(committedIndex: number, lastIndex: number): void;
  /** This leader started handing leadership to `to` (an operator's transfer, or a drain on shutdown). */
  onLeaderTransfer?(to: NodeId, term: number): void;
  /** A storage or state machine failure: the replica has stopped and must not serve. */
  onFatal?(err: Error): void;
  /** The disk filled (`full`: the replica waits for space) or has room again (it resumes as a follower). */
  onDiskFull?(full: boolean, status: DiskFullStatus): void;
}

export interface ReplicaDeps<R> {
  log: ReplicaLog;
  stateMachine: ReplicaStateMachine<R>;
  transport: ReplicaTransport;
  clock: ReplicaClock;
  random: () => number;
  /** The cluster's address book; the replica keeps it in step with the configuration (default: its own). */
  peers?: PeerDirectory;
  logger?: Logger;
  listener?: ReplicaListener;
  /**
   * Sends these kinds of message before the state they depend on is durable: a deliberate bug, only for
   * proving the simulator's checkers can fail (AppResp: ack before persist; VoteResp: vote before persist).
   */
  unsafeSendBeforePersist?: readonly MessageType[];
  /** Run the core's invariant checks around every step (tests and simulation); a violation throws. */
  checkInvariants?: boolean;
  /** This node's storage id, cluster id and recorded standing (identity.ts); without it nothing is checked. */
  identity?: Id.IdentityOptions;
  /** Free space where the data lives, probed while the disk is full; without it every probe finds room. */
  diskSpace?: DiskSpace;
}

/** How long this node's log writes and (a leader's view) its followers' acknowledgements took lately. */
export interface ReplicaLatencies {
  sync: LatencySummary | null;
  /** Leader only: per follower (empty elsewhere). */
  acks: Record<NodeId, LatencySummary | null>;
}

export interface ReplicaStatus extends RaftStatus {
  snapshotIndex: number;
  snapshotTerm: number;
  persistQueueJobs: number;
  pendingProposals: number;
  pendingReads: number;
  peers: Peer[];
  fatal: string | null;
  /** The disk filled and the node waits for space (null otherwise). */
  diskFull: DiskFullStatus | null;
  identity: Id.IdentityStatus;
}

/**
 * Where the replica is in its life. Every input looks at it; only enter() changes it: running and resetting
 * (reset-peers: no peer input, no tick reaches the core) alternate; disk-full (a write ran out of space: no
 * peer input, so no vote and no acknowledgement, no tick reaches the core, clients are refused; the free
 * space is probed until there is headroom, then it runs again, as a follower); stopped (stop) and failed
 * (its storage or state machine failed) are final.
 */
type Phase =
  | { name: 'running' }
  | { name: 'resetting'; reset: PeersReset }
  | { name: 'disk-full'; status: DiskFullStatus; nextProbeMs: number }
  | { name: 'stopped' }
  | { name: 'failed'; error: Error };

const NEXT_PHASES: Readonly<Record<Phase['name'], readonly Phase['name'][]>> = {
  running: ['resetting', 'disk-full', 'stopped', 'failed'],
  resetting: ['running', 'disk-full', 'stopped', 'failed'],
  'disk-full': ['running', 'stopped', 'failed'],
  stopped: [],
  failed: [],
};

export class Replica<R> {
  readonly id: NodeId;
  readonly peers: PeerDirectory;
  private readonly raw: RawNode;
  private readonly opts: ReplicaOptions;
  private readonly deps: ReplicaDeps<R>;
  private readonly logger: Logger;
  private readonly waits: ClientWaits<R>;
  private readonly persist: PersistQueue;
  private readonly snapshots: Snapshots<R>;
  private readonly syncHealth: SyncHealth;
  private readonly acks = new AckLatency();
  /**
   * When each peer was last heard from (a message admitted), for status(): the core's check-quorum marks are
   * reset at every round, so read just after one they showed every follower silent. Only members' ids are
   * kept (status() drops the others).
   */
  private readonly heardAtMs = new Map<NodeId, number>();
  private readonly identity: IdentityGate;
  /** Applying ran short of file descriptors: held, and resumed from tick() after a backoff. */
  private readonly applyRetry = new ShortageRetry(SHORTAGE_FIRST_RETRY_MS, SHORTAGE_MAX_RETRY_MS);

  private phase: Phase = { name: 'running' };
  /** The role and leader as of the last Ready (what clients are told; the core may have moved on mid-turn). */
  private soft: SoftState = { lead: NONE, state: StateType.Follower };
  // Invariant: applied === the index of the last entry handed to the state machine, or of the installed snapshot.
  private applied: number;
  /** A Ready turn is deferred (clock.defer) and not yet run. */
  private scheduled = false;

  private change: MembershipChange | null = null;
  private transfer: LeaderTransfer | null = null;

  constructor(id: NodeId, options: ReplicaOptions, deps: ReplicaDeps<R>) {
    this.id = id;
    this.opts = options;
    this.deps = deps;
    this.logger = deps.logger ?? silentLogger;
    const cfg: RaftConfig = {
      ...options,
      id,
      snapshotTimeoutTicks: options.electionTicks * 30,
      confChangeCodec,
      random: deps.random,
      logger: this.logger,
    };
    const hs = deps.log.initialHardState();
    this.raw = new RawNode(cfg, deps.log, hs, { checkInvariants: deps.checkInvariants === true });
    // Drawn after the core's first election timeout: the order of draws is part of what a seed replays.
    this.waits = new ClientWaits<R>(options, Math.floor(deps.random() * 0xffffffff) >>> 0);
    const snap = deps.log.snapshotMeta();
    this.applied = snap.index;
    this.peers = deps.peers ?? new PeerDirectory();
    this.peers.reset(snap.peers ?? [], snap.index);
    this.syncHealth = new SyncHealth(id, options, this.logger);
    const stopped = () => this.stopped;
    const failed = (e: Error) => this.die(e);
    const schedule = () => this.schedule();
    const shortOf = (e: Error, retry: ShortageRetry, what: string, step: () => void) =>
      this.shortOf(e, retry, what, step);
    this.persist = new PersistQueue(
      {
        log: deps.log,
        send: (messages) => deps.transport.send(messages),
        commitHint: () => Math.min(this.raw.committedIndex(), this.raw.stableIndex()),
        persisted: (last) => this.raw.persisted(last.index, last.term),
        schedule,
        install: (staged, done) => this.snapshots.install(staged, done),
        shortOf,
        failed,
        stopped,
        now: () => deps.clock.now(),
        synced: (w) => this.syncHealth.synced(w, deps.clock.now()),
      },
      options,
      hs,
    );
    this.snapshots = new Snapshots<R>(
      {
        raw: this.raw,
        log: deps.log,
        stateMachine: deps.stateMachine,
        persist: this.persist,
        peers: this.peers,
        clock: deps.clock,
        logger: this.logger,
        restored: (meta) => this.restored(meta),
        installed: () => {
          this.waits.releaseApplied(this.applied);
          this.schedule();
        },
        generation: () => this.identity.generation,
        saveDue: () => this.maybeSnapshot(),
        shortOf,
        schedule,
        failed,
        stopped,
      },
      options,
    );
    this.identity = new IdentityGate(id, deps.identity ?? { storageId: '', clusterId: '' }, snap.generation ?? 0, {
      logger: this.logger,
      nowMs: deps.identity?.nowMs ?? (() => deps.clock.now()),
      onStandDown: () => this.stoodDown(),
      onFatal: failed,
      context: () => ({ raw: this.raw, directory: this.peers, role: this.soft.state }),
    });
    this.identity.configurationChanged();
  }

  /** The one way the phase changes; a transition the table does not allow is a bug. */
  private enter(next: Phase): void {
    assert(
      NEXT_PHASES[this.phase.name].includes(next.name),
      () => `replica: ${this.phase.name} -> ${next.name} is not a transition`,
    );
    this.phase = next;
  }

  private get stopped(): boolean {
    return this.phase.name === 'stopped' || this.phase.name === 'failed';
  }

  private get resetting(): boolean {
    return this.phase.name === 'resetting';
  }

  // ---------------------------------------------------------------- inputs

  /** Starts processing (the first Ready may hold commits from the restart hint). */
  start(): void {
    this.schedule();
  }

  tick(): void {
    if (this.stopped) return;
    const now = this.deps.clock.now();
    if (this.phase.name === 'disk-full') {
      this.expireDeadlines();
      if (now < this.phase.nextProbeMs || !this.probeDiskSpace(now)) return;
    }
    this.persist.retryIfDue(now);
    this.applyRetry.runIfDue(now);
    this.snapshots.retryIfDue(now);
    if (this.stopped) return;
    // A follower that may not campaign (stood down, below its floor, bound elsewhere) counts the time but does
    // not campaign: the lease of the leader it last heard expires, so it can vote when that leader is gone.
    if (!this.resetting) this.storageGuarded(() => this.raw.tick(this.isLeader || this.identity.mayCampaign()));
    if (this.stopped) return;
    const out: Message[] = [];
    this.identity.tick(out);
    if (out.length > 0) this.deps.transport.send(out);
    this.expireDeadlines();
    this.handOverIfStalled();
    this.advanceChange();
    this.schedule();
  }

  /**
   * Peer messages, with the envelope of the batch they came in when the transport has one: a batch the identity
   * rules refuse (another storage under a member's id, another generation) never reaches the core.
   */
  receive(messages: readonly Message[], envelope?: Id.BatchEnvelope): void {
    if (this.phase.name !== 'running') return;
    if (envelope && !this.identity.admit(envelope).ok) return;
    if (this.persist.full) {
      // The disk stalled: what these messages would make this node write has nowhere to go. Raft resends.
      this.logger.debug({ jobs: this.persist.length, dropped: messages.length }, 'persist queue full: input dropped');
      return;
    }
    const now = this.deps.clock.now();
    const out: Message[] = [];
    this.storageGuarded(() => {
      for (const m of this.identity.inbound(messages, out)) {
        this.heardAtMs.set(m.from, now);
        if (this.isLeader) this.acks.received(m, now);
        this.raw.step(m);
      }
    });
    if (this.stopped) return;
    if (out.length > 0) this.deps.transport.send(out);
    this.schedule();
  }

  /** Whether a batch with this envelope would be heard; a refusal carries what to tell its sender. */
  admitBatch(envelope: Id.BatchEnvelope): Id.IdentityVerdict {
    return this.identity.admit(envelope);
  }

  /** A peer refused this node's batch and said why (the answer to this node's own traffic). */
  hearNotice(from: NodeId, notice: Id.IdentityNotice): void {
    if (!this.stopped) this.identity.hearNotice(from, notice);
  }

  /** The reset generation this node belongs to (carried in every batch it sends). */
  get generation(): number {
    return this.identity.generation;
  }

  /** Proposes a command. cb gets the state machine's result once the entry is committed and applied here. */
  propose(data: Uint8Array, expectedTerm: number | undefined, cb: Callback<ProposalResult<R>>): void {
    const refused = this.refusal();
    if (refused) return cb(refused);
    if (data.byteLength === 0) return cb(err('INVALID_ARGUMENT', 'empty command'));
    if (this.isLeader && this.persist.full) {
      return cb(err('BUSY', `this leader's disk is behind: ${this.persist.length} writes are queued`));
    }
    const res = this.raw.propose(data, expectedTerm);
    if (!res.ok) return cb(this.proposeError(res));
    this.waits.trackProposal(res.index, res.term, this.deps.clock.now(), cb);
    this.schedule();
  }

  /** Linearizable barrier: cb(index) once a read at this point may be served from the local state. */
  readIndex(cb: Callback<number>): void {
    const refused = this.refusal();
    if (refused) return cb(refused);
    const context = this.waits.addRead(this.deps.clock.now(), cb);
    if (context === null) {
      const max = this.opts.maxPendingReads;
      return cb(err('BUSY', `${max} reads are already waiting on this node (maxWaitingReads): retry later`));
    }
    this.raw.readIndex(context);
    this.schedule();
  }

  /** cb once the state machine has applied `index` (or timeout). */
  waitApplied(index: number, timeoutMs: number, cb: Callback<number>): void {
    if (this.stopped) return cb(this.stoppedError());
    // appliedIndex, not applied: during a snapshot install the image is not in place yet.
    if (this.appliedIndex >= index) return cb(null, this.appliedIndex);
    this.waits.waitApplied(index, this.deps.clock.now() + timeoutMs, cb);
  }

  transferLeader(to: NodeId, cb: Callback<void>): void {
    const refused = this.refusal();
    if (refused) return cb(refused);
    if (this.resetting) return cb(err('BUSY', 'reset-peers is in progress'));
    if (this.transfer) return cb(err('BUSY', `a transfer to ${this.transfer.to} is in progress`));
    const res = this.raw.transferLeader(to);
    if (!res.ok)
      return cb(
        err(this.isLeader ? 'INVALID_ARGUMENT' : 'NOT_LEADER', res.detail ?? 'transfer refused', this.leaderDetails()),
      );
    if (to === this.id) return cb(null);
    this.transfer = new LeaderTransfer(to, this.deps.clock.now() + this.opts.electionTicks * this.opts.tickMs * 2, cb);
    this.deps.listener?.onLeaderTransfer?.(to, this.raw.term);
    this.schedule();
  }

  /**
   * Changes the voters to exactly `target` (braft change_peers): new peers first join as learners and catch
   * up to within catchupMargin entries, then one joint-consensus change swaps the voters.
   */
  changePeers(target: Peer[], cb: Callback<void>): void {
    const refused = this.refusal();
    if (refused) return cb(refused);
    if (this.resetting) return cb(err('BUSY', 'reset-peers is in progress'));
    if (!this.isLeader) return cb(err('NOT_LEADER', 'not the leader', this.leaderDetails()));
    if (this.change) return cb(err('CONF_CHANGE_IN_PROGRESS', 'a membership change is already in progress'));
    if (target.length === 0) return cb(err('INVALID_CONF_CHANGE', 'the new configuration has no voters'));
    const ids = new Set(target.map((p) => p.id));
    if (ids.size !== target.length) return cb(err('INVALID_CONF_CHANGE', 'a peer is named twice'));
    const timeoutMs = this.opts.changePeersTimeoutMs;
    this.change = new MembershipChange(target, this.deps.clock.now() + timeoutMs, timeoutMs, cb);
    this.advanceChange();
    this.schedule();
  }

  /**
   * Proposes one configuration change as given (an operator's single step, e.g. adding a learner that stays
   * one); cb once the leader appended it, not once it applies. changePeers is the whole, guarded procedure.
   */
  proposeConfChange(cc: ConfChange, cb: Callback<{ index: number; term: number }>): void {
    const refused = this.refusal();
    if (refused) return cb(refused);
    if (this.resetting) return cb(err('BUSY', 'reset-peers is in progress'));
    if (this.change) return cb(err('CONF_CHANGE_IN_PROGRESS', 'a membership change is already in progress'));
    const res = this.raw.proposeConfChange(cc);
    if (!res.ok) return cb(this.proposeError(res));
    this.schedule();
    cb(null, { index: res.index, term: res.term });
  }

  /**
   * Forces the configuration to exactly `peers` (all voters) on this node alone, when a majority of the
   * cluster is lost for good (braft's reset_peers). Unsafe by nature: this node's whole log becomes
   * committed, and whatever the lost nodes committed beyond it is gone. Run it on one survivor (the one
   * with the longest log); the others join it afresh. cb once the new configuration is durable; the node
   * then campaigns at once.
   */
  resetPeers(peers: Peer[], cb: Callback<ResetResult>): void {
    const refused = this.refusal();
    if (refused) return cb(refused);
    if (this.resetting) return cb(err('BUSY', 'reset-peers is already in progress'));
    const problem = resetProblem(this.id, peers);
    if (problem) return cb(err('INVALID_CONF_CHANGE', problem));
    this.logger.warn({ peers }, 'reset-peers: forcing a new configuration on this node');
    this.failOperations(err('LEADERSHIP_LOST', 'reset-peers started', { unknownOutcome: true }));
    const reset = new PeersReset(peers, (e, r) => {
      // A stop or a failure ends the reset from a final phase; only the reset's own end returns to running.
      if (this.resetting) this.enter({ name: 'running' });
      if (!e) {
        this.logger.warn({ ...r }, 'reset-peers done: the new configuration is durable');
        this.raw.campaign();
        this.schedule();
      }
      cb(e, r);
    });
    this.enter({ name: 'resetting', reset });
    this.schedule();
  }

  /**
   * Before a clean stop: a leader hands leadership to a voter that holds its whole log (so the cluster keeps a
   * leader without an election timeout), then in-flight writes get up to timeoutMs to finish.
   */
  drain(timeoutMs: number, cb: () => void): void {
    const deadlineMs = this.deps.clock.now() + timeoutMs;
    const waitForProposals = () => {
      if (this.stopped || this.waits.proposalCount === 0 || this.deps.clock.now() >= deadlineMs) return cb();
      setTimeout(waitForProposals, 10);
    };
    const to = this.isLeader ? transferTarget(this.raw.status(), true) : undefined;
    if (to === undefined) return waitForProposals();
    this.transferLeader(to, () => waitForProposals());
  }

  /** The transport could not reach a peer: a pipelining follower goes back to probing. */
  reportUnreachable(id: NodeId): void {
    if (this.stopped) return;
    this.raw.reportUnreachable(id);
  }

  /**
   * Stops in the fatal state, as on a storage failure: damage to this node's storage that it cannot repair while
   * it runs (the next start recovers what it can vouch for).
   */
  fail(e: Error): void {
    this.die(e);
  }

  /** Fails everything pending and stops; the replica accepts no more input. */
  stop(): void {
    if (!this.stopped) this.end({ name: 'stopped' });
  }

  /**
   * A leader whose own log write has been unfinished past leaderSyncStallMs hands leadership to a voter that
   * holds its whole log (the followers kept writing: entries leave before the leader's own write is done), so
   * the cluster's writes stop waiting on this disk. None holds it: this node keeps leading.
   */
  private handOverIfStalled(): void {
    if (!this.isLeader || this.transfer || this.phase.name !== 'running') return;
    const inFlightMs = this.persist.writeInFlightMs(this.deps.clock.now());
    if (!this.syncHealth.stalled(inFlightMs)) return;
    const to = transferTarget(this.raw.status(), true);
    if (to === undefined) return;
    this.logger.warn(
      { node: this.id, inFlightMs: Math.round(inFlightMs), to },
      `this leader's log write has been unfinished for ${Math.round(inFlightMs)} ms (leaderSyncStallMs ${this.opts.leaderSyncStallMs}): handing leadership to ${to}`,
    );
    this.transferLeader(to, () => {});
  }

  // ---------------------------------------------------------------- queries

  /** Recent latencies: this node's log writes, and a leader's followers' acknowledgements. */
  latencies(): ReplicaLatencies {
    const now = this.deps.clock.now();
    const followers = this.isLeader ? Object.keys(this.raw.status().progress) : [];
    return { sync: this.syncHealth.summary(now), acks: this.acks.summaries(followers, now) };
  }

  status(): ReplicaStatus {
    const s = this.raw.status();
    const snap = this.deps.log.snapshotMeta();
    return {
      ...s,
      progress: this.progressHeard(s.progress),
      appliedIndex: this.appliedIndex,
      snapshotIndex: snap.index,
      snapshotTerm: snap.term,
      persistQueueJobs: this.persist.length,
      pendingProposals: this.waits.proposalCount,
      pendingReads: this.waits.readCount,
      peers: this.peers.list(),
      fatal: this.phase.name === 'failed' ? this.phase.error.message : null,
      diskFull: this.phase.name === 'disk-full' ? { ...this.phase.status } : null,
      identity: this.identity.status(),
    };
  }

  /** The core's progress, each follower active if heard from within an election timeout (at any moment). */
  private progressHeard(progress: RaftStatus['progress']): RaftStatus['progress'] {
    const now = this.deps.clock.now();
    const windowMs = this.opts.tickMs * this.opts.electionTicks;
    for (const id of [...this.heardAtMs.keys()]) if (!(id in progress)) this.heardAtMs.delete(id);
    const out: RaftStatus['progress'] = {};
    for (const [id, p] of Object.entries(progress)) {
      const heard = this.heardAtMs.get(id);
      out[id] = { ...p, recentActive: p.recentActive || (heard !== undefined && now - heard <= windowMs) };
    }
    return out;
  }

  /** Why this node takes no client operation (it stood down, or its storage waits to be re-added), or null. */
  identityRefusal(): QjmError | null {
    return this.identity.refusal();
  }

  /** Why this node takes no client operation now (stopped, failed, its disk full, an identity refusal), or null. */
  private refusal(): QjmError | null {
    if (this.phase.name === 'disk-full') return diskFullRefusal(this.phase.status, this.leaderDetails());
    return this.stopped ? this.stoppedError() : this.identityRefusal();
  }

  /** The identity rules made this node stand down: it stops leading and fails everything that waits. */
  private stoodDown(): void {
    this.raw.stepDown();
    const e = this.identity.refusal();
    if (e) {
      this.waits.failAll(e);
      this.failOperations(e);
      if (this.phase.name === 'resetting') this.phase.reset.fail(e);
    }
    this.schedule();
  }

  /** The core's handle, for status pages and the simulator's checkers; never step it from outside. */
  get rawNode(): RawNode {
    return this.raw;
  }

  /**
   * What the state machine reflects: during a snapshot install the core has moved on to the snapshot's
   * index but the image is not in place yet, so readers and status still see the old index.
   */
  get appliedIndex(): number {
    return this.snapshots.appliedBeforeInstall ?? this.applied;
  }

  get isLeader(): boolean {
    return this.soft.state === StateType.Leader;
  }

  get leaderId(): NodeId {
    return this.soft.lead;
  }

  get term(): number {
    return this.raw.term;
  }

  addressOf(id: NodeId): string | undefined {
    return this.peers.addressOf(id);
  }

  get stoppedOrFailed(): boolean {
    return this.stopped;
  }

  // ---------------------------------------------------------------- the Ready loop

  private schedule(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    this.deps.clock.defer(() => {
      this.scheduled = false;
      this.processReady();
    });
  }

  /**
   * Runs a step of the core that may read the log: a read the storage refuses (a damaged entry: its error is
   * marked a storage failure, env.ts) stops the replica in its fatal state, as a failed write does.
   */
  private storageGuarded(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      if (e instanceof AssertionError || !isStorageFailure(e)) throw e;
      this.die(e as Error);
    }
  }

  private processReady(): void {
    this.storageGuarded(() => this.processReadyRounds());
  }

  private processReadyRounds(): void {
    if (this.stopped) return;
    for (let rounds = 0; this.raw.hasReady(); rounds++) {
      if (rounds >= 64) {
        // Bound the work of one turn: let timers and I/O callbacks run, then continue.
        this.schedule();
        break;
      }
      const rd = this.raw.ready();
      this.handleReady(rd);
      if (this.stopped) return;
    }
    this.persist.kick();
    this.advanceReset();
  }

  private handleReady(rd: Ready): void {
    if (rd.softState) this.onSoftState(rd.softState.state, rd.softState.lead);
    if (rd.snapshotToFetch) this.snapshots.fetch(rd.snapshotToFetch.from, rd.snapshotToFetch.meta);
    let afterPersist = rd.persistedMessages;
    const early = this.deps.unsafeSendBeforePersist;
    if (early) {
      this.deps.transport.send(afterPersist.filter((m) => early.includes(m.type)));
      afterPersist = afterPersist.filter((m) => !early.includes(m.type));
    }
    this.persist.enqueueWrite(rd.hardState, rd.entries, afterPersist);
    if (rd.messages.length > 0) {
      if (this.isLeader) this.acks.sent(rd.messages, this.deps.clock.now());
      this.deps.transport.send(rd.messages);
    }
    const applied = rd.committedEntries.length > 0 ? this.applyEntries(rd.committedEntries) : 0;
    if (this.stopped) return;
    for (const rs of rd.readStates) this.onReadState(rs.context, rs.index, rs.ok);
    this.raw.advance(rd, applied);
    if (applied > 0) this.afterApply();
  }

  private onSoftState(state: StateType, lead: NodeId): void {
    const wasLeader = this.isLeader;
    const leaderChanged = lead !== this.soft.lead;
    this.soft = { state, lead };
    if (wasLeader !== this.isLeader) this.acks.reset();
    if (leaderChanged || (wasLeader && state !== StateType.Leader)) {
      // A read awaiting confirmation was queued at the leader that is gone (this node, or the one a follower
      // forwarded it to): no answer will come. Failing now, retriably, lets the reader go to the next leader
      // instead of waiting out readTimeoutMs. Reads already confirmed only wait to be applied here: they stay.
      this.waits.failReads(
        err('LEADERSHIP_LOST', 'the leader changed before the read was confirmed', this.leaderDetails()),
      );
    }
    if (wasLeader && state !== StateType.Leader) {
      // Our proposals may still commit under the next leader: the outcome is unknown, the client retries
      // idempotently. Failing now (rather than at the timeout) is what makes failover fast.
      this.waits.failProposals(
        err('LEADERSHIP_LOST', 'leadership lost before the write was acknowledged', {
          unknownOutcome: true,
          ...this.leaderDetails(),
        }),
      );
      const c = this.change;
      this.change = null;
      c?.fail(err('LEADERSHIP_LOST', 'leadership lost during the membership change', { unknownOutcome: true }));
    }
    if (this.transfer?.observeLeader(lead)) this.transfer = null;
    this.deps.listener?.onRoleChange?.(state, lead, this.raw.term);
  }

  /** The core moved to a snapshot being installed; returns the applied index the state machine still reflects. */
  private restored(meta: SnapshotMeta): number {
    // The core takes a snapshot only past its commit index, which is at or past what was applied.
    assert(meta.index > this.applied, () => `replica: installing snapshot ${meta.index} at applied ${this.applied}`);
    const before = this.applied;
    this.applied = meta.index;
    this.identity.installed(meta);
    this.identity.configurationChanged();
    // Proposals the snapshot covers cannot learn their result here.
    this.waits.failProposalsUpTo(
      meta.index,
      err('LEADERSHIP_LOST', 'replaced by a snapshot before it applied here', { unknownOutcome: true }),
    );
    return before;
  }

  // ---------------------------------------------------------------- applying

  /**
   * Applies committed entries, in order; returns how many were applied: all of them, or the first ones when
   * the state machine ran short of file descriptors (applying is then held and resumed after a backoff), or
   * when it failed (its disk: full, an I/O error), which stops the replica in the fatal state it reports. A
   * restart replays the entry from the log.
   */
  private applyEntries(ents: Entry[]): number {
    const first = this.applied + 1;
    let next = first;
    let batch: Entry[] = [];
    const flush = (): boolean => {
      const b = batch;
      batch = [];
      return b.length === 0 || this.applyBatch(b);
    };
    for (const e of ents) {
      assert(e.index === next++, () => `applying ${e.index} after ${next - 2}`);
      if (e.type === EntryType.Normal && e.data.byteLength > 0) {
        batch.push(e);
        continue;
      }
      if (!flush()) return this.applied + 1 - first;
      if (e.type === EntryType.ConfChange) this.learnAddresses(e);
      this.waits.replaced(e);
      this.applied = e.index;
    }
    if (flush()) this.applyRetry.succeeded();
    return this.applied + 1 - first;
  }

  /**
   * Applies one batch of commands; false when it was cut short: the state machine failed (the replica is then
   * failed), or ran short of file descriptors after the entries it did apply (applying is held until a retry).
   */
  private applyBatch(b: Entry[]): boolean {
    let results: R[];
    let interrupted: Error | null = null;
    try {
      results = this.deps.stateMachine.apply(b);
    } catch (e) {
      if (e instanceof AssertionError) throw e;
      if (!(e instanceof ApplyInterrupted)) {
        this.die(e as Error);
        return false;
      }
      results = e.results as R[];
      interrupted = e.cause;
    }
    assert(
      interrupted === null ? results.length === b.length : results.length <= b.length,
      'state machine returned a result per entry it applied',
    );
    for (let i = 0; i < results.length; i++) {
      this.waits.applied(b[i]!, results[i]!);
      this.snapshots.countApplied(b[i]!.data.byteLength);
      this.applied = b[i]!.index;
    }
    if (interrupted === null) return true;
    this.raw.holdApply(true);
    this.shortOf(interrupted, this.applyRetry, 'applying committed entries', () => {
      this.raw.holdApply(false);
      this.schedule();
    });
    return false;
  }

  /**
   * Storage ran short of file descriptors (a connection flood, not a failing disk), or of space: `step` is
   * tried again after a backoff, or once the disk has room. Meanwhile its concern waits (the persist queue
   * stays busy, applying stays held).
   */
  private shortOf(e: Error, retry: ShortageRetry, what: string, step: () => void): void {
    const waitMs = retry.later(this.deps.clock.now(), step);
    if (isDiskFull(e)) return this.diskFilled(e, what);
    this.logger.warn(
      { error: e.message, retryInMs: waitMs },
      `storage is short of file descriptors: ${what} is retried (not a disk failure)`,
    );
  }

  /**
   * A write ran out of space before anything it covered was acknowledged (a failed sync never comes here:
   * env.ts, isDiskFull). The node stops taking part: a leader steps down (its proposals fail, outcome
   * unknown); no peer input is heard, so it neither votes nor acknowledges; no client operation is taken.
   * Reads of what it holds are still served. The free space is probed from tick() until there is headroom.
   */
  private diskFilled(e: Error, what: string): void {
    if (this.phase.name === 'disk-full') return;
    const reset = this.phase.name === 'resetting' ? this.phase.reset : null;
    const now = this.deps.clock.now();
    const status: DiskFullStatus = {
      freeBytes: null,
      path: this.deps.diskSpace?.path ?? '',
      headroomBytes: this.opts.diskFullHeadroomBytes,
      sinceMs: now,
      error: e.message,
    };
    this.enter({ name: 'disk-full', status, nextProbeMs: now + this.opts.diskFullProbeMs });
    status.freeBytes = freeBytesAt(this.deps.diskSpace, this.logger);
    const refused = this.refusal()!;
    reset?.fail(refused);
    this.failOperations(refused);
    if (this.isLeader) this.raw.stepDown();
    this.logger.warn(
      { error: e.message, freeBytes: status.freeBytes, path: status.path, headroomBytes: status.headroomBytes },
      `disk full: ${what} failed; this node stops voting and acknowledging until there is room again`,
    );
    this.deps.listener?.onDiskFull?.(true, { ...status });
    this.schedule();
  }

  /** Probes the disk that filled; with headroom the replica runs again (true) and the waiting steps retry. */
  private probeDiskSpace(now: number): boolean {
    if (this.phase.name !== 'disk-full') return true;
    const status = this.phase.status;
    this.phase.nextProbeMs = now + this.opts.diskFullProbeMs;
    status.freeBytes = freeBytesAt(this.deps.diskSpace, this.logger);
    if (status.freeBytes === null || status.freeBytes < status.headroomBytes) return false;
    this.enter({ name: 'running' });
    this.logger.info(
      { freeBytes: status.freeBytes, path: status.path, waitedMs: Math.round(now - status.sinceMs) },
      'disk has room again: the interrupted write is made again and this node rejoins as a follower',
    );
    this.deps.listener?.onDiskFull?.(false, { ...status });
    // The steps the full disk interrupted go first, at once (whatever their backoff said), in tick()'s order.
    const due = Number.POSITIVE_INFINITY;
    this.persist.retryIfDue(due);
    this.applyRetry.runIfDue(due);
    this.snapshots.retryIfDue(due);
    return true;
  }

  /** A configuration entry names the addresses of the peers it adds. */
  private learnAddresses(e: Entry): void {
    let cc: ReturnType<typeof decodeConfChange>;
    try {
      cc = decodeConfChange(e.data);
    } catch {
      return; // not a configuration change: the core ignores it too
    }
    for (const c of cc.changes) {
      // Kept until the configuration no longer names it: a voter being removed still votes in the old half.
      if (c.op === ConfChangeOp.Remove) continue;
      // The entry binds the peer to the storage it names ('' unbinds: a learner is bound when promoted).
      if (c.peer.address) this.peers.set(c.peer.id, c.peer.address, c.peer.storageId ?? '');
    }
  }

  private afterApply(): void {
    // The core applied configuration entries during advance(): prune addresses it no longer needs.
    const conf = this.raw.conf();
    this.peers.retain(confMembers(conf), this.applied);
    this.identity.configurationChanged();
    this.deps.listener?.onConfigurationApplied?.(this.applied, conf.voters, conf.learners);
    this.waits.releaseApplied(this.applied);
    this.advanceChange();
    this.maybeSnapshot();
  }

  private onReadState(ctx: Uint8Array, index: number, ok: boolean): void {
    const r = this.waits.takeRead(ctx, this.deps.clock.now());
    if (!r) return;
    if (!ok)
      return r.cb(
        err(
          'NOT_LEADER',
          'read index refused: no leader, or it has not committed in its term yet',
          this.leaderDetails(),
        ),
      );
    this.waitApplied(index, r.remainingMs, r.cb);
  }

  // ---------------------------------------------------------------- snapshots

  /** Takes a snapshot if one is due (not while reset-peers runs: it takes its own). */
  private maybeSnapshot(): void {
    if (!this.resetting) this.snapshots.maybeTake(this.applied);
  }

  /** Saves a snapshot at the applied index now (also the operator's `qjm snapshot`). */
  takeSnapshot(cb?: Callback<number>): void {
    if (this.stopped) return cb?.(this.stoppedError());
    this.snapshots.take(this.applied, cb);
  }

  // ---------------------------------------------------------------- membership, deadlines and failure

  private advanceChange(): void {
    const c = this.change;
    if (!c || !this.isLeader) return;
    c.advance({
      raw: this.raw,
      nowMs: this.deps.clock.now(),
      catchupMargin: this.opts.catchupMargin,
      addressOf: (id) => this.peers.addressOf(id),
      bindingOf: (id) => this.identity.bindingFor(id),
      refused: (res) => this.proposeError(res),
    });
    if (c.done) this.change = null;
    else this.schedule();
  }

  private advanceReset(): void {
    if (this.phase.name !== 'resetting') return;
    const moved = this.phase.reset.advance({
      raw: this.raw,
      idle: this.persist.idle && this.snapshots.idle,
      appliedIndex: this.appliedIndex,
      committingByFiat: (committed, last) => {
        this.logger.warn(
          { committed, lastIndex: last },
          'reset-peers: committing the whole log, entries past the commit index by fiat',
        );
        this.deps.listener?.onCommitByFiat?.(committed, last);
      },
      forced: (peers) => this.peers.reset(this.identity.forced(peers), this.applied),
      saveSnapshot: (cb) => this.takeSnapshot(cb),
    });
    if (moved) this.schedule();
  }

  private expireDeadlines(): void {
    const now = this.deps.clock.now();
    this.waits.expire(now, this.applied);
    if (this.transfer?.expire(now)) this.transfer = null;
  }

  /** Fails the membership change and the leadership transfer in progress, if any. */
  private failOperations(e: QjmError): void {
    const c = this.change;
    this.change = null;
    c?.fail(e);
    const t = this.transfer;
    this.transfer = null;
    t?.fail(e);
  }

  /** Enters a final phase and fails everything waiting, the reset in progress (if any) included. */
  private end(next: Extract<Phase, { name: 'stopped' | 'failed' }>): void {
    const reset = this.phase.name === 'resetting' ? this.phase.reset : null;
    this.enter(next);
    const e = this.stoppedError();
    this.waits.failAll(e);
    this.failOperations(e);
    reset?.fail(e);
  }

  private die(e: Error): void {
    if (this.stopped) return;
    this.logger.warn({ error: e.message }, 'fatal storage error: replica stopped');
    this.end({ name: 'failed', error: e });
    this.deps.listener?.onFatal?.(e);
  }

  private stoppedError(): QjmError {
    return this.phase.name === 'failed'
      ? err('STORAGE_FAILED', `this node's storage failed and it stopped serving: ${this.phase.error.message}`)
      : err('SHUTTING_DOWN', 'the node is shutting down');
  }

  leaderDetails(): { leaderId?: string; leaderAddress?: string } {
    const lead = this.soft.lead;
    if (lead === NONE) return {};
    const address = lead === this.id ? undefined : this.peers.addressOf(lead);
    return address === undefined ? { leaderId: lead } : { leaderId: lead, leaderAddress: address };
  }

  private proposeError(res: Extract<ProposeResult, { ok: false }>): QjmError {
    const details = this.leaderDetails();
    switch (res.error) {
      case 'not-leader':
        return err('NOT_LEADER', 'not the leader', details);
      case 'term-mismatch':
        return err('TERM_MISMATCH', res.detail ?? 'term changed', details);
      case 'transferring':
        return err('NOT_LEADER', res.detail ?? 'leadership is being transferred', {});
      case 'busy':
        return err('BUSY', res.detail ?? 'too much uncommitted data');
      case 'conf-change-pending':
        return err('CONF_CHANGE_IN_PROGRESS', res.detail ?? 'a configuration change is pending');
      case 'invalid-conf-change':
        return err('INVALID_CONF_CHANGE', res.detail ?? 'invalid configuration change');
    }
  }
}
