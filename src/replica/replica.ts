// The driver that runs the pure Raft core against a durable log, a state machine and a transport:
// for each Ready it persists (group commit, in order), sends, applies and advances. It also owns what
// clients wait on (proposals, ReadIndex reads, applied-index waits), snapshots, snapshot install,
// leadership transfer and membership changes. Environment-agnostic: see env.ts.

import { assert, AssertionError } from '../assert.js';
import { hex } from '../bytes.js';
import { captureState, checkInvariants } from '../raft/invariants.js';
import { QjmError } from '../errors.js';
import type { ErrorName } from '../errors.js';
import { decodeConfChange } from '../raft/confchange.js';
import { RawNode } from '../raft/raw-node.js';
import type { RaftStatus, Ready } from '../raft/raw-node.js';
import type { ProposeResult, RaftConfig, RaftLogger } from '../raft/raft.js';
import { silentLogger } from '../raft/raft.js';
import { ConfChangeOp, confMembers, EntryType, isJoint, MessageType, NONE, StateType } from '../raft/types.js';
import type { ConfChange, Entry, HardState, Message, NodeId, Peer, SnapshotMeta } from '../raft/types.js';
import type { ReplicaClock, ReplicaLog, ReplicaStateMachine, ReplicaTransport, StagedSnapshot } from './env.js';

export interface ReplicaOptions {
  tickMs: number;
  electionTicks: number;
  /** Randomization width of election timeouts, in ticks (default: electionTicks, the paper's [T, 2T)). */
  electionJitterTicks?: number;
  heartbeatTicks: number;
  maxEntriesPerAppend: number;
  maxAppendBytes: number;
  maxInflightMsgs: number;
  maxInflightBytes: number;
  maxUncommittedBytes: number;
  maxApplyBytes: number;
  maxApplyEntries: number;
  /** One write (and its one fsync) carries at most this many entry bytes / entries; more waits for the next. */
  maxWriteBatchBytes: number;
  maxWriteBatchEntries: number;
  /** Take a snapshot after this many applied entries, or bytes, or this much time with new entries; 0 = never. */
  snapshotEntries: number;
  snapshotLogBytes: number;
  snapshotIntervalMs: number;
  /** Entries kept in the log below a new snapshot, so a slightly lagging follower still gets appends. */
  keepEntriesAfterSnapshot: number;
  proposalTimeoutMs: number;
  readTimeoutMs: number;
  /** A learner must come within this many entries of the leader before it is made a voter. */
  catchupMargin: number;
  changePeersTimeoutMs: number;
  preVote: boolean;
  checkQuorum: boolean;
}

export const DEFAULT_REPLICA_OPTIONS: ReplicaOptions = {
  tickMs: 100,
  electionTicks: 10,
  heartbeatTicks: 1,
  maxEntriesPerAppend: 1024,
  maxAppendBytes: 8 << 20,
  maxInflightMsgs: 8,
  maxInflightBytes: 64 << 20,
  maxUncommittedBytes: 256 << 20,
  maxApplyBytes: 32 << 20,
  maxApplyEntries: 1024,
  maxWriteBatchBytes: 16 << 20,
  maxWriteBatchEntries: 4096,
  snapshotEntries: 0,
  snapshotLogBytes: 256 << 20,
  snapshotIntervalMs: 3_600_000,
  keepEntriesAfterSnapshot: 1000,
  proposalTimeoutMs: 10_000,
  readTimeoutMs: 10_000,
  catchupMargin: 1000,
  changePeersTimeoutMs: 60_000,
  preVote: true,
  checkQuorum: true,
};

export interface ProposalResult<R> {
  index: number;
  term: number;
  value: R;
}

export type Callback<T> = (err: QjmError | null, value?: T) => void;

export interface ReplicaListener {
  onRoleChange?(state: StateType, lead: NodeId, term: number): void;
  onConfigurationApplied?(index: number, voters: NodeId[], learners: NodeId[]): void;
  /** A storage or state machine failure: the replica has stopped and must not serve. */
  onFatal?(err: Error): void;
}

