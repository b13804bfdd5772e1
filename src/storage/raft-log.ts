// The Raft log on disk: segment files of CRC-framed entries, appended in group-committed writes (one write
// call and one fdatasync per batch, in the libuv thread pool so the event loop never waits on the disk),
// with an in-memory index (term and offset of every entry) and a bounded cache of recent entries so
// replication usually reads memory. At start-up every frame is checked: a write torn by a crash (the last
// one, with sectors that never reached the disk) is cut; corruption anywhere else, and a frame in the last
// write that is complete but wrong (a flipped bit), stops the node with the file and offset.
//
// Preallocation: the in-progress segment keeps a few MiB of zero-filled, fdatasynced space ahead of its
// end, written in the background. Overwriting blocks that are already allocated and initialized lets
// fdatasync skip the file-system journal commit that growing a file costs: on ext4 here about a tenth to
// a quarter off the fsync latency for one writer, a quarter to a third when three share a disk
// (docs/PERFORMANCE.md). Closed segments are trimmed.
//
// Segment file: a 32-byte header ("QJRLOG01", u64 first index, u64 term of the entry before it, u32
// reserved, u32 crc32) then frames:
//   [u32 BE data length][u32 BE crc32 of the rest][u64 BE term][u64 BE index][u8 type][data]
// Names: log_inprogress_<first, 20 digits> while appended to; log_<first>-<last> once closed.

import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { assert } from '../assert.js';
import { readU64, writeU64 } from '../bytes.js';
import type { ReplicaLog } from '../replica/env.js';
import type { Entry, EntryType, HardState, SnapshotMeta } from '../raft/types.js';
import { cloneConf, entryBytes } from '../raft/types.js';
import { fsyncPathSync } from './files.js';
import type { MetaStore } from './raft-meta-store.js';

const MAGIC = Buffer.from('QJRLOG01', 'latin1');
const HEADER_BYTES = 32;
const FRAME_HEADER_BYTES = 25;
const FILL_CHUNK = 1 << 20;
/** The unit a crash can tear a write into: a disk sector. */
const SECTOR_BYTES = 512;
const ZEROS = Buffer.alloc(FILL_CHUNK);

export class CorruptLogError extends Error {
  override name = 'CorruptLogError';
  constructor(
    readonly file: string,
    readonly offset: number,
    readonly reason: string,
  ) {
    super(`Raft log corrupt at ${file} offset ${offset}: ${reason}. The node cannot serve from this log; move the data directory aside and re-add the node from its peers (docs/OPERATIONS.md, "Repairing a node")`);
  }
}

export interface LogLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

const quiet: LogLogger = { info() {}, warn() {}, error() {}, debug() {} };

export interface DiskLogOptions {
  maxSegmentBytes: number;
  maxCacheBytes: number;
  /** fdatasync every write (raft_sync); off only for experiments. */
  sync: boolean;
  /** The snapshot the state machine restarted from: the log is reconciled with it. */
  snapshot: SnapshotMeta;
  meta: MetaStore;
  logger?: LogLogger;
  /** Zero-filled space kept ahead of the in-progress segment's end (0: none; only with sync). */
  preallocateBytes?: number;
  /**
   * The largest single write this log is given (the replica's write batch plus one entry). At start-up, a
   * damaged frame in the in-progress segment with no data further than this past it, and with a sector
   * that reads as zeros or that runs past the end of the file, is the last write torn by a crash, and is
   * cut; anything else is corruption.
   */
  tornWriteBytes?: number;
}

interface Segment {
  first: number;
  /** first - 1 while empty. */
  last: number;
  prevTerm: number;
  closed: boolean;
  file: string;
  /** Where the entries end (appends go here). */
  sizeBytes: number;
  /** The file is allocated, zero-filled and durable up to here (>= sizeBytes when preallocated). */
  zeroedTo: number;
  // offsets[i], terms[i]: the entry at index first + i.
  offsets: number[];
  terms: number[];
  fd: number | null;
}

export interface DiskLogStats {
  segments: number;
  bytesOnDisk: number;
  firstIndex: number;
  lastIndex: number;
  cacheEntries: number;
  cacheBytes: number;
  writes: number;
  fsyncs: number;
  fsyncMsTotal: number;
  bytesWritten: number;
  /** Zero-filled bytes ahead of the in-progress segment's end. */
  preallocatedBytes: number;
}

