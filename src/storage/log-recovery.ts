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
// the node — unless the caller takes damage (onDamage): then the log keeps what is sound and is cut before the
// damage, or loses only what the snapshot holds (log-damage.ts). The torn-write cut is safe because a torn
// write was never acknowledged: acks leave only after the fdatasync of everything they cover.

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
import { applyDamage, readTolerant, resync, SECTOR_BYTES, touchesUnreadable } from './log-damage.js';
import type { LogDamage, LogFile, TolerantRead } from './log-damage.js';
export type { LogDamage } from './log-damage.js';
import type { Logger } from '../logger.js';

export class CorruptLogError extends Error {
  override name = 'CorruptLogError';
  /** The node's own storage failing (env.ts, isStorageFailure): a replica that meets it stops. */
  readonly storageFailed = true;
  constructor(
    readonly file: string,
    readonly offset: number,
    readonly reason: string,
  ) {
    super(
      `Raft log corrupt at ${file} offset ${offset}: ${reason}. The node stops serving from this log; at its next start it keeps the sound part and fetches the rest from its peers (docs/OPERATIONS.md, "Scrubbing, comparing, repairing")`,
    );
  }
}

export interface RecoveryOptions {
  fileSystem: FileSystem;
  /**
   * Told of damage (anything but a torn write) before recovery changes the log for it; it must make durable
   * what the node has to remember (with a 'cut', the floor: claimedLast). Without it, damage throws
   * CorruptLogError.
   */
  onDamage?(d: LogDamage): void;
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
  // Each round removes the first damage it finds (or throws): at most one round per file, and a last one.
  for (let round = 0; ; round++) {
    const found = loadSegments(dir, options);
    if (!found.damage) return reconcileWithSnapshot(dir, found.log, options);
    const { files, at, damage } = found.damage;
    if (!options.onDamage || round > files.length)
      throw new CorruptLogError(damage.file, damage.offsetBytes, damage.reason);
    options.onDamage(damage);
    options.logger.warn(
      { ...damage },
      damage.action === 'dropped'
        ? 'damaged Raft log segments under the snapshot: deleting them (the snapshot holds their entries)'
        : `damaged Raft log: keeping entries before ${damage.firstIndex}, cutting the rest (the leader sends them again)`,
    );
    applyDamage(options.fileSystem, dir, files, at, damage);
  }
}

/** The segments as found, and the first damage (not a torn write) with what it implies. */
interface Found {
  log: RecoveredLog;
  damage: { files: LogFile[]; at: number; damage: LogDamage } | null;
}

function loadSegments(dir: string, o: RecoveryOptions): Found {
  const parsed = o.fileSystem
    .readdir(dir)
    .filter((n) => n.startsWith('log_'))
    .map((name) => {
      const p = parseLogFileName(name);
      if (!p) throw new CorruptLogError(path.join(dir, name), 0, 'unexpected file in the log directory');
      return { name, ...p };
    })
    .sort((a, b) => a.first - b.first);
  const files: LogFile[] = parsed.map((p) => ({ file: path.join(dir, p.name), first: p.first, nameLast: p.last }));
  const segments: Segment[] = [];
  let damaged: { at: number; offset: number; index: number; reason: string } | null = null;
  let tail: Scanned | null = null;
  for (let i = 0; i < parsed.length; i++) {
    const f = files[i]!;
    const scanned = loadSegment(dir, f.file, f.first, f.nameLast, i === parsed.length - 1, o);
    if (!scanned) continue;
    tail = scanned;
    // Past damage, the files are read only to learn where the log ended.
    if (damaged) continue;
    const seg = scanned.seg;
    const prev = segments[segments.length - 1];
    if (prev) {
      if (seg.first !== prev.last + 1)
        throw new CorruptLogError(
          seg.file,
          0,
          `segment starts at index ${seg.first} but the previous one ends at ${prev.last}`,
        );
      // A damaged header says nothing of the term before it: the damage is dealt with first.
      if (seg.prevTerm !== lastTermOf(prev) && scanned.damage?.index !== seg.first)
        throw new CorruptLogError(
          seg.file,
          16,
          `header says the previous entry has term ${seg.prevTerm}, it has ${lastTermOf(prev)}`,
        );
    }
    segments.push(seg);
    if (scanned.damage) damaged = { at: i, ...scanned.damage };
  }
  const first = segments[0];
  const log = { segments, compactedIndex: first ? first.first - 1 : 0, compactedTerm: first ? first.prevTerm : 0 };
  if (!damaged || !tail) return { log, damage: null };
  const d = files[damaged.at]!;
  const claimedLast = tail.endClean && tail.lastSound ? tail.lastSound : { index: tail.boundIndex, term: null };
  // Under the snapshot: a closed segment whose entries the snapshot holds, and everything before it.
  const dropped = d.nameLast !== null && d.nameLast <= o.snapshot.index;
  return {
    log,
    damage: {
      files,
      at: damaged.at,
      damage: {
        file: d.file,
        offsetBytes: damaged.offset,
        reason: damaged.reason,
        firstIndex: damaged.index,
        claimedLast,
        action: dropped ? 'dropped' : 'cut',
      },
    },
  };
}

