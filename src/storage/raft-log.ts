// The running Raft log on disk: group-committed appends to the in-progress segment (one vectored write and
// one fdatasync per batch; only the fdatasync leaves the event loop), suffix truncation on conflict,
// compaction by whole segments, a bounded cache of recent entries so replication usually reads memory, and
// preallocation. It starts from the index that start-up recovery (log-recovery.ts) builds; the file format
// is in log-segment.ts.
//
// Preallocation: the in-progress segment keeps zero-filled, fdatasynced space ahead of its end, written in
// the background, because overwriting blocks that are already allocated and initialized lets fdatasync skip
// the file-system journal commit that growing a file costs (measured: docs/PERFORMANCE.md). Closed segments
// are trimmed to their last entry.

import path from 'node:path';
import { assert } from '../assert.js';
import { takeWithinBytes } from '../raft/byte-limit.js';
import type { BatchFill } from '../raft/byte-limit.js';
import type { ReplicaLog } from '../replica/env.js';
import type { Entry, HardState, SnapshotMeta } from '../raft/types.js';
import { cloneConf, ENTRY_OVERHEAD_BYTES, entryBytes } from '../raft/types.js';
import type { FileHandle, FileSystem } from './file-system.js';
import { mkdirDurableSync, preadSync, writeAllSync, writevAllSync } from './files.js';
import { CorruptLogError, recoverLog } from './log-recovery.js';
export { CorruptLogError } from './log-recovery.js';
import type { RecoveredLog } from './log-recovery.js';
import {
  FRAME_HEADER_BYTES,
  SEGMENT_HEADER_BYTES,
  ZERO_CHUNK,
  ZERO_CHUNK_BYTES,
  logClosedName,
  decodeFrames,
  encodeFrames,
  encodeSegmentHeader,
  framedBytes,
  frameProblem,
  frameTerm,
  logInProgressName,
  segmentFor,
  unlinkSegmentsNewestFirst,
} from './log-segment.js';
import type { Segment } from './log-segment.js';
import { silentLogger } from '../logger.js';
import type { Logger } from '../logger.js';
import type { MetaStore } from './raft-meta-store.js';

/** The default bound on how far from the end damage may be a torn write: larger than any write batch. */
const TORN_WRITE_BYTES_DEFAULT = 64 << 20;

export interface DiskLogOptions {
  fileSystem: FileSystem;
  maxSegmentBytes: number;
  maxCacheBytes: number;
  /** fdatasync every write (raft_sync); off only for experiments. */
  sync: boolean;
  /** The snapshot the state machine restarted from: the log is reconciled with it. */
  snapshot: SnapshotMeta;
  meta: MetaStore;
  logger?: Logger;
  /** Zero-filled space kept ahead of the in-progress segment's end (0: none; only with sync). */
  preallocateBytes?: number;
  /**
   * The largest single write this log makes (a larger batch is written in parts, each durable before the
   * next; only one entry larger than it is written alone). At start-up, a damaged frame in the in-progress
   * segment with no data further than this past it, and with a sector that ends in zeros or that runs past
   * the end of the file, is the last write torn by a crash, and is cut; anything else is corruption.
   */
  tornWriteBytes?: number;
  /** Observes the duration of every fdatasync of an append (metrics: latency percentiles). */
  onFsync?(ms: number): void;
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

export class DiskLog implements ReplicaLog {
  private segments: Segment[];
  // Entries up to compactedIndex are not part of the log any more; term(compactedIndex) still answers.
  private compactedIndex: number;
  private compactedTerm: number;
  private snap: SnapshotMeta;
  private pendingReset: SnapshotMeta | null = null;
  /** Compacted segment files waiting to be deleted, oldest first, and whether a deletion is running. */
  private readonly deletions: string[] = [];
  private deleting = false;
  private deletionWaiters: (() => void)[] = [];
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
  private readonly logger: Logger;
  private readonly fileSystem: FileSystem;

  private constructor(
    readonly dir: string,
    private readonly options: DiskLogOptions,
    recovered: RecoveredLog,
  ) {
    this.logger = options.logger ?? silentLogger;
    this.fileSystem = options.fileSystem;
    this.snap = { ...options.snapshot, conf: cloneConf(options.snapshot.conf) };
    this.hard = { ...options.meta.meta.hardState };
    this.segments = recovered.segments;
    this.compactedIndex = recovered.compactedIndex;
    this.compactedTerm = recovered.compactedTerm;
  }

