// The driver that runs the pure Raft core against a durable log, a state machine and a transport: for each
// Ready it persists (group commit, in order), sends, applies and advances. Snapshots (taken, fetched and
// installed) live here because an install is a job of the persist queue. What clients wait on is in
// client-waits.ts, membership changes in membership.ts, leadership transfer in leader-transfer.ts, the
// majority-lost emergency in reset-peers.ts.
// Environment-agnostic: see env.ts.

import { assert, AssertionError } from '../assert.js';
import { bytesToHex } from '../raft/bytes.js';
import type { QjmError } from '../errors.js';
import { confChangeCodec, decodeConfChange } from '../transport/raft-codec.js';
import { RawNode } from '../raft/raw-node.js';
import type { RaftStatus, Ready } from '../raft/raw-node.js';
import type { ProposeResult, RaftConfig } from '../raft/raft.js';
import { silentLogger } from '../logger.js';
import type { Logger } from '../logger.js';
import { ConfChangeOp, confMembers, EntryType, MessageType, NONE, StateType } from '../raft/types.js';
import type { ConfChange, Entry, HardState, Message, NodeId, Peer, SnapshotMeta } from '../raft/types.js';
import { isStorageFailure } from './env.js';
import type { ReplicaClock, ReplicaLog, ReplicaStateMachine, ReplicaTransport, StagedSnapshot } from './env.js';
import { ApplyInterrupted, isResourceShortage } from './env.js';
import { SHORTAGE_FIRST_RETRY_MS, SHORTAGE_MAX_RETRY_MS, ShortageRetry } from './shortage-retry.js';
import { ClientWaits, qjmError as err } from './client-waits.js';
import type { Callback, ProposalResult } from './client-waits.js';
import { LeaderTransfer, transferTarget } from './leader-transfer.js';
import { MembershipChange } from './membership.js';
import type { ReplicaOptions } from './options.js';
import { PeerDirectory } from './peer-directory.js';
import { PeersReset, resetProblem } from './reset-peers.js';
import type { ResetResult } from './reset-peers.js';
import { IdentityGate } from './identity.js';
import type * as Id from './identity.js';

export type { Callback, ProposalResult } from './client-waits.js';
export type { ReplicaOptions } from './options.js';
export type { ResetResult } from './reset-peers.js';
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
}

export interface ReplicaStatus extends RaftStatus {
  snapshotIndex: number;
  snapshotTerm: number;
  persistQueueJobs: number;
  pendingProposals: number;
  pendingReads: number;
  peers: Peer[];
  fatal: string | null;
  identity: Id.IdentityStatus;
}

interface WriteJob {
  kind: 'write';
  hardState: HardState | null;
  entries: Entry[];
  messages: Message[];
}

interface InstallJob {
  kind: 'install';
  staged: StagedSnapshot;
}

type PersistJob = WriteJob | InstallJob;

export class Replica<R> {
  readonly id: NodeId;
  readonly peers: PeerDirectory;
  private readonly raw: RawNode;
  private readonly opts: ReplicaOptions;
  private readonly deps: ReplicaDeps<R>;
  private readonly logger: Logger;
  private readonly waits: ClientWaits<R>;
  private readonly identity: IdentityGate;

  private readonly queue: PersistJob[] = [];
  private persisting = false;
  /** The term and vote of the newest write queued (commit-only changes are not written for themselves). */
  private lastDurableHard: HardState;
  /** The hard state of the last write issued to the log. */
  private writtenHard: HardState;

  private readSeq = 0;
  private readonly readSalt: number;

  private applied: number;
  /** The applied index before a snapshot install that is still putting its image in place. */
  private installingFrom: number | null = null;
  private lastSnapshotIndex: number;
  private lastSnapshotAtMs: number;
  private appliedBytesSinceSnapshot = 0;
  private snapshotting = false;
  private fetching = false;

  private change: MembershipChange | null = null;
  private transfer: LeaderTransfer | null = null;
  /** While set, the node takes no peer input and no tick reaches the core. */
  private reset: PeersReset | null = null;

