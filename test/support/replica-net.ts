// A small deterministic network of real Replicas over in-memory disks, for scenario tests of the identity rules
// (src/replica/identity.ts) as the JournalNode applies them: every batch carries its sender's envelope (storage
// id, generation), the receiver's verdict comes first, and a refusal's notice goes back to the sender, as the
// peer stream route does. Disks can be replaced (a new storage id), copied and restored (an older copy with
// the same storage id); links can be cut. One task queue, manual ticks, seeded randomness.

import { Prng } from '../../src/prng.js';
import { MemoryStorage } from '../../src/raft/memory-storage.js';
import { emptyConf } from '../../src/raft/types.js';
import type { ConfState, HardState, Message, NodeId, SnapshotMeta } from '../../src/raft/types.js';
import { EMPTY_IDENTITY } from '../../src/replica/env.js';
import type { IdentityRecord, ReplicaLog, ReplicaStateMachine } from '../../src/replica/env.js';
import type { BatchEnvelope } from '../../src/replica/identity.js';
import { DEFAULT_REPLICA_OPTIONS, Replica } from '../../src/replica/replica.js';
import type { QjmError } from '../../src/errors.js';

export const TICK_MS = 10;
const CLUSTER = 'c0ffee';

export interface NetDisk {
  storageId: string;
  storage: MemoryStorage;
  hard: HardState;
  identity: IdentityRecord;
}

export interface NetNode {
  id: NodeId;
  disk: NetDisk;
  replica: Replica<number> | null;
  incarnation: number;
}

function cloneStorage(s: MemoryStorage): MemoryStorage {
  const c = new MemoryStorage(s.snapshotMeta().conf);
  c.applySnapshot(s.snapshotMeta());
  c.append(s.allEntries());
  return c;
}

export class ReplicaNet {
  now = 0;
  readonly nodes = new Map<NodeId, NetNode>();
  /** Directed links that drop everything: "a>b". */
  readonly cut = new Set<string>();
  /** Returns false to drop a message in flight. */
  filter: ((m: Message) => boolean) | null = null;
  /** Off: batches travel without envelopes (no storage or generation checks: the rules' control case). */
  envelopes = true;
  private readonly tasks: (() => void)[] = [];
  private storages = 0;
  private readonly rng: Prng;

  constructor(
    ids: NodeId[],
    readonly seed = 1,
  ) {
    this.rng = new Prng(seed);
    const conf: ConfState = { voters: [...ids], votersOutgoing: [], learners: [] };
    const disks = ids.map((id) => this.newDisk(id));
    const boot: SnapshotMeta = {
      index: 1,
      term: 1,
      conf,
      peers: ids.map((id, i) => ({ id, address: `net://${id}`, storageId: disks[i]!.storageId })),
    };
    ids.forEach((id, i) => {
      disks[i]!.storage.applySnapshot(boot);
      disks[i]!.hard = { term: 1, vote: '', commit: 1 };
      this.nodes.set(id, { id, disk: disks[i]!, replica: null, incarnation: 0 });
    });
  }

  private newDisk(id: NodeId): NetDisk {
    return {
      storageId: `${(++this.storages).toString(16).padStart(4, '0')}${id.replace(/[^0-9a-f]/g, '')}`,
      storage: new MemoryStorage(emptyConf()),
      hard: { term: 0, vote: '', commit: 0 },
      identity: { ...EMPTY_IDENTITY },
    };
  }

  node(id: NodeId): NetNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  private defer(n: NetNode | null, fn: () => void): void {
    const inc = n?.incarnation;
    this.tasks.push(() => {
      if (n && (n.incarnation !== inc || !n.replica)) return;
      fn();
    });
  }

  start(id: NodeId): void {
    const n = this.node(id);
    if (n.replica) return;
    n.incarnation++;
    const d = n.disk;
    const log: ReplicaLog = {
      initialHardState: () => ({ ...d.hard }),
      snapshotMeta: () => d.storage.snapshotMeta(),
      firstIndex: () => d.storage.firstIndex(),
      lastIndex: () => d.storage.lastIndex(),
      term: (i) => d.storage.term(i),
      entries: (lo, hi, max) => d.storage.entries(lo, hi, max),
      write: (h, entries, done) =>
        this.defer(n, () => {
          if (h) d.hard = { ...h };
          d.storage.append(entries);
          done(null);
        }),
      // Snapshots are metadata only (the state machine keeps nothing): a saved one compacts nothing away.
      snapshotSaved: (meta) => d.storage.setSnapshot(meta),
      beginReset: (meta) => d.storage.applySnapshot(meta),
      commitReset: (_m, done) => done(null),
    };
    const stateMachine: ReplicaStateMachine<number> = {
      apply: (es) => es.map((e) => e.index),
      saveSnapshot: (_m, done) => this.defer(n, () => done(null)),
      // The image is the source's newest snapshot metadata, fetched if the source runs.
      fetchSnapshot: (from, _m, done) =>
        this.defer(n, () => {
          const src = this.nodes.get(from);
          if (!src?.replica || this.cut.has(`${from}>${id}`)) return done(new Error(`${from} unreachable`));
          done(null, { meta: src.disk.storage.snapshotMeta() });
        }),
      installSnapshot: (_s, done) => this.defer(n, () => done(null)),
      discardSnapshot: () => {},
    };
    const rng = new Prng(this.seed * 1009 + n.incarnation * 31 + id.charCodeAt(id.length - 1));
    n.replica = new Replica<number>(
      id,
      { ...DEFAULT_REPLICA_OPTIONS, tickMs: TICK_MS, snapshotLogBytes: 2 ** 40, snapshotIntervalS: 0 },
      {
        log,
        stateMachine,
        transport: { send: (ms) => this.send(n, ms) },
        clock: { now: () => this.now, defer: (fn) => this.defer(n, fn) },
        random: () => rng.next(),
        checkInvariants: true,
        identity: {
          storageId: d.storageId,
          clusterId: CLUSTER,
          selfAddress: `net://${id}`,
          record: d.identity,
          store: {
            save: (rec, done) => {
              d.identity = { ...rec };
              this.defer(null, () => done(null));
            },
          },
        },
      },
    );
    n.replica.start();
  }

