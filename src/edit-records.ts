// The framing of edit records — the journal's unit — shared by libqjm (encodes), the JournalNode (validates,
// stores verbatim in segment files) and `qjm dump` (reads offline). One frame:
//   [u32 BE crc32 of the rest of the frame][u64 BE txid][u32 BE length][length bytes of data]
// and the header of a segment file:
//   "QJEDITS1" | u32 BE format version | i32 BE layout version | u64 BE first txid | u32 reserved | u32 BE crc32

import zlib from 'node:zlib';
import { crc32Range } from './crc32.js';
import { readU64, writeU64 } from './raft/bytes.js';
import { segmentNaming } from './segment-name.js';

export const RECORD_HEADER_BYTES = 16;
export const SEGMENT_HEADER_BYTES = 32;
export const SEGMENT_MAGIC = Buffer.from('QJEDITS1', 'latin1');
export const SEGMENT_FORMAT_VERSION = 1;

export function framedSize(dataBytes: number): number {
  return RECORD_HEADER_BYTES + dataBytes;
}

/** Writes one frame at `offset` of `buf` (which must have room); returns the offset after it. */
export function encodeRecord(buf: Buffer, offset: number, txid: number, data: Uint8Array): number {
  writeU64(buf, offset + 4, txid);
  buf.writeUInt32BE(data.byteLength, offset + 12);
  buf.set(data, offset + RECORD_HEADER_BYTES);
  const end = offset + RECORD_HEADER_BYTES + data.byteLength;
  buf.writeUInt32BE(crc32Range(buf, offset + 4, end), offset);
  return end;
}

/** Frames records as consecutive txids from firstTxId. */
export function encodeRecords(firstTxId: number, records: readonly Uint8Array[]): Buffer {
  let total = 0;
  for (const r of records) total += framedSize(r.byteLength);
  const buf = Buffer.allocUnsafe(total);
  let off = 0;
  records.forEach((r, i) => {
    off = encodeRecord(buf, off, firstTxId + i, r);
  });
  return buf;
}

export interface RecordView {
  txid: number;
  /** A view into the frame's buffer. */
  data: Uint8Array;
  /** Offset of the frame in the buffer, and of the next frame. */
  offset: number;
  next: number;
}

export type FrameResult =
  | { ok: true; record: RecordView }
  | { ok: false; reason: string; offset: number; truncated: boolean };

/** Parses the frame at offset, checking that it fits and that its CRC matches. */
export function readFrame(buf: Uint8Array, offset: number, maxRecordBytes = Number.MAX_SAFE_INTEGER): FrameResult {
  if (offset + RECORD_HEADER_BYTES > buf.byteLength)
    return { ok: false, reason: 'frame header runs past the end', offset, truncated: true };
  const b = buf as Buffer;
  const crc = b.readUInt32BE(offset);
  const txid = readU64(b, offset + 4);
  const len = b.readUInt32BE(offset + 12);
  if (len > maxRecordBytes)
    return {
      ok: false,
      reason: `record of ${len} bytes is over the limit of ${maxRecordBytes}`,
      offset,
      truncated: false,
    };
  const end = offset + RECORD_HEADER_BYTES + len;
  if (end > buf.byteLength) return { ok: false, reason: 'record runs past the end', offset, truncated: true };
  if (crc32Range(b, offset + 4, end) !== crc)
    return { ok: false, reason: `CRC mismatch for txid ${txid}`, offset, truncated: false };
  return { ok: true, record: { txid, data: b.subarray(offset + RECORD_HEADER_BYTES, end), offset, next: end } };
}

/**
 * Iterates well-formed frames (CRC checked); stops at the first problem (use validateBatch first for untrusted
 * input). One object per record: a reader walks every record it is sent.
 */
export function* iterateRecords(buf: Uint8Array, offset = 0): Generator<RecordView> {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  while (offset + RECORD_HEADER_BYTES <= b.byteLength) {
    const end = offset + RECORD_HEADER_BYTES + b.readUInt32BE(offset + 12);
    if (end > b.byteLength || crc32Range(b, offset + 4, end) !== b.readUInt32BE(offset)) return;
    yield { txid: readU64(b, offset + 4), data: b.subarray(offset + RECORD_HEADER_BYTES, end), offset, next: end };
    offset = end;
  }
}