  private scheduled = false;
  private stopped = false;
  private fatal: Error | null = null;
  // Storage that ran short of file descriptors: the interrupted step of each concern, retried from tick().
  private readonly persistRetry = new ShortageRetry(SHORTAGE_FIRST_RETRY_MS, SHORTAGE_MAX_RETRY_MS);
  private readonly applyRetry = new ShortageRetry(SHORTAGE_FIRST_RETRY_MS, SHORTAGE_MAX_RETRY_MS);
  private readonly snapshotRetry = new ShortageRetry(SHORTAGE_FIRST_RETRY_MS, SHORTAGE_MAX_RETRY_MS);
  private role: StateType = StateType.Follower;
  private lead: NodeId = NONE;

  constructor(id: NodeId, opts: ReplicaOptions, deps: ReplicaDeps<R>) {
    this.id = id;
    this.opts = opts;
    this.deps = deps;
    this.logger = deps.logger ?? silentLogger;
    this.waits = new ClientWaits<R>(opts);
    const cfg: RaftConfig = {
      ...opts,
      id,
      snapshotTimeoutTicks: opts.electionTicks * 30,
      confChangeCodec,
      random: deps.random,
      logger: this.logger,
    };
    const hs = deps.log.initialHardState();
    this.raw = new RawNode(cfg, deps.log, hs, { checkInvariants: deps.checkInvariants === true });
    this.lastDurableHard = { ...hs };
    this.writtenHard = { ...hs };
    const snap = deps.log.snapshotMeta();
    this.applied = snap.index;
    this.lastSnapshotIndex = snap.index;
    this.lastSnapshotAtMs = deps.clock.now();
    this.peers = deps.peers ?? new PeerDirectory();
    this.peers.reset(snap.peers ?? [], snap.index);
    this.readSalt = Math.floor(deps.random() * 0xffffffff) >>> 0;
    this.identity = new IdentityGate(id, deps.identity ?? { storageId: '', clusterId: '' }, snap.generation ?? 0, {
      logger: this.logger,
      nowMs: deps.identity?.nowMs ?? (() => deps.clock.now()),
      onStandDown: () => this.stoodDown(),
      onFatal: (e) => this.die(e),
      context: () => ({ raw: this.raw, directory: this.peers, role: this.role }),
    });
    this.identity.configurationChanged();
  }

  // ---------------------------------------------------------------- inputs

  /** Starts processing (the first Ready may hold commits from the restart hint). */
  start(): void {
    this.schedule();
  }

  tick(): void {
    if (this.stopped) return;
    const now = this.deps.clock.now();
    this.persistRetry.runIfDue(now);
    this.applyRetry.runIfDue(now);
    this.snapshotRetry.runIfDue(now);
    if (this.stopped) return;
    // A follower that may not campaign (stood down, below its floor, bound elsewhere) counts the time but does
    // not campaign: the lease of the leader it last heard expires, so it can vote when that leader is gone.
    if (!this.reset) this.raw.tick(this.role === StateType.Leader || this.identity.mayCampaign());
    const out: Message[] = [];
    this.identity.tick(out);
    if (out.length > 0) this.deps.transport.send(out);
    this.expireDeadlines();
    this.advanceChange();
    this.schedule();
  }

  /**
   * Peer messages, with the envelope of the batch they came in when the transport has one: a batch the identity
   * rules refuse (another storage under a member's id, another generation) never reaches the core.
   */
  receive(messages: readonly Message[], envelope?: Id.BatchEnvelope): void {
    if (this.stopped || this.reset) return;
    if (envelope && !this.identity.admit(envelope).ok) return;
    const out: Message[] = [];
    for (const m of this.identity.inbound(messages, out)) this.raw.step(m);
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
    const res = this.raw.propose(data, expectedTerm);
    if (!res.ok) return cb(this.proposeError(res));
    this.waits.trackProposal(res.index, res.term, this.deps.clock.now(), cb);
    this.schedule();
  }

