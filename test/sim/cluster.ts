// A seeded, deterministic simulation of a Raft cluster: the real core and the real Replica driver, over a
// simulated network (loss, duplication, reordering, delay, partitions of every shape) and simulated disks
// (latency, slow disks, crashes that lose unsynced writes and may tear the last one, crashes right after a
// node sends), with an operator changing the membership, moving leadership and resetting peers (operator.ts).
// One PRNG drives it all: the same seed replays the same run.

import { Prng } from '../../src/prng.js';
import { Replica } from '../../src/replica/replica.js';
import type { ReplicaOptions } from '../../src/replica/replica.js';
import { DEFAULT_REPLICA_OPTIONS } from '../../src/replica/replica.js';
import { decodeConfChange } from '../../src/transport/raft-codec.js';
import { ConfChangeOp, confMembers, emptyConf, EntryType, MessageType, StateType } from '../../src/raft/types.js';
import type { ConfState, Message, NodeId, SnapshotMeta } from '../../src/raft/types.js';
import type { FetchSource } from '../../journalnode/state/snapshot-fetch.js';
import { Checker } from './checker.js';
import type { DurableState } from './checker.js';
import { EventQueue } from './event-queue.js';
import { CALM_NET, describeMix } from './mixes.js';
import type { FaultMix } from './mixes.js';
import { SimOperator } from './operator.js';
import { manifestOf, SimDisk, SimLog, SimStateMachine } from './sim-env.js';
import type { SimHost, SimManifest, SnapshotNet } from './sim-env.js';
import type { FileLayout } from './sim-files.js';

export { MIXES, mixFor } from './mixes.js';
export type { FaultMix } from './mixes.js';

/** Breaks the implementation the way the Raft model forbids (outside-model.test.ts). */
export type OutsideModelBug = 'forget-vote' | 'ack-before-persist' | 'vote-before-persist';

export interface SimOptions {
  seed: number;
  nodes: number;
  mix: FaultMix;
  /** Length of the fault phase (simulated ms). */
  faultMs: number;
  /** After healing: a leader is elected and a proposal commits within this many simulated ms. */
  livenessMs: number;
  /** Then, with clients stopped, every member converges to the same applied index within this long (polled). */
  settleMs: number;
  trace?: (line: string) => void;
  traceMessages?: boolean;
  bug?: OutsideModelBug;
  /** Replica options to use instead of the ones drawn from the seed (scenarios). */
  replica?: Partial<ReplicaOptions>;
  /**
   * 'all' (default) or 'outcomes': without the checks read off durable state (vote and commit quorums), so
   * a measurement shows what the faults alone turn into (lost writes, two leaders, diverging states).
   */
  checks?: 'all' | 'outcomes';
}

export interface SimResult {
  seed: number;
  mix: string;
  nodes: number;
  violations: string[];
  /** The faults this run had on (a swarm mix is drawn per seed). */
  mixDescription: string;
  stats: {
    simMs: number;
    events: number;
    acked: number;
    maxIndex: number;
    elections: number;
    crashes: number;
    installs: number;
    reads: number;
    changes: number;
    transfers: number;
    resets: number;
    jointCommits: number;
    promotions: number;
    lostAckedByReset: number;
    livenessMs: number;
  };
}

export const TICK_MS = 10;

/** Traced even without --trace-messages: what a reader needs to follow elections. */
const ELECTION_MESSAGES = new Set([
  MessageType.PreVote,
  MessageType.PreVoteResp,
  MessageType.Vote,
  MessageType.VoteResp,
  MessageType.TimeoutNow,
]);

export class SimNode {
  incarnation = 0;
  alive = false;
  /** Gone for good (removed and stopped, or lost with a majority): never restarts, no longer checked. */
  destroyed = false;
  replica: Replica<number> | null = null;
  log: SimLog | null = null;
  stateMachine: SimStateMachine | null = null;
  slowDisk = false;
  /** When it first acknowledged an append or a snapshot (a learner may be promoted only after). */
  ackedAt: number | null = null;

  constructor(
    readonly id: NodeId,
    readonly disk: SimDisk,
  ) {}

  get exists(): boolean {
    return !this.destroyed;
  }
}

interface PendingOp {
  deadline: number;
}

