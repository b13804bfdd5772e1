// The snapshot fetch loop over in-memory sources and sinks: chunks reassemble the file, reused files are not
// transferred, a bad chunk (wrong CRC, too long, lost) aborts the staging and reports once; and against a peer
// that replaces its snapshot while the follower reads it (as a leader taking snapshots often and keeping few
// does): the fetch moves to the newest one, keeps what it staged that the newer one holds, still checks every
// file, and fails against a peer that replaces faster than a chunk travels.

import zlib from 'node:zlib';
import { expect } from 'chai';
import { PurgedError } from '../../../../src/errors.js';
import { MAX_IDLE_RESTARTS, fetchSnapshot } from '../../../../journalnode/state/snapshot-fetch.js';
import type {
  FetchSink,
  FetchSource,
  FetchStats,
  ManifestSummary,
  SnapshotFileRef,
} from '../../../../journalnode/state/snapshot-fetch.js';

const bytes = (s: string) => new TextEncoder().encode(s);
const ref = (file: string, data: Uint8Array): SnapshotFileRef => ({
  jid: 'ns1',
  file,
  sizeBytes: data.byteLength,
  crc32: zlib.crc32(data),
});

function memorySink(local: Map<string, Uint8Array>) {
  const staged = new Map<string, Uint8Array>();
  const log: string[] = [];
  const sink: FetchSink = {
    begin: (index) => log.push(`begin ${index}`),
    reuse: (f) => {
      const l = local.get(f.file);
      if (!l || l.byteLength < f.sizeBytes || zlib.crc32(l.subarray(0, f.sizeBytes)) !== f.crc32) return false;
      staged.set(f.file, l.subarray(0, f.sizeBytes));
      return true;
    },
    // A file grows as its bytes come: a file resumed after a restart continues its own copy.
    write: (f, off, b) => {
      const old = staged.get(f.file) ?? new Uint8Array(0);
      expect(off, `${f.file} continues where its staged bytes end`).to.equal(old.byteLength);
      const buf = new Uint8Array(off + b.byteLength);
      buf.set(old);
      buf.set(b, off);
      staged.set(f.file, buf);
    },
    endFile: (f, cb) => {
      log.push(`end ${f.file}`);
      cb(null);
    },
    finish: (cb) => {
      log.push('finish');
      cb(null);
    },
    drop: (f) => {
      log.push(`drop ${f.file}`);
      staged.delete(f.file);
    },
    abort: () => {
      log.push('abort');
      staged.clear();
    },
  };
  return { sink, staged, log };
}

function run(
  files: Record<string, Uint8Array>,
  opts: {
    local?: Map<string, Uint8Array>;
    tamper?: (file: string, off: number, b: Uint8Array) => Uint8Array | Error;
  } = {},
) {
  const m: ManifestSummary = { index: 7, files: Object.entries(files).map(([n, d]) => ref(n, d)) };
  let chunks = 0;
  const source: FetchSource<ManifestSummary> = {
    manifest: (_min, cb) => cb(null, m),
    chunk: (_i, f, off, len, cb) => {
      chunks++;
      const b = files[f.file]!.subarray(off, off + len);
      const t = opts.tamper ? opts.tamper(f.file, off, b) : b;
      if (t instanceof Error) cb(t);
      else cb(null, t);
    },
  };
  const s = memorySink(opts.local ?? new Map());
  let result: { err: Error | null; calls: number } = { err: null, calls: 0 };
  fetchSnapshot({ from: 'n1', minIndex: 5, maxChunkBytes: 4, source, sink: s.sink, summarize: (x) => x }, (err) => {
    result = { err, calls: result.calls + 1 };
  });
  return { ...s, chunks, result };
}

