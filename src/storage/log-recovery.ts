// Start-up recovery of the Raft log: reads every segment file, checks every frame, cuts a write torn by a
// crash, refuses corruption with the file and offset, and reconciles the log with the snapshot the state
// machine restarted from. What it produces, the segments with the term and offset of every entry, is the
// in-memory index the running log (raft-log.ts) starts from.
//
// The torn-write rule. In the last in-progress segment only, a damaged frame is the last write torn by a
// crash, and is cut with a warning, when no data lies further than one write's size past it and it looks
// like sectors that never reached the disk: it runs past the end of the file, or a sector of it reads as
// zeros. Zeros after the last good frame are preallocated space, kept for appends. Anything else — a frame
// that is complete but wrong (a flipped bit), damage in a closed segment or further from the end — stops
// the node. The cut is safe because a torn write was never acknowledged: acks leave only after the
// fdatasync of everything they cover.

import path from 'node:path';
import type { SnapshotMeta } from '../raft/types.js';
import type { FileSystem } from './file-system.js';
import {
  FRAME_HEADER_BYTES,
  SEGMENT_HEADER_BYTES,
  ZERO_CHUNK,
  ZERO_CHUNK_BYTES,
  frameDataBytes,
  frameProblem,
  frameTerm,
  headerPrevTerm,
  lastTermOf,
  parseLogFileName,
  segmentFor,
  segmentHeaderProblem,
  unlinkSegmentsNewestFirst,
} from './log-segment.js';
import type { Segment } from './log-segment.js';
import type { Logger } from '../logger.js';

/** The unit a crash can tear a write into: a disk sector. */
const SECTOR_BYTES = 512;

export class CorruptLogError extends Error {
  override name = 'CorruptLogError';
  constructor(
    readonly file: string,
    readonly offset: number,
    readonly reason: string,
  ) {
    super(
      `Raft log corrupt at ${file} offset ${offset}: ${reason}. The node cannot serve from this log; move the data directory aside and re-add the node from its peers (docs/OPERATIONS.md, "Repairing a node")`,
    );
  }
}

export interface RecoveryOptions {
  fileSystem: FileSystem;
  /** The snapshot the state machine restarted from. */
  snapshot: SnapshotMeta;
  /** The largest single write the log is given: how far from the end damage can be a torn write. */
  tornWriteBytes: number;
  logger: Logger;
}

/** The log as found on disk: its segments, oldest first, and the compacted prefix below them. */
export interface RecoveredLog {
  segments: Segment[];
  /** Entries up to here are not in the log; compactedTerm is the term at it. */
  compactedIndex: number;
  compactedTerm: number;
}

/** Loads, checks and reconciles the log in `dir`; throws CorruptLogError when it cannot be served from. */
export function recoverLog(dir: string, options: RecoveryOptions): RecoveredLog {
  return reconcileWithSnapshot(dir, loadSegments(dir, options), options);
}

function loadSegments(dir: string, o: RecoveryOptions): RecoveredLog {
  const parsed = o.fileSystem
    .readdir(dir)
    .filter((n) => n.startsWith('log_'))
    .map((name) => {
      const p = parseLogFileName(name);
      if (!p) throw new CorruptLogError(path.join(dir, name), 0, 'unexpected file in the log directory');
      return { name, ...p };
    })
    .sort((a, b) => a.first - b.first);
  const segments: Segment[] = [];
  for (let i = 0; i < parsed.length; i++) {
    const p = parsed[i]!;
    const seg = loadSegment(dir, path.join(dir, p.name), p.first, p.last, i === parsed.length - 1, o);
    if (!seg) continue;
    const prev = segments[segments.length - 1];
    if (prev) {
      if (seg.first !== prev.last + 1)
        throw new CorruptLogError(
          seg.file,
          0,
          `segment starts at index ${seg.first} but the previous one ends at ${prev.last}`,
        );
      if (seg.prevTerm !== lastTermOf(prev))
        throw new CorruptLogError(
          seg.file,
          16,
          `header says the previous entry has term ${seg.prevTerm}, it has ${lastTermOf(prev)}`,
        );
    }
    segments.push(seg);
  }
  const first = segments[0];
  return { segments, compactedIndex: first ? first.first - 1 : 0, compactedTerm: first ? first.prevTerm : 0 };
}

/** Reads and checks one segment; returns null for an empty leftover (a torn segment creation). */
function loadSegment(
  dir: string,
  file: string,
  first: number,
  nameLast: number | null,
  isLast: boolean,
  o: RecoveryOptions,
): Segment | null {
  const buf = o.fileSystem.readFile(file);
  // Only the segment being appended to when the node stopped can end in a torn write.
  const appendable = isLast && nameLast === null;
  // Creation of a new segment was torn before its header was durable (its size may have been): it held
  // nothing, since nothing is appended before the header's fdatasync succeeds.
  if (buf.byteLength < SEGMENT_HEADER_BYTES || (appendable && endOfData(buf, 0) === 0)) {
    if (!appendable) throw new CorruptLogError(file, 0, 'file shorter than the segment header');
    o.logger.warn({ file, bytes: buf.byteLength }, 'removing a torn, empty log segment');
    o.fileSystem.unlink(file);
    o.fileSystem.fsyncPathSync(dir);
    return null;
  }
  const bad = segmentHeaderProblem(buf, first);
  if (bad) throw new CorruptLogError(file, bad.offset, bad.reason);
  const seg: Segment = {
    first,
    last: first - 1,
    prevTerm: headerPrevTerm(buf),
    closed: nameLast !== null,
    file,
    sizeBytes: SEGMENT_HEADER_BYTES,
    zeroedTo: 0,
    offsets: [],
    terms: [],
    fd: null,
  };
  let off = SEGMENT_HEADER_BYTES;
  let prevTerm = seg.prevTerm;
  while (off < buf.byteLength) {
    const problem = frameProblem(buf, off, seg.last + 1, prevTerm);
    if (problem) {
      const zeroedTo = appendable ? endOfDamagedTail(file, buf, off, problem, o) : null;
      if (zeroedTo === null) throw new CorruptLogError(file, off, problem);
      seg.zeroedTo = zeroedTo;
      break;
    }
    const term = frameTerm(buf, off);
    seg.offsets.push(off);
    seg.terms.push(term);
    seg.last++;
    prevTerm = term;
    off += FRAME_HEADER_BYTES + frameDataBytes(buf, off);
  }
  seg.sizeBytes = off;
  seg.zeroedTo = Math.max(seg.zeroedTo, off);
  if (nameLast !== null && seg.last !== nameLast)
    throw new CorruptLogError(file, off, `closed segment holds entries up to ${seg.last}, its name says ${nameLast}`);
  return seg;
}