/** What the per-step observer remembers of a node that is campaigning or leading. */
interface Watch {
  incarnation: number;
  term: number;
  state: StateType;
  commit: number;
  conf: ConfState;
}

export class SimCluster {
  readonly q = new EventQueue();
  readonly rng: Prng;
  readonly checker: Checker;
  readonly nodes = new Map<NodeId, SimNode>();
  readonly opts: SimOptions;
  readonly replicaOpts: ReplicaOptions;
  readonly layout: FileLayout;
  readonly initialSize: number;
  private readonly blocked = new Set<string>();
  private net = { ...CALM_NET };
  private events = 0;
  private clientsOn = true;
  readonly stats = { elections: 0, crashes: 0, installs: 0, reads: 0, acked: 0, changes: 0, transfers: 0, resets: 0 };
  private probe: { since: number; done: number | null } | null = null;
  private readonly watches = new Map<NodeId, Watch>();
  private readonly seenConfEntries = new Set<string>();
  private nextId: number;
  private lastSendCrashAt = -Infinity;
  private settledAfterMs = 0;
  readonly operator: SimOperator;

  constructor(opts: SimOptions) {
    this.opts = opts;
    this.rng = new Prng(opts.seed);
    this.checker = new Checker(() => this.q.now);
    this.initialSize = opts.nodes;
    const ids = Array.from({ length: opts.nodes }, (_, i) => `n${i + 1}`);
    this.nextId = opts.nodes + 1;
    this.replicaOpts = {
      ...DEFAULT_REPLICA_OPTIONS,
      tickMs: TICK_MS,
      electionTicks: 10,
      heartbeatTicks: 1,
      maxEntriesPerAppend: this.rng.pick([4, 16, 64]),
      maxAppendBodyBytes: 4096,
      maxInflightAppends: this.rng.pick([1, 2, 4, 8]),
      maxInflightBytes: 64 << 10,
      maxUncommittedBytes: 32 << 10,
      maxAppendBufferBytes: this.rng.pick([256, 4096, 1 << 20]),
      snapshotEntries: this.rng.int(15, 80),
      snapshotLogBytes: 0,
      snapshotIntervalS: 0,
      keepEntriesAfterSnapshot: this.rng.int(0, 20),
      proposalTimeoutMs: 1000,
      readTimeoutMs: 1000,
      catchupMargin: this.rng.pick([0, 5, 50, 1000]),
      changePeersTimeoutMs: 3000,
      ...opts.replica,
    };
    this.layout = { segmentTxns: this.rng.int(4, 40), keepSegments: this.rng.int(1, 5) };
    this.snapshotNet.maxChunkBytes = this.rng.pick([16, 64, 256, 4096]);
    const conf = { voters: [...ids], votersOutgoing: [], learners: [] };
    const bootstrap: SnapshotMeta = {
      index: 1,
      term: 1,
      conf,
      peers: ids.map((id) => ({ id, address: `sim://${id}` })),
    };
    for (const id of ids) this.nodes.set(id, new SimNode(id, new SimDisk(conf, bootstrap)));
    this.operator = new SimOperator(this, new Prng(opts.seed * 7 + 13));
  }

  trace(line: string): void {
    this.opts.trace?.(`${this.q.now.toFixed(2).padStart(9)}ms ${line}`);
  }

  get inFaultPhase(): boolean {
    return this.q.now < this.opts.faultMs;
  }

  /** Nodes that exist (up or crashed, not destroyed). */
  get ids(): NodeId[] {
    return [...this.nodes.values()].filter((n) => n.exists).map((n) => n.id);
  }

  // ---------------------------------------------------------------- nodes

  private hostFor(node: SimNode): SimHost {
    const inc = node.incarnation;
    const alive = () => node.alive && node.incarnation === inc;
    return {
      now: () => this.q.now,
      schedule: (d, fn) =>
        this.q.schedule(d, () => {
          if (alive()) fn();
        }),
      rng: this.rng,
      alive,
    };
  }

