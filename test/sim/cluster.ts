// A seeded, deterministic simulation of a cluster of JournalNodes: the real Raft core and Replica driver over
// the storage that ships (DiskLog, MetaStore, JournalStateMachine with its segment files and snapshots) on
// simulated disks (sim-file-system.ts: durability per file, sector and directory entry; crashes that lose what
// was not synced; failing syncs, full disks, latent sector errors; data directories replaced or restored), a
// simulated network (sim-network.ts: loss, duplication, reordering, delay, partitions of every shape, every
// batch judged by the identity rules), nodes started as a JournalNode starts (sim-data-dir.ts: prepared,
// formed, or refused), journal writers and readers that follow the journal protocol (journal-clients.ts), and
// an operator changing the membership, moving leadership, resetting peers and re-adding replaced disks
// (operator.ts). One PRNG drives it all: the same seed replays the same run.

import { Prng } from '../../src/prng.js';
import { AssertionError } from '../../src/assert.js';
import { qjournal } from '../../src/gen/proto.js';
import { Replica } from '../../src/replica/replica.js';
import type { ReplicaOptions } from '../../src/replica/replica.js';
import { decodeConfChange } from '../../src/transport/raft-codec.js';
import { ConfChangeOp, confMembers, EntryType, MessageType } from '../../src/raft/types.js';
import type { ConfState, Message, NodeId } from '../../src/raft/types.js';
import type { Settings } from '../../src/settings.js';
import type { Logger } from '../../src/logger.js';
import { Checker } from './checker.js';
import type { DurableState } from './checker.js';
import { EventQueue } from './event-queue.js';
import { JournalChecker } from './journal-checker.js';
import { startJournalClients } from './journal-clients.js';
import type { ClientTarget, ClientWorld } from './journal-clients.js';
import { describeMix } from './mixes.js';
import type { FaultMix } from './mixes.js';
import { SimOperator } from './operator.js';
import { SimFileSystem } from './sim-file-system.js';
import type { CrashDraw } from './sim-file-system.js';
import { faultExplains, ForgetfulLog, SimNode } from './sim-node.js';
import { diskLogSettings, drawSimSettings, simReplicaOptions } from './sim-settings.js';
import { ObservedStateMachine, openStorage } from './sim-storage.js';
import { formationRound, simAddress, simPeer, startDataDir } from './sim-data-dir.js';
import type { StartStep } from './sim-data-dir.js';
import { SIM_TIME_SCALE } from './sim-settings.js';
import { DiskFaultInjector } from './disk-faults.js';
import { IdentityChecks } from './identity-checks.js';
import { SimNetwork } from './sim-network.js';
import { StepChecks } from './step-checks.js';
import { checkConvergence, checkJournals, checkRepaired } from './end-checks.js';
import { simSnapshotSource } from './snapshot-network.js';
import { noteReadDamage, startIntegrity } from './sim-integrity.js';
import type { Scrubber } from '../../journalnode/integrity/scrubber.js';

export { MIXES, mixFor, replayCommand } from './mixes.js';
export type { FaultMix } from './mixes.js';
export { SimNode } from './sim-node.js';

type Result = qjournal.journal.ICommandResult;

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
  /** Replica options to use over the ones derived from the seed's settings (scenarios). */
  replica?: Partial<ReplicaOptions>;
  /** Settings to use over the ones drawn from the seed (scenarios). */
  settings?: Partial<Settings>;
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
    txids: number;
    fenced: number;
    diskFaults: number;
    failedNodes: number;
    /** Data directories replaced by empty ones, and restored from older copies. */
    wiped: number;
    restored: number;
    /** Replaced disks re-added with their new storage; restored copies that recorded their floor, or caught up. */
    reAdded: number;
    floors: number;
    caughtUp: number;
  };
}

/** What a probe of a simulated disk that is not full reads: room enough for any headroom setting. */
const SIM_FREE_BYTES = 2 ** 40;

/** The Raft tick of the simulated nodes (derived from the scaled election timeout: sim-settings.ts). */
export const TICK_MS = 10;

/** The journals the writers write (one writer active at a time on each, a standby taking over now and then). */
const JOURNALS = ['ns1', 'ns2'];