export interface ReplicaDeps<R> {
  log: ReplicaLog;
  stateMachine: ReplicaStateMachine<R>;
  transport: ReplicaTransport;
  clock: ReplicaClock;
  random: () => number;
  logger?: RaftLogger;
  listener?: ReplicaListener;
  /** Ack before persisting: a deliberate bug, only for proving the simulator's checkers can fail. */
  unsafeAckBeforePersist?: boolean;
  /** Run the core's invariant checks around every step (tests and simulation); a violation throws. */
  checkInvariants?: boolean;
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

interface PendingProposal<R> {
  term: number;
  deadlineMs: number;
  cb: Callback<ProposalResult<R>>;
}

interface AppliedWaiter {
  index: number;
  deadlineMs: number;
  cb: Callback<number>;
}

interface PendingChange {
  target: Peer[];
  deadlineMs: number;
  phase: 'catch-up' | 'joint';
  cb: Callback<void>;
}

function err(name: ErrorName, message: string, details: Record<string, unknown> = {}): QjmError {
  return new QjmError(name, message, details);
}

export class Replica<R> {
  readonly id: NodeId;
  private readonly raw: RawNode;
  private readonly opts: ReplicaOptions;
  private readonly deps: ReplicaDeps<R>;
  private readonly logger: RaftLogger;

  private readonly queue: PersistJob[] = [];
  private persisting = false;
  private lastDurableHard: HardState;

  private readonly proposals = new Map<number, PendingProposal<R>[]>();
  private proposalCount = 0;
  private readonly reads = new Map<string, { deadlineMs: number; cb: Callback<number> }>();
  private readSeq = 0;
  private readonly readSalt: number;
  private waiters: AppliedWaiter[] = [];

  private applied: number;
  /** The applied index before a snapshot install that is still putting its image in place. */
  private installingFrom: number | null = null;
  private lastSnapshotIndex: number;
  private lastSnapshotAtMs: number;
  private appliedBytesSinceSnapshot = 0;
  private snapshotting = false;
  private fetching = false;

  private readonly addresses = new Map<NodeId, string>();
  private change: PendingChange | null = null;
  private transfer: { to: NodeId; deadlineMs: number; cb: Callback<void> } | null = null;

  private scheduled = false;
  private stopped = false;
  private fatal: Error | null = null;
  private role: StateType = StateType.Follower;
  private lead: NodeId = NONE;

  constructor(id: NodeId, opts: ReplicaOptions, deps: ReplicaDeps<R>) {
    this.id = id;
    this.opts = opts;
    this.deps = deps;
    this.logger = deps.logger ?? silentLogger;
    const cfg: RaftConfig = {
      id,
      electionTicks: opts.electionTicks,
      ...(opts.electionJitterTicks !== undefined ? { electionJitterTicks: opts.electionJitterTicks } : {}),
      heartbeatTicks: opts.heartbeatTicks,
      maxEntriesPerAppend: opts.maxEntriesPerAppend,
      maxAppendBytes: opts.maxAppendBytes,
      maxInflightMsgs: opts.maxInflightMsgs,
      maxInflightBytes: opts.maxInflightBytes,
      maxUncommittedBytes: opts.maxUncommittedBytes,
      maxApplyBytes: opts.maxApplyBytes,
      maxApplyEntries: opts.maxApplyEntries,
      snapshotTimeoutTicks: opts.electionTicks * 30,
      preVote: opts.preVote,
      checkQuorum: opts.checkQuorum,
      random: deps.random,
      logger: this.logger,
    };
    const hs = deps.log.initialHardState();
    this.raw = new RawNode(cfg, deps.log, hs);
    this.lastDurableHard = { ...hs };
    const snap = deps.log.snapshotMeta();
    this.applied = snap.index;
    this.lastSnapshotIndex = snap.index;
    this.lastSnapshotAtMs = deps.clock.now();
    for (const p of snap.peers ?? []) this.addresses.set(p.id, p.address);
    this.readSalt = Math.floor(deps.random() * 0xffffffff) >>> 0;
  }

  /** Runs a step of the core; with checkInvariants on, checks the core's invariants across it. */
  private guard<T>(fn: () => T): T {
    if (!this.deps.checkInvariants) return fn();
    const before = captureState(this.raw.raft);
    const out = fn();
    const violations = checkInvariants(before, this.raw.raft);
    if (violations.length > 0) throw new AssertionError(`raft invariants violated on ${this.id}: ${violations.join('; ')}`);
    return out;
  }

  // ---------------------------------------------------------------- inputs

  /** Starts processing (the first Ready may hold commits from the restart hint). */
  start(): void {
    this.schedule();
  }