  boot(node: SimNode): void {
    if (node.destroyed) return;
    node.incarnation++;
    node.alive = true;
    node.disk.recover();
    const host = this.hostFor(node);
    const nodeRng = new Prng(this.opts.seed * 1000003 + node.incarnation * 101 + Number(node.id.slice(1)));
    const log = new SimLog(node.disk, host, this.opts.bug === 'forget-vote');
    const stateMachine = new SimStateMachine(node.id, node.disk, host, this.checker, this.layout, this.snapshotNet);
    const early =
      this.opts.bug === 'ack-before-persist'
        ? [MessageType.AppResp]
        : this.opts.bug === 'vote-before-persist'
          ? [MessageType.VoteResp]
          : undefined;
    const replica = new Replica<number>(node.id, this.replicaOpts, {
      log,
      stateMachine: stateMachine,
      transport: { send: (msgs) => this.send(msgs) },
      clock: { now: () => this.q.now, defer: (fn) => host.schedule(0, fn) },
      random: () => nodeRng.next(),
      checkInvariants: true,
      ...(early ? { unsafeSendBeforePersist: early } : {}),
      listener: {
        onRoleChange: (state, lead, term) => this.trace(`${node.id} is ${state} (term ${term}, leader ${lead || '-'})`),
        onCommitByFiat: (committed, last) => this.onCommitByFiat(node, committed, last),
        onFatal: (e) => this.checker.violate(`fatal on ${node.id}: ${e.message}`),
      },
    });
    node.replica = replica;
    node.log = log;
    node.stateMachine = stateMachine;
    if (node.slowDisk) node.disk.latencyMs = [20, 150];
    replica.start();
    const phase = this.rng.next() * TICK_MS;
    const tick = () => {
      replica.tick();
      host.schedule(TICK_MS, tick);
    };
    host.schedule(phase, tick);
  }

  crash(node: SimNode): void {
    if (!node.alive) return;
    this.trace(`CRASH ${node.id}`);
    this.stats.crashes++;
    node.alive = false;
    node.log?.tearInflight();
    node.replica = null;
    this.watches.delete(node.id);
  }

  restart(node: SimNode): void {
    if (node.alive || node.destroyed) return;
    this.trace(`RESTART ${node.id}`);
    this.boot(node);
  }

  /** Crashes a node now and brings it back after the mix's restart delay. */
  crashAndRestart(node: SimNode): void {
    if (!node.alive) return;
    this.crash(node);
    const [lo, hi] = this.opts.mix.restartMs;
    this.q.schedule(lo + this.rng.next() * (hi - lo), () => this.restart(node));
  }

  /** Gone for good: stopped, never restarted, and no longer part of any check that compares live nodes. */
  destroy(node: SimNode): void {
    if (node.destroyed) return;
    this.trace(`DESTROY ${node.id}`);
    if (node.alive) this.crash(node);
    node.destroyed = true;
  }

  /** A new node as a JournalNode started with --join prepares it: an empty state at index 0, in no configuration. */
  createJoiner(): SimNode {
    const id = `n${this.nextId++}`;
    const node = new SimNode(id, new SimDisk(emptyConf(), null));
    this.nodes.set(id, node);
    this.trace(`CREATE ${id} (empty, joining)`);
    return node;
  }

  // ---------------------------------------------------------------- network

  private isBlocked(from: NodeId, to: NodeId): boolean {
    return this.blocked.has(`${from}>${to}`);
  }

  private send(msgs: Message[]): void {
    for (const m of msgs) {
      const from = this.nodes.get(m.from);
      if (!from?.alive) continue;
      this.observeSend(from, m);
      this.transmit(m);
      if (this.net.duplicate > 0 && this.rng.chance(this.net.duplicate)) this.transmit(m);
      this.maybeCrashAfterSend(from, m);
    }
  }

  /** What the checkers learn from a message leaving: acknowledgements, and promotions being proposed. */
  private observeSend(from: SimNode, m: Message): void {
    if (
      from.ackedAt === null &&
      ((m.type === MessageType.AppResp && !m.reject && m.index > 0) || (m.type === MessageType.SnapStatus && !m.reject))
    )
      from.ackedAt = this.q.now;
    if (m.type !== MessageType.App) return;
    for (const e of m.entries) {
      if (e.type !== EntryType.ConfChange) continue;
      const key = `${e.index}:${e.term}`;
      if (this.seenConfEntries.has(key)) continue;
      this.seenConfEntries.add(key);
      const conf = from.replica?.rawNode.conf();
      if (!conf) continue;
      for (const c of decodeConfChange(e.data).changes) {
        if (c.op !== ConfChangeOp.AddVoter || !conf.learners.includes(c.peer.id)) continue;
        this.checker.onPromotion(from.id, c.peer.id, e.index, this.nodes.get(c.peer.id)?.ackedAt != null);
      }
    }
  }