  /** Linearizable barrier: cb(index) once a read at this point may be served from the local state. */
  readIndex(cb: Callback<number>): void {
    const refused = this.refusal();
    if (refused) return cb(refused);
    const ctx = new Uint8Array(12);
    const dv = new DataView(ctx.buffer);
    dv.setUint32(0, this.readSalt);
    dv.setFloat64(4, ++this.readSeq);
    this.waits.addRead(bytesToHex(ctx), this.deps.clock.now(), cb);
    this.raw.readIndex(ctx);
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
    if (this.reset) return cb(err('BUSY', 'reset-peers is in progress'));
    if (this.transfer) return cb(err('BUSY', `a transfer to ${this.transfer.to} is in progress`));
    const res = this.raw.transferLeader(to);
    if (!res.ok)
      return cb(
        err(
          this.role === StateType.Leader ? 'INVALID_ARGUMENT' : 'NOT_LEADER',
          res.detail ?? 'transfer refused',
          this.leaderDetails(),
        ),
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
    if (this.reset) return cb(err('BUSY', 'reset-peers is in progress'));
    if (this.role !== StateType.Leader) return cb(err('NOT_LEADER', 'not the leader', this.leaderDetails()));
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
    if (this.reset) return cb(err('BUSY', 'reset-peers is in progress'));
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
    if (this.reset) return cb(err('BUSY', 'reset-peers is already in progress'));
    const problem = resetProblem(this.id, peers);
    if (problem) return cb(err('INVALID_CONF_CHANGE', problem));
    this.logger.warn({ peers }, 'reset-peers: forcing a new configuration on this node');
    this.failOperations(err('LEADERSHIP_LOST', 'reset-peers started', { unknownOutcome: true }));
    this.reset = new PeersReset(peers, (e, r) => {
      this.reset = null;
      if (!e) {
        this.logger.warn({ ...r }, 'reset-peers done: the new configuration is durable');
        this.raw.campaign();
        this.schedule();
      }
      cb(e, r);
    });
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
    if (this.stopped) return;
    this.stopped = true;
    this.failAll(this.stoppedError());
  }

  // ---------------------------------------------------------------- queries

  status(): ReplicaStatus {
    const s = this.raw.status();
    const snap = this.deps.log.snapshotMeta();
    return {
      ...s,
      appliedIndex: this.appliedIndex,
      snapshotIndex: snap.index,
      snapshotTerm: snap.term,
      persistQueueJobs: this.queue.length + (this.persisting ? 1 : 0),
      pendingProposals: this.waits.proposalCount,
      pendingReads: this.waits.readCount,
      peers: this.peers.list(),
      fatal: this.fatal ? this.fatal.message : null,
      identity: this.identity.status(),
    };
  }

  /** Why this node takes no client operation (it stood down, or its storage waits to be re-added), or null. */
  identityRefusal(): QjmError | null {
    return this.identity.refusal();
  }

  /** Why this node takes no client operation now (stopped, failed, or an identity refusal), or null. */
  private refusal(): QjmError | null {
    return this.stopped ? this.stoppedError() : this.identityRefusal();
  }

  /** The identity rules made this node stand down: it stops leading and fails everything that waits. */
  private stoodDown(): void {
    this.raw.stepDown();
    const e = this.identity.refusal();
    if (e) this.failAll(e);
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
    return this.installingFrom ?? this.applied;
  }

  get isLeader(): boolean {
    return this.role === StateType.Leader;
  }

  get leaderId(): NodeId {
    return this.lead;
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
    this.deps.transport.flush?.();
    this.kickPersist();
    this.advanceReset();
  }

  private handleReady(rd: Ready): void {
    if (rd.softState) this.onSoftState(rd.softState.state, rd.softState.lead);
    if (rd.snapshotToFetch) this.startFetch(rd.snapshotToFetch.from, rd.snapshotToFetch.meta);
    const hs =
      rd.hardState &&
      (rd.hardState.term !== this.lastDurableHard.term || rd.hardState.vote !== this.lastDurableHard.vote)
        ? rd.hardState
        : null;
    if (hs || rd.entries.length > 0 || rd.persistedMessages.length > 0) {
      let afterPersist = rd.persistedMessages;
      const early = this.deps.unsafeSendBeforePersist;
      if (early) {
        this.deps.transport.send(afterPersist.filter((m) => early.includes(m.type)));
        afterPersist = afterPersist.filter((m) => !early.includes(m.type));
      }
      this.queue.push({ kind: 'write', hardState: hs, entries: rd.entries, messages: afterPersist });
      if (hs) this.lastDurableHard = { ...hs };
    }
    if (rd.messages.length > 0) this.deps.transport.send(rd.messages);
    const applied = rd.committedEntries.length > 0 ? this.applyEntries(rd.committedEntries) : 0;
    if (this.stopped) return;
    for (const rs of rd.readStates) this.onReadState(rs.context, rs.index, rs.ok);
    this.raw.advance(rd, applied);
    if (applied > 0) this.afterApply();
  }

  private onSoftState(state: StateType, lead: NodeId): void {
    const wasLeader = this.role === StateType.Leader;
    this.role = state;
    this.lead = lead;
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

  // ---------------------------------------------------------------- persistence

  private kickPersist(): void {
    if (this.persisting || this.stopped || this.queue.length === 0) return;
    const head = this.queue[0]!;
    if (head.kind === 'install') {
      this.queue.shift();
      this.persisting = true;
      this.runInstall(head.staged);
      return;
    }
    const batch = this.takeWriteBatch();
    const { entries, messages } = batch;
    let hardState = batch.hardState;
    if (hardState !== null || entries[0]?.type === EntryType.ConfChange) {
      // The commit hint says entries up to it are committed: only ever as far as the log is durable and the
      // core's (a torn write must not leave a stale entry under it). A write that starts with a configuration
      // entry always carries it, so a restart knows the configuration entries before it are committed and
      // applies them before it may campaign (etcd #7625's apply-time invariants).
      const commit = Math.max(this.writtenHard.commit, Math.min(this.raw.committedIndex(), this.raw.stableIndex()));
      hardState = { ...(hardState ?? this.writtenHard), commit };
      this.writtenHard = hardState;
    }
    if (hardState === null && entries.length === 0) {
      // Nothing new to make durable: every earlier write is already done, so the messages may go now.
      if (messages.length > 0) this.deps.transport.send(messages);
      this.kickPersist();
      return;
    }
    this.persisting = true;
    this.writeLog(hardState, entries, messages);
  }

  /** One log write; the messages that waited for it leave once it is durable. */
  private writeLog(hardState: HardState | null, entries: Entry[], messages: Message[]): void {
    this.deps.log.write(hardState, entries, (e) => {
      if (this.stopped) {
        this.persisting = false;
        return;
      }
      if (e && isResourceShortage(e))
        return this.shortOf(e, this.persistRetry, 'a log write', () => this.writeLog(hardState, entries, messages));
      this.persisting = false;
      if (e) return this.die(e);
      this.persistRetry.succeeded();
      const last = entries[entries.length - 1];
      if (last) this.raw.persisted(last.index, last.term);
      if (messages.length > 0) this.deps.transport.send(messages);
      this.schedule();
      this.kickPersist();
    });
  }

  /**
   * Storage ran short of file descriptors (a connection flood, not a failing disk): `step` is tried again
   * after a backoff. Meanwhile its concern waits (the persist queue stays busy, applying stays held).
   */
  private shortOf(e: Error, retry: ShortageRetry, what: string, step: () => void): void {
    const waitMs = retry.later(this.deps.clock.now(), step);
    this.logger.warn(
      { error: e.message, retryInMs: waitMs },
      `storage is short of file descriptors: ${what} is retried (not a disk failure)`,
    );
  }

  /** Group commit: every queued write (up to the batch bounds) merged into one write and one fsync. */
  private takeWriteBatch(): { hardState: HardState | null; entries: Entry[]; messages: Message[] } {
    let hardState: HardState | null = null;
    let entries: Entry[] = [];
    const messages: Message[] = [];
    let bytes = 0;
    while (this.queue.length > 0 && this.queue[0]!.kind === 'write') {
      const job = this.queue[0] as WriteJob;
      let jobBytes = 0;
      for (const e of job.entries) jobBytes += e.data.byteLength;
      if (
        entries.length > 0 &&
        (bytes + jobBytes > this.opts.maxAppendBufferBytes ||
          entries.length + job.entries.length > this.opts.leaderBatch)
      )
        break;
      const first = job.entries[0]?.index;
      // A later Ready replaced a suffix: keep what precedes it.
      const kept =
        first !== undefined && entries.length > 0 && first <= entries[entries.length - 1]!.index
          ? entries.filter((e) => e.index < first)
          : entries;
      // A configuration entry starts a write of its own, which then carries the commit hint (kickPersist).
      const cut = job.entries.findIndex((e, i) => e.type === EntryType.ConfChange && kept.length + i > 0);
      if (cut === 0) break;
      entries = kept;
      if (job.hardState) hardState = job.hardState;
      if (cut > 0) {
        // The rest of the job, with the messages that wait for all of it, is the next write.
        for (const e of job.entries.slice(0, cut)) entries.push(e);
        job.entries = job.entries.slice(cut);
        job.hardState = null;
        break;
      }
      this.queue.shift();
      for (const e of job.entries) entries.push(e);
      for (const m of job.messages) messages.push(m);
      bytes += jobBytes;
    }
    return { hardState, entries, messages };
  }

  private startFetch(from: NodeId, meta: SnapshotMeta): void {
    if (this.fetching) return;
    this.fetching = true;
    this.logger.info({ from, index: meta.index }, 'fetching snapshot');
    this.deps.stateMachine.fetchSnapshot(from, meta, (e, staged) => {
      this.fetching = false;
      if (this.stopped) {
        if (staged) this.deps.stateMachine.discardSnapshot(staged);
        return;
      }
      if (e && isStorageFailure(e)) return this.die(e);
      if (e || !staged) {
        this.logger.warn({ from, index: meta.index, error: e?.message }, 'snapshot fetch failed');
        this.raw.snapshotFetched(meta, false);
        this.schedule();
        return;
      }
      this.queue.push({ kind: 'install', staged });
      this.kickPersist();
    });
  }

  private runInstall(staged: StagedSnapshot): void {
    const meta = staged.meta;
    if (!this.raw.snapshotFetched(meta, true)) {
      this.deps.stateMachine.discardSnapshot(staged);
      this.persisting = false;
      this.schedule();
      this.kickPersist();
      return;
    }
    // Writes queued behind the install were cut from the old log, which the snapshot replaces: drop their
    // entries and the acknowledgements that depended on them (their hard state still matters).
    for (const job of this.queue) {
      if (job.kind !== 'write') continue;
      job.entries = [];
      job.messages = job.messages.filter((m) => m.type !== MessageType.AppResp);
    }
    // From here the core and the log view start after the snapshot; no entry is applied until the image is
    // installed, because nothing after meta.index is durable before this job completes.
    this.deps.log.beginReset(meta);
    this.raw.restore(meta);
    this.installingFrom = this.applied;
    this.applied = meta.index;
    this.lastSnapshotIndex = meta.index;
    this.appliedBytesSinceSnapshot = 0;
    this.peers.reset(meta.peers ?? [], meta.index);
    this.identity.installed(meta);
    this.identity.configurationChanged();
    // Proposals the snapshot covers cannot learn their result here.
    this.waits.failProposalsUpTo(
      meta.index,
      err('LEADERSHIP_LOST', 'replaced by a snapshot before it applied here', { unknownOutcome: true }),
    );
    this.schedule();
    this.installImage(staged);
  }

  /** Durable order: the image first, then the log drops its old entries (each retried after a shortage). */
  private installImage(staged: StagedSnapshot): void {
    this.deps.stateMachine.installSnapshot(staged, (e) => {
      if (this.stopped) return;
      if (e && isResourceShortage(e))
        return this.shortOf(e, this.persistRetry, 'a snapshot install', () => this.installImage(staged));
      if (e) return this.die(e);
      this.installingFrom = null;
      this.dropOldLog(staged.meta);
    });
  }

  private dropOldLog(meta: SnapshotMeta): void {
    this.deps.log.commitReset(meta, (e) => {
      if (!this.stopped && e && isResourceShortage(e))
        return this.shortOf(e, this.persistRetry, 'dropping the log a snapshot replaced', () => this.dropOldLog(meta));
      this.persisting = false;
      if (this.stopped) return;
      if (e) return this.die(e);
      this.persistRetry.succeeded();
      this.waits.releaseApplied(this.applied);
      this.schedule();
      this.kickPersist();
    });
  }

  // ---------------------------------------------------------------- applying

  /**
   * Applies committed entries, in order; returns how many were applied: all of them, or the first ones when
   * the state machine ran short of file descriptors (applying is then held and resumed after a backoff), or
   * when it failed (its disk: full, an I/O error), which stops the replica in the fatal state it reports.
   */
  private applyEntries(ents: Entry[]): number {
    const first = this.applied + 1;
    let next = first;
    let batch: Entry[] = [];
    const flush = (): boolean => {
      if (batch.length === 0) return true;
      const b = batch;
      batch = [];
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
      assert(results.length <= b.length, 'state machine returned a result per entry');
      for (let i = 0; i < results.length; i++) {
        this.waits.applied(b[i]!, results[i]!);
        this.appliedBytesSinceSnapshot += b[i]!.data.byteLength;
        this.applied = b[i]!.index;
      }
      if (interrupted === null) return true;
      this.raw.holdApply(true);
      this.shortOf(interrupted, this.applyRetry, 'applying committed entries', () => {
        this.raw.holdApply(false);
        this.schedule();
      });
      return false;
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
    const r = this.waits.takeRead(bytesToHex(ctx), this.deps.clock.now());
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

  private maybeSnapshot(): void {
    if (this.snapshotting || this.snapshotRetry.waiting || this.reset || this.applied <= this.lastSnapshotIndex) return;
    const o = this.opts;
    const now = this.deps.clock.now();
    const due =
      (o.snapshotEntries > 0 && this.applied - this.lastSnapshotIndex >= o.snapshotEntries) ||
      (o.snapshotLogBytes > 0 && this.appliedBytesSinceSnapshot >= o.snapshotLogBytes) ||
      (o.snapshotIntervalS > 0 && now - this.lastSnapshotAtMs >= o.snapshotIntervalS * 1000);
    if (due) this.takeSnapshot();
  }

  /** Saves a snapshot at the applied index now (also the operator's `qjm snapshot`). */
  takeSnapshot(cb?: Callback<number>): void {
    if (this.stopped) return cb?.(this.stoppedError());
    if (this.snapshotting) return cb?.(err('BUSY', 'a snapshot is already being saved'));
    if (this.applied <= this.lastSnapshotIndex) return cb?.(null, this.lastSnapshotIndex);
    const index = this.applied;
    const term = this.raw.termAt(index);
    assert(term !== undefined, 'term of the applied index is known');
    const meta: SnapshotMeta = {
      index,
      term,
      conf: this.raw.conf(),
      peers: this.peers.list(),
      generation: this.identity.generation,
    };
    this.snapshotting = true;
    this.appliedBytesSinceSnapshot = 0;
    this.lastSnapshotAtMs = this.deps.clock.now();
    const bytesBefore = this.appliedBytesSinceSnapshot;
    this.deps.stateMachine.saveSnapshot(meta, (e) => {
      this.snapshotting = false;
      if (this.stopped) return;
      if (e && isResourceShortage(e)) {
        // Not a disk failure: the next snapshot is tried after a backoff, counting what this one would have.
        this.appliedBytesSinceSnapshot += bytesBefore;
        this.shortOf(e, this.snapshotRetry, 'a snapshot', () => this.maybeSnapshot());
        return cb?.(err('BUSY', `snapshot not taken, retried later: ${e.message}`));
      }
      if (e) {
        this.die(e);
        return cb?.(err('INTERNAL', `snapshot failed: ${e.message}`));
      }
      this.snapshotRetry.succeeded();
      if (meta.index > this.deps.log.snapshotMeta().index) {
        this.lastSnapshotIndex = meta.index;
        this.deps.log.snapshotSaved(meta, Math.max(0, meta.index - this.opts.keepEntriesAfterSnapshot));
      }
      this.logger.info({ index: meta.index, term: meta.term }, 'snapshot saved');
      cb?.(null, meta.index);
      this.schedule();
    });
  }

  // ---------------------------------------------------------------- membership, deadlines and failure

  private advanceChange(): void {
    const c = this.change;
    if (!c || this.role !== StateType.Leader) return;
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
    const r = this.reset;
    if (!r || this.stopped) return;
    const moved = r.advance({
      raw: this.raw,
      idle:
        this.queue.length === 0 &&
        !this.persisting &&
        !this.fetching &&
        !this.snapshotting &&
        this.installingFrom === null,
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

  private failAll(e: QjmError): void {
    this.waits.failAll(e);
    this.failOperations(e);
    const r = this.reset;
    this.reset = null;
    r?.fail(e);
  }

  private die(e: Error): void {
    if (this.stopped) return;
    this.logger.warn({ error: e.message }, 'fatal storage error: replica stopped');
    this.fatal = e;
    this.stopped = true;
    this.failAll(this.stoppedError());
    this.deps.listener?.onFatal?.(e);
  }

  private stoppedError(): QjmError {
    return this.fatal
      ? err('STORAGE_FAILED', `this node's storage failed and it stopped serving: ${this.fatal.message}`)
      : err('SHUTTING_DOWN', 'the node is shutting down');
  }

  leaderDetails(): { leaderId?: string; leaderAddress?: string } {
    const lead = this.lead;
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
