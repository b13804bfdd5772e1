// Simulated durable state and the Replica's environment over it: a disk whose writes become durable only
// when they complete (a crash loses what is in flight, possibly leaving a torn prefix), a hash-chain state
// machine, and snapshot save / fetch / install with latency.

import { MemoryStorage } from '../../src/raft/memory-storage.js';
import type { ConfState, Entry, HardState, NodeId, SnapshotMeta } from '../../src/raft/types.js';
import { NONE } from '../../src/raft/types.js';
import type { ReplicaLog, ReplicaStateMachine, StagedSnapshot } from '../../src/replica/env.js';
import type { Prng } from '../../src/prng.js';

export interface SmImage {
  hash: number;
  commands: number;
}

export const EMPTY_IMAGE: SmImage = { hash: 0x811c9dc5, commands: 0 };

/** What survives a crash: hard state, log entries, and the snapshot (metadata and image as one unit). */
export class SimDisk {
  hard: HardState = { term: 0, vote: NONE, commit: 0 };
  readonly log: MemoryStorage;
  snapshot: { meta: SnapshotMeta; image: SmImage };
  /** Latency per write, ms: [min, max). */
  latencyMs: [number, number] = [0.3, 2];

  constructor(conf: ConfState, bootstrap: SnapshotMeta | null) {
    this.log = new MemoryStorage(conf);
    this.snapshot = { meta: this.log.snapshotMeta(), image: { ...EMPTY_IMAGE } };
    if (bootstrap) {
      this.log.applySnapshot(bootstrap);
      this.snapshot = { meta: bootstrap, image: { ...EMPTY_IMAGE } };
      this.hard = { term: bootstrap.term, vote: NONE, commit: bootstrap.index };
    }
  }

  /**
   * Start-up: make the log agree with the durable snapshot. A log that holds the snapshot's (index, term)
   * keeps its entries; any other log is discarded (it was being replaced by an install).
   */
  recover(): void {
    const meta = this.snapshot.meta;
    if (meta.index <= this.log.snapshotMeta().index) return;
    if (this.log.term(meta.index) === meta.term) this.log.setSnapshot(meta);
    else this.log.applySnapshot(meta);
  }
}

export interface SimHost {
  now(): number;
  schedule(delayMs: number, fn: () => void): void;
  rng: Prng;
  /** False once the node that owns this environment crashed (its callbacks must not run). */
  alive(): boolean;
}

export function mixHash(h: number, e: Entry): number {
  let x = h ^ e.index;
  x = Math.imul(x, 0x01000193) >>> 0;
  x = (x ^ e.term) >>> 0;
  x = Math.imul(x, 0x01000193) >>> 0;
  for (let i = 0; i < e.data.byteLength; i++) {
    x = (x ^ e.data[i]!) >>> 0;
    x = Math.imul(x, 0x01000193) >>> 0;
  }
  return x >>> 0;
}

export class SimLog implements ReplicaLog {
  private inflight: { hard: HardState | null; entries: Entry[] } | null = null;
  private pendingReset: SnapshotMeta | null = null;

  constructor(
    private readonly disk: SimDisk,
    private readonly host: SimHost,
    private readonly forgetVote: boolean,
  ) {}

  private get view(): MemoryStorage {
    return this.disk.log;
  }

  initialHardState(): HardState {
    const hs = { ...this.disk.hard };
    // The fault outside the model: a disk that forgets the vote it made durable.
    if (this.forgetVote) hs.vote = NONE;
    return hs;
  }