const pad20 = (n: number) => String(n).padStart(20, '0');
const inProgressName = (first: number) => `log_inprogress_${pad20(first)}`;
const closedName = (first: number, last: number) => `log_${pad20(first)}-${pad20(last)}`;

function encodeHeader(first: number, prevTerm: number): Buffer {
  const b = Buffer.alloc(HEADER_BYTES);
  MAGIC.copy(b, 0);
  writeU64(b, 8, first);
  writeU64(b, 16, prevTerm);
  b.writeUInt32BE(zlib.crc32(b.subarray(0, 28)), 28);
  return b;
}

/** Writes every buffer of iov at `position`, in order, whatever the partial writes and IOV_MAX. */
function writevAllSync(fd: number, iov: Uint8Array[], position: number): void {
  const IOV_BATCH = 512;
  let i = 0;
  let pos = position;
  while (i < iov.length) {
    const group = iov.slice(i, i + IOV_BATCH);
    let want = 0;
    for (const b of group) want += b.byteLength;
    const n = fs.writevSync(fd, group, pos);
    pos += n;
    if (n === want) {
      i += group.length;
      continue;
    }
    // A short write (rare on a regular file): write the rest of this group with plain writes.
    let skip = n;
    let g = 0;
    while (skip >= group[g]!.byteLength) skip -= group[g++]!.byteLength;
    const rest = Buffer.concat([group[g]!.subarray(skip), ...group.slice(g + 1)]);
    for (let done = 0; done < rest.byteLength; ) {
      const m = fs.writeSync(fd, rest, done, rest.byteLength - done, pos);
      done += m;
      pos += m;
    }
    i += group.length;
  }
}

/** The offset just past the last non-zero byte of buf at or after `from` (`from` if all zero). */
function endOfData(buf: Buffer, from: number): number {
  let end = buf.byteLength;
  // Whole zero chunks from the back first (a preallocated tail is megabytes of zeros), then bytes.
  while (end - from >= FILL_CHUNK && buf.subarray(end - FILL_CHUNK, end).equals(ZEROS)) end -= FILL_CHUNK;
  while (end > from && buf[end - 1] === 0) end--;
  return end;
}

/**
 * Whether the damaged frame at `off` looks like a write that did not wholly reach the disk rather than
 * bytes that changed after they did: the frame runs past the end of the file, or a sector it covers reads
 * as zeros (a sector that was never written; preallocated space and holes read as zeros). A flipped bit
 * leaves every sector present and non-zero, so it is refused as corruption.
 */
function looksTorn(buf: Buffer, off: number, maxWrite: number): boolean {
  if (off + FRAME_HEADER_BYTES > buf.byteLength) return true;
  const len = buf.readUInt32BE(off);
  if (len > maxWrite) return false;
  const frameEnd = off + FRAME_HEADER_BYTES + len;
  if (frameEnd > buf.byteLength) return true;
  const first = off - (off % SECTOR_BYTES);
  // The write began mid-sector: the sector's new contents missing leaves zeros from `off` (at least the
  // length and CRC fields, which a real frame never has all zero).
  if (isZero(buf, off, Math.min(first + SECTOR_BYTES, frameEnd)) && Math.min(first + SECTOR_BYTES, frameEnd) - off >= 8) return true;
  for (let s = first + SECTOR_BYTES; s < frameEnd; s += SECTOR_BYTES) {
    if (isZero(buf, s, Math.min(s + SECTOR_BYTES, buf.byteLength))) return true;
  }
  return false;
}

function isZero(buf: Buffer, from: number, to: number): boolean {
  for (let i = from; i < to; i++) if (buf[i] !== 0) return false;
  return true;
}

export class DiskLog implements ReplicaLog {
  private segments: Segment[] = [];
  // Entries up to compactedIndex are not part of the log any more; term(compactedIndex) still answers.
  private compactedIndex = 0;
  private compactedTerm = 0;
  private snap: SnapshotMeta;
  private pendingReset: SnapshotMeta | null = null;
  private deletions: Promise<void> = Promise.resolve();
  /** The background zero-fill of the in-progress segment, if one runs. */
  private fill: { seg: Segment; pos: number; cancelled: boolean; waiters: (() => void)[] } | null = null;
  // The cache holds entries [cacheFirst, cacheFirst + cache.length), the newest ones.
  private cache: Entry[] = [];
  private cacheFirst = 1;
  private cacheBytes = 0;
  private readonly hard: HardState;
  private writing = false;
  private closedLog = false;
  private readonly counters = { writes: 0, fsyncs: 0, fsyncMsTotal: 0, bytesWritten: 0 };
  private readonly logger: LogLogger;

