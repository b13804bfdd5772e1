// Simulated durable state and the Replica's environment over it: a disk whose writes become durable only
// when they complete (a crash loses what is in flight, possibly leaving a torn prefix), a hash-chain state
// machine that also keeps journal-like files (sim-files.ts), snapshots saved with latency, and snapshot
// install through the server's own chunked fetch loop (journalnode/state/snapshot-fetch.ts) over in-memory
// sources and sinks.

import { MemoryStorage } from '../../src/raft/memory-storage.js';
import type { ConfState, Entry, HardState, NodeId, SnapshotMeta } from '../../src/raft/types.js';
import { NONE } from '../../src/raft/types.js';
import type { ReplicaLog, ReplicaStateMachine, StagedSnapshot } from '../../src/replica/env.js';
import type { Prng } from '../../src/prng.js';
import { fetchSnapshot } from '../../journalnode/state/snapshot-fetch.js';
import type {
  FetchSink,
  FetchSource,
  ManifestSummary,
  SnapshotFileRef,
} from '../../journalnode/state/snapshot-fetch.js';
import { SimFiles } from './sim-files.js';
import type { FileImage, FileLayout } from './sim-files.js';

export interface SmImage {
  hash: number;
  commands: number;
  files: readonly FileImage[];
}

export const EMPTY_IMAGE: SmImage = { hash: 0x811c9dc5, commands: 0, files: [] };

export interface SimSnapshot {
  meta: SnapshotMeta;
  image: SmImage;
}

/** A snapshot's manifest as the source serves it: the metadata, the state machine's own fields, the files. */
export interface SimManifest {
  meta: SnapshotMeta;
  hash: number;
  commands: number;
  files: SnapshotFileRef[];
}

const JID = 'sim';

export function manifestOf(s: SimSnapshot): SimManifest {
  return {
    meta: s.meta,
    hash: s.image.hash,
    commands: s.image.commands,
    files: s.image.files.map((f) => ({ jid: JID, file: f.name, sizeBytes: f.bytes.byteLength, crc32: f.crc32 })),
  };
}

function summarize(m: SimManifest): ManifestSummary {
  return { index: m.meta.index, files: m.files };
}

/** Snapshots kept on disk: the previous one may still be being fetched by a follower. */
const KEEP_SNAPSHOTS = 2;

/** What survives a crash: hard state, log entries, and the snapshots (metadata and image as one unit). */
export class SimDisk {
  hard: HardState = { term: 0, vote: NONE, commit: 0 };
  readonly log: MemoryStorage;
  /** Oldest first; the last is the newest. */
  readonly snapshots: SimSnapshot[];
  /** Latency per write, ms: [min, max). */
  latencyMs: [number, number] = [0.3, 2];

  /** With no bootstrap snapshot: the empty state at index 0 of a node that joins a running cluster. */
  constructor(conf: ConfState, bootstrap: SnapshotMeta | null) {
    this.log = new MemoryStorage(conf);
    this.snapshots = [{ meta: this.log.snapshotMeta(), image: EMPTY_IMAGE }];
    if (bootstrap) {
      this.log.applySnapshot(bootstrap);
      this.snapshots[0] = { meta: bootstrap, image: EMPTY_IMAGE };
      this.hard = { term: bootstrap.term, vote: NONE, commit: bootstrap.index };
    }
  }

  get snapshot(): SimSnapshot {
    return this.snapshots[this.snapshots.length - 1]!;
  }