describe('snapshot fetch loop', () => {
  const a = bytes('finalized segment bytes');
  const b = bytes('in-progress segment');

  it('reassembles every file from chunks of at most maxChunkBytes, and reuses a local copy with the same prefix', () => {
    const r = run({ a, b }, { local: new Map([['a', a]]) });
    expect(r.result).to.deep.equal({ err: null, calls: 1 });
    expect(r.chunks, 'only b was transferred').to.equal(Math.ceil(b.byteLength / 4));
    expect(Buffer.from(r.staged.get('b')!).toString()).to.equal('in-progress segment');
    expect(r.log).to.deep.equal(['begin 7', 'end b', 'finish']);
  });

  for (const [name, tamper] of [
    [
      'a corrupted chunk (CRC mismatch)',
      (f: string, off: number, x: Uint8Array) =>
        f === 'b' && off === 4 ? Uint8Array.from(x, (v, i) => (i === 0 ? v ^ 1 : v)) : x,
    ],
    [
      'a chunk longer than asked',
      (f: string, off: number, x: Uint8Array) => (f === 'b' && off === 8 ? new Uint8Array(9) : x),
    ],
    ['a lost chunk', (f: string, off: number, x: Uint8Array) => (f === 'b' && off === 8 ? new Error('timeout') : x)],
  ] as const) {
    it(`${name}: the staging is aborted and the error reported once`, () => {
      const r = run({ a, b }, { tamper });
      expect(r.result.calls).to.equal(1);
      expect(r.result.err).to.be.instanceOf(Error);
      expect(r.log[r.log.length - 1]).to.equal('abort');
      expect(r.staged.size).to.equal(0);
    });
  }

  it('a manifest older than asked is refused before anything is staged', () => {
    let err: Error | null = null;
    const s = memorySink(new Map());
    fetchSnapshot(
      {
        from: 'n1',
        minIndex: 9,
        maxChunkBytes: 4,
        summarize: (x: ManifestSummary) => x,
        sink: s.sink,
        source: { manifest: (_m, cb) => cb(null, { index: 7, files: [] }), chunk: () => {} },
      },
      (e) => (err = e),
    );
    expect(err).to.match(/older than 9/);
    expect(s.log).to.deep.equal([]);
  });
});

const CHUNK_BYTES = 4;

/** Version v of the peer's data: what its snapshot 10 + v holds, file by file. */
type Version = Map<string, Uint8Array>;

/** A growing journal: a big finalized segment, one more small finalized one every 4 versions, a growing tail. */
function journal(v: number, bigBytes: number): Version {
  const files: Version = new Map();
  // Finalized at version 2 into 'tail0': the file the first manifests named goes away.
  if (v < 2) files.set('early', new TextEncoder().encode('early in-progress'));
  else files.set('tail0', new TextEncoder().encode('early in-progress, closed'));
  files.set(
    'big',
    Uint8Array.from({ length: bigBytes }, (_, i) => (i * 7) % 251),
  );
  for (let i = 0; i < Math.floor(v / 4); i++) files.set(`fin_${i}`, new TextEncoder().encode(`final ${i} `));
  files.set(
    'open',
    Uint8Array.from({ length: 10 + v }, (_, i) => 65 + (i % 26)),
  );
  return files;
}

const summary = (index: number, files: Version): ManifestSummary => ({
  index,
  files: [...files].map(([file, d]) => ({ jid: 'ns1', file, sizeBytes: d.byteLength, crc32: zlib.crc32(d) })),
});

/**
 * A peer holding its `keep` newest snapshots that takes a new one after every `replaceEvery` chunks it
 * serves (or before every chunk: 0); a chunk of one it no longer holds is refused PURGED, as the store does.
 */
function replacingPeer(o: { replaceEvery: number; keep: number; version: (v: number) => Version }) {
  let newest = 0;
  const held = new Map<number, Version>([[10, o.version(0)]]);
  let servedSinceReplace = 0;
  const replace = () => {
    newest++;
    held.set(10 + newest, o.version(newest));
    for (const index of held.keys()) if (index <= 10 + newest - o.keep) held.delete(index);
  };
  const chunksOf = new Map<string, number>();
  const source: FetchSource<ManifestSummary> = {
    manifest: (_min, cb) => cb(null, summary(10 + newest, held.get(10 + newest)!)),
    chunk: (index, f, off, len, cb) => {
      if (servedSinceReplace >= o.replaceEvery) {
        replace();
        servedSinceReplace = 0;
      }
      const files = held.get(index);
      if (!files) return cb(new PurgedError(`snapshot ${index} is not held here`));
      chunksOf.set(f.file, (chunksOf.get(f.file) ?? 0) + 1);
      servedSinceReplace++;
      cb(null, files.get(f.file)!.slice(off, off + len));
    },
  };
  return { source, held, chunksOf, newestIndex: () => 10 + newest };
}