  private constructor(
    readonly dir: string,
    private readonly o: DiskLogOptions,
  ) {
    this.logger = o.logger ?? quiet;
    this.snap = { ...o.snapshot, conf: cloneConf(o.snapshot.conf) };
    this.hard = { ...o.meta.meta.hardState };
  }

  static open(dir: string, o: DiskLogOptions): DiskLog {
    fs.mkdirSync(dir, { recursive: true });
    const log = new DiskLog(dir, o);
    log.load();
    log.reconcile();
    return log;
  }

  // ---------------------------------------------------------------- loading

  private load(): void {
    const names = fs.readdirSync(this.dir).filter((n) => n.startsWith('log_'));
    const parsed = names
      .map((name) => {
        let m = /^log_inprogress_(\d{20})$/.exec(name);
        if (m) return { name, first: Number(m[1]), last: null as number | null };
        m = /^log_(\d{20})-(\d{20})$/.exec(name);
        if (m) return { name, first: Number(m[1]), last: Number(m[2]) };
        throw new CorruptLogError(path.join(this.dir, name), 0, 'unexpected file in the log directory');
      })
      .sort((a, b) => a.first - b.first);
    for (let i = 0; i < parsed.length; i++) {
      const p = parsed[i]!;
      const isLast = i === parsed.length - 1;
      const seg = this.loadSegment(path.join(this.dir, p.name), p.first, p.last, isLast);
      if (!seg) continue;
      const prev = this.segments[this.segments.length - 1];
      if (prev) {
        if (seg.first !== prev.last + 1) throw new CorruptLogError(seg.file, 0, `segment starts at index ${seg.first} but the previous one ends at ${prev.last}`);
        const prevLastTerm = prev.terms.length > 0 ? prev.terms[prev.terms.length - 1]! : prev.prevTerm;
        if (seg.prevTerm !== prevLastTerm) throw new CorruptLogError(seg.file, 16, `header says the previous entry has term ${seg.prevTerm}, it has ${prevLastTerm}`);
      }
      this.segments.push(seg);
    }
    const first = this.segments[0];
    if (first) {
      this.compactedIndex = first.first - 1;
      this.compactedTerm = first.prevTerm;
    }
  }

  /** Reads and checks one segment; returns null for an empty leftover (a torn segment creation). */
  private loadSegment(file: string, first: number, nameLast: number | null, isLast: boolean): Segment | null {
    const buf = fs.readFileSync(file);
    if (buf.byteLength < HEADER_BYTES) {
      if (isLast && nameLast === null) {
        // Creation of a new segment was torn before its header was durable: it held nothing.
        this.logger.warn({ file, bytes: buf.byteLength }, 'removing a torn, empty log segment');
        fs.rmSync(file);
        fsyncPathSync(this.dir);
        return null;
      }
      throw new CorruptLogError(file, 0, 'file shorter than the segment header');
    }
    if (!buf.subarray(0, 8).equals(MAGIC)) throw new CorruptLogError(file, 0, 'not a Raft log segment (bad magic)');
    if (zlib.crc32(buf.subarray(0, 28)) !== buf.readUInt32BE(28)) throw new CorruptLogError(file, 28, 'segment header CRC mismatch');
    const hFirst = readU64(buf, 8);
    if (hFirst !== first) throw new CorruptLogError(file, 8, `header first index ${hFirst} does not match the file name (${first})`);
    const seg: Segment = { first, last: first - 1, prevTerm: readU64(buf, 16), closed: nameLast !== null, file, sizeBytes: HEADER_BYTES, zeroedTo: 0, offsets: [], terms: [], fd: null };
    let off = HEADER_BYTES;
    let prevTerm = seg.prevTerm;
    while (off < buf.byteLength) {
      const problem = this.checkFrame(buf, off, seg.last + 1, prevTerm);
      if (problem) {
        if (isLast && nameLast === null) {
          const end = endOfData(buf, off);
          // Only zeros from here: preallocated space (or a write that left nothing). Keep it for appends.
          if (end === off) {
            seg.zeroedTo = buf.byteLength;
            break;
          }
          // Some sectors of the last write reached the disk, not all: cut it (it was never acknowledged).
          if (end - off <= this.tornWriteBytes && looksTorn(buf, off, this.tornWriteBytes)) {
            this.logger.warn({ file, offset: off, cutBytes: buf.byteLength - off, reason: problem }, 'cutting a torn write off the Raft log');
            const fd = fs.openSync(file, 'r+');
            try {
              fs.ftruncateSync(fd, off);
              fs.fdatasyncSync(fd);
            } finally {
              fs.closeSync(fd);
            }
            seg.zeroedTo = off;
            break;
          }
        }
        throw new CorruptLogError(file, off, problem);
      }
      const len = buf.readUInt32BE(off);
      const term = readU64(buf, off + 8);
      seg.offsets.push(off);
      seg.terms.push(term);
      seg.last++;
      prevTerm = term;
      off += FRAME_HEADER_BYTES + len;
    }
    seg.sizeBytes = off;
    seg.zeroedTo = Math.max(seg.zeroedTo, off);
    if (nameLast !== null && seg.last !== nameLast) throw new CorruptLogError(file, off, `closed segment holds entries up to ${seg.last}, its name says ${nameLast}`);
    return seg;
  }