export interface BatchLimits {
  maxRecordBytes: number;
}

/**
 * Checks an untrusted batch: exactly `count` well-formed frames covering the whole buffer, txids
 * firstTxId.., each record within the limit. Returns why not (TOO_LARGE or INVALID_ARGUMENT), or null.
 * Allocates nothing per record: every committed batch is checked by every replica at apply.
 */
export function validateBatch(
  buf: Uint8Array,
  firstTxId: number,
  count: number,
  limits: BatchLimits,
): { name: 'TOO_LARGE' | 'INVALID_ARGUMENT'; message: string } | null {
  const b = Buffer.from(buf.buffer, buf.byteOffset, buf.byteLength);
  const at = (i: number, reason: string) => `record ${i} (txid ${firstTxId + i}): ${reason}`;
  let off = 0;
  for (let i = 0; i < count; i++) {
    if (off + RECORD_HEADER_BYTES > b.byteLength)
      return { name: 'INVALID_ARGUMENT', message: at(i, 'frame header runs past the end') };
    const len = b.readUInt32BE(off + 12);
    if (len > limits.maxRecordBytes)
      return {
        name: 'TOO_LARGE',
        message: at(i, `record of ${len} bytes is over the limit of ${limits.maxRecordBytes}`),
      };
    const end = off + RECORD_HEADER_BYTES + len;
    if (end > b.byteLength) return { name: 'INVALID_ARGUMENT', message: at(i, 'record runs past the end') };
    const txid = readU64(b, off + 4);
    if (crc32Range(b, off + 4, end) !== b.readUInt32BE(off))
      return { name: 'INVALID_ARGUMENT', message: at(i, `CRC mismatch for txid ${txid}`) };
    if (txid !== firstTxId + i)
      return { name: 'INVALID_ARGUMENT', message: `record ${i} has txid ${txid}, expected ${firstTxId + i}` };
    off = end;
  }
  if (off !== b.byteLength)
    return { name: 'INVALID_ARGUMENT', message: `${b.byteLength - off} bytes after the ${count} declared records` };
  return null;
}

export interface SegmentHeader {
  version: number;
  layoutVersion: number;
  firstTxId: number;
}

export function encodeSegmentHeader(layoutVersion: number, firstTxId: number): Buffer {
  const b = Buffer.alloc(SEGMENT_HEADER_BYTES);
  SEGMENT_MAGIC.copy(b, 0);
  b.writeUInt32BE(SEGMENT_FORMAT_VERSION, 8);
  b.writeInt32BE(layoutVersion, 12);
  writeU64(b, 16, firstTxId);
  b.writeUInt32BE(zlib.crc32(b.subarray(0, 28)), 28);
  return b;
}

export function decodeSegmentHeader(b: Uint8Array): SegmentHeader | string {
  if (b.byteLength < SEGMENT_HEADER_BYTES) return 'file shorter than the segment header';
  const buf = Buffer.from(b.buffer, b.byteOffset, SEGMENT_HEADER_BYTES);
  if (!buf.subarray(0, 8).equals(SEGMENT_MAGIC)) return 'not a qjournal segment file (bad magic)';
  if (zlib.crc32(buf.subarray(0, 28)) !== buf.readUInt32BE(28)) return 'segment header CRC mismatch';
  const version = buf.readUInt32BE(8);
  if (version !== SEGMENT_FORMAT_VERSION) return `unsupported segment format version ${version}`;
  return { version, layoutVersion: buf.readInt32BE(12), firstTxId: readU64(buf, 16) };
}

/** Journal segment files are named as Hadoop names them: edits_inprogress_<txid>, edits_<first>-<last>. */
export const EDITS_NAMING = segmentNaming('edits', 19);
export const inProgressName = EDITS_NAMING.inProgress;
export const finalizedName = EDITS_NAMING.closed;

/** Parses a segment file name (Hadoop's naming); null for any other file. */
export function parseSegmentName(name: string): { firstTxId: number; lastTxId: number | null } | null {
  const p = EDITS_NAMING.parse(name);
  return p && { firstTxId: p.first, lastTxId: p.last };
}
