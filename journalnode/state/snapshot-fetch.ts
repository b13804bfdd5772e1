// Pulling a snapshot from a peer, chunk by chunk, whatever the bytes come from and go to: the journal state
// machine runs it over HTTP into a staging directory, the simulator over its simulated network into memory,
// so the seeded simulation exercises this very loop. The order: the manifest; one validation of it, before
// anything is written; then per file a reuse check (a local copy with the same name and the same prefix CRC
// is the same data: finalized segments never change, in-progress ones only grow), or its chunks, one at a
// time, with a running CRC checked against the manifest, and a durable end of the file; then a durable finish.
// A chunk refused PURGED (the peer replaced that snapshot meanwhile) sends the loop to the peer's newest
// manifest, keeping what it staged that the newer snapshot holds. Any other error aborts the sink, so nothing
// half-staged survives, and is reported once.

import zlib from 'node:zlib';
import { QjmError } from '../../src/errors.js';

/** One file of a snapshot, as its manifest describes it. */
export interface SnapshotFileRef {
  jid: string;
  file: string;
  sizeBytes: number;
  /** CRC32 of the file's first sizeBytes bytes. */
  crc32: number;
}

/** What the fetch needs to know of a manifest. */
export interface ManifestSummary {
  index: number;
  files: SnapshotFileRef[];
}

export interface FetchSource<M> {
  /** The peer's newest snapshot at index >= minIndex. */
  manifest(minIndex: number, cb: (err: Error | null, manifest?: M) => void): void;
  /** Up to lengthBytes bytes of the file in snapshot `index`, from offsetBytes. */
  chunk(
    index: number,
    f: SnapshotFileRef,
    offsetBytes: number,
    lengthBytes: number,
    cb: (err: Error | null, bytes?: Uint8Array) => void,
  ): void;
}

export interface FetchSink {
  /** Starts staging snapshot `index`. */
  begin(index: number): void;
  /** Stages a local copy of f when there is one with the same name and prefix CRC; false when there is none. */
  reuse(f: SnapshotFileRef): boolean;
  /** Appends to f's staged bytes (offsetBytes is where they end: a resumed file continues its own copy). */
  write(f: SnapshotFileRef, offsetBytes: number, bytes: Uint8Array): void;
  /** Every byte of f is written: make it durable. */
  endFile(f: SnapshotFileRef, cb: (err: Error | null) => void): void;
  /** Every file is staged: make the staging durable. */
  finish(cb: (err: Error | null) => void): void;
  /** Drops what was staged of f, whole or in part (a newer manifest does not hold it as staged). */
  drop(f: SnapshotFileRef): void;
  /** Drops whatever was staged. */
  abort(): void;
}

export interface FetchStats {
  fetchedBytes: number;
  reusedBytes: number;
  chunks: number;
  /** Times the fetch moved to a newer manifest because the peer replaced the snapshot it was reading. */
  restarts: number;
}

/**
 * Bounds on moving to a newer manifest: a restart after which not a byte was fetched or reused before the
 * next one is idle, and more than MAX_IDLE_RESTARTS in a row fail the fetch (the peer replaces its snapshot
 * faster than one chunk travels); MAX_RESTARTS bounds them all (each but the idle ones follows a chunk, so a
 * fetch that needs more spans that many of the peer's snapshots: the Raft layer starts another).
 */
export const MAX_IDLE_RESTARTS = 3;
export const MAX_RESTARTS = 100;

/**
 * Why the fetch cannot stage this manifest, or null; it runs before the sink writes anything. (The server's
 * manifests are also checked in full as they are decoded: snapshot-store.ts, manifestProblem.)
 */
export function fetchProblem(m: ManifestSummary, minIndex: number): string | null {
  if (m.index < minIndex) return `snapshot ${m.index} is older than ${minIndex}`;
  return null;
}