  tick(): void {
    if (this.stopped) return;
    this.guard(() => this.raw.tick());
    this.expireDeadlines();
    this.advanceChange();
    this.schedule();
  }

  receive(messages: readonly Message[]): void {
    if (this.stopped) return;
    for (const m of messages) this.guard(() => this.raw.step(m));
    this.schedule();
  }

  /** Proposes a command. cb gets the state machine's result once the entry is committed and applied here. */
  propose(data: Uint8Array, expectedTerm: number | undefined, cb: Callback<ProposalResult<R>>): void {
    if (this.stopped) return cb(this.stoppedError());
    if (data.byteLength === 0) return cb(err('INVALID_ARGUMENT', 'empty command'));
    const res = this.guard(() => this.raw.propose(data, expectedTerm));
    if (!res.ok) return cb(this.proposeError(res));
    this.track(res.index, res.term, cb);
    this.schedule();
  }

  /** Linearizable barrier: cb(index) once a read at this point may be served from the local state. */
  readIndex(cb: Callback<number>): void {
    if (this.stopped) return cb(this.stoppedError());
    const ctx = new Uint8Array(12);
    const dv = new DataView(ctx.buffer);
    dv.setUint32(0, this.readSalt);
    dv.setFloat64(4, ++this.readSeq);
    this.reads.set(hex(ctx), { deadlineMs: this.deps.clock.now() + this.opts.readTimeoutMs, cb });
    this.guard(() => this.raw.readIndex(ctx));
    this.schedule();
  }

  /** cb once the state machine has applied `index` (or timeout). */
  waitApplied(index: number, timeoutMs: number, cb: Callback<number>): void {
    if (this.stopped) return cb(this.stoppedError());
    if (this.applied >= index) return cb(null, this.applied);
    const w: AppliedWaiter = { index, deadlineMs: this.deps.clock.now() + timeoutMs, cb };
    // Keep waiters sorted by index so applying releases a prefix.
    let i = this.waiters.length;
    while (i > 0 && this.waiters[i - 1]!.index > index) i--;
    this.waiters.splice(i, 0, w);
  }

  transferLeader(to: NodeId, cb: Callback<void>): void {
    if (this.stopped) return cb(this.stoppedError());
    if (this.transfer) return cb(err('BUSY', `a transfer to ${this.transfer.to} is in progress`));
    const res = this.guard(() => this.raw.transferLeader(to));
    if (!res.ok) return cb(err(this.role === StateType.Leader ? 'INVALID_ARGUMENT' : 'NOT_LEADER', res.detail ?? 'transfer refused', this.leaderDetails()));
    if (to === this.id) return cb(null);
    this.transfer = { to, deadlineMs: this.deps.clock.now() + this.opts.electionTicks * this.opts.tickMs * 2, cb };
    this.schedule();
  }

  /**
   * Changes the voters to exactly `target` (braft change_peers): new peers first join as learners and catch
   * up to within catchupMargin entries, then one joint-consensus change swaps the voters.
   */
  changePeers(target: Peer[], cb: Callback<void>): void {
    if (this.stopped) return cb(this.stoppedError());
    if (this.role !== StateType.Leader) return cb(err('NOT_LEADER', 'not the leader', this.leaderDetails()));
    if (this.change) return cb(err('CONF_CHANGE_IN_PROGRESS', 'a membership change is already in progress'));
    if (target.length === 0) return cb(err('INVALID_CONF_CHANGE', 'the new configuration has no voters'));
    const ids = new Set(target.map((p) => p.id));
    if (ids.size !== target.length) return cb(err('INVALID_CONF_CHANGE', 'a peer is named twice'));
    this.change = { target, deadlineMs: this.deps.clock.now() + this.opts.changePeersTimeoutMs, phase: 'catch-up', cb };
    this.advanceChange();
    this.schedule();
  }

  /** The transport could not reach a peer: a pipelining follower goes back to probing. */
  reportUnreachable(id: NodeId): void {
    if (this.stopped) return;
    this.guard(() => this.raw.reportUnreachable(id));
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
      pendingProposals: this.proposalCount,
      pendingReads: this.reads.size,
      peers: [...this.addresses].map(([id, address]) => ({ id, address })),
      fatal: this.fatal ? this.fatal.message : null,
    };
  }