export class SimCluster {
  readonly q = new EventQueue();
  readonly rng: Prng;
  readonly checker: Checker;
  readonly journals: JournalChecker;
  readonly nodes = new Map<NodeId, SimNode>();
  readonly opts: SimOptions;
  readonly settings: Settings;
  readonly replicaOpts: ReplicaOptions;
  readonly initialSize: number;
  readonly network: SimNetwork;
  private events = 0;
  private clientsOn = true;
  readonly stats = {
    elections: 0,
    crashes: 0,
    installs: 0,
    reads: 0,
    acked: 0,
    changes: 0,
    transfers: 0,
    resets: 0,
    diskFull: 0,
  };
  private probe: { since: number; done: number | null } | null = null;
  private readonly stepChecks: StepChecks;
  private readonly seenConfEntries = new Set<string>();
  private nextId: number;
  private lastSendCrashAt = -Infinity;
  private settledAfterMs = 0;
  /** When the quiet phase began: the scrub pass that proves repair converged starts after it. */
  private quietSinceMs = 0;
  readonly operator: SimOperator;
  readonly diskFaults: DiskFaultInjector;
  readonly identityChecks: IdentityChecks;
  /** Resets of the peers so far (after one, a writer's next command may find its history gone). */
  private resets = 0;

  constructor(opts: SimOptions) {
    this.opts = opts;
    this.rng = new Prng(opts.seed);
    this.checker = new Checker(() => this.q.now);
    this.journals = new JournalChecker(this.checker);
    this.checker.onFirstApply = (node, e, result) => this.journals.onFirstApply(node, e, result);
    this.checker.onRebase = (survives) => {
      this.resets++;
      this.journals.rebase(survives);
    };
    this.initialSize = opts.nodes;
    const ids = Array.from({ length: opts.nodes }, (_, i) => `n${i + 1}`);
    this.nextId = opts.nodes + 1;
    this.settings = { ...drawSimSettings(this.rng), ...opts.settings };
    this.replicaOpts = { ...simReplicaOptions(this.settings), ...opts.replica };
    // The initial members are started with --peers naming them all: the cluster forms once all of them answer.
    const initialPeers = ids.map((id) => simPeer(id));
    for (const id of ids) this.nodes.set(id, new SimNode(id, new SimFileSystem(id), initialPeers));
    this.operator = new SimOperator(this, new Prng(opts.seed * 7 + 13));
    this.diskFaults = new DiskFaultInjector(this, new Prng(opts.seed * 31 + 7));
    this.identityChecks = new IdentityChecks(this);
    this.network = new SimNetwork(this);
    this.stepChecks = new StepChecks(this);
  }

  /** The largest single write of the nodes' logs (what start-up may take for a torn write). */
  get tornWriteBytes(): number {
    return diskLogSettings(this.settings).tornWriteBytes;
  }

  /** A new data directory's storage id (a JournalNode draws it at random; here the seed does). */
  newStorageId(): string {
    const hex = (n: number) => n.toString(16).padStart(8, '0');
    return hex(this.rng.int(0, 0x7fffffff)) + hex(this.rng.int(0, 0x7fffffff));
  }