/**
 * Applies the torn-write rule to the in-progress segment whose frame at `off` is damaged. Returns how far
 * the file is then zero-filled and usable for appends — all of it when only zeros follow (preallocated
 * space, or a write that left nothing), `off` when a torn write was cut there — or null: corruption.
 */
function endOfDamagedTail(file: string, buf: Buffer, off: number, problem: string, o: RecoveryOptions): number | null {
  const end = endOfData(buf, off);
  if (end === off) return buf.byteLength;
  if (end - off > o.tornWriteBytes || !looksTorn(buf, off, o.tornWriteBytes)) return null;
  // Some sectors of the last write reached the disk, not all: cut it (it was never acknowledged).
  o.logger.warn(
    { file, offset: off, cutBytes: buf.byteLength - off, reason: problem },
    'cutting a torn write off the Raft log',
  );
  const handle = o.fileSystem.open(file, 'r+');
  try {
    handle.truncate(off);
    handle.datasyncSync();
  } finally {
    handle.close();
  }
  return off;
}

/** The offset just past the last non-zero byte of buf at or after `from` (`from` if all zero). */
function endOfData(buf: Buffer, from: number): number {
  let end = buf.byteLength;
  // Whole zero chunks from the back first (a preallocated tail is megabytes of zeros), then bytes.
  while (end - from >= ZERO_CHUNK_BYTES && buf.subarray(end - ZERO_CHUNK_BYTES, end).equals(ZERO_CHUNK))
    end -= ZERO_CHUNK_BYTES;
  while (end > from && buf[end - 1] === 0) end--;
  return end;
}

/**
 * Whether the damaged frame at `off` looks like a write that did not wholly reach the disk rather than
 * bytes that changed after they did: the frame runs past the end of the file, or a sector it covers ends in
 * zeros that reach back into the frame. A sector write cut short leaves the start of its new bytes and then
 * what was there before, which past the end of the log is zeros (preallocated space and holes read as
 * zeros); a sector that was never written at all is the whole of it zeros. A flipped bit leaves every sector
 * ending in what was written, so it is refused as corruption — unless the frame's own bytes end a sector
 * with zeros, which a torn write cannot be told from (docs/OPERATIONS.md).
 */
function looksTorn(buf: Buffer, off: number, maxWrite: number): boolean {
  if (off + FRAME_HEADER_BYTES > buf.byteLength) return true;
  const len = frameDataBytes(buf, off);
  if (len > maxWrite) return false;
  const frameEnd = off + FRAME_HEADER_BYTES + len;
  if (frameEnd > buf.byteLength) return true;
  for (let s = off - (off % SECTOR_BYTES); s < frameEnd; s += SECTOR_BYTES) {
    const end = Math.min(s + SECTOR_BYTES, buf.byteLength);
    let zerosFrom = end;
    while (zerosFrom > s && buf[zerosFrom - 1] === 0) zerosFrom--;
    if (zerosFrom < end && zerosFrom < frameEnd) return true;
  }
  return false;
}

/** Makes the log agree with the snapshot the state machine restarted from. */
function reconcileWithSnapshot(dir: string, log: RecoveredLog, o: RecoveryOptions): RecoveredLog {
  const s = o.snapshot;
  const fromSnapshot: RecoveredLog = { segments: [], compactedIndex: s.index, compactedTerm: s.term };
  const tail = log.segments[log.segments.length - 1];
  if (!tail) return fromSnapshot;
  if (s.index < log.compactedIndex) {
    throw new CorruptLogError(
      log.segments[0]!.file,
      0,
      `the log starts after index ${log.compactedIndex} but the newest usable snapshot is at ${s.index}: entries in between are missing`,
    );
  }
  const last = Math.max(log.compactedIndex, tail.last);
  if (s.index <= last && termAt(log, s.index) === s.term) return log; // the log holds the snapshot's entry
  // The log does not hold the snapshot's (index, term): it was being replaced by an installed snapshot.
  o.logger.warn(
    { snapshotIndex: s.index, snapshotTerm: s.term, logLast: last },
    'the Raft log does not hold the snapshot; discarding it',
  );
  unlinkSegmentsNewestFirst(o.fileSystem, log.segments);
  o.fileSystem.fsyncPathSync(dir);
  return fromSnapshot;
}

function termAt(log: RecoveredLog, index: number): number | undefined {
  if (index === log.compactedIndex) return log.compactedTerm;
  const seg = segmentFor(log.segments, index);
  return seg ? seg.terms[index - seg.first] : undefined;
}
