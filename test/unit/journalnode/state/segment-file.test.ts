// Journal segment files: create, append, finalize (rename), range reads that start anywhere across the
// sparse index's stride and keep to their bounds, load of an in-progress file cut to an expected size, and
// corruption found in a finalized segment, whether it is loaded or taken on trust and scanned at first read.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { expect } from 'chai';
import {
  encodeRecords,
  finalizedName,
  inProgressName,
  iterateRecords,
  SEGMENT_HEADER_BYTES,
} from '../../../../src/edit-records.js';
import { SegmentCorruptError, SegmentFile } from '../../../../journalnode/state/segment-file.js';
import { nodeFileSystem } from '../../../../src/storage/node-file-system.js';

const LAYOUT = -64;
/** Records of `bytes` each (a recognizable payload per txid), framed as consecutive txids from `first`. */
const recs = (first: number, n: number, bytes = 40) =>
  encodeRecords(
    first,
    Array.from({ length: n }, (_, i) => Buffer.from(`edit-${first + i}:`.padEnd(bytes, '.'))),
  );
const txidsOf = (frames: Buffer) => [...iterateRecords(frames)].map((r) => r.txid);

// Set by the hooks of the outer describe: a fresh directory per test.
let dir: string;

/** An in-progress segment from txid 1 holding `n` records, appended in batches of `batch`. */
function written(n: number, batch = 10, bytes = 40): SegmentFile {
  const seg = SegmentFile.create(nodeFileSystem, dir, 1, LAYOUT);
  for (let t = 1; t <= n; t += batch) {
    const k = Math.min(batch, n - t + 1);
    seg.append(recs(t, k, bytes), k);
  }
  return seg;
}

describe('journal segment file', () => {
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-seg-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  describe('create, append and finalize', createAppendFinalize);
  describe('range reads across the sparse index (a point every 64 KiB)', rangeReads);
  describe('load', loading);
  describe('a corrupt frame in a finalized segment', corruptFrame);
});

function createAppendFinalize(): void {
  it('create: an empty in-progress file holding only the header, named after its first txid', () => {
    const seg = SegmentFile.create(nodeFileSystem, dir, 101, LAYOUT);
    expect(seg.name).to.equal(inProgressName(101));
    expect([seg.firstTxId, seg.lastTxId, seg.txCount, seg.sizeBytes]).to.deep.equal([
      101,
      100,
      0,
      SEGMENT_HEADER_BYTES,
    ]);
    const bytes = fs.readFileSync(path.join(dir, inProgressName(101)));
    expect(bytes.byteLength).to.equal(SEGMENT_HEADER_BYTES);
    expect(seg.crc32).to.equal(zlib.crc32(bytes));
    expect(seg.read(101, 10, 1 << 20).count).to.equal(0);
    seg.close();
  });

  it('append: the file holds the frames verbatim, and size, last txid and CRC follow it', () => {
    const seg = SegmentFile.create(nodeFileSystem, dir, 1, LAYOUT);
    seg.append(recs(1, 3), 3);
    seg.append(recs(4, 2), 2);
    const bytes = fs.readFileSync(seg.path);
    expect(bytes.subarray(SEGMENT_HEADER_BYTES)).to.deep.equal(Buffer.concat([recs(1, 3), recs(4, 2)]));
    expect([seg.lastTxId, seg.sizeBytes, seg.crc32]).to.deep.equal([5, bytes.byteLength, zlib.crc32(bytes)]);
    expect(seg.holdsExactly(4, recs(4, 2), 2)).to.equal(true);
    expect(seg.holdsExactly(4, recs(4, 2, 41), 2), 'same txids, other bytes').to.equal(false);
    seg.close();
  });

  it('a retried batch is recognized by comparing chunk by chunk, wherever it starts, however large', () => {
    const seg = SegmentFile.create(nodeFileSystem, dir, 1, LAYOUT);
    seg.append(recs(1, 1000, 300), 1000); // past several index points
    const big = recs(1001, 5000, 300); // 1.5 MiB: more than one comparison chunk
    seg.append(big, 5000);
    expect(seg.holdsExactly(1001, big, 5000)).to.equal(true);
    expect(seg.holdsExactly(500, recs(500, 10, 300), 10), 'a batch inside the first append').to.equal(true);
    const changed = Buffer.from(big);
    changed[changed.byteLength - 1]! ^= 1; // the last byte of the last record, in the second chunk
    expect(seg.holdsExactly(1001, changed, 5000)).to.equal(false);
    expect(seg.holdsExactly(5990, recs(5990, 20, 300), 20), 'runs past the last txid').to.equal(false);
    seg.close();
  });

  it('finalize: renamed to edits_<first>-<last>, the in-progress name is gone, appends are refused', () => {
    const seg = written(7);
    seg.finalize();
    expect(fs.readdirSync(dir)).to.deep.equal([finalizedName(1, 7)]);
    expect(seg.name).to.equal(finalizedName(1, 7));
    expect(txidsOf(seg.read(1, 100, 1 << 20).frames)).to.deep.equal([1, 2, 3, 4, 5, 6, 7]);
    expect(() => seg.append(recs(8, 1), 1)).to.throw(/append to a closed segment/);
    const empty = SegmentFile.create(nodeFileSystem, dir, 8, LAYOUT);
    expect(() => empty.finalize()).to.throw(/finalizing an empty segment/);
    empty.close();
  });
}