  /** Crashes that land right after a node sent an acknowledgement, a vote or entries: what it sent must be durable. */
  private maybeCrashAfterSend(from: SimNode, m: Message): void {
    const eligible =
      (m.type === MessageType.AppResp && !m.reject) ||
      (m.type === MessageType.VoteResp && !m.reject) ||
      (m.type === MessageType.App && m.entries.length > 0);
    if (eligible) this.maybeCrashAfter(from, `sending ${MessageType[m.type]} to ${m.to}`);
  }

  /** With the mix's odds, `node` (or, on a power loss, every node) crashes right after what it just did. */
  private maybeCrashAfter(node: SimNode, what: string): void {
    const mix = this.opts.mix;
    // At most one such crash per election timeout, so the cluster also makes progress to lose.
    if (
      mix.crashAfterSend === 0 ||
      !this.inFaultPhase ||
      this.q.now - this.lastSendCrashAt < 10 * TICK_MS ||
      !this.rng.chance(mix.crashAfterSend)
    )
      return;
    this.lastSendCrashAt = this.q.now;
    const all = this.rng.chance(mix.powerLoss);
    this.q.schedule(0, () => {
      this.trace(`${all ? 'POWER LOSS: every node crashes' : `${node.id} crashes`} right after ${node.id} ${what}`);
      for (const n of all ? [...this.nodes.values()] : [node]) this.crashAndRestart(n);
    });
  }

  private transmit(m: Message): void {
    if (this.isBlocked(m.from, m.to) || (this.net.loss > 0 && this.rng.chance(this.net.loss))) {
      if (this.opts.traceMessages || (this.opts.trace && ELECTION_MESSAGES.has(m.type)))
        this.trace(`drop ${MessageType[m.type]} ${m.from}->${m.to}`);
      return;
    }
    const copy: Message = { ...m, entries: [...m.entries] };
    this.q.schedule(this.netDelay(), () => {
      const to = this.nodes.get(copy.to);
      if (!to?.alive || !to.replica || this.isBlocked(copy.from, copy.to)) return;
      if (this.opts.traceMessages || (this.opts.trace && ELECTION_MESSAGES.has(copy.type)))
        this.trace(
          `${MessageType[copy.type]} ${copy.from}->${copy.to} t${copy.term} i${copy.index} n${copy.entries.length} c${copy.commit}${copy.reject ? ' reject' : ''}`,
        );
      to.replica.receive([copy]);
    });
  }

  private netDelay(): number {
    const [lo, hi] = this.net.delayMs;
    let delay = lo + this.rng.next() * (hi - lo);
    if (this.net.spikeChance > 0 && this.rng.chance(this.net.spikeChance))
      delay += this.net.spikeMs[0] + this.rng.next() * (this.net.spikeMs[1] - this.net.spikeMs[0]);
    return delay;
  }

  /** Snapshot transfer between nodes: requests and chunks cross the simulated network, with its faults. */
  private readonly snapshotNet: SnapshotNet = {
    maxChunkBytes: 0, // drawn in the constructor
    source: (to, from, host) => this.snapshotSource(to, from, host),
    chunkWritten: (id) => {
      const rate = this.opts.mix.crashMidInstall;
      if (rate === 0 || !this.inFaultPhase || !this.rng.chance(rate)) return;
      const node = this.nodes.get(id)!;
      this.q.schedule(0, () => {
        this.trace(`${id} crashes in the middle of a snapshot install`);
        this.crashAndRestart(node);
      });
    },
    installed: (id, index) => {
      this.stats.installs++;
      this.trace(`${id} installed snapshot ${index}`);
    },
  };