  /** Recovers the log in `dir` (see log-recovery.ts) and opens it; throws CorruptLogError if it cannot. */
  static open(dir: string, options: DiskLogOptions): DiskLog {
    mkdirDurableSync(options.fileSystem, dir);
    const recovered = recoverLog(dir, {
      fileSystem: options.fileSystem,
      snapshot: options.snapshot,
      tornWriteBytes: options.tornWriteBytes ?? TORN_WRITE_BYTES_DEFAULT,
      logger: options.logger ?? silentLogger,
    });
    return new DiskLog(dir, options, recovered);
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

  term(index: number): number | undefined {
    if (this.pendingReset) return index === this.pendingReset.index ? this.pendingReset.term : undefined;
    if (index === this.compactedIndex) return this.compactedTerm;
    if (index < this.compactedIndex || index > this.lastIndex()) return undefined;
    const seg = segmentFor(this.segments, index);
    return seg ? seg.terms[index - seg.first] : undefined;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    assert(!this.pendingReset, 'disk log: entries read during a reset');
    assert(
      lo >= this.firstIndex() && hi <= this.lastIndex() + 1 && lo <= hi,
      () => `disk log: entries(${lo}, ${hi}) outside [${this.firstIndex()}, ${this.lastIndex() + 1}]`,
    );
    const out: Entry[] = [];
    let bytes = 0;
    for (let i = lo; i < hi; ) {
      const sofar = { count: out.length, bytes };
      const cacheEnd = this.cacheFirst + this.cache.length;
      let end: number;
      let got: Entry[];
      if (i >= this.cacheFirst && i < cacheEnd) {
        end = Math.min(hi, cacheEnd);
        got = this.cachedRun(i, end, maxBytes, sofar);
      } else {
        // Not cached: read a run from the segment (up to the cache start or the segment end).
        const seg = segmentFor(this.segments, i)!;
        end = Math.min(hi, seg.last + 1, i < this.cacheFirst ? this.cacheFirst : hi);
        got = this.readRun(seg, i, end, maxBytes, sofar);
      }
      for (const e of got) {
        out.push(e);
        bytes += entryBytes(e);
      }
      if (got.length < end - i) break;
      i = end;
    }
    return out;
  }

  /** Cached entries [lo, hi) that fit in maxBytes after `sofar`. */
  private cachedRun(lo: number, hi: number, maxBytes: number, sofar: BatchFill): Entry[] {
    const from = lo - this.cacheFirst;
    const fit = takeWithinBytes(hi - lo, (k) => entryBytes(this.cache[from + k]!), maxBytes, sofar);
    return this.cache.slice(from, from + fit.count);
  }

  /** Reads entries [lo, hi) of one segment that fit in maxBytes after `sofar`, with one read call. */
  private readRun(seg: Segment, lo: number, hi: number, maxBytes: number, sofar: BatchFill): Entry[] {
    const offsetOf = (idx: number) => (idx <= seg.last ? seg.offsets[idx - seg.first]! : seg.sizeBytes);
    // An entry's size as entryBytes() counts it, from the index alone: its frame less the frame header (that
    // is, its data), plus the fixed overhead.
    const sizeOf = (k: number) => offsetOf(lo + k + 1) - offsetOf(lo + k) - FRAME_HEADER_BYTES + ENTRY_OVERHEAD_BYTES;
    const n = takeWithinBytes(hi - lo, sizeOf, maxBytes, sofar).count;
    if (n === 0) return [];
    const start = offsetOf(lo);
    const end = offsetOf(lo + n);
    const file = seg.fd ?? this.fileSystem.open(seg.file, 'r');
    let buf: Buffer;
    try {
      buf = preadSync(file, start, end - start);
    } finally {
      if (file !== seg.fd) file.close();
    }
    assert(buf.byteLength === end - start, () => `disk log: short read of ${seg.file}`);
    // Checked again as it is read back: bytes that rotted on the disk since start-up are never sent or applied.
    for (let k = 0, off = 0; k < n; k++) {
      const problem =
        frameProblem(buf, off, lo + k, 0) ??
        (frameTerm(buf, off) === seg.terms[lo + k - seg.first] ? null : 'entry term differs from the index');
      if (problem) throw new CorruptLogError(seg.file, start + off, problem);
      off = offsetOf(lo + k + 1) - start;
    }
    return decodeFrames(buf, n);
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
    const m = this.options.meta.meta;
    this.options.meta.save({ ...m, hardState: { ...hardState } }, (err) => {
      if (err) return finish(err);
      this.appendEntries(entries, finish);
    });
  }

  private appendEntries(entries: Entry[], done: (err: Error | null) => void): void {
    if (entries.length === 0) return done(null);
    const total = framedBytes(entries);
    const limit = this.options.tornWriteBytes ?? TORN_WRITE_BYTES_DEFAULT;
    if (total > limit && entries.length > 1) {
      // No write larger than tornWriteBytes (unless one entry is): the torn-write rule at start-up relies on
      // it. Each part is durable before the next is written.
      let n = 1;
      for (let bytes = framedBytes(entries.slice(0, 1)); n < entries.length; n++) {
        bytes += FRAME_HEADER_BYTES + entries[n]!.data.byteLength;
        if (bytes > limit) break;
      }
      return this.appendEntries(entries.slice(0, n), (err) =>
        err ? done(err) : this.appendEntries(entries.slice(n), done),
      );
    }
    if (this.waitsForFill(entries, total, () => this.appendEntries(entries, done))) return;
    let seg: Segment;
    try {
      const first = entries[0]!.index;
      if (first <= this.lastIndex()) this.truncateFrom(first);
      assert(first === this.lastIndex() + 1, () => `disk log: append at ${first} after ${this.lastIndex()}`);
      seg = this.writableSegment();
    } catch (e) {
      return done(e as Error);
    }
    const frames = encodeFrames(entries, seg.sizeBytes);
    const file = seg.fd!;
    // Copying into the page cache is quick, so it happens right here; only the fdatasync, which waits for
    // the device, goes to the thread pool: one hop per group commit instead of two.
    try {
      writevAllSync(file, frames.iov, seg.sizeBytes);
    } catch (e) {
      return done(e as Error);
    }
    const after = () => {
      this.appended(seg, entries, frames.offsets, total);
      done(null);
    };
    if (!this.options.sync) return after();
    const t0 = performance.now();
    file.datasync((e) => {
      const ms = performance.now() - t0;
      this.counters.fsyncs++;
      this.counters.fsyncMsTotal += ms;
      this.options.onFsync?.(ms);
      if (e) return done(e);
      after();
    });
  }

  /**
   * Whether an append must wait for the zero-fill (then `retry` runs when it ends): the fill owns the file
   * from fill.pos on, so a write reaching there, a truncation or a rollover waits (rare: the fill stays
   * megabytes ahead).
   */
  private waitsForFill(entries: Entry[], totalBytes: number, retry: () => void): boolean {
    const f = this.fill;
    if (!f) return false;
    const tail = this.segments[this.segments.length - 1];
    if (
      tail !== f.seg ||
      entries[0]!.index <= this.lastIndex() ||
      tail.sizeBytes >= this.options.maxSegmentBytes ||
      tail.sizeBytes + totalBytes > f.pos
    ) {
      f.waiters.push(retry);
      return true;
    }
    return false;
  }

  /** Indexes and caches entries whose frames are now written (and durable, with sync) at `offsets`. */
  private appended(seg: Segment, entries: Entry[], offsets: number[], totalBytes: number): void {
    this.counters.writes++;
    this.counters.bytesWritten += totalBytes;
    for (let k = 0; k < entries.length; k++) {
      seg.offsets.push(offsets[k]!);
      seg.terms.push(entries[k]!.term);
    }
    seg.last += entries.length;
    seg.sizeBytes += totalBytes;
    if (seg.zeroedTo < seg.sizeBytes) seg.zeroedTo = seg.sizeBytes;
    this.remember(entries);
    this.maybePreallocate(seg);
  }

  /**
   * Keeps preallocateBytes of zero-filled, durable space ahead of the in-progress segment's end: 1 MiB at a
   * time, each write followed by an fdatasync (so later overwrites need no journal commit), on its own file
   * descriptor (so a reset that unlinks the file cannot redirect it), never past the segment size limit.
   */
  private maybePreallocate(seg: Segment): void {
    const ahead = this.options.preallocateBytes ?? 0;
    if (ahead <= 0 || !this.options.sync || this.fill || seg.closed || this.closedLog) return;
    const from = Math.max(seg.zeroedTo, seg.sizeBytes);
    if (from - seg.sizeBytes >= ahead / 2) return;
    const to = Math.min(seg.sizeBytes + ahead, this.options.maxSegmentBytes);
    if (to <= from) return;
    let file: FileHandle;
    try {
      file = this.fileSystem.open(seg.file, 'r+');
    } catch (e) {
      this.logger.warn({ file: seg.file, error: (e as Error).message }, 'could not preallocate log space');
      return;
    }
    const job = { seg, pos: from, cancelled: false, waiters: [] as (() => void)[] };
    this.fill = job;
    const finish = (err: Error | null) => {
      file.close();
      if (err && !job.cancelled)
        this.logger.warn({ file: seg.file, error: err.message }, 'could not preallocate log space');
      if (this.fill === job) this.fill = null;
      for (const w of job.waiters) w();
    };
    const step = () => {
      if (job.cancelled || job.pos >= to) return finish(null);
      const n = Math.min(ZERO_CHUNK_BYTES, to - job.pos);
      file.writeAsync(ZERO_CHUNK, 0, n, job.pos, (e) => {
        if (e) return finish(e);
        file.datasync((e2) => {
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
    if (seg && !seg.closed && seg.sizeBytes < this.options.maxSegmentBytes) {
      if (seg.fd === null) seg.fd = this.fileSystem.open(seg.file, 'r+');
      return seg;
    }
    if (seg && !seg.closed) {
      // Close the full segment: its data is already durable (every write is fdatasynced); the zero-filled
      // space after it goes first, so closed segments end at their last entry.
      if (seg.zeroedTo > seg.sizeBytes) {
        const file = seg.fd ?? this.fileSystem.open(seg.file, 'r+');
        file.truncate(seg.sizeBytes);
        file.datasyncSync();
        if (file !== seg.fd) file.close();
        seg.zeroedTo = seg.sizeBytes;
      }
      seg.fd?.close();
      seg.fd = null;
      const closed = path.join(this.dir, logClosedName(seg.first, seg.last));
      this.fileSystem.rename(seg.file, closed);
      seg.file = closed;
      seg.closed = true;
    }
    const first = this.lastIndex() + 1;
    const prevTerm = this.term(first - 1) ?? 0;
    const file = path.join(this.dir, logInProgressName(first));
    const fd = this.fileSystem.open(file, 'w+');
    try {
      writeAllSync(fd, encodeSegmentHeader(first, prevTerm), 0);
      fd.datasyncSync();
      this.fileSystem.fsyncPathSync(this.dir);
    } catch (e) {
      // The write that needed this segment fails (a shortage of descriptors is retried): keep no descriptor.
      fd.close();
      throw e;
    }
    seg = {
      first,
      last: first - 1,
      prevTerm,
      closed: false,
      file,
      sizeBytes: SEGMENT_HEADER_BYTES,
      zeroedTo: SEGMENT_HEADER_BYTES,
      offsets: [],
      terms: [],
      fd,
    };
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
      s.fd?.close();
      this.fileSystem.unlink(s.file);
    }
    const seg = this.segments[this.segments.length - 1];
    if (seg && seg.last >= index) {
      const keep = index - seg.first;
      const size = seg.offsets[keep]!;
      if (seg.closed) {
        // The cut falls inside a closed segment: it becomes the in-progress one again.
        const reopened = path.join(this.dir, logInProgressName(seg.first));
        this.fileSystem.rename(seg.file, reopened);
        seg.file = reopened;
        seg.closed = false;
      }
      const file = seg.fd ?? this.fileSystem.open(seg.file, 'r+');
      file.truncate(size);
      file.datasyncSync();
      seg.fd = file;
      seg.offsets.length = keep;
      seg.terms.length = keep;
      seg.last = index - 1;
      seg.sizeBytes = size;
      seg.zeroedTo = size;
    }
    this.fileSystem.fsyncPathSync(this.dir);
    this.uncache(index);
    this.logger.info({ from: index }, 'truncated a conflicting suffix of the Raft log');
  }

  // ---------------------------------------------------------------- cache

  private remember(entries: Entry[]): void {
    if (this.options.maxCacheBytes <= 0) return;
    if (this.cache.length === 0 || entries[0]!.index !== this.cacheFirst + this.cache.length) {
      this.clearCache();
      this.cacheFirst = entries[0]!.index;
    }
    for (const e of entries) {
      this.cache.push(e);
      this.cacheBytes += entryBytes(e);
    }
    let drop = 0;
    while (this.cacheBytes > this.options.maxCacheBytes && drop < this.cache.length - 1) {
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
      s.fd?.close();
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
    this.deletions.push(...files);
    this.deleteNext();
  }

  private deleteNext(): void {
    if (this.deleting) return;
    const file = this.deletions.shift();
    if (file === undefined) {
      const waiters = this.deletionWaiters;
      this.deletionWaiters = [];
      for (const w of waiters) w();
      return;
    }
    const failed = (err: Error) => {
      // The next ones stay too: deleting them would leave a gap.
      this.logger.warn(
        { file, error: err.message },
        'could not delete a compacted log segment; the next ones stay too',
      );
      this.deletions.length = 0;
      this.deleting = false;
      this.deleteNext();
    };
    // Off the event loop: freeing a segment's blocks takes time.
    this.deleting = true;
    this.fileSystem.removeTreeAsync(file, (e) => {
      if (e) return failed(e);
      if (!this.options.sync) {
        this.deleting = false;
        return this.deleteNext();
      }
      this.fileSystem.fsyncPath(this.dir, (err) => {
        if (err) return failed(err);
        this.deleting = false;
        this.deleteNext();
      });
    });
  }

  /** Calls back once background work (segment deletions, zero-fill) is done: tests, clean shutdown. */
  flush(done: () => void): void {
    const afterDeletions = () => {
      if (this.fill) this.fill.waiters.push(done);
      else done();
    };
    if (!this.deleting && this.deletions.length === 0) return afterDeletions();
    this.deletionWaiters.push(afterDeletions);
  }

  beginReset(meta: SnapshotMeta): void {
    assert(!this.writing, 'disk log: reset during a write');
    this.pendingReset = { ...meta, conf: cloneConf(meta.conf) };
  }

  commitReset(meta: SnapshotMeta, done: (err: Error | null) => void): void {
    try {
      this.cancelFill();
      unlinkSegmentsNewestFirst(this.fileSystem, this.segments);
    } catch (e) {
      return done(e as Error);
    }
    this.segments = [];
    this.clearCache();
    this.fileSystem.fsyncPath(this.dir, (err) => {
      if (err) return done(err);
      this.snap = { ...meta, conf: cloneConf(meta.conf) };
      this.compactedIndex = meta.index;
      this.compactedTerm = meta.term;
      this.pendingReset = null;
      done(null);
    });
  }

  // ---------------------------------------------------------------- status

  /** Where the entry at `index` lies on disk, or undefined (compacted, not written): the simulator checks it there. */
  locate(index: number): { file: string; offsetBytes: number; frameBytes: number } | undefined {
    if (this.pendingReset || index <= this.compactedIndex || index > this.lastIndex()) return undefined;
    const seg = segmentFor(this.segments, index);
    if (!seg) return undefined;
    const at = seg.offsets[index - seg.first]!;
    const end = index < seg.last ? seg.offsets[index - seg.first + 1]! : seg.sizeBytes;
    return { file: seg.file, offsetBytes: at, frameBytes: end - at };
  }

  /** Bytes of the frames after `index` in this log: what a follower whose match is `index` lacks, as stored here. */
  bytesAfter(index: number): number {
    if (this.pendingReset) return 0;
    let n = 0;
    for (const seg of this.segments) {
      if (seg.last < seg.first || seg.last <= index) continue;
      n += seg.sizeBytes - seg.offsets[Math.max(0, index + 1 - seg.first)]!;
    }
    return n;
  }

  stats(): DiskLogStats {
    return {
      segments: this.segments.length,
      bytesOnDisk: this.segments.reduce((n, s) => n + s.sizeBytes, 0),
      firstIndex: this.firstIndex(),
      lastIndex: this.lastIndex(),
      cacheEntries: this.cache.length,
      cacheBytes: this.cacheBytes,
      preallocatedBytes: this.preallocatedBytes(),
      ...this.counters,
    };
  }

  private preallocatedBytes(): number {
    const t = this.segments[this.segments.length - 1];
    return t && !t.closed ? t.zeroedTo - t.sizeBytes : 0;
  }

  close(): void {
    this.closedLog = true;
    this.cancelFill();
    for (const s of this.segments) {
      s.fd?.close();
      s.fd = null;
    }
  }
}