export interface FetchOptions<M> {
  from: string;
  minIndex: number;
  maxChunkBytes: number;
  source: FetchSource<M>;
  sink: FetchSink;
  summarize(m: M): ManifestSummary;
}

/** Fetches the peer's snapshot into the sink; `done` is called once, with the manifest on success. */
export function fetchSnapshot<M>(
  options: FetchOptions<M>,
  done: (err: Error | null, manifest?: M, stats?: FetchStats) => void,
): void {
  new SnapshotFetch(options, done).start();
}

const keyOf = (f: SnapshotFileRef) => `${f.jid}/${f.file}`;

/** A chunk refusal that names a snapshot the peer no longer holds (a newer one replaced it). */
function isReplaced(e: Error): boolean {
  return e instanceof QjmError && e.errorName === 'PURGED';
}

/**
 * One fetch in progress: the manifest, then each file in turn, then the sink's finish. After a restart the
 * files staged whole for the older manifest that the newer one lists with the same size and CRC are kept, and
 * the file being fetched continues where it was if the newer one lists it at least that long: its running CRC
 * goes on over the older bytes, and the check at its end against the newer manifest's CRC is what says the
 * two agree (a segment rewritten under the same name fails it, and the fetch with it).
 */
class SnapshotFetch<M> {
  private readonly stats: FetchStats = { fetchedBytes: 0, reusedBytes: 0, chunks: 0, restarts: 0 };
  private finished = false;
  private manifest: M | undefined;
  private m: ManifestSummary = { index: 0, files: [] };
  private next = 0;
  /** Files staged whole (fetched, or reused) for the current manifest, by jid/file. */
  private readonly staged = new Map<string, SnapshotFileRef>();
  /** The file whose chunks are being fetched: f's bytes before offset are staged, with that CRC. */
  private current: { f: SnapshotFileRef; offset: number; crc: number } | null = null;
  /** Files partly staged when a restart came (the one being fetched then), by jid/file: where each goes on. */
  private readonly partial = new Map<string, { f: SnapshotFileRef; offset: number; crc: number }>();
  private progressed = false;
  private idleRestarts = 0;
  /** The sink began staging: a failure from here aborts it. */
  private begun = false;

  constructor(
    private readonly options: FetchOptions<M>,
    private readonly done: (err: Error | null, manifest?: M, stats?: FetchStats) => void,
  ) {}

  start(): void {
    this.fetchManifest((m) => {
      this.begun = true;
      if (this.attempt(() => this.options.sink.begin(m.index))) this.nextFile();
    });
  }

  /** The peer's newest manifest at minIndex or above, checked before it is used. */
  private fetchManifest(then: (m: ManifestSummary) => void): void {
    const { options } = this;
    options.source.manifest(options.minIndex, (err, manifest) => {
      if (this.finished) return;
      if (err || manifest === undefined) return this.fail(err ?? new Error(`peer ${options.from} sent no manifest`));
      const m = options.summarize(manifest);
      const problem = fetchProblem(m, options.minIndex);
      if (problem) return this.fail(new Error(`snapshot manifest from ${options.from}: ${problem}`));
      this.manifest = manifest;
      this.m = m;
      this.next = 0;
      then(m);
    });
  }

  /** The peer replaced the snapshot being read: go on toward its newest one, within the bounds. */
  private restart(cause: Error): void {
    this.idleRestarts = this.progressed ? 0 : this.idleRestarts + 1;
    this.progressed = false;
    this.stats.restarts++;
    if (this.idleRestarts > MAX_IDLE_RESTARTS || this.stats.restarts > MAX_RESTARTS) {
      const why = this.idleRestarts > MAX_IDLE_RESTARTS ? `${this.idleRestarts} in a row with no progress` : 'in all';
      return this.fail(new Error(`${cause.message} (gave up after ${this.stats.restarts} restarts, ${why})`));
    }
    this.fetchManifest((m) => {
      if (this.attempt(() => this.retarget(m))) this.nextFile();
    });
  }

