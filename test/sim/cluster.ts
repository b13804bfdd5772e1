// A seeded, deterministic simulation of a Raft cluster: the real core and the real Replica driver, over a
// simulated network (loss, duplication, reordering, delay, partitions of every shape) and simulated disks
// (latency, slow disks, crashes that lose unsynced writes and may tear the last one). One PRNG drives it all:
// the same seed replays the same run.

import { Prng } from '../../src/prng.js';
import { Replica } from '../../src/replica/replica.js';
import type { ReplicaOptions } from '../../src/replica/replica.js';
import { DEFAULT_REPLICA_OPTIONS } from '../../src/replica/replica.js';
import { MessageType, StateType } from '../../src/raft/types.js';
import type { Message, NodeId, SnapshotMeta } from '../../src/raft/types.js';
import { Checker } from './checker.js';
import { EventQueue } from './event-queue.js';
import { SimDisk, SimLog, SimStateMachine } from './sim-env.js';
import type { SimHost, SmImage } from './sim-env.js';

export interface FaultMix {
  name: string;
  /** Network during the fault phase. */
  loss: number;
  duplicate: number;
  delayMs: [number, number];
  spikeChance: number;
  spikeMs: [number, number];
  partitions: boolean;
  asymmetric: boolean;
  partial: boolean;
  crashes: boolean;
  slowDisk: boolean;
  expectedTerm: boolean;
  /** A crashed node comes back after this long, ms [min, max). */
  restartMs: [number, number];
  /** Faults strike every [min, max) ms during the fault phase. */
  faultEveryMs: [number, number];
}

const calmNet = { loss: 0, duplicate: 0, delayMs: [0.2, 2] as [number, number], spikeChance: 0, spikeMs: [0, 0] as [number, number] };
const base: FaultMix = {
  name: '',
  ...calmNet,
  partitions: false,
  asymmetric: false,
  partial: false,
  crashes: false,
  slowDisk: false,
  expectedTerm: true,
  restartMs: [30, 800],
  faultEveryMs: [100, 600],
};

export const MIXES: Record<string, FaultMix> = {
  calm: { ...base, name: 'calm' },
  lossy: { ...base, name: 'lossy', loss: 0.15, duplicate: 0.05, delayMs: [0.2, 5], spikeChance: 0.05, spikeMs: [20, 120] },
  partition: { ...base, name: 'partition', partitions: true, loss: 0.02 },
  asymmetric: { ...base, name: 'asymmetric', asymmetric: true },
  partial: { ...base, name: 'partial', partial: true },
  crash: { ...base, name: 'crash', crashes: true },
  slowdisk: { ...base, name: 'slowdisk', slowDisk: true, delayMs: [0.2, 3] },
  // Crash-restart cycles faster than an election round, with partitions forcing elections: votes cast just
  // before a crash must survive it.
  crashfast: { ...base, name: 'crashfast', crashes: true, partitions: true, delayMs: [0.5, 6], restartMs: [1, 15], faultEveryMs: [15, 80] },
  chaos: {
    ...base,
    name: 'chaos',
    loss: 0.08,
    duplicate: 0.05,
    delayMs: [0.2, 8],
    spikeChance: 0.03,
    spikeMs: [20, 200],
    partitions: true,
    asymmetric: true,
    partial: true,
    crashes: true,
    slowDisk: true,
  },
};

export type OutsideModelBug = 'forget-vote' | 'ack-before-persist';

export interface SimOptions {
  seed: number;
  nodes: number;
  mix: FaultMix;
  /** Length of the fault phase (simulated ms). */
  faultMs: number;
  /** After healing: a leader is elected and a proposal commits within this many simulated ms. */
  livenessMs: number;
  /** Then, with clients stopped, every node converges to the same applied index within this long. */
  settleMs: number;
  trace?: (line: string) => void;
  traceMessages?: boolean;
  bug?: OutsideModelBug;
}

export interface SimResult {
  seed: number;
  mix: string;
  nodes: number;
  violations: string[];
  stats: {
    simMs: number;
    events: number;
    acked: number;
    maxIndex: number;
    elections: number;
    crashes: number;
    installs: number;
    reads: number;
    livenessMs: number;
  };
}

export const TICK_MS = 10;

/** Traced even without --trace-messages: what a reader needs to follow elections. */
const ELECTION_MESSAGES = new Set([MessageType.PreVote, MessageType.PreVoteResp, MessageType.Vote, MessageType.VoteResp, MessageType.TimeoutNow]);

