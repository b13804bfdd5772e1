// Pulling a snapshot from a peer, chunk by chunk, whatever the bytes come from and go to: the journal state
// machine runs it over HTTP into a staging directory, the simulator over its simulated network into memory,
// so the seeded simulation exercises this very loop. The order: the manifest; one validation of it, before
// anything is written; then per file a reuse check (a local copy with the same name and the same prefix CRC
// is the same data: finalized segments never change, in-progress ones only grow), or its chunks, one at a
// time, with a running CRC checked against the manifest, and a durable end of the file; then a durable finish.
// Any error aborts the sink, so nothing half-staged survives, and is reported once.

import zlib from 'node:zlib';

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
  write(f: SnapshotFileRef, offsetBytes: number, bytes: Uint8Array): void;
  /** Every byte of f is written: make it durable. */
  endFile(f: SnapshotFileRef, cb: (err: Error | null) => void): void;
  /** Every file is staged: make the staging durable. */
  finish(cb: (err: Error | null) => void): void;
  /** Drops whatever was staged. */
  abort(): void;
}

export interface FetchStats {
  fetchedBytes: number;
  reusedBytes: number;
  chunks: number;
}

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

/** One fetch in progress: the manifest, then each file in turn, then the sink's finish. */
class SnapshotFetch<M> {
  private readonly stats: FetchStats = { fetchedBytes: 0, reusedBytes: 0, chunks: 0 };
  private finished = false;
  private manifest: M | undefined;
  private m: ManifestSummary = { index: 0, files: [] };
  private next = 0;

  constructor(
    private readonly options: FetchOptions<M>,
    private readonly done: (err: Error | null, manifest?: M, stats?: FetchStats) => void,
  ) {}

  start(): void {
    const { options } = this;
    options.source.manifest(options.minIndex, (err, manifest) => {
      if (err || manifest === undefined) return this.done(err ?? new Error(`peer ${options.from} sent no manifest`));
      const m = options.summarize(manifest);
      const problem = fetchProblem(m, options.minIndex);
      if (problem) return this.done(new Error(`snapshot manifest from ${options.from}: ${problem}`));
      this.manifest = manifest;
      this.m = m;
      if (this.attempt(() => options.sink.begin(m.index))) this.nextFile();
    });
  }

  private fail(e: Error): void {
    if (this.finished) return;
    this.finished = true;
    this.options.sink.abort();
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
    // Reused files complete at once: loop over them rather than recurse.
    for (;;) {
      if (this.finished) return;
      if (this.next >= this.m.files.length) return this.finish();
      const f = this.m.files[this.next++]!;
      let reused = false;
      if (!this.attempt(() => (reused = this.options.sink.reuse(f)))) return;
      if (!reused) return this.fetchFile(f, 0, 0);
      this.stats.reusedBytes += f.sizeBytes;
    }
  }

  /** The chunks of f from `offset`, one at a time, with the running CRC of what came before. */
  private fetchFile(f: SnapshotFileRef, offset: number, crc: number): void {
    const { options } = this;
    if (this.finished) return;
    if (offset >= f.sizeBytes) {
      if (crc >>> 0 !== f.crc32 >>> 0)
        return this.fail(new Error(`${f.jid}/${f.file}: CRC of the fetched file does not match the manifest`));
      options.sink.endFile(f, (e) => (e ? this.fail(e) : this.nextFile()));
      return;
    }
    const length = Math.min(options.maxChunkBytes, f.sizeBytes - offset);
    options.source.chunk(this.m.index, f, offset, length, (e, bytes) => {
      if (this.finished) return;
      if (e || bytes === undefined) return this.fail(e ?? new Error(`peer ${options.from} sent no chunk`));
      if (bytes.byteLength === 0 || bytes.byteLength > length) {
        return this.fail(
          new Error(
            `peer ${options.from} returned ${bytes.byteLength} bytes for ${f.jid}/${f.file} at ${offset} (asked ${length})`,
          ),
        );
      }
      if (!this.attempt(() => options.sink.write(f, offset, bytes))) return;
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
