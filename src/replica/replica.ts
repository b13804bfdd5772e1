// The driver that runs the pure Raft core against a durable log, a state machine and a transport: for each
// Ready it queues the writes (persist-queue.ts: group commit, in order), sends, applies and advances.
// Snapshots (taken, fetched, installed as a persist job) are in snapshots.ts, what clients wait on in
// client-waits.ts, membership changes in membership.ts, leadership transfer in leader-transfer.ts, the
// majority-lost emergency in reset-peers.ts. Environment-agnostic: see env.ts.

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
import type { ReplicaClock, ReplicaLog, ReplicaStateMachine, ReplicaTransport } from './env.js';
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
import { SyncHealth } from './sync-health.js';
import { AckLatency } from './ack-latency.js';
import type { LatencySummary } from './latency-window.js';

export type { Callback, ProposalResult } from './client-waits.js';
export type { ReplicaOptions } from './options.js';
export type { ResetResult } from './reset-peers.js';
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
}

/**
 * Where the replica is in its life. Every input looks at it; only enter() changes it: running and resetting
 * (reset-peers: no peer input, no tick reaches the core) alternate; stopped (stop) and failed (its storage or
 * state machine failed) are final.
 */
type Phase =
  | { name: 'running' }
  | { name: 'resetting'; reset: PeersReset }
  | { name: 'stopped' }
  | { name: 'failed'; error: Error };

const NEXT_PHASES: Readonly<Record<Phase['name'], readonly Phase['name'][]>> = {
  running: ['resetting', 'stopped', 'failed'],
  resetting: ['running', 'stopped', 'failed'],
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
    this.persist = new PersistQueue(
      {
        log: deps.log,
        send: (messages) => deps.transport.send(messages),
        commitHint: () => Math.min(this.raw.committedIndex(), this.raw.stableIndex()),
        persisted: (last) => this.raw.persisted(last.index, last.term),
        schedule,
        install: (staged, done) => this.snapshots.install(staged, done),
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
        schedule,
        failed,
        stopped,
      },
      options,
    );
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
    if (!this.resetting) this.raw.tick();
    this.expireDeadlines();
    this.handOverIfStalled();
    this.advanceChange();
    this.schedule();
  }

  receive(messages: readonly Message[]): void {
    if (this.phase.name !== 'running') return;
    if (this.persist.full) {
      // The disk stalled: what these messages would make this node write has nowhere to go. Raft resends.
      this.logger.debug({ jobs: this.persist.length, dropped: messages.length }, 'persist queue full: input dropped');
      return;
    }
    const now = this.deps.clock.now();
    for (const m of messages) {
      if (this.isLeader) this.acks.received(m, now);
      this.raw.step(m);
    }
    this.schedule();
  }

  /** Proposes a command. cb gets the state machine's result once the entry is committed and applied here. */
  propose(data: Uint8Array, expectedTerm: number | undefined, cb: Callback<ProposalResult<R>>): void {
    if (this.stopped) return cb(this.stoppedError());
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
    if (this.stopped) return cb(this.stoppedError());
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
    if (this.stopped) return cb(this.stoppedError());
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
    if (this.stopped) return cb(this.stoppedError());
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
    if (this.stopped) return cb(this.stoppedError());
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
    if (this.stopped) return cb(this.stoppedError());
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
      appliedIndex: this.appliedIndex,
      snapshotIndex: snap.index,
      snapshotTerm: snap.term,
      persistQueueJobs: this.persist.length,
      pendingProposals: this.waits.proposalCount,
      pendingReads: this.waits.readCount,
      peers: this.peers.list(),
      fatal: this.phase.name === 'failed' ? this.phase.error.message : null,
    };
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

  private processReady(): void {
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
    if (rd.committedEntries.length > 0 && !this.applyEntries(rd.committedEntries)) return;
    for (const rs of rd.readStates) this.onReadState(rs.context, rs.index, rs.ok);
    this.raw.advance(rd);
    if (rd.committedEntries.length > 0) this.afterApply();
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
    // Proposals the snapshot covers cannot learn their result here.
    this.waits.failProposalsUpTo(
      meta.index,
      err('LEADERSHIP_LOST', 'replaced by a snapshot before it applied here', { unknownOutcome: true }),
    );
    return before;
  }

  // ---------------------------------------------------------------- applying

  /**
   * Applies committed entries; false when the state machine failed (its disk: full, an I/O error), which
   * stops the replica in the fatal state it reports. A restart replays the entry from the log.
   */
  private applyEntries(ents: Entry[]): boolean {
    let batch: Entry[] = [];
    const flush = () => {
      if (batch.length === 0) return;
      let results: R[];
      try {
        results = this.deps.stateMachine.apply(batch);
      } catch (e) {
        if (e instanceof AssertionError) throw e;
        this.die(e as Error);
        return;
      }
      assert(results.length === batch.length, 'state machine returned a result per entry');
      for (let i = 0; i < batch.length; i++) this.waits.applied(batch[i]!, results[i]!);
      batch = [];
    };
    for (const e of ents) {
      assert(e.index === this.applied + 1, () => `applying ${e.index} after ${this.applied}`);
      if (e.type === EntryType.Normal && e.data.byteLength > 0) {
        batch.push(e);
        this.snapshots.countApplied(e.data.byteLength);
      } else {
        flush();
        if (e.type === EntryType.ConfChange) this.learnAddresses(e);
        this.waits.replaced(e);
      }
      if (this.stopped) return false;
      this.applied = e.index;
    }
    flush();
    return !this.stopped;
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
      if (c.op === ConfChangeOp.Remove) continue; // kept until the configuration no longer names it
      if (c.peer.address) this.peers.set(c.peer.id, c.peer.address);
    }
  }

  private afterApply(): void {
    // The core applied configuration entries during advance(): prune addresses it no longer needs.
    const conf = this.raw.conf();
    this.peers.retain(confMembers(conf), this.applied);
    this.deps.listener?.onConfigurationApplied?.(this.applied, conf.voters, conf.learners);
    this.waits.releaseApplied(this.applied);
    this.advanceChange();
    if (!this.resetting) this.snapshots.maybeTake(this.applied);
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
      forced: (peers) => this.peers.reset(peers, this.applied),
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