  private snapshotSource(to: NodeId, from: NodeId, host: SimHost): FetchSource<SimManifest> {
    const rpc = <T>(serve: () => T, cb: (err: Error | null, v?: T) => void, lossy: boolean) => {
      host.schedule(2 * this.netDelay() + 0.5, () => {
        const src = this.nodes.get(from);
        if (!src?.alive || this.isBlocked(from, to) || this.isBlocked(to, from))
          return cb(new Error(`${from} unreachable`));
        if (lossy && this.inFaultPhase && this.opts.mix.chunkLoss > 0 && this.rng.chance(this.opts.mix.chunkLoss))
          return cb(new Error(`chunk from ${from} lost`));
        let v: T;
        try {
          v = serve();
        } catch (e) {
          return cb(e as Error);
        }
        cb(null, v);
      });
    };
    return {
      manifest: (minIndex, cb) =>
        rpc(
          () => {
            const s = this.nodes.get(from)!.disk.snapshot;
            if (s.meta.index < minIndex)
              throw new Error(`${from} has no snapshot at ${minIndex} (newest ${s.meta.index})`);
            return manifestOf(s);
          },
          cb,
          false,
        ),
      chunk: (index, f, offset, length, cb) =>
        rpc(
          () => {
            const s = this.nodes.get(from)!.disk.snapshots.find((x) => x.meta.index === index);
            const file = s?.image.files.find((x) => x.name === f.file);
            if (!file) throw new Error(`${from}: snapshot ${index} has no file ${f.file} (any more)`);
            const bytes = file.bytes.slice(offset, offset + length);
            if (
              this.inFaultPhase &&
              bytes.byteLength > 0 &&
              this.opts.mix.chunkCorrupt > 0 &&
              this.rng.chance(this.opts.mix.chunkCorrupt)
            )
              bytes[this.rng.int(0, bytes.byteLength)]! ^= 0x20;
            return bytes;
          },
          cb,
          true,
        ),
    };
  }

  /** Cuts both directions between two groups. */
  partition(a: NodeId[], b: NodeId[]): void {
    for (const x of a)
      for (const y of b) {
        this.blocked.add(`${x}>${y}`);
        this.blocked.add(`${y}>${x}`);
      }
    this.trace(`PARTITION [${a.join(',')}] | [${b.join(',')}]`);
  }

  cutOneWay(from: NodeId, to: NodeId): void {
    this.blocked.add(`${from}>${to}`);
    this.trace(`CUT ${from} -> ${to}`);
  }

  healNetwork(): void {
    this.blocked.clear();
    this.net = { ...CALM_NET };
    this.trace('HEAL network');
  }

  // ---------------------------------------------------------------- clients

  private startClient(cid: number): void {
    let target = this.rng.pick(this.ids);
    let believedTerm: number | undefined;
    let seq = 0;
    const pending = new Map<number, PendingOp>();
    const loop = () => {
      const now = this.q.now;
      for (const [k, p] of pending) if (p.deadline < now) pending.delete(k);
      if (this.clientsOn && pending.size < 3) {
        const node = this.nodes.get(target);
        if (!node?.alive || !node.replica) target = this.rng.pick(this.ids);
        else {
          const id = seq++;
          const data = new TextEncoder().encode(`c${cid}:${id}`);
          const useTerm =
            this.opts.mix.expectedTerm && believedTerm !== undefined && this.rng.chance(0.3) ? believedTerm : undefined;
          pending.set(id, { deadline: now + 2000 });
          node.replica.propose(data, useTerm, (err, res) => {
            pending.delete(id);
            if (!err && res) {
              this.stats.acked++;
              this.checker.onAck(res.index, res.term, data);
              believedTerm = res.term;
              this.maybeCrashAfter(node, `acknowledged write ${res.index}`);
              return;
            }
            if (err?.errorName === 'NOT_LEADER' && err.details.leaderId && this.nodes.get(err.details.leaderId)?.exists)
              target = err.details.leaderId;
            else if (err?.errorName === 'NOT_LEADER' || err?.errorName === 'TERM_MISMATCH')
              target = this.rng.pick(this.ids);
            if (err?.errorName === 'TERM_MISMATCH') believedTerm = undefined;
          });
          if (this.rng.chance(0.1)) this.linearizableRead(node);
        }
      }
      this.q.schedule(this.rng.int(2, 25), loop);
    };
    this.q.schedule(this.rng.int(0, 20), loop);
  }

