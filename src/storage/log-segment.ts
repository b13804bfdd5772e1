// The Raft log's segment files: their format, their names, and the in-memory record of one segment (the
// term and offset of every entry), shared by start-up recovery (log-recovery.ts) and the running log
// (raft-log.ts). A segment file is a 32-byte header ("QJRLOG01", u64 first index, u64 term of the entry
// before it, u32 reserved, u32 crc32) then frames:
//   [u32 BE data length][u32 BE crc32 of the rest][u64 BE term][u64 BE index][u8 type][data]
// Names: log_inprogress_<first, 20 digits> while appended to; log_<first>-<last> once closed.

import zlib from 'node:zlib';
import { readU64, writeU64 } from '../raft/bytes.js';
import type { Entry, EntryType } from '../raft/types.js';
import type { FileHandle, FileSystem } from './file-system.js';
import { segmentNaming } from '../segment-name.js';

export const SEGMENT_MAGIC = Buffer.from('QJRLOG01', 'latin1');
export const SEGMENT_HEADER_BYTES = 32;
export const FRAME_HEADER_BYTES = 25;
/** Preallocated space is written, and skipped at recovery, this many zeros at a time. */
export const ZERO_CHUNK_BYTES = 1 << 20;
export const ZERO_CHUNK = Buffer.alloc(ZERO_CHUNK_BYTES);

/** One segment file and the index of its entries. */
export interface Segment {
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
  fd: FileHandle | null;
}

const LOG_NAMING = segmentNaming('log', 20);
export const logInProgressName = LOG_NAMING.inProgress;
export const logClosedName = LOG_NAMING.closed;
/** The first index (and, for a closed segment, the last) a segment file's name carries; null if not one. */
export const parseLogFileName = LOG_NAMING.parse;

export function encodeSegmentHeader(first: number, prevTerm: number): Buffer {
  const b = Buffer.alloc(SEGMENT_HEADER_BYTES);
  SEGMENT_MAGIC.copy(b, 0);
  writeU64(b, 8, first);
  writeU64(b, 16, prevTerm);
  b.writeUInt32BE(zlib.crc32(b.subarray(0, 28)), 28);
  return b;
}

/** Why the segment header in buf is not the one for a segment starting at `first`, or null if it is. */
export function segmentHeaderProblem(buf: Buffer, first: number): { offset: number; reason: string } | null {
  if (!buf.subarray(0, 8).equals(SEGMENT_MAGIC)) return { offset: 0, reason: 'not a Raft log segment (bad magic)' };
  if (zlib.crc32(buf.subarray(0, 28)) !== buf.readUInt32BE(28))
    return { offset: 28, reason: 'segment header CRC mismatch' };
  const hFirst = readU64(buf, 8);
  if (hFirst !== first)
    return { offset: 8, reason: `header first index ${hFirst} does not match the file name (${first})` };
  return null;
}

/** The term of the entry before the segment's first, as its header records it. */
export const headerPrevTerm = (buf: Buffer) => readU64(buf, 16);

/** The bytes entries take as frames. */
export function framedBytes(entries: readonly Entry[]): number {
  let total = 0;
  for (const e of entries) total += FRAME_HEADER_BYTES + e.data.byteLength;
  return total;
}

/**
 * Frames entries for one vectored write at file offset `at`: frame headers go in one small buffer and entry
 * data is written from where it already is, so a batch of megabytes is not copied once more (nor allocated:
 * less garbage, fewer pauses). Returns the buffers to write and each entry's offset in the file.
 */
export function encodeFrames(entries: readonly Entry[], at: number): { iov: Uint8Array[]; offsets: number[] } {
  const headers = Buffer.allocUnsafe(entries.length * FRAME_HEADER_BYTES);
  const iov: Uint8Array[] = [];
  const offsets: number[] = [];
  let off = at;
  for (let k = 0; k < entries.length; k++) {
    const e = entries[k]!;
    const h = headers.subarray(k * FRAME_HEADER_BYTES, (k + 1) * FRAME_HEADER_BYTES);
    offsets.push(off);
    h.writeUInt32BE(e.data.byteLength, 0);
    writeU64(h, 8, e.term);
    writeU64(h, 16, e.index);
    h[24] = e.type;
    // zlib.crc32 of a zero-length view whose ArrayBuffer is empty answers 0, not the running value (Node
    // 20): an empty entry (a leader's no-op) adds nothing to the CRC, so it is not passed.
    const fields = zlib.crc32(h.subarray(8));
    h.writeUInt32BE(e.data.byteLength > 0 ? zlib.crc32(e.data, fields) : fields, 4);
    iov.push(h);
    if (e.data.byteLength > 0) iov.push(e.data);
    off += FRAME_HEADER_BYTES + e.data.byteLength;
  }
  return { iov, offsets };
}

/** The `count` entries framed in buf from its start (already checked); their data are views into buf. */
export function decodeFrames(buf: Buffer, count: number): Entry[] {
  const out: Entry[] = [];
  let off = 0;
  for (let k = 0; k < count; k++) {
    const len = buf.readUInt32BE(off);
    out.push({
      term: frameTerm(buf, off),
      index: readU64(buf, off + 16),
      type: buf[off + 24]! as EntryType,
      data: buf.subarray(off + FRAME_HEADER_BYTES, off + FRAME_HEADER_BYTES + len),
    });
    off += FRAME_HEADER_BYTES + len;
  }
  return out;
}

export const frameDataBytes = (buf: Buffer, off: number) => buf.readUInt32BE(off);
export const frameTerm = (buf: Buffer, off: number) => readU64(buf, off + 8);

/** Why the frame at `off` is not the entry expected there (index, a term not below prevTerm), or null. */
export function frameProblem(buf: Buffer, off: number, expectIndex: number, prevTerm: number): string | null {
  if (off + FRAME_HEADER_BYTES > buf.byteLength) return 'frame header runs past the end of the file';
  const len = frameDataBytes(buf, off);
  if (off + FRAME_HEADER_BYTES + len > buf.byteLength) return `frame of ${len} bytes runs past the end of the file`;
  if (zlib.crc32(buf.subarray(off + 8, off + FRAME_HEADER_BYTES + len)) !== buf.readUInt32BE(off + 4))
    return 'entry CRC mismatch';
  const index = readU64(buf, off + 16);
  if (index !== expectIndex) return `entry index ${index}, expected ${expectIndex}`;
  const term = frameTerm(buf, off);
  if (term < prevTerm) return `entry term ${term} is below the previous entry's term ${prevTerm}`;
  return null;
}

/** The segment holding `index` (segments sorted and contiguous), by binary search. */
export function segmentFor(segments: readonly Segment[], index: number): Segment | undefined {
  let lo = 0;
  let hi = segments.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    const s = segments[mid]!;
    if (index < s.first) hi = mid - 1;
    else if (index > s.last) lo = mid + 1;
    else return s;
  }
  return undefined;
}

/** The term of the segment's last entry (of the entry before it while empty). */
export function lastTermOf(seg: Segment): number {
  return seg.terms.length > 0 ? seg.terms[seg.terms.length - 1]! : seg.prevTerm;
}

/**
 * Deletes segment files newest first (not yet durable: the caller syncs the directory): a crash before the
 * directory's sync leaves a prefix of the log, which recovery can judge against the snapshot (a hole could
 * not be).
 */
export function unlinkSegmentsNewestFirst(fileSystem: FileSystem, segments: readonly Segment[]): void {
  for (const seg of [...segments].reverse()) {
    seg.fd?.close();
    seg.fd = null;
    fileSystem.unlink(seg.file);
  }
}