  crash(id: NodeId): void {
    const n = this.node(id);
    n.replica?.stop();
    n.replica = null;
  }

  restart(id: NodeId): void {
    this.crash(id);
    this.start(id);
  }

  /**
   * A new node that joins (as --join prepares it): an empty state in no configuration, knowing `members` (and
   * the generation it learned from them).
   */
  addJoiner(id: NodeId, members: NodeId[], generation = 0): NetNode {
    const d = this.newDisk(id);
    d.storage.applySnapshot({
      index: 0,
      term: 0,
      conf: emptyConf(),
      peers: members.map((m) => ({ id: m, address: `net://${m}` })),
      generation,
    });
    const n: NetNode = { id, disk: d, replica: null, incarnation: 0 };
    this.nodes.set(id, n);
    return n;
  }

  /** The disk as it is now, to restore later (a backup: same storage id, older state). */
  copyDisk(id: NodeId): NetDisk {
    const d = this.node(id).disk;
    return {
      storageId: d.storageId,
      storage: cloneStorage(d.storage),
      hard: { ...d.hard },
      identity: { ...d.identity },
    };
  }

  /** The node crashes and comes back on `disk` (a copy restored, or a replacement). */
  restartOn(id: NodeId, disk: NetDisk): void {
    this.crash(id);
    this.node(id).disk = disk;
    this.start(id);
  }

  /**
   * A new, empty disk that bootstraps the initial configuration again, as a node given --peers did before
   * formation existed: a new storage id under a member's id, believing itself a voter.
   */
  bootstrappedAgain(id: NodeId): NetDisk {
    const d = this.newDisk(id);
    const boot: SnapshotMeta = {
      index: 1,
      term: 1,
      conf: { voters: [...this.nodes.keys()], votersOutgoing: [], learners: [] },
      peers: [...this.nodes.keys()].map((x) => ({ id: x, address: `net://${x}` })),
    };
    d.storage.applySnapshot(boot);
    d.hard = { term: 1, vote: '', commit: 1 };
    return d;
  }

  private send(from: NetNode, ms: Message[]): void {
    const env: BatchEnvelope | undefined =
      this.envelopes && from.replica
        ? { from: from.id, storageId: from.disk.storageId, generation: from.replica.generation }
        : undefined;
    for (const m of ms) {
      if (this.cut.has(`${m.from}>${m.to}`) || (this.filter && !this.filter(m))) continue;
      const copy: Message = { ...m, entries: [...m.entries] };
      this.defer(null, () => {
        const to = this.nodes.get(copy.to);
        if (!to?.replica || this.cut.has(`${copy.from}>${copy.to}`)) return;
        if (env) {
          const v = to.replica.admitBatch(env);
          if (!v.ok) {
            const notice = v.notice;
            // The refusal is the answer to the sender's own stream.
            if (notice && !this.cut.has(`${copy.to}>${copy.from}`))
              this.defer(from, () => from.replica?.hearNotice(copy.to, notice));
            return;
          }
        }
        to.replica.receive([copy], env);
      });
    }
  }

  /** Runs queued work until none is left (bounded). */
  run(): void {
    for (let i = 0; i < 200_000 && this.tasks.length > 0; i++) this.tasks.shift()!();
  }

  /** `n` ticks of every running node, in an order the seed draws, with everything they cause. */
  tick(n = 1): void {
    for (let t = 0; t < n; t++) {
      this.now += TICK_MS;
      const up = [...this.nodes.values()].filter((x) => x.replica);
      for (const x of up.sort(() => this.rng.next() - 0.5)) x.replica?.tick();
      this.run();
    }
  }

  /** Ticks until `cond` holds (at most maxTicks); returns whether it did. */
  tickUntil(cond: () => boolean, maxTicks = 2000): boolean {
    for (let t = 0; t < maxTicks; t++) {
      if (cond()) return true;
      this.tick();
    }
    return cond();
  }

  leaders(): NodeId[] {
    return [...this.nodes.values()].filter((x) => x.replica?.isLeader).map((x) => x.id);
  }

  /** Proposes `count` commands on `id` and runs until each answered; returns the errors (empty: all applied). */
  propose(id: NodeId, count: number): QjmError[] {
    const errors: QjmError[] = [];
    let answered = 0;
    for (let i = 0; i < count; i++)
      this.node(id).replica!.propose(new Uint8Array([i & 0xff, 1]), undefined, (e) => {
        answered++;
        if (e) errors.push(e);
      });
    this.tickUntil(() => answered === count, 500);
    return errors;
  }
}