function rangeReads(): void {
  // 1,500 records of ~216 bytes: about 320 KiB, so five index points and reads that start between them.
  const N = 1500;
  const BYTES = 200;
  const frameBytes = recs(1, 1, BYTES).byteLength;
  // The first txid, the last ones, and the txids around each 64 KiB boundary (where index points fall).
  const around = [1, 2, 3, 4].flatMap((m) => {
    const t = Math.ceil((m * 64 * 1024) / frameBytes);
    return [t - 1, t, t + 1, t + 2];
  });
  const starts = [1, 2, ...around, 1000, N - 1, N];

  function checkReads(seg: SegmentFile, where: string): void {
    for (const from of starts) {
      const got = seg.read(from, 50, 1 << 20);
      const want = Math.min(50, N - from + 1);
      expect([got.firstTxId, got.count], `${where}: read from ${from}`).to.deep.equal([from, want]);
      expect(got.frames, `${where}: bytes from ${from}`).to.deep.equal(recs(from, want, BYTES));
    }
  }

  it('from any txid: the frames from exactly there, in an appended, a reloaded and a trusted segment', () => {
    const seg = written(N, 7, BYTES);
    checkReads(seg, 'appended');
    seg.finalize();
    const loaded = SegmentFile.load(nodeFileSystem, dir, finalizedName(1, N), { inProgress: false });
    checkReads(loaded, 'loaded');
    const trusted = SegmentFile.trusted(nodeFileSystem, dir, finalizedName(1, N), {
      firstTxId: 1,
      lastTxId: N,
      layoutVersion: LAYOUT,
      sizeBytes: seg.sizeBytes,
      crc32: seg.crc32,
    });
    checkReads(trusted, 'trusted');
  });

  it('bounds: at most maxTxns, within maxBytes but never empty, nothing outside the segment', () => {
    const seg = written(N, 100, BYTES);
    expect(seg.read(300, 1000, 10 * frameBytes).count, 'byte bound').to.equal(10);
    expect(seg.read(300, 1000, 10 * frameBytes - 1).count, 'one byte short of 10 frames').to.equal(9);
    expect(seg.read(300, 1000, 1).count, 'a bound below one frame still returns one').to.equal(1);
    expect(seg.read(300, 3, 1 << 30).count, 'count bound').to.equal(3);
    expect(seg.read(N - 1, 1000, 1 << 30).count, 'stops at the last txid').to.equal(2);
    expect(seg.read(N + 1, 10, 1 << 20).count, 'past the end').to.equal(0);
    expect(seg.read(0, 10, 1 << 20).count, 'before the start').to.equal(0);
    seg.close();
  });
}