/** One segment file as read: its sound entries up to the first damage, and where the file's log ends. */
interface Scanned {
  seg: Segment;
  damage: { offset: number; index: number; reason: string } | null;
  /** The last sound entry in the file, past any damage. */
  lastSound: { index: number; term: number } | null;
  /** The file's log ends with lastSound (only zeros, or a torn write, after it). */
  endClean: boolean;
  /** The last index the file may hold (its name's, or what its bytes could hold past the last sound entry). */
  boundIndex: number;
}

/**
 * Reads and checks one segment: its sound entries up to the first damage (not a torn write, which is cut), and,
 * past damage, the sound frames after it (where the file's log ends). Null for an empty leftover (a torn
 * segment creation, removed).
 */
function loadSegment(
  dir: string,
  file: string,
  first: number,
  nameLast: number | null,
  isLast: boolean,
  o: RecoveryOptions,
): Scanned | null {
  const r = readTolerant(o.fileSystem, file);
  const buf = r.buf;
  // Only the segment being appended to when the node stopped can end in a torn write.
  const appendable = isLast && nameLast === null;
  // Creation of a new segment was torn before its header was durable (its size may have been): it held
  // nothing, since nothing is appended before the header's fdatasync succeeds.
  if (appendable && r.unreadable.length === 0 && (buf.byteLength < SEGMENT_HEADER_BYTES || endOfData(buf, 0) === 0)) {
    o.logger.warn({ file, bytes: buf.byteLength }, 'removing a torn, empty log segment');
    o.fileSystem.unlink(file);
    o.fileSystem.fsyncPathSync(dir);
    return null;
  }
  const seg: Segment = {
    first,
    last: first - 1,
    prevTerm: 0,
    closed: nameLast !== null,
    file,
    sizeBytes: SEGMENT_HEADER_BYTES,
    zeroedTo: 0,
    offsets: [],
    terms: [],
    fd: null,
  };
  const bad =
    buf.byteLength < SEGMENT_HEADER_BYTES
      ? { offset: 0, reason: 'file shorter than the segment header' }
      : (segmentHeaderProblem(buf, first) ??
        (touchesUnreadable(r, 0, SEGMENT_HEADER_BYTES) ? { offset: 0, reason: 'unreadable header' } : null));
  const w: Walk = {
    off: SEGMENT_HEADER_BYTES,
    expected: first,
    prevTerm: 0,
    damage: null,
    lastSound: null,
    endClean: false,
  };
  if (bad) {
    w.damage = { offset: bad.offset, index: first, reason: bad.reason };
    const next = resync(r, SEGMENT_HEADER_BYTES, first - 1, buf.byteLength);
    if (next) Object.assign(w, { off: next.offset, expected: next.index });
    else w.off = buf.byteLength + 1; // nothing sound in it
  } else {
    seg.prevTerm = w.prevTerm = headerPrevTerm(buf);
  }
  walkFrames(file, r, seg, w, appendable, o);
  if (!w.damage && nameLast !== null && seg.last !== nameLast)
    w.damage = {
      offset: seg.sizeBytes,
      index: seg.last + 1,
      reason: `closed segment holds entries up to ${seg.last}, its name says ${nameLast}`,
    };
  const lastKnown = Math.max(w.lastSound?.index ?? first - 1, w.expected - 1);
  const stoppedAt = Math.min(w.off, buf.byteLength);
  const boundIndex =
    nameLast ??
    (w.endClean ? lastKnown : lastKnown + Math.ceil((endOfData(buf, stoppedAt) - stoppedAt) / FRAME_HEADER_BYTES));
  return { seg, damage: w.damage, lastSound: w.lastSound, endClean: w.endClean, boundIndex };
}