  /** A ReadIndex read must observe every write acknowledged before it started. */
  private linearizableRead(node: SimNode): void {
    if (!node.alive || !node.replica) return;
    const replica = node.replica;
    const mustSee = Math.max(0, ...this.checker.acked.keys());
    replica.readIndex((err, index) => {
      if (err || index === undefined) return;
      this.stats.reads++;
      if (index < mustSee)
        this.checker.violate(`linearizability: read on ${node.id} at index ${index} misses write acked at ${mustSee}`);
      if (replica.appliedIndex < index)
        this.checker.violate(`read served on ${node.id} before index ${index} was applied`);
    });
  }

  // ---------------------------------------------------------------- faults

  private faultStep(): void {
    const mix = this.opts.mix;
    const ids = this.ids;
    const actions: (() => void)[] = [];
    if (mix.partitions)
      actions.push(() => {
        this.blocked.clear();
        if (this.rng.chance(0.3)) return this.trace('HEAL partitions');
        const shuffled = [...ids].sort(() => this.rng.next() - 0.5);
        const k = this.rng.int(1, ids.length);
        this.partition(shuffled.slice(0, k), shuffled.slice(k));
      });
    if (mix.asymmetric)
      actions.push(() => {
        this.blocked.clear();
        const n = this.rng.int(1, 4);
        for (let i = 0; i < n; i++) {
          const a = this.rng.pick(ids);
          const b = this.rng.pick(ids.filter((x) => x !== a));
          this.cutOneWay(a, b);
        }
      });
    if (mix.partial)
      actions.push(() => {
        this.blocked.clear();
        const leader = this.leader();
        if (!leader) return;
        const follower = this.rng.pick(ids.filter((x) => x !== leader));
        this.partition([leader], [follower]);
      });
    if (mix.crashes)
      actions.push(() => {
        const victim = this.nodes.get(this.rng.pick(ids))!;
        this.crashAndRestart(victim);
      });
    if (actions.length > 0 && ids.length > 1) this.rng.pick(actions)();
  }

  leader(): NodeId | undefined {
    let best: { id: NodeId; term: number } | undefined;
    for (const n of this.nodes.values()) {
      if (n.alive && n.replica?.isLeader && (!best || n.replica.term > best.term))
        best = { id: n.id, term: n.replica.term };
    }
    return best?.id;
  }

  /** The configuration of the newest leader (or, with none, of the live node in the highest term). */
  currentConf(): ConfState | undefined {
    const lead = this.leader();
    if (lead) return this.node(lead).replica!.rawNode.conf();
    let best: SimNode | undefined;
    for (const n of this.nodes.values())
      if (n.alive && n.replica && (!best || n.replica.term > best.replica!.term)) best = n;
    return best?.replica?.rawNode.conf();
  }

  private checkLogs(): void {
    this.checker.checkLogMatching(
      [...this.nodes.values()].filter((n) => n.exists).map((n) => ({ id: n.id, log: n.disk.log })),
    );
  }

  // ---------------------------------------------------------------- the checks read off each step

  private durable = (id: NodeId): DurableState | undefined => {
    const n = this.nodes.get(id);
    if (!n) return undefined;
    const d = n.disk;
    return { hard: d.hard, holds: (index, term) => d.log.term(index) === term || d.snapshot.meta.index >= index };
  };

  /**
   * After every event: a node that started campaigning or leading must be a voter; a new leader's votes must
   * be durable on a quorum; each step of a leader's commit index must be durable on a quorum of the
   * configuration in force.
   */
  private observe(): void {
    const direct = this.opts.checks !== 'outcomes';
    for (const n of this.nodes.values()) {
      if (!n.alive || !n.replica) continue;
      const raw = n.replica.rawNode;
      const r = raw.raft;
      if (r.state === StateType.Follower) {
        if (this.watches.size > 0) this.watches.delete(n.id);
        continue;
      }
      const w = this.watches.get(n.id);
      if (!w || w.term !== r.term || w.state !== r.state || w.incarnation !== n.incarnation) {
        this.checker.onCampaign(n.id, r.state, r.conf);
        if (r.state === StateType.Leader) {
          this.stats.elections++;
          this.checker.onLeader(
            n.id,
            r.term,
            r.conf,
            n.disk.log,
            raw.lastIndex(),
            (i) => raw.termAt(i),
            this.durable,
            direct,
          );
        }
        this.watches.set(n.id, {
          incarnation: n.incarnation,
          term: r.term,
          state: r.state,
          commit: raw.committedIndex(),
          conf: r.conf,
        });
        continue;
      }
      if (r.state !== StateType.Leader) continue;
      const c = raw.committedIndex();
      if (c > w.commit) {
        if (direct) this.checker.onCommit(n.id, r.term, c, raw.termAt(c)!, [w.conf, r.conf], this.durable);
        w.commit = c;
      }
      w.conf = r.conf;
    }
  }