function loading(): void {
  it('an in-progress file cut to the expected size: bytes beyond it go, the txids before it stay', () => {
    const seg = written(10);
    const size = seg.sizeBytes;
    seg.append(recs(11, 5), 5);
    seg.close();
    fs.appendFileSync(path.join(dir, inProgressName(1)), Buffer.from('half a frame'));
    const loaded = SegmentFile.load(nodeFileSystem, dir, inProgressName(1), {
      inProgress: true,
      sizeBytes: size,
      truncate: true,
      expectedLastTxId: 10,
    });
    expect(fs.statSync(path.join(dir, inProgressName(1))).size).to.equal(size);
    expect([loaded.lastTxId, loaded.sizeBytes]).to.deep.equal([10, size]);
    expect(loaded.crc32).to.equal(zlib.crc32(fs.readFileSync(path.join(dir, inProgressName(1)))));
    // Appends continue right after the cut.
    loaded.append(recs(11, 1), 1);
    expect(txidsOf(loaded.read(9, 10, 1 << 20).frames)).to.deep.equal([9, 10, 11]);
    loaded.close();
  });

  it('refuses a file shorter than the expected size, or holding other txids than expected', () => {
    const seg = written(10);
    const size = seg.sizeBytes;
    seg.close();
    expect(() =>
      SegmentFile.load(nodeFileSystem, dir, inProgressName(1), { inProgress: true, sizeBytes: size + 1 }),
    ).to.throw(SegmentCorruptError, `expected at least ${size + 1}`);
    expect(() =>
      SegmentFile.load(nodeFileSystem, dir, inProgressName(1), { inProgress: true, expectedLastTxId: 11 }),
    ).to.throw(SegmentCorruptError, 'holds txids up to 10, expected 11');
  });

  it('refuses a file shorter than its header', () => {
    fs.writeFileSync(path.join(dir, inProgressName(1)), Buffer.alloc(10));
    expect(() => SegmentFile.load(nodeFileSystem, dir, inProgressName(1), { inProgress: true })).to.throw(
      SegmentCorruptError,
      'file shorter than the segment header',
    );
  });
}

function corruptFrame(): void {
  /** A finalized segment of 20 records with one byte of record 12's data flipped; returns its offset. */
  function damaged(): { seg: SegmentFile; frameOffset: number } {
    const seg = written(20);
    seg.finalize();
    const frameBytes = recs(1, 1).byteLength;
    const frameOffset = SEGMENT_HEADER_BYTES + 11 * frameBytes;
    const file = path.join(dir, finalizedName(1, 20));
    const b = fs.readFileSync(file);
    b[frameOffset + 20]! ^= 0x01;
    fs.writeFileSync(file, b);
    return { seg, frameOffset };
  }

  it('load refuses it, naming the file and the offset of the frame', () => {
    const { frameOffset } = damaged();
    expect(() => SegmentFile.load(nodeFileSystem, dir, finalizedName(1, 20), { inProgress: false })).to.throw(
      SegmentCorruptError,
      `${finalizedName(1, 20)} is corrupt at byte ${frameOffset}: CRC mismatch for txid 12`,
    );
  });

  it('taken on trust, the first read finds it, and every later read again (never a wrong answer)', () => {
    const { seg, frameOffset } = damaged();
    const trusted = SegmentFile.trusted(nodeFileSystem, dir, finalizedName(1, 20), {
      firstTxId: 1,
      lastTxId: 20,
      layoutVersion: LAYOUT,
      sizeBytes: seg.sizeBytes,
      crc32: seg.crc32,
    });
    expect(() => trusted.read(1, 5, 1 << 20)).to.throw(SegmentCorruptError, `byte ${frameOffset}`);
    expect(() => trusted.read(1, 5, 1 << 20)).to.throw(SegmentCorruptError, `byte ${frameOffset}`);
    expect(trusted.lastTxId, 'the recorded range is kept').to.equal(20);
  });

  it('taken on trust with a CRC the file does not have (bytes changed, frames still valid): refused at first read', () => {
    const seg = written(20);
    seg.finalize();
    const trusted = SegmentFile.trusted(nodeFileSystem, dir, finalizedName(1, 20), {
      firstTxId: 1,
      lastTxId: 20,
      layoutVersion: LAYOUT,
      sizeBytes: seg.sizeBytes,
      crc32: (seg.crc32 + 1) >>> 0,
    });
    expect(() => trusted.read(1, 5, 1 << 20)).to.throw(
      SegmentCorruptError,
      'file CRC differs from the snapshot manifest',
    );
  });
}