  /** The core, for status pages and the simulator's checkers; never step it from outside. */
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
    return this.raw.raft.term;
  }

  addressOf(id: NodeId): string | undefined {
    return this.addresses.get(id);
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
  }

  private handleReady(rd: Ready): void {
    if (rd.softState) this.onSoftState(rd.softState.state, rd.softState.lead);
    if (rd.snapshotToFetch) this.startFetch(rd.snapshotToFetch.from, rd.snapshotToFetch.meta);
    const hs = rd.hardState && (rd.hardState.term !== this.lastDurableHard.term || rd.hardState.vote !== this.lastDurableHard.vote) ? rd.hardState : null;
    if (hs || rd.entries.length > 0 || rd.persistedMessages.length > 0) {
      if (this.deps.unsafeAckBeforePersist) {
        this.deps.transport.send(rd.persistedMessages);
        this.queue.push({ kind: 'write', hardState: hs, entries: rd.entries, messages: [] });
      } else {
        this.queue.push({ kind: 'write', hardState: hs, entries: rd.entries, messages: rd.persistedMessages });
      }
      if (hs) this.lastDurableHard = { ...hs };
    }
    if (rd.messages.length > 0) this.deps.transport.send(rd.messages);
    if (rd.committedEntries.length > 0) this.applyEntries(rd.committedEntries);
    for (const rs of rd.readStates) this.onReadState(rs.context, rs.index, rs.ok);
    this.guard(() => this.raw.advance(rd));
    if (rd.committedEntries.length > 0) this.afterApply();
  }

  private onSoftState(state: StateType, lead: NodeId): void {
    const wasLeader = this.role === StateType.Leader;
    this.role = state;
    this.lead = lead;
    if (wasLeader && state !== StateType.Leader) {
      // Our proposals may still commit under the next leader: the outcome is unknown, the client retries
      // idempotently. Failing now (rather than at the timeout) is what makes failover fast.
      this.failProposals(err('LEADERSHIP_LOST', 'leadership lost before the write was acknowledged', { unknownOutcome: true, ...this.leaderDetails() }));
      if (this.change) {
        const c = this.change;
        this.change = null;
        c.cb(err('LEADERSHIP_LOST', 'leadership lost during the membership change', { unknownOutcome: true }));
      }
    }
    if (this.transfer && lead === this.transfer.to) {
      const t = this.transfer;
      this.transfer = null;
      t.cb(null);
    }
    this.deps.listener?.onRoleChange?.(state, lead, this.raw.raft.term);
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
    // Group commit: merge every queued write (up to the byte bound) into one write and one fsync.
    let hardState: HardState | null = null;
    let entries: Entry[] = [];
    const messages: Message[] = [];
    let bytes = 0;
    while (this.queue.length > 0 && this.queue[0]!.kind === 'write') {
      const job = this.queue[0] as WriteJob;
      let jobBytes = 0;
      for (const e of job.entries) jobBytes += e.data.byteLength;
      if (entries.length > 0 && (bytes + jobBytes > this.opts.maxWriteBatchBytes || entries.length + job.entries.length > this.opts.maxWriteBatchEntries)) break;
      this.queue.shift();
      if (job.hardState) hardState = job.hardState;
      if (job.entries.length > 0) {
        const first = job.entries[0]!.index;
        if (entries.length > 0 && first <= entries[entries.length - 1]!.index) {
          // A later Ready replaced a suffix: keep what precedes it.
          entries = entries.filter((e) => e.index < first);
        }
        for (const e of job.entries) entries.push(e);
      }
      for (const m of job.messages) messages.push(m);
      bytes += jobBytes;
    }
    if (hardState === null && entries.length === 0) {
      // Nothing new to make durable: every earlier write is already done, so the messages may go now.
      if (messages.length > 0) this.deps.transport.send(messages);
      this.kickPersist();
      return;
    }
    this.persisting = true;
    this.deps.log.write(hardState, entries, (e) => {
      this.persisting = false;
      if (this.stopped) return;
      if (e) return this.die(e);
      const last = entries[entries.length - 1];
      if (last) this.guard(() => this.raw.persisted(last.index, last.term));
      if (messages.length > 0) this.deps.transport.send(messages);
      this.schedule();
      this.kickPersist();
    });
  }

  private startFetch(from: NodeId, meta: SnapshotMeta): void {
    if (this.fetching) return;
    this.fetching = true;
    this.logger.info('fetching snapshot', { from, index: meta.index });
    this.deps.stateMachine.fetchSnapshot(from, meta, (e, staged) => {
      this.fetching = false;
      if (this.stopped) {
        if (staged) this.deps.stateMachine.discardSnapshot(staged);
        return;
      }
      if (e || !staged) {
        this.logger.warn('snapshot fetch failed', { from, index: meta.index, error: e?.message });
        this.guard(() => this.raw.snapshotFetched(meta, false));
        this.schedule();
        return;
      }
      this.queue.push({ kind: 'install', staged });
      this.kickPersist();
    });
  }

  private runInstall(staged: StagedSnapshot): void {
    const meta = staged.meta;
    if (!this.guard(() => this.raw.snapshotFetched(meta, true))) {
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
    this.guard(() => this.raw.restore(meta));
    this.installingFrom = this.applied;
    this.applied = meta.index;
    this.lastSnapshotIndex = meta.index;
    this.appliedBytesSinceSnapshot = 0;
    this.addresses.clear();
    for (const p of meta.peers ?? []) this.addresses.set(p.id, p.address);
    // Proposals the snapshot covers cannot learn their result here.
    for (const [index, list] of [...this.proposals]) {
      if (index > meta.index) continue;
      this.proposals.delete(index);
      this.proposalCount -= list.length;
      for (const p of list) p.cb(err('LEADERSHIP_LOST', 'replaced by a snapshot before it applied here', { unknownOutcome: true }));
    }
    this.schedule();
    // Durable order: the image first, then the log drops its old entries.
    this.deps.stateMachine.installSnapshot(staged, (e) => {
      if (this.stopped) return;
      if (e) return this.die(e);
      this.installingFrom = null;
      this.deps.log.commitReset(meta, (e2) => {
        this.persisting = false;
        if (this.stopped) return;
        if (e2) return this.die(e2);
        this.releaseWaiters();
        this.schedule();
        this.kickPersist();
      });
    });
  }

  // ---------------------------------------------------------------- applying

  private applyEntries(ents: Entry[]): void {
    let batch: Entry[] = [];
    const flush = () => {
      if (batch.length === 0) return;
      const results = this.deps.stateMachine.apply(batch);
      assert(results.length === batch.length, 'state machine returned a result per entry');
      for (let i = 0; i < batch.length; i++) this.resolve(batch[i]!, results[i]!);
      batch = [];
    };
    for (const e of ents) {
      assert(e.index === this.applied + 1, () => `applying ${e.index} after ${this.applied}`);
      if (e.type === EntryType.Normal && e.data.byteLength > 0) {
        batch.push(e);
        this.appliedBytesSinceSnapshot += e.data.byteLength;
      } else {
        flush();
        if (e.type === EntryType.ConfChange) this.applyConfEntry(e);
        this.resolveNonCommand(e);
      }
      this.applied = e.index;
    }
    flush();
  }

  private applyConfEntry(e: Entry): void {
    const cc: ConfChange = decodeConfChange(e.data);
    for (const c of cc.changes) {
      if (c.op === ConfChangeOp.Remove) continue; // kept until the configuration no longer names it
      if (c.peer.address) this.addresses.set(c.peer.id, c.peer.address);
    }
  }

  private afterApply(): void {
    // The core applied configuration entries during advance(): prune addresses it no longer needs.
    const conf = this.raw.raft.conf;
    const members = new Set(confMembers(conf));
    for (const id of [...this.addresses.keys()]) if (!members.has(id)) this.addresses.delete(id);
    this.deps.listener?.onConfigurationApplied?.(this.applied, [...conf.voters], [...conf.learners]);
    this.releaseWaiters();
    this.advanceChange();
    this.maybeSnapshot();
  }

  private resolve(e: Entry, value: R): void {
    const list = this.proposals.get(e.index);
    if (!list) return;
    this.proposals.delete(e.index);
    this.proposalCount -= list.length;
    for (const p of list) {
      if (p.term === e.term) p.cb(null, { index: e.index, term: e.term, value });
      else p.cb(err('DROPPED', `entry ${e.index} was replaced by a later leader: not applied`));
    }
  }

  private resolveNonCommand(e: Entry): void {
    const list = this.proposals.get(e.index);
    if (!list) return;
    this.proposals.delete(e.index);
    this.proposalCount -= list.length;
    for (const p of list) p.cb(err('DROPPED', `entry ${e.index} was replaced by a later leader: not applied`));
  }

  private track(index: number, term: number, cb: Callback<ProposalResult<R>>): void {
    const p: PendingProposal<R> = { term, deadlineMs: this.deps.clock.now() + this.opts.proposalTimeoutMs, cb };
    const list = this.proposals.get(index);
    if (list) list.push(p);
    else this.proposals.set(index, [p]);
    this.proposalCount++;
  }

  private releaseWaiters(): void {
    let n = 0;
    while (n < this.waiters.length && this.waiters[n]!.index <= this.applied) n++;
    if (n === 0) return;
    const ready = this.waiters.splice(0, n);
    for (const w of ready) w.cb(null, this.applied);
  }

  private onReadState(ctx: Uint8Array, index: number, ok: boolean): void {
    const key = hex(ctx);
    const r = this.reads.get(key);
    if (!r) return;
    this.reads.delete(key);
    if (!ok) return r.cb(err('NOT_LEADER', 'read index refused: no leader, or it has not committed in its term yet', this.leaderDetails()));
    this.waitApplied(index, Math.max(0, r.deadlineMs - this.deps.clock.now()), r.cb);
  }

  // ---------------------------------------------------------------- snapshots

  private maybeSnapshot(): void {
    if (this.snapshotting || this.applied <= this.lastSnapshotIndex) return;
    const o = this.opts;
    const now = this.deps.clock.now();
    const due =
      (o.snapshotEntries > 0 && this.applied - this.lastSnapshotIndex >= o.snapshotEntries) ||
      (o.snapshotLogBytes > 0 && this.appliedBytesSinceSnapshot >= o.snapshotLogBytes) ||
      (o.snapshotIntervalMs > 0 && now - this.lastSnapshotAtMs >= o.snapshotIntervalMs);
    if (due) this.takeSnapshot();
  }

  /** Saves a snapshot at the applied index now (also the operator's `qjm snapshot`). */
  takeSnapshot(cb?: Callback<number>): void {
    if (this.stopped) return cb?.(this.stoppedError());
    if (this.snapshotting) return cb?.(err('BUSY', 'a snapshot is already being saved'));
    if (this.applied <= this.lastSnapshotIndex) return cb?.(null, this.lastSnapshotIndex);
    const r = this.raw.raft;
    const index = this.applied;
    const term = r.log.term(index);
    assert(term !== undefined, 'term of the applied index is known');
    const meta: SnapshotMeta = {
      index,
      term,
      conf: { voters: [...r.conf.voters], votersOutgoing: [...r.conf.votersOutgoing], learners: [...r.conf.learners] },
      peers: [...this.addresses].map(([id, address]) => ({ id, address })),
    };
    this.snapshotting = true;
    this.appliedBytesSinceSnapshot = 0;
    this.lastSnapshotAtMs = this.deps.clock.now();
    this.deps.stateMachine.saveSnapshot(meta, (e) => {
      this.snapshotting = false;
      if (this.stopped) return;
      if (e) {
        this.die(e);
        return cb?.(err('INTERNAL', `snapshot failed: ${e.message}`));
      }
      if (meta.index > this.deps.log.snapshotMeta().index) {
        this.lastSnapshotIndex = meta.index;
        this.deps.log.snapshotSaved(meta, Math.max(0, meta.index - this.opts.keepEntriesAfterSnapshot));
      }
      this.logger.info('snapshot saved', { index: meta.index, term: meta.term });
      cb?.(null, meta.index);
    });
  }

  // ---------------------------------------------------------------- membership

  private advanceChange(): void {
    const c = this.change;
    if (!c || this.role !== StateType.Leader) return;
    const r = this.raw.raft;
    if (this.deps.clock.now() > c.deadlineMs) {
      this.change = null;
      return c.cb(err('TIMEOUT', `membership change did not finish within ${this.opts.changePeersTimeoutMs} ms`));
    }
    if (r.pendingConfIndex > r.log.applied) return; // the previous step is not applied yet
    const conf = r.conf;
    const target = new Set(c.target.map((p) => p.id));
    if (isJoint(conf)) return; // the core leaves the joint configuration by itself
    const voters = new Set(conf.voters);
    const same = voters.size === target.size && [...target].every((id) => voters.has(id));
    if (same) {
      this.change = null;
      return c.cb(null);
    }
    const newcomers = c.target.filter((p) => !voters.has(p.id));
    const notLearners = newcomers.filter((p) => !conf.learners.includes(p.id));
    if (c.phase === 'catch-up' && notLearners.length > 0) {
      const res = this.guard(() => this.raw.proposeConfChange({ changes: notLearners.map((peer) => ({ op: ConfChangeOp.AddLearner, peer })), leaveJoint: false }));
      if (!res.ok) {
        this.change = null;
        return c.cb(this.proposeError(res));
      }
      return;
    }
    if (c.phase === 'catch-up') {
      const last = r.log.lastIndex();
      const lagging = newcomers.filter((p) => (r.progress.get(p.id)?.match ?? 0) + this.opts.catchupMargin < last);
      if (lagging.length > 0) return; // still catching up
      c.phase = 'joint';
      const changes = [
        ...newcomers.map((peer) => ({ op: ConfChangeOp.AddVoter, peer })),
        ...conf.voters.filter((id) => !target.has(id)).map((id) => ({ op: ConfChangeOp.Remove, peer: { id, address: this.addresses.get(id) ?? '' } })),
      ];
      const res = this.guard(() => this.raw.proposeConfChange({ changes, leaveJoint: false }));
      if (!res.ok) {
        this.change = null;
        return c.cb(this.proposeError(res));
      }
      this.schedule();
    }
  }

  // ---------------------------------------------------------------- deadlines and failure

  private expireDeadlines(): void {
    const now = this.deps.clock.now();
    for (const [index, list] of this.proposals) {
      const keep = list.filter((p) => p.deadlineMs > now);
      if (keep.length === list.length) continue;
      for (const p of list) if (p.deadlineMs <= now) p.cb(err('TIMEOUT', `entry ${index} not applied within ${this.opts.proposalTimeoutMs} ms`, { unknownOutcome: true }));
      this.proposalCount -= list.length - keep.length;
      if (keep.length > 0) this.proposals.set(index, keep);
      else this.proposals.delete(index);
    }
    for (const [key, r] of this.reads) {
      if (r.deadlineMs > now) continue;
      this.reads.delete(key);
      r.cb(err('TIMEOUT', 'read index not confirmed in time'));
    }
    if (this.waiters.some((w) => w.deadlineMs <= now)) {
      const expired = this.waiters.filter((w) => w.deadlineMs <= now);
      this.waiters = this.waiters.filter((w) => w.deadlineMs > now);
      for (const w of expired) w.cb(err('TIMEOUT', `index ${w.index} not applied in time (applied ${this.applied})`));
    }
    if (this.transfer && this.transfer.deadlineMs <= now) {
      const t = this.transfer;
      this.transfer = null;
      t.cb(err('TIMEOUT', `leadership did not move to ${t.to} in time`));
    }
  }

  private failProposals(e: QjmError): void {
    const all = [...this.proposals.values()];
    this.proposals.clear();
    this.proposalCount = 0;
    for (const list of all) for (const p of list) p.cb(e);
  }

  private failAll(e: QjmError): void {
    this.failProposals(e);
    const reads = [...this.reads.values()];
    this.reads.clear();
    for (const r of reads) r.cb(e);
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.cb(e);
    if (this.change) {
      const c = this.change;
      this.change = null;
      c.cb(e);
    }
    if (this.transfer) {
      const t = this.transfer;
      this.transfer = null;
      t.cb(e);
    }
  }

  private die(e: Error): void {
    if (this.stopped) return;
    this.logger.warn('fatal storage error: replica stopped', { error: e.message });
    this.fatal = e;
    this.stopped = true;
    this.failAll(err('UNAVAILABLE', `replica stopped: ${e.message}`));
    this.deps.listener?.onFatal?.(e);
  }

  private stoppedError(): QjmError {
    return this.fatal ? err('UNAVAILABLE', `replica stopped: ${this.fatal.message}`) : err('SHUTTING_DOWN', 'the node is shutting down');
  }

  leaderDetails(): { leaderId?: string; leaderAddress?: string } {
    const lead = this.lead;
    if (lead === NONE) return {};
    const address = lead === this.id ? undefined : this.addresses.get(lead);
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