  /** Keeps what is staged that the newer manifest m holds; drops the rest from the sink. */
  private retarget(m: ManifestSummary): void {
    const wanted = new Map(m.files.map((f) => [keyOf(f), f]));
    for (const [key, f] of this.staged) {
      const w = wanted.get(key);
      if (w && w.sizeBytes === f.sizeBytes && w.crc32 >>> 0 === f.crc32 >>> 0) continue;
      this.staged.delete(key);
      this.options.sink.drop(f);
    }
    if (this.current !== null) this.partial.set(keyOf(this.current.f), this.current);
    this.current = null;
    for (const [key, p] of this.partial) {
      const w = wanted.get(key);
      if (w && w.sizeBytes >= p.offset) continue;
      this.partial.delete(key);
      this.options.sink.drop(p.f);
    }
  }

  private fail(e: Error): void {
    if (this.finished) return;
    this.finished = true;
    if (this.begun) this.options.sink.abort();
    this.done(e);
  }

  /** Runs fn; a throw fails the fetch (false). */
  private attempt(fn: () => void): boolean {
    try {
      fn();
      return true;
    } catch (e) {
      this.fail(e as Error);
      return false;
    }
  }

  private nextFile(): void {
    // Reused and kept files complete at once: loop over them rather than recurse.
    for (;;) {
      if (this.finished) return;
      if (this.next >= this.m.files.length) return this.finish();
      const f = this.m.files[this.next++]!;
      const key = keyOf(f);
      if (this.staged.has(key)) continue;
      const resume = this.partial.get(key);
      if (resume) {
        this.partial.delete(key);
        return this.fetchFile(f, resume.offset, resume.crc);
      }
      let reused = false;
      if (!this.attempt(() => (reused = this.options.sink.reuse(f)))) return;
      if (!reused) return this.fetchFile(f, 0, 0);
      this.staged.set(key, f);
      this.progressed = true;
      this.stats.reusedBytes += f.sizeBytes;
    }
  }

  /** The chunks of f from `offset`, one at a time, with the running CRC of what came before. */
  private fetchFile(f: SnapshotFileRef, offset: number, crc: number): void {
    const { options } = this;
    if (this.finished) return;
    this.current = { f, offset, crc };
    if (offset >= f.sizeBytes) {
      if (crc >>> 0 !== f.crc32 >>> 0)
        return this.fail(new Error(`${f.jid}/${f.file}: CRC of the fetched file does not match the manifest`));
      options.sink.endFile(f, (e) => {
        if (e) return this.fail(e);
        this.current = null;
        this.staged.set(keyOf(f), f);
        this.nextFile();
      });
      return;
    }
    const length = Math.min(options.maxChunkBytes, f.sizeBytes - offset);
    options.source.chunk(this.m.index, f, offset, length, (e, bytes) => {
      if (this.finished) return;
      if (e && isReplaced(e)) return this.restart(e);
      if (e || bytes === undefined) return this.fail(e ?? new Error(`peer ${options.from} sent no chunk`));
      if (bytes.byteLength === 0 || bytes.byteLength > length) {
        return this.fail(
          new Error(
            `peer ${options.from} returned ${bytes.byteLength} bytes for ${f.jid}/${f.file} at ${offset} (asked ${length})`,
          ),
        );
      }
      if (!this.attempt(() => options.sink.write(f, offset, bytes))) return;
      this.progressed = true;
      this.stats.chunks++;
      this.stats.fetchedBytes += bytes.byteLength;
      this.fetchFile(f, offset + bytes.byteLength, zlib.crc32(bytes, crc));
    });
  }

  private finish(): void {
    this.options.sink.finish((e) => {
      if (e) return this.fail(e);
      if (this.finished) return;
      this.finished = true;
      this.done(null, this.manifest, this.stats);
    });
  }
}
