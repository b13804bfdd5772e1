// One edit-log segment file (Hadoop's edits_inprogress_<txid> / edits_<first>-<last>): appends of whole
// validated batches, finalize (rename), a sparse txid -> offset index, range reads, and the scan that
// checks a file when it is loaded. Writes are not fsynced here: the Raft log is the durability point and
// snapshots fsync segment files (see snapshot-store.ts).

import path from 'node:path';
import zlib from 'node:zlib';
import { assert } from '../../src/assert.js';
import type { SegmentState } from '../../src/journal-state.js';
import { readU64 } from '../../src/raft/bytes.js';
import type { FileHandle, FileSystem } from '../../src/storage/file-system.js';
import { preadIntoSync, preadSync, writeAllSync } from '../../src/storage/files.js';
import {
  RECORD_HEADER_BYTES,
  decodeSegmentHeader,
  encodeSegmentHeader,
  finalizedName,
  inProgressName,
  readFrame,
  SEGMENT_HEADER_BYTES,
} from '../../src/edit-records.js';

/** A sparse index point every this many bytes bounds the scan a read starts with. */
const INDEX_STRIDE_BYTES = 64 * 1024;
const READ_CHUNK_BYTES = 256 * 1024;
/** A retried batch is compared with the file this much at a time. */
const COMPARE_CHUNK_BYTES = 1 << 20;

export class SegmentCorruptError extends Error {
  override name = 'SegmentCorruptError';
  constructor(
    readonly file: string,
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`segment ${file} is corrupt at byte ${offset}: ${reason}`);
  }
}

/** Whole frames of a segment file: bytes [start, end) hold txids firstTxId .. firstTxId + count - 1. */
export interface FrameRange {
  start: number;
  end: number;
  firstTxId: number;
  count: number;
}

export class SegmentFile {
  readonly firstTxId: number;
  lastTxId: number;
  inProgress: boolean;
  readonly layoutVersion: number;
  sizeBytes: number;
  /** CRC32 of the file's bytes [0, sizeBytes), maintained as it grows. */
  crc32: number;
  /** Written since the last snapshot fsynced it. */
  dirty: boolean;
  private fd: FileHandle | null = null;
  /** False for a finalized segment loaded on trust: scanned (CRCs checked, index built) at first read. */
  private scanned = true;
  // Sparse index: indexTxIds[i] is the txid of the frame at indexOffsets[i]; both increase.
  private readonly indexTxIds: number[] = [];
  private readonly indexOffsets: number[] = [];
  private lastIndexedOffset = -Infinity;

  private constructor(
    private readonly fileSystem: FileSystem,
    readonly dir: string,
    init: {
      firstTxId: number;
      lastTxId: number;
      inProgress: boolean;
      layoutVersion: number;
      sizeBytes: number;
      crc32: number;
      dirty: boolean;
    },
  ) {
    this.firstTxId = init.firstTxId;
    this.lastTxId = init.lastTxId;
    this.inProgress = init.inProgress;
    this.layoutVersion = init.layoutVersion;
    this.sizeBytes = init.sizeBytes;
    this.crc32 = init.crc32;
    this.dirty = init.dirty;
  }

  get name(): string {
    return this.inProgress ? inProgressName(this.firstTxId) : finalizedName(this.firstTxId, this.lastTxId);
  }

  get path(): string {
    return path.join(this.dir, this.name);
  }

  /** This segment as the journal's state lists it. */
  describe(): SegmentState {
    return {
      firstTxId: this.firstTxId,
      lastTxId: this.lastTxId,
      inProgress: this.inProgress,
      file: this.name,
      sizeBytes: this.sizeBytes,
      crc32: this.crc32,
      layoutVersion: this.layoutVersion,
    };
  }

  get txCount(): number {
    return this.lastTxId - this.firstTxId + 1;
  }

  /** Creates a new, empty in-progress segment (replacing a file of the same name). */
  static create(fileSystem: FileSystem, dir: string, firstTxId: number, layoutVersion: number): SegmentFile {
    const header = encodeSegmentHeader(layoutVersion, firstTxId);
    const seg = new SegmentFile(fileSystem, dir, {
      firstTxId,
      lastTxId: firstTxId - 1,
      inProgress: true,
      layoutVersion,
      sizeBytes: header.byteLength,
      crc32: zlib.crc32(header),
      dirty: true,
    });
    const fd = fileSystem.open(seg.path, 'w+');
    try {
      writeAllSync(fd, header, 0);
    } catch (e) {
      fd.close();
      throw e;
    }
    seg.fd = fd;
    return seg;
  }