function fetchFrom(source: FetchSource<ManifestSummary>) {
  const s = memorySink(new Map());
  const results: { err: Error | null; manifest?: ManifestSummary; stats?: FetchStats }[] = [];
  fetchSnapshot(
    { from: 'n1', minIndex: 10, maxChunkBytes: CHUNK_BYTES, source, sink: s.sink, summarize: (x) => x },
    (err, manifest, stats) => results.push({ err, manifest, stats }),
  );
  return { ...s, results };
}

describe('snapshot fetch while the peer replaces its snapshot', () => {
  it('moves to the newest snapshot, keeps the files it holds unchanged, and stages exactly its files', () => {
    // 'big' takes 10 chunks; the snapshot being read is gone 6 chunks after it was taken.
    const peer = replacingPeer({ replaceEvery: 3, keep: 2, version: (v) => journal(v, 40) });
    const r = fetchFrom(peer.source);
    expect(r.results).to.have.length(1);
    const { err, manifest, stats } = r.results[0]!;
    expect(err).to.equal(null);
    expect(stats!.restarts, 'the peer replaced the snapshot mid-fetch').to.be.greaterThan(0);
    // What is staged is the snapshot the fetch ended with, byte for byte, and nothing else.
    const expected = peer.held.get(manifest!.index)!;
    expect([...r.staged.keys()].sort()).to.deep.equal([...expected.keys()].sort());
    for (const [file, data] of expected)
      expect(Buffer.from(r.staged.get(file)!).equals(Buffer.from(data))).to.equal(true);
    expect(r.log, 'the file the newer snapshots renamed was dropped').to.include('drop early');
    // Kept across the restarts: 'big' went over the wire once.
    expect(peer.chunksOf.get('big')).to.equal(10);
    expect(r.log[r.log.length - 1]).to.equal('finish');
  });

  it('a file larger than the peer keeps a snapshot for continues where it was after each restart', () => {
    // 'big' takes 100 chunks, each snapshot lives 4: only a resumed file ever completes.
    const peer = replacingPeer({ replaceEvery: 2, keep: 2, version: (v) => journal(v, 400) });
    const r = fetchFrom(peer.source);
    const { err, manifest, stats } = r.results[0]!;
    expect(err).to.equal(null);
    expect(stats!.restarts).to.be.greaterThan(20);
    expect(peer.chunksOf.get('big')).to.equal(100);
    const expected = peer.held.get(manifest!.index)!;
    for (const [file, data] of expected)
      expect(Buffer.from(r.staged.get(file)!).equals(Buffer.from(data))).to.equal(true);
  });

  it('a file rewritten under the same name fails the CRC check at its end: resuming weakens no check', () => {
    // From version 1 the tail holds other bytes under the same name (and is longer).
    const version = (v: number): Version => {
      const files: Version = new Map([['open', Uint8Array.from({ length: 40 + v }, (_, i) => (v === 0 ? 1 : 2) + i)]]);
      return files;
    };
    const peer = replacingPeer({ replaceEvery: 3, keep: 1, version });
    const r = fetchFrom(peer.source);
    expect(r.results).to.have.length(1);
    expect(r.results[0]!.err?.message).to.match(/CRC of the fetched file does not match/);
    expect(r.log[r.log.length - 1]).to.equal('abort');
    expect(r.staged.size).to.equal(0);
  });

  it('a peer that replaces its snapshot before every chunk fails the fetch after a bounded number of restarts', () => {
    const peer = replacingPeer({ replaceEvery: 0, keep: 1, version: (v) => journal(v, 40) });
    const r = fetchFrom(peer.source);
    expect(r.results).to.have.length(1);
    expect(r.results[0]!.err).to.be.instanceOf(Error);
    expect(r.results[0]!.err!.message).to.match(
      /not held here \(gave up after \d+ restarts, \d+ in a row with no progress\)/,
    );
    expect(r.log.filter((l) => l === 'abort')).to.have.length(1);
    expect(r.staged.size).to.equal(0);
    // One chunk asked of the first manifest and of each newer one; the restart after the last gives up.
    expect(peer.newestIndex() - 10, 'chunks asked').to.equal(MAX_IDLE_RESTARTS + 1);
    expect(r.results[0]!.stats).to.equal(undefined);
  });
});