  private checkFrame(buf: Buffer, off: number, expectIndex: number, prevTerm: number): string | null {
    if (off + FRAME_HEADER_BYTES > buf.byteLength) return 'frame header runs past the end of the file';
    const len = buf.readUInt32BE(off);
    if (off + FRAME_HEADER_BYTES + len > buf.byteLength) return `frame of ${len} bytes runs past the end of the file`;
    if (zlib.crc32(buf.subarray(off + 8, off + FRAME_HEADER_BYTES + len)) !== buf.readUInt32BE(off + 4)) return 'entry CRC mismatch';
    const index = readU64(buf, off + 16);
    if (index !== expectIndex) return `entry index ${index}, expected ${expectIndex}`;
    const term = readU64(buf, off + 8);
    if (term < prevTerm) return `entry term ${term} is below the previous entry's term ${prevTerm}`;
    return null;
  }

  /** Makes the log agree with the snapshot the state machine restarted from. */
  private reconcile(): void {
    const s = this.snap;
    const last = this.lastIndex();
    if (this.segments.length === 0) {
      this.compactedIndex = s.index;
      this.compactedTerm = s.term;
      return;
    }
    if (s.index < this.compactedIndex) {
      throw new CorruptLogError(this.segments[0]!.file, 0, `the log starts after index ${this.compactedIndex} but the newest usable snapshot is at ${s.index}: entries in between are missing`);
    }
    if (s.index <= last && this.term(s.index) === s.term) return; // the log holds the snapshot's entry
    // The log does not hold the snapshot's (index, term): it was being replaced by an installed snapshot.
    this.logger.warn({ snapshotIndex: s.index, snapshotTerm: s.term, logLast: last }, 'the Raft log does not hold the snapshot; discarding it');
    this.dropAllSegments();
    this.compactedIndex = s.index;
    this.compactedTerm = s.term;
  }

  /** Newest first, so a crash part-way leaves a prefix that reconcile() can judge against the snapshot. */
  private dropAllSegments(): void {
    this.cancelFill();
    for (const seg of [...this.segments].reverse()) {
      if (seg.fd !== null) fs.closeSync(seg.fd);
      fs.rmSync(seg.file, { force: true });
    }
    fsyncPathSync(this.dir);
    this.segments = [];
    this.clearCache();
  }

  // ---------------------------------------------------------------- reads (synchronous, for the core)

  initialHardState(): HardState {
    return { ...this.hard };
  }

  snapshotMeta(): SnapshotMeta {
    return this.pendingReset ?? this.snap;
  }

  firstIndex(): number {
    return this.pendingReset ? this.pendingReset.index + 1 : this.compactedIndex + 1;
  }

  lastIndex(): number {
    if (this.pendingReset) return this.pendingReset.index;
    const seg = this.segments[this.segments.length - 1];
    return seg && seg.last >= seg.first ? seg.last : Math.max(this.compactedIndex, seg ? seg.first - 1 : 0);
  }