  /** Reset-peers on `node` is about to commit its whole log: the checker learns what survives. */
  private onCommitByFiat(node: SimNode, committed: number, last: number): void {
    const log = node.disk.log;
    const first = log.firstIndex();
    this.trace(`RESET ${node.id}: commits (${committed}, ${last}] by fiat`);
    this.checker.onReset(
      node.id,
      node.replica!.term,
      committed,
      first,
      first <= last ? log.entries(first, last + 1, Infinity) : [],
    );
  }

  // ---------------------------------------------------------------- running

  runUntil(t: number): void {
    while (this.q.step(t)) {
      this.events++;
      this.observe();
      if (this.checker.violations.length > 0) return;
    }
    this.q.now = Math.max(this.q.now, t);
  }

  /** Boots every node (a slow-disk mix slows one of them down first). */
  bootAll(): void {
    if (this.opts.mix.slowDisk) this.nodes.get(this.rng.pick(this.ids))!.slowDisk = true;
    for (const n of this.nodes.values()) this.boot(n);
    const logCheck = () => {
      this.checkLogs();
      this.q.schedule(250, logCheck);
    };
    this.q.schedule(250, logCheck);
  }

  startClients(count: number): void {
    for (let c = 0; c < count; c++) this.startClient(c);
  }

  stopClients(): void {
    this.clientsOn = false;
  }

  node(id: NodeId): SimNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  get electionCount(): number {
    return this.stats.elections;
  }

  /** The fault phase, the liveness window after healing, and the quiet settle phase, with all checks. */
  run(): SimResult {
    const o = this.opts;
    const mix = o.mix;
    this.bootAll();
    this.startClients(2);
    this.net = {
      loss: mix.loss,
      duplicate: mix.duplicate,
      delayMs: mix.delayMs,
      spikeChance: mix.spikeChance,
      spikeMs: mix.spikeMs,
    };
    const faultsOn = mix.partitions || mix.asymmetric || mix.partial || mix.crashes;
    const scheduleFault = () => {
      if (!this.inFaultPhase) return;
      if (faultsOn) this.faultStep();
      this.q.schedule(
        mix.faultEveryMs[0] + this.rng.next() * (mix.faultEveryMs[1] - mix.faultEveryMs[0]),
        scheduleFault,
      );
    };
    this.q.schedule(this.rng.int(100, 400), scheduleFault);
    this.operator.start();

    this.runUntil(o.faultMs);
    // Heal everything: the network is calm, every node that exists is up.
    this.healNetwork();
    for (const n of this.nodes.values()) this.restart(n);
    const healedAt = this.q.now;
    const livenessAt = this.awaitLiveness(o.livenessMs);
    // Settle: clients stop; every member must converge to the same applied state.
    this.settle(o.settleMs);
    return {
      seed: o.seed,
      mix: mix.name,
      nodes: o.nodes,
      violations: [...this.checker.violations],
      mixDescription: describeMix(mix),
      stats: {
        simMs: Math.round(this.q.now),
        events: this.events,
        acked: this.stats.acked,
        maxIndex: this.checker.maxCommittedIndex,
        elections: this.stats.elections,
        crashes: this.stats.crashes,
        installs: this.stats.installs,
        reads: this.stats.reads,
        changes: this.stats.changes,
        transfers: this.stats.transfers,
        resets: this.stats.resets,
        jointCommits: this.checker.counts.jointCommits,
        promotions: this.checker.counts.promotions,
        lostAckedByReset: this.checker.lostAckedByReset,
        livenessMs: livenessAt === null ? -1 : Math.round(livenessAt - healedAt),
      },
    };
  }