  /** A snapshot became durable; only a newer one replaces the newest (an install may have overtaken a save). */
  keep(s: SimSnapshot): void {
    if (s.meta.index <= this.snapshot.meta.index) return;
    this.snapshots.push(s);
    if (this.snapshots.length > KEEP_SNAPSHOTS) this.snapshots.shift();
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

function diskDelay(disk: SimDisk, host: SimHost): number {
  const [lo, hi] = disk.latencyMs;
  return lo + host.rng.next() * (hi - lo);
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
    this.host.schedule(diskDelay(this.disk, this.host), () => {
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
    this.host.schedule(diskDelay(this.disk, this.host), () => {
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
  /** A violation the state machine itself found (an install whose files do not fit its state). */
  violate(msg: string): void;
}

/** Where a follower's fetch goes: the simulated network to the peer holding the snapshot. */
export interface SnapshotNet {
  source(to: NodeId, from: NodeId, host: SimHost): FetchSource<SimManifest>;
  maxChunkBytes: number;
  /** A chunk was written into the staging area (the fault injector may crash the node here). */
  chunkWritten(node: NodeId): void;
  installed(node: NodeId, index: number): void;
}

/** The staging area of one fetch: in memory, so a crash (the end of the incarnation) loses it. */
class MemorySink implements FetchSink {
  readonly staged = new Map<string, Uint8Array>();

  constructor(
    private readonly id: NodeId,
    private readonly local: SimFiles,
    private readonly disk: SimDisk,
    private readonly host: SimHost,
    private readonly net: SnapshotNet,
  ) {}

  begin(): void {
    this.staged.clear();
  }
  reuse(f: SnapshotFileRef): boolean {
    const bytes = this.local.reusable(f.file, f.sizeBytes, f.crc32);
    if (!bytes) return false;
    this.staged.set(f.file, bytes);
    return true;
  }
  write(f: SnapshotFileRef, offsetBytes: number, bytes: Uint8Array): void {
    let buf = this.staged.get(f.file);
    if (!buf) {
      buf = new Uint8Array(f.sizeBytes);
      this.staged.set(f.file, buf);
    }
    buf.set(bytes, offsetBytes);
    this.net.chunkWritten(this.id);
  }
  endFile(_f: SnapshotFileRef, cb: (err: Error | null) => void): void {
    this.host.schedule(diskDelay(this.disk, this.host), () => cb(null));
  }
  finish(cb: (err: Error | null) => void): void {
    this.host.schedule(diskDelay(this.disk, this.host), () => cb(null));
  }
  abort(): void {
    this.staged.clear();
  }
}

export class SimStateMachine implements ReplicaStateMachine<number> {
  state: { hash: number; commands: number };
  files: SimFiles;

  constructor(
    private readonly id: NodeId,
    private readonly disk: SimDisk,
    private readonly host: SimHost,
    private readonly observer: SmObserver,
    private readonly layout: FileLayout,
    private readonly net: SnapshotNet,
  ) {
    const im = disk.snapshot.image;
    this.state = { hash: im.hash, commands: im.commands };
    this.files = SimFiles.restore(layout, im.files, im.commands);
  }

  apply(entries: readonly Entry[]): number[] {
    const out: number[] = [];
    for (const e of entries) {
      this.state.hash = mixHash(this.state.hash, e);
      this.state.commands++;
      this.files.append(this.state.commands, e.data);
      this.observer.onApply(this.id, e, this.state.hash);
      out.push(this.state.hash);
    }
    return out;
  }

  saveSnapshot(meta: SnapshotMeta, done: (err: Error | null) => void): void {
    const image: SmImage = { ...this.state, files: this.files.capture() };
    this.host.schedule(diskDelay(this.disk, this.host), () => {
      if (!this.host.alive()) return;
      this.disk.keep({ meta, image });
      done(null);
    });
  }

  fetchSnapshot(from: NodeId, meta: SnapshotMeta, done: (err: Error | null, staged?: StagedSnapshot) => void): void {
    const sink = new MemorySink(this.id, this.files, this.disk, this.host, this.net);
    fetchSnapshot<SimManifest>(
      {
        from,
        minIndex: meta.index,
        maxChunkBytes: this.net.maxChunkBytes,
        source: this.net.source(this.id, from, this.host),
        sink,
        summarize,
      },
      (err, m) => {
        if (!this.host.alive()) return;
        if (err || !m) return done(err ?? new Error('fetch failed'));
        const files = m.files.map((f) => ({ name: f.file, bytes: sink.staged.get(f.file)!, crc32: f.crc32 }));
        const staged: SimStaged = { meta: m.meta, image: { hash: m.hash, commands: m.commands, files } };
        done(null, staged);
      },
    );
  }

  installSnapshot(staged: StagedSnapshot, done: (err: Error | null) => void): void {
    const s = staged as SimStaged;
    const problem = SimFiles.problem(s.image.files, s.image.commands);
    if (problem)
      this.observer.violate(
        `snapshot install on ${this.id}: the files of snapshot ${s.meta.index} do not fit its state: ${problem}`,
      );
    this.state = { hash: s.image.hash, commands: s.image.commands };
    this.files = SimFiles.restore(this.layout, s.image.files, s.image.commands);
    this.host.schedule(diskDelay(this.disk, this.host), () => {
      if (!this.host.alive()) return;
      this.disk.keep({ meta: s.meta, image: s.image });
      this.net.installed(this.id, s.meta.index);
      done(null);
    });
  }

  discardSnapshot(): void {}
}
