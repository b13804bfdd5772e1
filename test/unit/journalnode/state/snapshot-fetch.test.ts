// The snapshot fetch loop over in-memory sources and sinks: chunks reassemble the file, reused files are not
// transferred, and a bad chunk (wrong CRC, too long, lost) aborts the staging and reports once.

import zlib from 'node:zlib';
import { expect } from 'chai';
import { fetchSnapshot } from '../../../../journalnode/state/snapshot-fetch.js';
import type {
  FetchSink,
  FetchSource,
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
    write: (f, off, b) => {
      const buf = staged.get(f.file) ?? new Uint8Array(f.sizeBytes);
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