  /**
   * Loads and checks a segment file: header, every frame's CRC, consecutive txids. `sizeBytes` limits the
   * scan to a prefix (a snapshot's); the file is truncated to it when `truncate` is set.
   */
  static load(
    fileSystem: FileSystem,
    dir: string,
    name: string,
    options: { inProgress: boolean; sizeBytes?: number; truncate?: boolean; expectedLastTxId?: number },
  ): SegmentFile {
    const file = path.join(dir, name);
    const fd = fileSystem.open(file, options.inProgress ? 'r+' : 'r');
    try {
      let size = fd.sizeBytes();
      if (options.sizeBytes !== undefined) {
        if (size < options.sizeBytes)
          throw new SegmentCorruptError(file, size, `file has ${size} bytes, expected at least ${options.sizeBytes}`);
        if (options.truncate && size > options.sizeBytes) fd.truncate(options.sizeBytes);
        size = options.sizeBytes;
      }
      const head = preadSync(fd, 0, SEGMENT_HEADER_BYTES);
      const h = decodeSegmentHeader(head);
      if (typeof h === 'string') throw new SegmentCorruptError(file, 0, h);
      const seg = new SegmentFile(fileSystem, dir, {
        firstTxId: h.firstTxId,
        lastTxId: h.firstTxId - 1,
        inProgress: options.inProgress,
        layoutVersion: h.layoutVersion,
        sizeBytes: SEGMENT_HEADER_BYTES,
        crc32: zlib.crc32(head),
        dirty: false,
      });
      seg.scan(fd, file, size);
      if (options.expectedLastTxId !== undefined && seg.lastTxId !== options.expectedLastTxId) {
        throw new SegmentCorruptError(
          file,
          size,
          `holds txids up to ${seg.lastTxId}, expected ${options.expectedLastTxId}`,
        );
      }
      if (options.inProgress) {
        seg.fd = fd;
        return seg;
      }
      fd.close();
      return seg;
    } catch (e) {
      try {
        fd.close();
      } catch {
        /* already closed */
      }
      throw e;
    }
  }

  /**
   * A finalized segment taken on the word of a snapshot manifest (txid range, size, CRC): only its size is
   * checked now; its frames are checked, and its index built, when it is first read.
   */
  static trusted(
    fileSystem: FileSystem,
    dir: string,
    name: string,
    info: { firstTxId: number; lastTxId: number; layoutVersion: number; sizeBytes: number; crc32: number },
  ): SegmentFile {
    const seg = new SegmentFile(fileSystem, dir, { ...info, inProgress: false, dirty: false });
    if (seg.name !== name)
      throw new SegmentCorruptError(
        path.join(dir, name),
        0,
        `file name does not match the manifest's txids ${info.firstTxId}-${info.lastTxId}`,
      );
    const st = fileSystem.stat(seg.path);
    if (!st) throw new SegmentCorruptError(seg.path, 0, 'the file is missing');
    const size = st.sizeBytes;
    if (size !== info.sizeBytes)
      throw new SegmentCorruptError(seg.path, size, `file has ${size} bytes, the snapshot says ${info.sizeBytes}`);
    seg.scanned = false;
    return seg;
  }

  private ensureScanned(): void {
    if (this.scanned) return;
    // The name follows lastTxId, which the scan rebuilds: fix the path first.
    const file = this.path;
    const fd = this.fileSystem.open(file, 'r');
    const expect = { last: this.lastTxId, crc: this.crc32 };
    try {
      this.lastTxId = this.firstTxId - 1;
      const head = preadSync(fd, 0, SEGMENT_HEADER_BYTES);
      const h = decodeSegmentHeader(head);
      if (typeof h === 'string') throw new SegmentCorruptError(file, 0, h);
      this.crc32 = zlib.crc32(head);
      this.scan(fd, file, this.sizeBytes);
      if (this.lastTxId !== expect.last)
        throw new SegmentCorruptError(
          file,
          this.sizeBytes,
          `holds txids up to ${this.lastTxId}, expected ${expect.last}`,
        );
      if (this.crc32 !== expect.crc)
        throw new SegmentCorruptError(file, 0, 'file CRC differs from the snapshot manifest');
      this.scanned = true;
    } catch (e) {
      // Keep the recorded range: the error repeats at the next read instead of a wrong answer being served.
      this.lastTxId = expect.last;
      this.crc32 = expect.crc;
      throw e;
    } finally {
      fd.close();
    }
  }