class SimNode {
  incarnation = 0;
  alive = true;
  replica: Replica<number> | null = null;
  log: SimLog | null = null;
  sm: SimStateMachine | null = null;
  slowDisk = false;

  constructor(
    readonly id: NodeId,
    readonly disk: SimDisk,
  ) {}
}

interface PendingOp {
  deadline: number;
}

export class SimCluster {
  readonly q = new EventQueue();
  readonly rng: Prng;
  readonly checker: Checker;
  readonly nodes = new Map<NodeId, SimNode>();
  private readonly ids: NodeId[];
  private readonly blocked = new Set<string>();
  private net = { ...calmNet };
  private readonly opts: SimOptions;
  private readonly replicaOpts: ReplicaOptions;
  private events = 0;
  private clientsOn = true;
  private readonly stats = { elections: 0, crashes: 0, installs: 0, reads: 0, acked: 0 };
  private probe: { since: number; done: number | null } | null = null;

  constructor(opts: SimOptions) {
    this.opts = opts;
    this.rng = new Prng(opts.seed);
    this.checker = new Checker(() => this.q.now);
    this.ids = Array.from({ length: opts.nodes }, (_, i) => `n${i + 1}`);
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
    };
    const conf = { voters: [...this.ids], votersOutgoing: [], learners: [] };
    const bootstrap: SnapshotMeta = { index: 1, term: 1, conf, peers: this.ids.map((id) => ({ id, address: `sim://${id}` })) };
    for (const id of this.ids) this.nodes.set(id, new SimNode(id, new SimDisk(conf, bootstrap)));
  }

  trace(line: string): void {
    this.opts.trace?.(`${this.q.now.toFixed(2).padStart(9)}ms ${line}`);
  }

  // ---------------------------------------------------------------- nodes

  private hostFor(node: SimNode): SimHost {
    const inc = node.incarnation;
    const alive = () => node.alive && node.incarnation === inc;
    return {
      now: () => this.q.now,
      schedule: (d, fn) => this.q.schedule(d, () => {
        if (alive()) fn();
      }),
      rng: this.rng,
      alive,
    };
  }

  boot(node: SimNode): void {
    node.incarnation++;
    node.alive = true;
    node.disk.recover();
    const host = this.hostFor(node);
    const nodeRng = new Prng(this.opts.seed * 1000003 + node.incarnation * 101 + Number(node.id.slice(1)));
    const log = new SimLog(node.disk, host, this.opts.bug === 'forget-vote');
    const sm = new SimStateMachine(node.id, node.disk, host, this.checker, (from, meta, done) => this.fetchSnapshot(node.id, from, meta, done));
    const replica = new Replica<number>(node.id, this.replicaOpts, {
      log,
      stateMachine: sm,
      transport: { send: (msgs) => this.send(msgs) },
      clock: { now: () => this.q.now, defer: (fn) => host.schedule(0, fn) },
      random: () => nodeRng.next(),
      checkInvariants: true,
      ...(this.opts.bug === 'ack-before-persist' ? { unsafeSendBeforePersist: [MessageType.AppResp] } : {}),
      listener: {
        onRoleChange: (state, lead, term) => {
          this.trace(`${node.id} is ${state} (term ${term}, leader ${lead || '-'})`);
          if (state === StateType.Leader) {
            this.stats.elections++;
            const core = replica.rawNode;
            this.checker.onLeader(node.id, term, node.disk.log, core.lastIndex(), (i) => core.termAt(i));
          }
        },
        onFatal: (e) => this.checker.violations.push(`fatal on ${node.id}: ${e.message}`),
      },
    });
    node.replica = replica;
    node.log = log;
    node.sm = sm;
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
  }

  restart(node: SimNode): void {
    if (node.alive) return;
    this.trace(`RESTART ${node.id}`);
    this.boot(node);
  }

  // ---------------------------------------------------------------- network

  private isBlocked(from: NodeId, to: NodeId): boolean {
    return this.blocked.has(`${from}>${to}`);
  }

  private send(msgs: Message[]): void {
    for (const m of msgs) {
      const from = this.nodes.get(m.from);
      if (!from?.alive) continue;
      this.transmit(m);
      if (this.net.duplicate > 0 && this.rng.chance(this.net.duplicate)) this.transmit(m);
    }
  }

  private transmit(m: Message): void {
    if (this.isBlocked(m.from, m.to) || (this.net.loss > 0 && this.rng.chance(this.net.loss))) {
      if (this.opts.traceMessages || (this.opts.trace && ELECTION_MESSAGES.has(m.type))) this.trace(`drop ${MessageType[m.type]} ${m.from}->${m.to}`);
      return;
    }
    const [lo, hi] = this.net.delayMs;
    let delay = lo + this.rng.next() * (hi - lo);
    if (this.net.spikeChance > 0 && this.rng.chance(this.net.spikeChance)) delay += this.net.spikeMs[0] + this.rng.next() * (this.net.spikeMs[1] - this.net.spikeMs[0]);
    const copy: Message = { ...m, entries: [...m.entries] };
    this.q.schedule(delay, () => {
      const to = this.nodes.get(copy.to);
      if (!to?.alive || !to.replica || this.isBlocked(copy.from, copy.to)) return;
      if (this.opts.traceMessages || (this.opts.trace && ELECTION_MESSAGES.has(copy.type))) this.trace(`${MessageType[copy.type]} ${copy.from}->${copy.to} t${copy.term} i${copy.index} n${copy.entries.length} c${copy.commit}${copy.reject ? ' reject' : ''}`);
      to.replica.receive([copy]);
    });
  }

  private fetchSnapshot(to: NodeId, from: NodeId, meta: SnapshotMeta, done: (err: Error | null, s?: { meta: SnapshotMeta; image: SmImage }) => void): void {
    const [lo, hi] = this.net.delayMs;
    this.q.schedule(2 * (lo + this.rng.next() * (hi - lo)) + 1, () => {
      const src = this.nodes.get(from);
      if (!src?.alive || this.isBlocked(from, to) || this.isBlocked(to, from)) return done(new Error(`${from} unreachable`));
      const s = src.disk.snapshot;
      if (s.meta.index < meta.index) return done(new Error(`${from} has no snapshot at ${meta.index}`));
      this.stats.installs++;
      this.trace(`${to} fetched snapshot ${s.meta.index} from ${from}`);
      done(null, { meta: s.meta, image: { ...s.image } });
    });
  }

  /** Cuts both directions between two groups. */
  partition(a: NodeId[], b: NodeId[]): void {
    for (const x of a) for (const y of b) {
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
    this.net = { ...calmNet };
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
        const node = this.nodes.get(target)!;
        if (!node.alive || !node.replica) target = this.rng.pick(this.ids);
        else {
          const id = seq++;
          const data = new TextEncoder().encode(`c${cid}:${id}`);
          const useTerm = this.opts.mix.expectedTerm && believedTerm !== undefined && this.rng.chance(0.3) ? believedTerm : undefined;
          pending.set(id, { deadline: now + 2000 });
          node.replica.propose(data, useTerm, (err, res) => {
            pending.delete(id);
            if (!err && res) {
              this.stats.acked++;
              this.checker.onAck(res.index, res.term, data);
              believedTerm = res.term;
              return;
            }
            if (err?.errorName === 'NOT_LEADER' && err.details.leaderId) target = err.details.leaderId;
            else if (err?.errorName === 'NOT_LEADER' || err?.errorName === 'TERM_MISMATCH') target = this.rng.pick(this.ids);
            if (err?.errorName === 'TERM_MISMATCH') believedTerm = undefined;
          });
        }
        if (this.rng.chance(0.1)) this.linearizableRead(node);
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
      if (index < mustSee) this.checker.violations.push(`t=${this.q.now.toFixed(1)}ms linearizability: read on ${node.id} at index ${index} misses write acked at ${mustSee}`);
      if (replica.appliedIndex < index) this.checker.violations.push(`read served on ${node.id} before index ${index} was applied`);
    });
  }

  // ---------------------------------------------------------------- faults

  private faultStep(): void {
    const mix = this.opts.mix;
    const actions: (() => void)[] = [];
    if (mix.partitions)
      actions.push(() => {
        this.blocked.clear();
        if (this.rng.chance(0.3)) return this.trace('HEAL partitions');
        const shuffled = [...this.ids].sort(() => this.rng.next() - 0.5);
        const k = this.rng.int(1, this.ids.length);
        this.partition(shuffled.slice(0, k), shuffled.slice(k));
      });
    if (mix.asymmetric)
      actions.push(() => {
        this.blocked.clear();
        const n = this.rng.int(1, 4);
        for (let i = 0; i < n; i++) {
          const a = this.rng.pick(this.ids);
          const b = this.rng.pick(this.ids.filter((x) => x !== a));
          this.cutOneWay(a, b);
        }
      });
    if (mix.partial)
      actions.push(() => {
        this.blocked.clear();
        const leader = this.leader();
        if (!leader) return;
        const follower = this.rng.pick(this.ids.filter((x) => x !== leader));
        this.partition([leader], [follower]);
      });
    if (mix.crashes)
      actions.push(() => {
        const victim = this.nodes.get(this.rng.pick(this.ids))!;
        if (!victim.alive) return;
        this.crash(victim);
        this.q.schedule(mix.restartMs[0] + this.rng.next() * (mix.restartMs[1] - mix.restartMs[0]), () => this.restart(victim));
      });
    if (actions.length > 0) this.rng.pick(actions)();
  }

  leader(): NodeId | undefined {
    let best: { id: NodeId; term: number } | undefined;
    for (const n of this.nodes.values()) {
      if (n.alive && n.replica?.isLeader && (!best || n.replica.term > best.term)) best = { id: n.id, term: n.replica.term };
    }
    return best?.id;
  }

  private checkLogs(): void {
    this.checker.checkLogMatching([...this.nodes.values()].map((n) => ({ id: n.id, log: n.disk.log })));
  }

  // ---------------------------------------------------------------- running

  runUntil(t: number): void {
    while (this.q.step(t)) {
      this.events++;
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
    this.net = { loss: mix.loss, duplicate: mix.duplicate, delayMs: mix.delayMs, spikeChance: mix.spikeChance, spikeMs: mix.spikeMs };
    const faultsOn = mix.partitions || mix.asymmetric || mix.partial || mix.crashes;
    const scheduleFault = () => {
      if (this.q.now >= o.faultMs) return;
      if (faultsOn) this.faultStep();
      this.q.schedule(mix.faultEveryMs[0] + this.rng.next() * (mix.faultEveryMs[1] - mix.faultEveryMs[0]), scheduleFault);
    };
    this.q.schedule(this.rng.int(100, 400), scheduleFault);

    this.runUntil(o.faultMs);
    // Heal everything: the network is calm, every node is up.
    this.healNetwork();
    for (const n of this.nodes.values()) this.restart(n);
    const healedAt = this.q.now;
    const livenessAt = this.awaitLiveness(o.livenessMs);
    // Settle: clients stop; every node must converge to the same applied state.
    this.stopClients();
    this.runUntil(this.q.now + o.settleMs);
    this.finalChecks();
    return {
      seed: o.seed,
      mix: mix.name,
      nodes: o.nodes,
      violations: [...this.checker.violations],
      stats: {
        simMs: Math.round(this.q.now),
        events: this.events,
        acked: this.stats.acked,
        maxIndex: this.checker.maxCommittedIndex,
        elections: this.stats.elections,
        crashes: this.stats.crashes,
        installs: this.stats.installs,
        reads: this.stats.reads,
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
      this.checker.violations.push(`liveness: no leader committed a new proposal within ${windowMs} ms (leader now: ${this.leader() ?? 'none'})`);
    }
    return done;
  }

  /** Convergence, log matching and acknowledged-write durability: run after a quiet period. */
  finalChecks(): void {
    if (this.checker.violations.length === 0) this.checkConvergence();
    this.checkLogs();
    if (this.checker.violations.length === 0) this.checker.checkAcked((i) => this.appliedEverywhere(i));
  }

  private appliedEverywhere(index: number): boolean {
    return [...this.nodes.values()].every((n) => (n.replica?.appliedIndex ?? 0) >= index);
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
    const applied = [...this.nodes.values()].map((n) => ({ id: n.id, applied: n.replica?.appliedIndex ?? -1, hash: n.sm?.state.hash ?? -1 }));
    const max = Math.max(...applied.map((a) => a.applied));
    const behind = applied.filter((a) => a.applied !== max);
    if (behind.length > 0) {
      this.checker.violations.push(`convergence: after ${this.opts.settleMs} ms of quiet, applied indexes differ: ${applied.map((a) => `${a.id}=${a.applied}`).join(' ')}`);
      return;
    }
    const hashes = new Set(applied.map((a) => a.hash));
    if (hashes.size > 1) this.checker.violations.push(`convergence: same applied index ${max} but different states`);
  }
}

export function runSim(opts: SimOptions): SimResult {
  return new SimCluster(opts).run();
}

export function replayCommand(r: { seed: number; mix: string; nodes: number }, bug?: OutsideModelBug): string {
  return `npm run sim -- --seed ${r.seed} --mix ${r.mix} --nodes ${r.nodes}${bug ? ` --bug ${bug}` : ''} --trace`;
}