  private segmentFor(index: number): Segment | undefined {
    let lo = 0;
    let hi = this.segments.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const s = this.segments[mid]!;
      if (index < s.first) hi = mid - 1;
      else if (index > s.last) lo = mid + 1;
      else return s;
    }
    return undefined;
  }

  term(index: number): number | undefined {
    if (this.pendingReset) return index === this.pendingReset.index ? this.pendingReset.term : undefined;
    if (index === this.compactedIndex) return this.compactedTerm;
    if (index < this.compactedIndex || index > this.lastIndex()) return undefined;
    const seg = this.segmentFor(index);
    return seg ? seg.terms[index - seg.first] : undefined;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    assert(!this.pendingReset, 'disk log: entries read during a reset');
    assert(lo >= this.firstIndex() && hi <= this.lastIndex() + 1 && lo <= hi, () => `disk log: entries(${lo}, ${hi}) outside [${this.firstIndex()}, ${this.lastIndex() + 1}]`);
    const out: Entry[] = [];
    let bytes = 0;
    let i = lo;
    while (i < hi) {
      if (i >= this.cacheFirst && i < this.cacheFirst + this.cache.length) {
        const e = this.cache[i - this.cacheFirst]!;
        const sz = entryBytes(e);
        if (out.length > 0 && bytes + sz > maxBytes) break;
        out.push(e);
        bytes += sz;
        i++;
        continue;
      }
      // Not cached: read a run from the segment (up to the cache start or the segment end).
      const seg = this.segmentFor(i)!;
      const end = Math.min(hi, seg.last + 1, i < this.cacheFirst ? this.cacheFirst : hi);
      const got = this.readRun(seg, i, end, maxBytes - bytes, out.length === 0);
      for (const e of got) {
        out.push(e);
        bytes += entryBytes(e);
      }
      if (got.length < end - i) break;
      i = end;
    }
    return out;
  }

  /** Reads entries [lo, hi) of one segment with one read call, within the byte budget. */
  private readRun(seg: Segment, lo: number, hi: number, budget: number, atLeastOne: boolean): Entry[] {
    let n = 0;
    let bytes = 0;
    const offsetOf = (idx: number) => (idx <= seg.last ? seg.offsets[idx - seg.first]! : seg.sizeBytes);
    while (lo + n < hi) {
      const sz = offsetOf(lo + n + 1) - offsetOf(lo + n) - FRAME_HEADER_BYTES + 24;
      if ((n > 0 || !atLeastOne) && bytes + sz > budget) break;
      bytes += sz;
      n++;
    }
    if (n === 0) return [];
    const start = offsetOf(lo);
    const end = offsetOf(lo + n);
    const buf = Buffer.allocUnsafe(end - start);
    const fd = seg.fd ?? fs.openSync(seg.file, 'r');
    try {
      let got = 0;
      while (got < buf.byteLength) {
        const r = fs.readSync(fd, buf, got, buf.byteLength - got, start + got);
        assert(r > 0, () => `disk log: short read of ${seg.file}`);
        got += r;
      }
    } finally {
      if (fd !== seg.fd) fs.closeSync(fd);
    }
    const out: Entry[] = [];
    let off = 0;
    for (let k = 0; k < n; k++) {
      const len = buf.readUInt32BE(off);
      out.push({
        term: readU64(buf, off + 8),
        index: readU64(buf, off + 16),
        type: buf[off + 24]! as EntryType,
        data: buf.subarray(off + FRAME_HEADER_BYTES, off + FRAME_HEADER_BYTES + len),
      });
      off += FRAME_HEADER_BYTES + len;
    }
    return out;
  }

  // ---------------------------------------------------------------- writes

  write(hardState: HardState | null, entries: Entry[], done: (err: Error | null) => void): void {
    assert(!this.writing, 'disk log: overlapping writes');
    assert(!this.pendingReset, 'disk log: write during a reset');
    this.writing = true;
    const finish = (err: Error | null) => {
      this.writing = false;
      done(err);
    };
    if (!hardState) return this.appendEntries(entries, finish);
    const m = this.o.meta.meta;
    this.o.meta.save({ ...m, hardState: { ...hardState } }, (err) => {
      if (err) return finish(err);
      this.appendEntries(entries, finish);
    });
  }

  private get tornWriteBytes(): number {
    return this.o.tornWriteBytes ?? 64 << 20;
  }

  private appendEntries(entries: Entry[], done: (err: Error | null) => void): void {
    if (entries.length === 0) return done(null);
    let total = 0;
    for (const e of entries) total += FRAME_HEADER_BYTES + e.data.byteLength;
    if (this.fill) {
      // The zero-fill owns the file from fill.pos on; a write reaching there, a truncation or a rollover
      // waits for it (rare: the fill stays megabytes ahead).
      const tail = this.segments[this.segments.length - 1];
      const f = this.fill;
      if (tail !== f.seg || entries[0]!.index <= this.lastIndex() || tail.sizeBytes >= this.o.maxSegmentBytes || tail.sizeBytes + total > f.pos) {
        f.waiters.push(() => this.appendEntries(entries, done));
        return;
      }
    }
    let seg: Segment;
    try {
      const first = entries[0]!.index;
      if (first <= this.lastIndex()) this.truncateFrom(first);
      assert(first === this.lastIndex() + 1, () => `disk log: append at ${first} after ${this.lastIndex()}`);
      seg = this.writableSegment();
    } catch (e) {
      return done(e as Error);
    }
    // Frame headers go in one small buffer; entry data is written from where it already is (writev), so a
    // batch of megabytes is not copied once more (nor allocated: less garbage, fewer pauses).
    const headers = Buffer.allocUnsafe(entries.length * FRAME_HEADER_BYTES);
    const iov: Uint8Array[] = [];
    const offsets: number[] = [];
    let off = 0;
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k]!;
      const h = headers.subarray(k * FRAME_HEADER_BYTES, (k + 1) * FRAME_HEADER_BYTES);
      offsets.push(seg.sizeBytes + off);
      h.writeUInt32BE(e.data.byteLength, 0);
      writeU64(h, 8, e.term);
      writeU64(h, 16, e.index);
      h[24] = e.type;
      h.writeUInt32BE(zlib.crc32(e.data, zlib.crc32(h.subarray(8))), 4);
      iov.push(h);
      if (e.data.byteLength > 0) iov.push(e.data);
      off += FRAME_HEADER_BYTES + e.data.byteLength;
    }
    const fd = seg.fd!;
    const at = seg.sizeBytes;
    // Copying into the page cache is quick, so it happens right here; only the fdatasync, which waits for
    // the device, goes to the thread pool: one hop per group commit instead of two.
    try {
      writevAllSync(fd, iov, at);
    } catch (e) {
      return done(e as Error);
    }
    {
      const after = () => {
        this.counters.writes++;
        this.counters.bytesWritten += total;
        for (let k = 0; k < entries.length; k++) {
          seg.offsets.push(offsets[k]!);
          seg.terms.push(entries[k]!.term);
        }
        seg.last += entries.length;
        seg.sizeBytes += total;
        if (seg.zeroedTo < seg.sizeBytes) seg.zeroedTo = seg.sizeBytes;
        this.remember(entries);
        this.maybePreallocate(seg);
        done(null);
      };
      if (!this.o.sync) return after();
      const t0 = performance.now();
      fs.fdatasync(fd, (e2) => {
        this.counters.fsyncs++;
        this.counters.fsyncMsTotal += performance.now() - t0;
        if (e2) return done(e2);
        after();
      });
    }
  }

  /**
   * Keeps preallocateBytes of zero-filled, durable space ahead of the in-progress segment's end: 1 MiB at a
   * time, each write followed by an fdatasync (so later overwrites need no journal commit), on its own file
   * descriptor (so a reset that unlinks the file cannot redirect it), never past the segment size limit.
   */
  private maybePreallocate(seg: Segment): void {
    const ahead = this.o.preallocateBytes ?? 0;
    if (ahead <= 0 || !this.o.sync || this.fill || seg.closed || this.closedLog) return;
    const from = Math.max(seg.zeroedTo, seg.sizeBytes);
    if (from - seg.sizeBytes >= ahead / 2) return;
    const to = Math.min(seg.sizeBytes + ahead, this.o.maxSegmentBytes);
    if (to <= from) return;
    let fd: number;
    try {
      fd = fs.openSync(seg.file, 'r+');
    } catch (e) {
      this.logger.warn({ file: seg.file, error: (e as Error).message }, 'could not preallocate log space');
      return;
    }
    const job = { seg, pos: from, cancelled: false, waiters: [] as (() => void)[] };
    this.fill = job;
    const finish = (err: Error | null) => {
      fs.close(fd, () => {});
      if (err && !job.cancelled) this.logger.warn({ file: seg.file, error: err.message }, 'could not preallocate log space');
      if (this.fill === job) this.fill = null;
      for (const w of job.waiters) w();
    };
    const step = () => {
      if (job.cancelled || job.pos >= to) return finish(null);
      const n = Math.min(FILL_CHUNK, to - job.pos);
      fs.write(fd, ZEROS, 0, n, job.pos, (e) => {
        if (e) return finish(e);
        fs.fdatasync(fd, (e2) => {
          if (e2) return finish(e2);
          job.pos += n;
          if (!job.cancelled) seg.zeroedTo = Math.max(seg.zeroedTo, job.pos);
          step();
        });
      });
    };
    step();
  }

  /** Stops a running zero-fill from touching the segment again (its in-flight chunk still completes). */
  private cancelFill(): void {
    if (this.fill) {
      this.fill.cancelled = true;
      this.fill = null;
    }
  }

  /** The in-progress segment, rolled over when full (sync: rare, and before the write that needs it). */
  private writableSegment(): Segment {
    let seg = this.segments[this.segments.length - 1];
    if (seg && !seg.closed && seg.sizeBytes < this.o.maxSegmentBytes) {
      if (seg.fd === null) seg.fd = fs.openSync(seg.file, 'r+');
      return seg;
    }
    if (seg && !seg.closed) {
      // Close the full segment: its data is already durable (every write is fdatasynced); the zero-filled
      // space after it goes first, so closed segments end at their last entry.
      if (seg.zeroedTo > seg.sizeBytes) {
        const fd = seg.fd ?? fs.openSync(seg.file, 'r+');
        fs.ftruncateSync(fd, seg.sizeBytes);
        fs.fdatasyncSync(fd);
        if (fd !== seg.fd) fs.closeSync(fd);
        seg.zeroedTo = seg.sizeBytes;
      }
      if (seg.fd !== null) {
        fs.closeSync(seg.fd);
        seg.fd = null;
      }
      const closed = path.join(this.dir, closedName(seg.first, seg.last));
      fs.renameSync(seg.file, closed);
      seg.file = closed;
      seg.closed = true;
    }
    const first = this.lastIndex() + 1;
    const prevTerm = this.term(first - 1) ?? 0;
    const file = path.join(this.dir, inProgressName(first));
    const fd = fs.openSync(file, 'w+');
    const header = encodeHeader(first, prevTerm);
    fs.writeSync(fd, header, 0, HEADER_BYTES, 0);
    fs.fdatasyncSync(fd);
    fsyncPathSync(this.dir);
    seg = { first, last: first - 1, prevTerm, closed: false, file, sizeBytes: HEADER_BYTES, zeroedTo: HEADER_BYTES, offsets: [], terms: [], fd };
    this.segments.push(seg);
    return seg;
  }

  /**
   * Removes entries from `index` on, durably, before anything is appended after them: a follower whose
   * uncommitted suffix conflicts with the leader's. Rare, so synchronous.
   */
  private truncateFrom(index: number): void {
    assert(index > this.compactedIndex, () => `disk log: truncating compacted entry ${index}`);
    while (this.segments.length > 0 && this.segments[this.segments.length - 1]!.first >= index) {
      const s = this.segments.pop()!;
      if (s.fd !== null) fs.closeSync(s.fd);
      fs.rmSync(s.file, { force: true });
    }
    const seg = this.segments[this.segments.length - 1];
    if (seg && seg.last >= index) {
      const keep = index - seg.first;
      const size = seg.offsets[keep]!;
      if (seg.closed) {
        // The cut falls inside a closed segment: it becomes the in-progress one again.
        const reopened = path.join(this.dir, inProgressName(seg.first));
        fs.renameSync(seg.file, reopened);
        seg.file = reopened;
        seg.closed = false;
      }
      const fd = seg.fd ?? fs.openSync(seg.file, 'r+');
      fs.ftruncateSync(fd, size);
      fs.fdatasyncSync(fd);
      seg.fd = fd;
      seg.offsets.length = keep;
      seg.terms.length = keep;
      seg.last = index - 1;
      seg.sizeBytes = size;
      seg.zeroedTo = size;
    }
    fsyncPathSync(this.dir);
    this.uncache(index);
    this.logger.info({ from: index }, 'truncated a conflicting suffix of the Raft log');
  }

  // ---------------------------------------------------------------- cache

  private remember(entries: Entry[]): void {
    if (this.o.maxCacheBytes <= 0) return;
    if (this.cache.length === 0 || entries[0]!.index !== this.cacheFirst + this.cache.length) {
      this.clearCache();
      this.cacheFirst = entries[0]!.index;
    }
    for (const e of entries) {
      this.cache.push(e);
      this.cacheBytes += entryBytes(e);
    }
    let drop = 0;
    while (this.cacheBytes > this.o.maxCacheBytes && drop < this.cache.length - 1) {
      this.cacheBytes -= entryBytes(this.cache[drop]!);
      drop++;
    }
    if (drop > 0) {
      this.cache = this.cache.slice(drop);
      this.cacheFirst += drop;
    }
  }

  private uncache(fromIndex: number): void {
    if (fromIndex <= this.cacheFirst) return this.clearCache();
    const keep = fromIndex - this.cacheFirst;
    for (let k = keep; k < this.cache.length; k++) this.cacheBytes -= entryBytes(this.cache[k]!);
    this.cache.length = Math.min(this.cache.length, keep);
  }

  private clearCache(): void {
    this.cache = [];
    this.cacheBytes = 0;
  }

  // ---------------------------------------------------------------- snapshots

  snapshotSaved(meta: SnapshotMeta, compactTo: number): void {
    assert(compactTo <= meta.index, 'disk log: compacting past the snapshot');
    if (meta.index > this.snap.index) this.snap = { ...meta, conf: cloneConf(meta.conf) };
    if (compactTo <= this.compactedIndex) return;
    const t = this.term(compactTo);
    assert(t !== undefined, () => `disk log: compacting to ${compactTo}, which is not in the log`);
    this.compactedIndex = compactTo;
    this.compactedTerm = t;
    // Whole segments below the compaction point go; the in-progress segment always stays.
    const doomed: Segment[] = [];
    while (this.segments.length > 1 && this.segments[0]!.last <= compactTo) doomed.push(this.segments.shift()!);
    for (const s of doomed) {
      if (s.fd !== null) fs.closeSync(s.fd);
      s.fd = null;
    }
    if (doomed.length > 0) this.deleteOldestFirst(doomed.map((d) => d.file));
    if (compactTo >= this.cacheFirst) {
      const drop = Math.min(this.cache.length, compactTo - this.cacheFirst + 1);
      for (let k = 0; k < drop; k++) this.cacheBytes -= entryBytes(this.cache[k]!);
      this.cache = this.cache.slice(drop);
      this.cacheFirst += drop;
    }
  }

  /**
   * Deletes compacted segments in the background, oldest first and one at a time, each unlink made durable
   * before the next: a crash part-way leaves a shorter but contiguous log, never a gap (a gap refuses to start).
   */
  private deleteOldestFirst(files: string[]): void {
    this.deletions = this.deletions.then(async () => {
      for (const file of files) {
        try {
          await fs.promises.rm(file, { force: true });
          if (this.o.sync) {
            const h = await fs.promises.open(this.dir, 'r');
            try {
              await h.sync();
            } finally {
              await h.close();
            }
          }
        } catch (err) {
          this.logger.warn({ file, error: (err as Error).message }, 'could not delete a compacted log segment; the next ones stay too');
          return;
        }
      }
    });
  }

  /** Calls back once background work (segment deletions, zero-fill) is done: tests, clean shutdown. */
  flush(done: () => void): void {
    void this.deletions.then(() => {
      if (this.fill) this.fill.waiters.push(done);
      else done();
    });
  }

  beginReset(meta: SnapshotMeta): void {
    assert(!this.writing, 'disk log: reset during a write');
    this.pendingReset = { ...meta, conf: cloneConf(meta.conf) };
  }

  commitReset(meta: SnapshotMeta, done: (err: Error | null) => void): void {
    setImmediate(() => {
      try {
        this.dropAllSegments();
        this.snap = { ...meta, conf: cloneConf(meta.conf) };
        this.compactedIndex = meta.index;
        this.compactedTerm = meta.term;
        this.pendingReset = null;
        done(null);
      } catch (e) {
        done(e as Error);
      }
    });
  }

  // ---------------------------------------------------------------- status

  stats(): DiskLogStats {
    return {
      segments: this.segments.length,
      bytesOnDisk: this.segments.reduce((n, s) => n + s.sizeBytes, 0),
      firstIndex: this.firstIndex(),
      lastIndex: this.lastIndex(),
      cacheEntries: this.cache.length,
      cacheBytes: this.cacheBytes,
      preallocatedBytes: (() => {
        const t = this.segments[this.segments.length - 1];
        return t && !t.closed ? t.zeroedTo - t.sizeBytes : 0;
      })(),
      ...this.counters,
    };
  }

  close(): void {
    this.closedLog = true;
    this.cancelFill();
    for (const s of this.segments) {
      if (s.fd !== null) {
        fs.closeSync(s.fd);
        s.fd = null;
      }
    }
  }
}