  /**
   * Liveness: from now, a leader must be elected and commit a new proposal within windowMs. Runs the whole
   * window (clients keep going) and returns when the probe committed, or null (also recorded as a violation).
   */
  awaitLiveness(windowMs: number): number | null {
    const since = this.q.now;
    this.startLivenessProbe(since);
    this.runUntil(since + windowMs);
    const done = this.probe?.done ?? null;
    this.probe = null;
    if (this.checker.violations.length === 0 && done === null) {
      this.checker.violate(
        `liveness: no leader committed a new proposal within ${windowMs} ms (leader now: ${this.leader() ?? 'none'})`,
      );
    }
    return done;
  }

  /** The members of the final configuration: they, and only they, must converge. */
  private members(): SimNode[] {
    const conf = this.currentConf();
    const ids = conf ? confMembers(conf) : this.ids;
    return ids.map((id) => this.nodes.get(id)).filter((n): n is SimNode => n?.exists === true);
  }

  /**
   * Stops the clients and waits, polling, until every member has applied the same index (at least a short
   * quiet period, at most maxMs); then the final checks.
   */
  settle(maxMs: number): void {
    this.stopClients();
    const deadline = this.q.now + maxMs;
    this.runUntil(Math.min(deadline, this.q.now + 300));
    while (this.q.now < deadline && this.checker.violations.length === 0 && !this.converged())
      this.runUntil(Math.min(deadline, this.q.now + 50));
    this.settledAfterMs = maxMs - (deadline - this.q.now);
    this.finalChecks();
  }

  private converged(): boolean {
    const ms = this.members();
    const first = ms[0]?.replica;
    return (
      first !== undefined &&
      first !== null &&
      ms.every((n) => n.replica !== null && n.replica.appliedIndex === first.appliedIndex)
    );
  }

  /** Convergence, log matching and acknowledged-write durability: run after a quiet period. */
  finalChecks(): void {
    if (this.checker.violations.length === 0) this.checkConvergence();
    this.checkLogs();
    if (this.checker.violations.length === 0)
      this.checker.checkAcked((i) => this.members().every((n) => (n.replica?.appliedIndex ?? 0) >= i));
  }

  /** After healing, proposes until one is acknowledged: the time that takes is the liveness figure. */
  private startLivenessProbe(since: number): void {
    const probe = { since, done: null as number | null };
    this.probe = probe;
    let n = 0;
    const tryOnce = () => {
      if (this.probe !== probe || probe.done !== null) return;
      const lead = this.leader();
      const node = lead ? this.nodes.get(lead) : undefined;
      if (node?.replica) {
        const data = new TextEncoder().encode(`probe:${n++}`);
        node.replica.propose(data, undefined, (err, res) => {
          if (err || !res || probe.done !== null) return;
          this.checker.onAck(res.index, res.term, data);
          probe.done = this.q.now;
          this.trace(`liveness probe committed at index ${res.index}`);
        });
      }
      this.q.schedule(TICK_MS, tryOnce);
    };
    tryOnce();
  }

  checkConvergence(): void {
    const applied = this.members().map((n) => ({
      id: n.id,
      applied: n.replica?.appliedIndex ?? -1,
      hash: n.stateMachine?.state.hash ?? -1,
      files: n.stateMachine?.files.digest() ?? -1,
    }));
    const max = Math.max(...applied.map((a) => a.applied));
    const behind = applied.filter((a) => a.applied !== max);
    if (behind.length > 0) {
      this.checker.violate(
        `convergence: after ${Math.round(this.settledAfterMs)} ms of quiet, applied indexes differ: ${applied.map((a) => `${a.id}=${a.applied}`).join(' ')}`,
      );
      return;
    }
    if (new Set(applied.map((a) => a.hash)).size > 1)
      this.checker.violate(`convergence: same applied index ${max} but different states`);
    else if (new Set(applied.map((a) => a.files)).size > 1)
      this.checker.violate(`convergence: same applied index ${max} and state, but different files`);
  }
}

export function runSim(opts: SimOptions): SimResult {
  return new SimCluster(opts).run();
}

export function replayCommand(
  r: { seed: number; mix: string; nodes: number },
  o: { bug?: OutsideModelBug | undefined; checks?: string | undefined } = {},
): string {
  return `npm run sim -- --seed ${r.seed} --mix ${r.mix} --nodes ${r.nodes}${o.bug ? ` --bug ${o.bug}` : ''}${o.checks && o.checks !== 'all' ? ` --checks ${o.checks}` : ''} --trace`;
}
