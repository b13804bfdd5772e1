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
  chunk(index: number, f: SnapshotFileRef, offsetBytes: number, lengthBytes: number, cb: (err: Error | null, bytes?: Uint8Array) => void): void;
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

export function fetchSnapshot<M>(
  o: {
    from: string;
    minIndex: number;
    maxChunkBytes: number;
    source: FetchSource<M>;
    sink: FetchSink;
    summarize(m: M): ManifestSummary;
  },
  done: (err: Error | null, manifest?: M, stats?: FetchStats) => void,
): void {
  const stats: FetchStats = { fetchedBytes: 0, reusedBytes: 0, chunks: 0 };
  let finished = false;
  const fail = (e: Error): void => {
    if (finished) return;
    finished = true;
    o.sink.abort();
    done(e);
  };
  const attempt = (fn: () => void): boolean => {
    try {
      fn();
      return true;
    } catch (e) {
      fail(e as Error);
      return false;
    }
  };

  o.source.manifest(o.minIndex, (err, manifest) => {
    if (err || manifest === undefined) return done(err ?? new Error(`peer ${o.from} sent no manifest`));
    const m = o.summarize(manifest);
    const problem = fetchProblem(m, o.minIndex);
    if (problem) return done(new Error(`snapshot manifest from ${o.from}: ${problem}`));
    if (!attempt(() => o.sink.begin(m.index))) return;
    let next = 0;

    const nextFile = (): void => {
      // Reused files complete at once: loop over them rather than recurse.
      for (;;) {
        if (finished) return;
        if (next >= m.files.length) {
          o.sink.finish((e) => {
            if (e) return fail(e);
            if (finished) return;
            finished = true;
            done(null, manifest, stats);
          });
          return;
        }
        const f = m.files[next++]!;
        let reused = false;
        if (!attempt(() => (reused = o.sink.reuse(f)))) return;
        if (!reused) return fetchFile(f);
        stats.reusedBytes += f.sizeBytes;
      }
    };

    const fetchFile = (f: SnapshotFileRef): void => {
      let offset = 0;
      let crc = 0;
      const nextChunk = (): void => {
        if (finished) return;
        if (offset >= f.sizeBytes) {
          if (crc >>> 0 !== f.crc32 >>> 0) return fail(new Error(`${f.jid}/${f.file}: CRC of the fetched file does not match the manifest`));
          o.sink.endFile(f, (e) => (e ? fail(e) : nextFile()));
          return;
        }
        const length = Math.min(o.maxChunkBytes, f.sizeBytes - offset);
        o.source.chunk(m.index, f, offset, length, (e, bytes) => {
          if (finished) return;
          if (e || bytes === undefined) return fail(e ?? new Error(`peer ${o.from} sent no chunk`));
          if (bytes.byteLength === 0 || bytes.byteLength > length) {
            return fail(new Error(`peer ${o.from} returned ${bytes.byteLength} bytes for ${f.jid}/${f.file} at ${offset} (asked ${length})`));
          }
          if (!attempt(() => o.sink.write(f, offset, bytes))) return;
          crc = zlib.crc32(bytes, crc);
          offset += bytes.byteLength;
          stats.chunks++;
          stats.fetchedBytes += bytes.byteLength;
          nextChunk();
        });
      };
      nextChunk();
    };

    nextFile();
  });
}