  private scan(fd: FileHandle, file: string, size: number): void {
    let pos = SEGMENT_HEADER_BYTES;
    let buf = Buffer.allocUnsafe(READ_CHUNK_BYTES);
    while (pos < size) {
      const want = Math.min(buf.byteLength, size - pos);
      const n = preadIntoSync(fd, buf, pos, want);
      let off = 0;
      let progressed = false;
      while (off < n) {
        const f = readFrame(buf.subarray(0, n), off);
        if (!f.ok) {
          if (f.truncated && pos + n < size) break; // the frame continues in the next chunk
          throw new SegmentCorruptError(file, pos + off, f.reason);
        }
        if (f.record.txid !== this.lastTxId + 1)
          throw new SegmentCorruptError(file, pos + off, `txid ${f.record.txid} after ${this.lastTxId}`);
        this.noteFrame(f.record.txid, pos + off);
        this.lastTxId = f.record.txid;
        off = f.record.next;
        progressed = true;
      }
      this.crc32 = zlib.crc32(buf.subarray(0, off), this.crc32);
      pos += off;
      if (!progressed) {
        // A single frame larger than the chunk: grow the chunk and retry.
        assert(buf.byteLength < 1 << 30, 'segment scan: frame over 1 GiB');
        buf = Buffer.allocUnsafe(buf.byteLength * 2);
      }
    }
    this.sizeBytes = pos;
  }

  private noteFrame(txid: number, offset: number): void {
    if (offset - this.lastIndexedOffset >= INDEX_STRIDE_BYTES) {
      this.indexTxIds.push(txid);
      this.indexOffsets.push(offset);
      this.lastIndexedOffset = offset;
    }
  }

  /** Appends a validated batch of `count` frames starting at this.lastTxId + 1. */
  append(frames: Uint8Array, count: number): void {
    assert(this.inProgress && this.fd !== null, 'segment: append to a closed segment');
    if (count === 0) return;
    // All of it or an error (a full disk): size, CRC and index never count bytes that are not in the file.
    writeAllSync(this.fd, frames, this.sizeBytes);
    this.noteFrame(this.lastTxId + 1, this.sizeBytes);
    this.sizeBytes += frames.byteLength;
    this.crc32 = zlib.crc32(frames, this.crc32);
    this.lastTxId += count;
    this.dirty = true;
  }

  /** Closes the in-progress segment and renames it to its finalized name. */
  finalize(): void {
    assert(this.inProgress, 'segment: finalizing a finalized segment');
    assert(this.lastTxId >= this.firstTxId, 'segment: finalizing an empty segment');
    const from = this.path;
    this.close();
    this.inProgress = false;
    this.fileSystem.rename(from, this.path);
    this.dirty = true;
  }

  /** Deletes the file. */
  remove(): void {
    this.close();
    this.fileSystem.unlink(this.path);
  }

  close(): void {
    if (this.fd !== null) {
      this.fd.close();
      this.fd = null;
    }
  }