/** Where the walk over a segment's frames stands. */
interface Walk {
  off: number;
  expected: number;
  prevTerm: number;
  damage: Scanned['damage'];
  lastSound: Scanned['lastSound'];
  endClean: boolean;
}

/**
 * Walks the frames from w.off: sound ones before any damage become the segment's entries; a damaged one is a
 * torn write (cut) when it is the first problem of the appendable segment and looks like one, else damage,
 * walked past to the next sound frame. Ends with endClean when the file's log ends in what is sound.
 */
function walkFrames(
  file: string,
  r: TolerantRead,
  seg: Segment,
  w: Walk,
  appendable: boolean,
  o: RecoveryOptions,
): void {
  const buf = r.buf;
  while (w.off < buf.byteLength) {
    const off = w.off;
    let problem = frameProblem(buf, off, w.expected, w.prevTerm);
    if (!problem && touchesUnreadable(r, off, off + FRAME_HEADER_BYTES + frameDataBytes(buf, off)))
      problem = 'unreadable sector';
    if (!problem) {
      const term = frameTerm(buf, off);
      if (!w.damage) {
        seg.offsets.push(off);
        seg.terms.push(term);
        seg.last++;
      }
      w.lastSound = { index: w.expected, term };
      w.prevTerm = term;
      w.expected++;
      w.off += FRAME_HEADER_BYTES + frameDataBytes(buf, off);
      if (!w.damage) seg.sizeBytes = w.off;
      continue;
    }
    const nothingUnreadableAfter = !r.unreadable.some((sec) => sec + SECTOR_BYTES > off);
    // With a damage taker, a damaged frame with sound frames after it is not cut as a torn write: the frames after
    // may have been acknowledged (a flipped bit can look torn: a frame's own sector ending in zeros). Cut as
    // damage, with a floor, it is safe either way.
    const soundAfter = o.onDamage !== undefined && resync(r, off + 1, w.expected - 1, buf.byteLength) !== null;
    if (appendable && nothingUnreadableAfter && !soundAfter) {
      if (!w.damage) {
        const zeroedTo = endOfDamagedTail(file, buf, off, problem, o);
        if (zeroedTo !== null) {
          seg.zeroedTo = zeroedTo;
          w.endClean = true;
          return;
        }
      } else if (endOfData(buf, off) === off) {
        w.endClean = true; // only zeros after the last sound frame past the damage: the end
        return;
      }
    }
    if (!w.damage) w.damage = { offset: off, index: w.expected, reason: problem };
    const next = resync(r, off + 1, w.expected - 1, buf.byteLength);
    if (!next) return;
    w.off = next.offset;
    w.expected = next.index;
    w.prevTerm = 0;
  }
  w.endClean = w.off === buf.byteLength;
  seg.zeroedTo = Math.max(seg.zeroedTo, seg.sizeBytes);
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