  snapshotMeta(): SnapshotMeta {
    return this.pendingReset ?? this.view.snapshotMeta();
  }
  firstIndex(): number {
    return this.pendingReset ? this.pendingReset.index + 1 : this.view.firstIndex();
  }
  lastIndex(): number {
    return this.pendingReset ? this.pendingReset.index : this.view.lastIndex();
  }
  term(index: number): number | undefined {
    if (this.pendingReset) return index === this.pendingReset.index ? this.pendingReset.term : undefined;
    return this.view.term(index);
  }
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    if (this.pendingReset) throw new Error('sim log: entries read during a reset');
    return this.view.entries(lo, hi, maxBytes);
  }

  write(hard: HardState | null, entries: Entry[], done: (err: Error | null) => void): void {
    if (this.inflight) throw new Error('sim log: overlapping writes');
    if (this.pendingReset) throw new Error('sim log: write during a reset');
    this.inflight = { hard, entries };
    const [lo, hi] = this.disk.latencyMs;
    this.host.schedule(lo + this.host.rng.next() * (hi - lo), () => {
      if (!this.host.alive()) return;
      this.inflight = null;
      if (hard) this.disk.hard = { ...hard };
      this.disk.log.append(entries);
      done(null);
    });
  }

  /** At a crash: a write in flight may have reached the disk in part (the hard state first, then entries). */
  tearInflight(): void {
    const w = this.inflight;
    this.inflight = null;
    if (!w) return;
    const steps = (w.hard ? 1 : 0) + w.entries.length;
    const cut = this.host.rng.int(0, steps + 1);
    let k = cut;
    if (w.hard) {
      if (k === 0) return;
      this.disk.hard = { ...w.hard };
      k--;
    }
    if (k > 0) this.disk.log.append(w.entries.slice(0, k));
  }

  snapshotSaved(meta: SnapshotMeta, compactTo: number): void {
    this.disk.log.setSnapshot(meta);
    this.disk.log.compact(Math.min(compactTo, meta.index));
  }

  beginReset(meta: SnapshotMeta): void {
    this.pendingReset = meta;
  }

  commitReset(meta: SnapshotMeta, done: (err: Error | null) => void): void {
    const [lo, hi] = this.disk.latencyMs;
    this.host.schedule(lo + this.host.rng.next() * (hi - lo), () => {
      if (!this.host.alive()) return;
      this.disk.log.applySnapshot(meta);
      this.pendingReset = null;
      done(null);
    });
  }
}

interface SimStaged extends StagedSnapshot {
  image: SmImage;
}

export interface SmObserver {
  onApply(node: NodeId, e: Entry, hashAfter: number): void;
}

export class SimStateMachine implements ReplicaStateMachine<number> {
  state: SmImage;

  constructor(
    private readonly id: NodeId,
    private readonly disk: SimDisk,
    private readonly host: SimHost,
    private readonly observer: SmObserver,
    private readonly fetchFrom: (from: NodeId, meta: SnapshotMeta, done: (err: Error | null, s?: { meta: SnapshotMeta; image: SmImage }) => void) => void,
  ) {
    this.state = { ...disk.snapshot.image };
  }

  apply(entries: readonly Entry[]): number[] {
    const out: number[] = [];
    for (const e of entries) {
      this.state.hash = mixHash(this.state.hash, e);
      this.state.commands++;
      this.observer.onApply(this.id, e, this.state.hash);
      out.push(this.state.hash);
    }
    return out;
  }

  saveSnapshot(meta: SnapshotMeta, done: (err: Error | null) => void): void {
    const image = { ...this.state };
    const [lo, hi] = this.disk.latencyMs;
    this.host.schedule(lo + this.host.rng.next() * (hi - lo), () => {
      if (!this.host.alive()) return;
      // Only a newer image replaces the durable one (an install may have overtaken this save).
      if (meta.index > this.disk.snapshot.meta.index) this.disk.snapshot = { meta, image };
      done(null);
    });
  }

  fetchSnapshot(from: NodeId, meta: SnapshotMeta, done: (err: Error | null, staged?: StagedSnapshot) => void): void {
    this.fetchFrom(from, meta, (err, s) => {
      if (!this.host.alive()) return;
      if (err || !s) return done(err ?? new Error('fetch failed'));
      const staged: SimStaged = { meta: s.meta, image: s.image };
      done(null, staged);
    });
  }

  installSnapshot(staged: StagedSnapshot, done: (err: Error | null) => void): void {
    const s = staged as SimStaged;
    this.state = { ...s.image };
    const [lo, hi] = this.disk.latencyMs;
    this.host.schedule(lo + this.host.rng.next() * (hi - lo), () => {
      if (!this.host.alive()) return;
      this.disk.snapshot = { meta: s.meta, image: { ...s.image } };
      done(null);
    });
  }

  discardSnapshot(): void {}
}