  /**
   * Whole frames for txids from fromTxId (within this segment) on: at most maxTxns, and stopping before
   * maxBytes would be exceeded (but at least one frame). Returns the frames and how many.
   */
  /** The last sparse index point at or before txid (-1 when there is none). */
  private indexPointAtOrBefore(txid: number): number {
    let found = -1;
    let lo = 0;
    let hi = this.indexTxIds.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      if (this.indexTxIds[mid]! <= txid) {
        found = mid;
        lo = mid + 1;
      } else hi = mid - 1;
    }
    return found;
  }

  /**
   * Where the whole frames for txids from fromTxId on (within this segment) lie in the file: at most maxTxns,
   * stopping before maxBytes would be exceeded (but at least one frame). Each frame's CRC is checked on the
   * way; the scan reads a chunk at a time (one chunk of memory, or the largest frame), so finding a range of
   * any size allocates nothing in proportion to it. Empty (count 0) when no txid of the segment qualifies.
   */
  locate(fromTxId: number, maxTxns: number, maxBytes: number): FrameRange {
    this.ensureScanned();
    if (fromTxId > this.lastTxId || fromTxId < this.firstTxId || maxTxns <= 0)
      return { start: 0, end: 0, firstTxId: 0, count: 0 };
    const i = this.indexPointAtOrBefore(fromTxId);
    let pos = i >= 0 ? this.indexOffsets[i]! : SEGMENT_HEADER_BYTES;
    const fd = this.fd ?? this.fileSystem.open(this.path, 'r');
    try {
      let start = -1;
      let end = 0;
      let count = 0;
      let first = 0;
      let buf = Buffer.allocUnsafe(READ_CHUNK_BYTES);
      scan: while (pos < this.sizeBytes && count < maxTxns) {
        const n = preadIntoSync(fd, buf, pos, Math.min(buf.byteLength, this.sizeBytes - pos));
        let off = 0;
        while (off < n && count < maxTxns) {
          const f = readFrame(buf.subarray(0, n), off);
          if (!f.ok) {
            if (f.truncated) break;
            throw new SegmentCorruptError(this.path, pos + off, f.reason);
          }
          if (f.record.txid >= fromTxId) {
            if (count > 0 && pos + f.record.next - start > maxBytes) break scan; // byte budget reached
            if (start < 0) start = pos + off;
            if (first === 0) first = f.record.txid;
            count++;
            end = pos + f.record.next;
          }
          off = f.record.next;
        }
        if (off === 0) {
          assert(buf.byteLength < 1 << 30, 'segment read: frame over 1 GiB');
          buf = Buffer.allocUnsafe(buf.byteLength * 2);
          continue;
        }
        pos += off;
      }
      return count === 0 ? { start: 0, end: 0, firstTxId: 0, count: 0 } : { start, end, firstTxId: first, count };
    } finally {
      if (fd !== this.fd) fd.close();
    }
  }

  /** The frames locate() finds, read into one buffer (for small answers and tests). */
  read(fromTxId: number, maxTxns: number, maxBytes: number): { frames: Buffer; firstTxId: number; count: number } {
    const r = this.locate(fromTxId, maxTxns, maxBytes);
    return { frames: r.count === 0 ? Buffer.alloc(0) : this.readRaw(r.start, r.end - r.start), ...r };
  }

  /** Reads raw bytes [offset, offset + length) (snapshot transfer, raw downloads). */
  readRaw(offset: number, length: number): Buffer {
    const fd = this.fd ?? this.fileSystem.open(this.path, 'r');
    try {
      return preadSync(fd, offset, Math.min(length, this.sizeBytes - offset));
    } finally {
      if (fd !== this.fd) fd.close();
    }
  }

  /** Compares the frames of a batch with what the file holds for the same txids (idempotent retries). */
  holdsExactly(fromTxId: number, frames: Uint8Array, count: number): boolean {
    if (fromTxId < this.firstTxId || fromTxId + count - 1 > this.lastTxId) return false;
    const start = this.offsetOf(fromTxId);
    if (start === null || start + frames.byteLength > this.sizeBytes) return false;
    // Compared a chunk at a time: a retried batch of any size costs one chunk of memory, not its own size.
    const fd = this.fd ?? this.fileSystem.open(this.path, 'r');
    try {
      const buf = Buffer.allocUnsafe(Math.min(COMPARE_CHUNK_BYTES, frames.byteLength));
      for (let off = 0; off < frames.byteLength; off += buf.byteLength) {
        const n = Math.min(buf.byteLength, frames.byteLength - off);
        if (preadIntoSync(fd, buf, start + off, n) !== n) return false;
        if (Buffer.compare(buf.subarray(0, n), frames.subarray(off, off + n)) !== 0) return false;
      }
      // The bytes from the frame of fromTxId on are the batch's frames exactly: `count` whole frames.
      return true;
    } finally {
      if (fd !== this.fd) fd.close();
    }
  }

  /** The byte offset of txid's frame (from the nearest index point, reading frame headers only), or null. */
  private offsetOf(txid: number): number | null {
    this.ensureScanned();
    const i = this.indexPointAtOrBefore(txid);
    let pos = i >= 0 ? this.indexOffsets[i]! : SEGMENT_HEADER_BYTES;
    const fd = this.fd ?? this.fileSystem.open(this.path, 'r');
    try {
      const head = Buffer.allocUnsafe(RECORD_HEADER_BYTES);
      while (pos + RECORD_HEADER_BYTES <= this.sizeBytes) {
        if (preadIntoSync(fd, head, pos, RECORD_HEADER_BYTES) !== RECORD_HEADER_BYTES) return null;
        // [u32 crc32][u64 txid][u32 length] (src/edit-records.ts)
        const t = readU64(head, 4);
        if (t === txid) return pos;
        if (t > txid) return null;
        pos += RECORD_HEADER_BYTES + head.readUInt32BE(12);
      }
      return null;
    } finally {
      if (fd !== this.fd) fd.close();
    }
  }
}