  /** The members of the current configuration, as the operator knows them (what it gives a node's --join). */
  knownMembers(): NodeId[] {
    const conf = this.currentConf();
    return conf ? confMembers(conf) : this.ids;
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

  /**
   * Runs fn for `node`'s current incarnation only (a crash ends it). What the node's code throws is what a
   * process does on an uncaught exception: it exits; a fault of its disk explains it (the node restarts, or
   * stays down on damage it refused), anything else is a bug of the code under test.
   */
  guarded(node: SimNode, fn: () => void): () => void {
    const inc = node.incarnation;
    return () => {
      if (!node.alive || node.incarnation !== inc) return;
      try {
        fn();
      } catch (e) {
        this.nodeFailed(node, e, 'threw');
      }
    };
  }

  private nodeFailed(node: SimNode, e: unknown, how: string): void {
    if (e instanceof AssertionError) throw e;
    const why = faultExplains(node, e);
    const msg = (e as Error)?.message ?? String(e);
    if (why === null) {
      this.checker.violate(`${node.id} ${how}: ${msg}`);
      if (!(e instanceof Error) || e.name === 'TypeError' || e.name === 'RangeError') throw e;
      node.failed = true;
      this.crash(node);
      return;
    }
    this.trace(`${node.id} ${how} on a disk fault (${why}): ${msg}`);
    this.diskFaults.counts.stops++;
    this.crash(node);
    // A running node that met a damaged log entry stops; its next start keeps the sound part of its log.
    if (why === 'damage' && how !== 'could not start' && (e as Error).name === 'CorruptLogError')
      return this.scheduleRestart(node);
    if (why === 'damage') {
      node.failed = true;
      this.trace(`${node.id} stays down until repaired (its disk holds damage it refused)`);
      return;
    }
    // The operator fixes the disk and restarts the machine: unsynced writes, and writes whose sync failed, are gone.
    this.scheduleRestart(node);
  }

  hostFor(node: SimNode) {
    return {
      now: () => this.q.now,
      schedule: (d: number, fn: () => void) => this.q.schedule(d, this.guarded(node, fn)),
    };
  }

  loggerFor(node: SimNode): Logger {
    const t = this.opts.trace;
    if (!t) return { debug() {}, info() {}, warn() {}, error() {} };
    const line = (level: string) => (fields: object, msg: string) =>
      this.trace(`${node.id} ${level}: ${msg} ${JSON.stringify(fields)}`);
    return { debug() {}, info() {}, warn: line('warn'), error: line('error') };
  }

  /**
   * Starts a node as its command line says: its data directory first (sim-data-dir.ts: prepared on a first
   * start, formed with the nodes named in --peers, or refused), then its storage and replica.
   */
  boot(node: SimNode): void {
    if (!node.serviceable) return;
    node.incarnation++;
    node.alive = true;
    node.refused = null;
    node.forming = null;
    const host = this.hostFor(node);
    node.fs.attach({
      schedule: host.schedule,
      latencyMs: () => node.latencyMs[0] + this.rng.next() * (node.latencyMs[1] - node.latencyMs[0]),
      rng: this.rng,
    });
    let step: StartStep;
    try {
      step = startDataDir(this, node);
    } catch (e) {
      return this.nodeFailed(node, e, 'could not start');
    }
    if (step.kind === 'run') return this.startReplica(node);
    if (step.kind === 'forming') return this.formLater(node);
    // Refused (data-dir.ts): the process exits; nothing was written. It is started again later, or repaired.
    this.trace(`${node.id} refused to start: ${step.why}`);
    node.alive = false;
    node.refused = step.why;
    if (step.retry) this.scheduleRestart(node);
    else this.operator.repairLater(node);
  }

  /** A forming node asks the nodes named in --peers (a round trip), then every formation poll until it decides. */
  private formLater(node: SimNode): void {
    const host = this.hostFor(node);
    const round = () => {
      if (!formationRound(this, node)) return host.schedule(this.settings.formationPollMs / SIM_TIME_SCALE, round);
      this.trace(`${node.id} formed its data directory (storage ${node.storageId})`);
      this.startReplica(node);
    };
    host.schedule(2 * this.netDelay(), round);
  }

  /** The node's storage opened as the JournalNode opens it, and its replica started. */
  private startReplica(node: SimNode): void {
    const host = this.hostFor(node);
    try {
      node.storage = openStorage(
        node.fs,
        this.settings,
        (from) => simSnapshotSource(this, node, from),
        this.loggerFor(node),
      );
    } catch (e) {
      node.storage = null;
      return this.nodeFailed(node, e, 'could not start');
    }
    const storage = node.storage;
    const lost = node.lostAtRecovery(this.checker.maxCommittedIndex);
    if (lost) this.checker.violate(`recovery on ${node.id}: ${lost}`);
    const observed = new ObservedStateMachine(storage.stateMachine, node.id, {
      onApply: (id, e, result) => this.checker.onApply(id, e, result),
      onInstalled: (id, index) => {
        this.stats.installs++;
        this.trace(`${id} installed snapshot ${index}`);
      },
    });
    node.observed = observed;
    const nodeRng = new Prng(this.opts.seed * 1000003 + node.incarnation * 101 + Number(node.id.slice(1)));
    const early =
      this.opts.bug === 'ack-before-persist'
        ? [MessageType.AppResp]
        : this.opts.bug === 'vote-before-persist'
          ? [MessageType.VoteResp]
          : undefined;
    const meta = storage.meta.meta;
    // What its batches carry from now on (formation may have written the directory since it was prepared).
    node.storageId = meta.storageId;
    const replica = new Replica<Result>(node.id, this.replicaOpts, {
      log: this.opts.bug === 'forget-vote' ? new ForgetfulLog(storage.diskLog) : storage.diskLog,
      identity: {
        storageId: meta.storageId,
        clusterId: meta.clusterId,
        selfAddress: simAddress(node.id),
        record: storage.record,
        store: storage.identity,
      },
      stateMachine: observed,
      transport: { send: (msgs) => this.network.send(msgs) },
      clock: { now: () => this.q.now, defer: (fn) => host.schedule(0, fn) },
      random: () => nodeRng.next(),
      checkInvariants: true,
      ...(early ? { unsafeSendBeforePersist: early } : {}),
      // A simulated disk is full for a window (disk-faults.ts) or has room: free space as a probe reads it.
      diskSpace: { path: `${node.id}:/`, freeBytes: () => (node.fs.faults.full ? 0 : SIM_FREE_BYTES) },
      listener: {
        onDiskFull: (full, d) => {
          if (full) this.stats.diskFull++;
          this.trace(`${node.id} ${full ? `disk full (${d.error})` : 'disk has room again: resumes'}`);
        },
        onRoleChange: (state, lead, term) => this.trace(`${node.id} is ${state} (term ${term}, leader ${lead || '-'})`),
        onCommitByFiat: (committed, last) => this.onCommitByFiat(node, committed, last),
        onFatal: (e) =>
          this.q.schedule(
            0,
            this.guarded(node, () => this.nodeFailed(node, e, 'stopped')),
          ),
      },
    });
    node.replica = replica;
    node.integrity = startIntegrity(this, node, this.loggerFor(node));
    // Per device operation: a vote (the metadata file's sync, then its directory's) takes 20-150 ms.
    if (node.slowDisk) node.latencyMs = [10, 75];
    replica.start();
    const phase = this.rng.next() * TICK_MS;
    const tick = () => {
      replica.tick();
      host.schedule(TICK_MS, tick);
    };
    host.schedule(phase, tick);
  }

  /** The draw a crash makes for every unsynced sector: survive, torn, or lost (its odds drawn per crash). */
  private crashDraw(): CrashDraw {
    if (!this.opts.mix.tornSectors) return { keep: 0, tear: 0 };
    const keep = this.rng.next();
    return { keep, tear: this.rng.next() * (1 - keep) };
  }

  /** The machine goes down: memory is lost, and of the disk what a crash leaves (sim-file-system.ts). */
  crash(node: SimNode): void {
    if (!node.alive) return;
    this.trace(`CRASH ${node.id}`);
    this.stats.crashes++;
    node.alive = false;
    const snap = node.storage?.stateMachine.snapshotMeta ?? null;
    node.fs.crash(this.rng, this.crashDraw());
    node.wentDown(snap);
    this.stepChecks.forget(node.id);
  }

  restart(node: SimNode): void {
    if (node.alive || !node.serviceable) return;
    this.trace(`RESTART ${node.id}`);
    this.diskFaults.beforeRestart(node);
    this.boot(node);
  }

  private scheduleRestart(node: SimNode): void {
    const [lo, hi] = this.opts.mix.restartMs;
    this.q.schedule(lo + this.rng.next() * (hi - lo), () => this.restart(node));
  }

  /** Crashes a node now and brings it back after the mix's restart delay. */
  crashAndRestart(node: SimNode): void {
    if (!node.alive) return;
    this.crash(node);
    this.scheduleRestart(node);
  }

  /** Gone for good: stopped, never restarted, and no longer part of any check that compares live nodes. */
  destroy(node: SimNode): void {
    if (node.destroyed) return;
    this.trace(`DESTROY ${node.id}`);
    if (node.alive) this.crash(node);
    node.destroyed = true;
  }

  /** The operator stops `node`, empties its data directory again, and starts it with --join. */
  rejoin(node: SimNode): void {
    this.crash(node);
    node.diskReplaced('wiped');
    node.fs.wipe();
    node.initialPeers = null;
    this.restart(node);
  }

  /** A new node, to be started with --join (it prepares its empty state when it first starts). */
  createJoiner(): SimNode {
    const id = `n${this.nextId++}`;
    const node = new SimNode(id, new SimFileSystem(id), null);
    this.nodes.set(id, node);
    this.trace(`CREATE ${id} (empty, joining)`);
    return node;
  }

  node(id: NodeId): SimNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  /** The newest snapshot a node's disk held when it last ran (for the checkers' view of a node that is down). */
  durable = (id: NodeId): DurableState | undefined => this.nodes.get(id)?.durable();

  // ---------------------------------------------------------------- network

  isBlocked(from: NodeId, to: NodeId): boolean {
    return this.network.isBlocked(from, to);
  }

  netDelay(): number {
    return this.network.delay();
  }

  /** What the checkers learn from a message leaving: acknowledgements, and promotions being proposed. */
  observeSend(from: SimNode, m: Message): void {
    this.identityChecks.sent(m);
    if (
      from.ackedAt === null &&
      ((m.type === MessageType.AppResp && !m.reject && m.index > 0) || (m.type === MessageType.SnapStatus && !m.reject))
    )
      from.ackedAt = this.q.now;
    if (m.type !== MessageType.App) return;
    for (const e of m.entries) {
      if (e.type !== EntryType.ConfChange) continue;
      this.identityChecks.proposed(e);
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
  maybeCrashAfterSend(from: SimNode, m: Message): void {
    const eligible =
      (m.type === MessageType.AppResp && !m.reject) ||
      (m.type === MessageType.VoteResp && !m.reject) ||
      (m.type === MessageType.App && m.entries.length > 0);
    if (eligible) this.maybeCrashAfter(from, `sending ${MessageType[m.type]} to ${m.to}`);
  }

  /** With the mix's odds, `node` (or, on a power loss, every node) crashes right after what it just did. */
  maybeCrashAfter(node: SimNode, what: string): void {
    const mix = this.opts.mix;
    // At most one such crash per election timeout, so the cluster also makes progress to lose.
    if (
      mix.crashAfterSend === 0 ||
      !this.inFaultPhase ||
      this.identityChecks.quiet ||
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

  healNetwork(): void {
    this.network.heal();
  }

  /**
   * A restored node owes its floor (identity-checks.ts): the network heals and stays calm, and no new fault
   * strikes, until it records it. A leader lost meanwhile is the double fault no protocol detects
   * (ARCHITECTURE.md, "What cannot be detected"): outside the model.
   */
  quietStarted(): void {
    this.network.heal();
    this.diskFaults.heal();
  }

  quietEnded(): void {
    this.network.resume();
  }

  // ---------------------------------------------------------------- clients

  /** What the journal clients see of the cluster. */
  private clientWorld(): ClientWorld {
    return {
      now: () => this.q.now,
      schedule: (d, fn) => this.q.schedule(d, fn),
      rng: this.rng,
      settings: this.settings,
      ids: () => this.ids,
      running: (id) => this.clientTarget(id),
      clientsOn: () => this.clientsOn,
      inFaultPhase: () => this.inFaultPhase,
      resets: () => this.resets,
      expectedTerm: this.opts.mix.expectedTerm,
      journals: this.journals,
      acknowledged: (id, out, commandBytes) => {
        this.stats.acked++;
        this.checker.onAck(out.index, out.term, commandBytes);
        const node = this.nodes.get(id);
        if (node) this.maybeCrashAfter(node, `acknowledged write ${out.index}`);
      },
      violate: (msg) => this.checker.violate(msg),
      readFailed: (id, err) => {
        const node = this.nodes.get(id);
        if (node && faultExplains(node, err)) return noteReadDamage(node, err);
        this.checker.violate(`read on ${id} failed: ${err.message}`);
      },
      trace: (line) => this.trace(line),
    };
  }

  private clientTarget(id: NodeId): ClientTarget | undefined {
    const n = this.nodes.get(id);
    if (!n?.running) return undefined;
    const replica = n.replica!;
    const stateMachine = n.storage!.stateMachine;
    return { id, replica, stateMachine };
  }

  /** Journal writers (two per journal, one taking over now and then) and `readers` readers. */
  startClients(readers: number): void {
    startJournalClients(this.clientWorld(), JOURNALS, readers);
  }

  stopClients(): void {
    this.clientsOn = false;
  }

  // ---------------------------------------------------------------- faults

  private faultStep(): void {
    const mix = this.opts.mix;
    const ids = this.ids;
    const actions: (() => void)[] = [];
    if (mix.partitions)
      actions.push(() => {
        this.network.clearCuts();
        if (this.rng.chance(0.3)) return this.trace('HEAL partitions');
        const shuffled = [...ids].sort(() => this.rng.next() - 0.5);
        const k = this.rng.int(1, ids.length);
        this.network.partition(shuffled.slice(0, k), shuffled.slice(k));
      });
    if (mix.asymmetric)
      actions.push(() => {
        this.network.clearCuts();
        const n = this.rng.int(1, 4);
        for (let i = 0; i < n; i++) {
          const a = this.rng.pick(ids);
          const b = this.rng.pick(ids.filter((x) => x !== a));
          this.network.cutOneWay(a, b);
        }
      });
    if (mix.partial)
      actions.push(() => {
        this.network.clearCuts();
        const leader = this.leader();
        if (!leader) return;
        const follower = this.rng.pick(ids.filter((x) => x !== leader));
        this.network.partition([leader], [follower]);
      });
    if (mix.crashes)
      actions.push(() => {
        const victim = this.nodes.get(this.rng.pick(ids))!;
        this.crashAndRestart(victim);
      });
    actions.push(...this.diskFaults.actions());
    if (actions.length > 0 && ids.length > 1 && !this.identityChecks.quiet) this.rng.pick(actions)();
  }

  leader(): NodeId | undefined {
    let best: { id: NodeId; term: number } | undefined;
    for (const n of this.nodes.values()) {
      if (n.running && n.replica!.isLeader && (!best || n.replica!.term > best.term))
        best = { id: n.id, term: n.replica!.term };
    }
    return best?.id;
  }

  /** The configuration of the newest leader (or, with none, of the live node in the highest term). */
  currentConf(): ConfState | undefined {
    const lead = this.leader();
    if (lead) return this.node(lead).replica!.rawNode.conf();
    let best: SimNode | undefined;
    for (const n of this.nodes.values()) if (n.running && (!best || n.replica!.term > best.replica!.term)) best = n;
    return best?.replica?.rawNode.conf();
  }

  /** Log matching on every log there is: terms every time, entries' bytes too at the end (reading them costs). */
  private checkLogs(withData = false): void {
    const logs: { id: NodeId; log: NonNullable<ReturnType<SimNode['log']>> }[] = [];
    for (const n of this.nodes.values()) {
      const log = !n.exists ? null : withData ? n.pristineLog() : n.log();
      if (log) logs.push({ id: n.id, log });
    }
    this.checker.checkLogMatching(logs, withData);
  }

  // ---------------------------------------------------------------- the checks read off each step

  /** Reset-peers on `node` is about to commit its whole log: the checker learns what survives. */
  private onCommitByFiat(node: SimNode, committed: number, last: number): void {
    const log = node.diskLog!;
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
      this.stepChecks.observe();
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

  get electionCount(): number {
    return this.stats.elections;
  }

  /** The fault phase, the liveness window after healing, and the quiet settle phase, with all checks. */
  run(): SimResult {
    const o = this.opts;
    const mix = o.mix;
    this.bootAll();
    this.startClients(2);
    this.network.faultPhase({
      loss: mix.loss,
      duplicate: mix.duplicate,
      delayMs: mix.delayMs,
      spikeChance: mix.spikeChance,
      spikeMs: mix.spikeMs,
    });
    const scheduleFault = () => {
      if (!this.inFaultPhase) return;
      this.faultStep();
      this.q.schedule(
        mix.faultEveryMs[0] + this.rng.next() * (mix.faultEveryMs[1] - mix.faultEveryMs[0]),
        scheduleFault,
      );
    };
    this.q.schedule(this.rng.int(100, 400), scheduleFault);
    this.operator.start();
    this.diskFaults.start();

    this.runUntil(o.faultMs);
    // Heal everything: the network is calm, the disks work, every node that can run is up.
    this.healNetwork();
    this.diskFaults.heal();
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
        reads: this.journals.counts.reads,
        changes: this.stats.changes,
        transfers: this.stats.transfers,
        resets: this.stats.resets,
        jointCommits: this.checker.counts.jointCommits,
        promotions: this.checker.counts.promotions,
        lostAckedByReset: this.checker.lostAckedByReset,
        livenessMs: livenessAt === null ? -1 : Math.round(livenessAt - healedAt),
        txids: this.journals.counts.acked,
        fenced: this.journals.counts.fencedRefusals,
        diskFaults: this.diskFaults.total,
        failedNodes: [...this.nodes.values()].filter((n) => n.failed && !n.destroyed).length,
        wiped: this.diskFaults.counts.wiped,
        restored: this.diskFaults.counts.restored,
        ...this.identityChecks.counts,
      },
    };
  }

  /**
   * Liveness: from now, a leader must be elected and commit a new proposal within windowMs. Runs until the
   * probe committed and a little longer (clients keep going), and returns when it committed, or null (also
   * recorded as a violation).
   */
  awaitLiveness(windowMs: number): number | null {
    const since = this.q.now;
    this.startLivenessProbe(since);
    const deadline = since + windowMs;
    while (this.q.now < deadline && this.probe?.done === null && this.checker.violations.length === 0)
      this.runUntil(Math.min(deadline, this.q.now + 50));
    this.runUntil(Math.min(deadline, this.q.now + 150));
    const done = this.probe?.done ?? null;
    this.probe = null;
    if (this.checker.violations.length === 0 && done === null) {
      this.checker.violate(
        `liveness: no leader committed a new proposal within ${windowMs} ms (leader now: ${this.leader() ?? 'none'})`,
      );
    }
    return done;
  }

  /** The members of the final configuration that can run: they, and only they, must converge. */
  private members(): SimNode[] {
    const conf = this.currentConf();
    const ids = conf ? confMembers(conf) : this.ids;
    return ids.map((id) => this.nodes.get(id)).filter((n): n is SimNode => n?.serviceable === true);
  }

  /**
   * Stops the clients and waits, polling, until every member has applied the same index (at least a short
   * quiet period, at most maxMs); then the final checks.
   */
  settle(maxMs: number): void {
    this.stopClients();
    this.quietSinceMs = this.q.now;
    const deadline = this.q.now + maxMs;
    this.runUntil(Math.min(deadline, this.q.now + 150));
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
      ms.every((n) => n.running && n.replica!.appliedIndex === first.appliedIndex) &&
      // Repairs under way finish too (a new snapshot to take, a copy to fetch): the end checks judge what they left.
      ms.every((n) => (n.integrity?.registry.openRecords().length ?? 0) === 0) &&
      // And every byte was read since, soundly: rot no scrub pass has reached yet is not yet a failure to repair.
      ms.every((n) => !n.integrity?.scrubber.enabled || scrubbedSince(n.integrity.scrubber, this.quietSinceMs))
    );
  }

  /** Convergence, log matching, acknowledged-write durability and the journals' end state: after a quiet period. */
  finalChecks(): void {
    if (this.checker.violations.length === 0) checkConvergence(this.checker, this.members(), this.settledAfterMs);
    this.checkLogs(true);
    if (this.checker.violations.length === 0)
      this.checker.checkAcked((i) => this.members().every((n) => (n.replica?.appliedIndex ?? 0) >= i));
    if (this.checker.violations.length === 0) checkJournals(this.checker, this.journals, this.members());
    if (this.checker.violations.length === 0) checkRepaired(this.checker, this.members());
  }

  /** After healing, proposes until one is acknowledged: the time that takes is the liveness figure. */
  private startLivenessProbe(since: number): void {
    const probe = { since, done: null as number | null };
    this.probe = probe;
    const data = qjournal.journal.Command.encode({ jid: 'probe', format: { nsInfo: { namespaceId: 1 } } }).finish();
    const tryOnce = () => {
      if (this.probe !== probe || probe.done !== null) return;
      const lead = this.leader();
      const node = lead ? this.nodes.get(lead) : undefined;
      if (node?.running) {
        node.replica!.propose(data, undefined, (err, res) => {
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
}

export function runSim(opts: SimOptions): SimResult {
  return new SimCluster(opts).run();
}

/**
 * The scrubber's last whole pass began at or after `sinceMs` and found nothing: a pass that found damage proves
 * nothing about what it skipped (a snapshot's link to a segment it had just found damaged, repaired since by a
 * purge that left the link), so the next one must find the storage sound.
 */
function scrubbedSince(scrubber: Scrubber, sinceMs: number): boolean {
  const last = scrubber.status().last;
  return last !== null && last.startedMs >= sinceMs && last.findings === 0;
}
