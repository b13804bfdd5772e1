// The serving half of a repair: what this node answers a peer that repairs a journal segment file. A file is
// named by journal and first txid (an in-progress file may have been finalized here meanwhile: the prefix the
// peer asks about is the same bytes), with the size that matters. The answer is the size and CRC as recorded
// when the segment was written, or, for a prefix, as read now; chunks are read from the live file. A file
// this node knows to be damaged is described as such, and its bytes are not served.

import zlib from 'node:zlib';
import type { JournalStateMachine } from '../state/journal-state-machine.js';
import type { SegmentFile } from '../state/segment-file.js';
import { parseSegmentName } from '../../src/edit-records.js';
import { isJournalId } from '../../src/ids.js';
import type { FileRef, PeerFileHash } from './segment-repair.js';

/** A prefix CRC is computed by reading the file: at most this much, a chunk at a time. */
export const MAX_PREFIX_BYTES = 256 << 20;
const READ_BYTES = 1 << 20;

/** Why a peer's request names no file this node could serve, or null. */
export function fileRefProblem(ref: FileRef): string | null {
  if (!isJournalId(ref.jid)) return 'bad journal id';
  if (parseSegmentName(ref.file) === null) return 'not a segment file name';
  if (!Number.isSafeInteger(ref.sizeBytes) || ref.sizeBytes < 1 || ref.sizeBytes > 2 ** 40) return 'bad size';
  return null;
}

function segmentFor(sm: JournalStateMachine, ref: FileRef): SegmentFile | null {
  const first = parseSegmentName(ref.file)?.firstTxId;
  if (first === undefined) return null;
  return sm.journal(ref.jid)?.segmentAt(first) ?? null;
}

/**
 * This node's size and CRC of the file (of its first ref.sizeBytes bytes), and whether it knows its copy is
 * damaged; null when it does not hold the file. Throws when the file cannot be read.
 */
export function describeFile(
  sm: JournalStateMachine,
  isDamaged: (path: string) => boolean,
  ref: FileRef,
): PeerFileHash | null {
  const seg = segmentFor(sm, ref);
  if (!seg) return null;
  const damaged = isDamaged(seg.path);
  if (!seg.inProgress && seg.sizeBytes === ref.sizeBytes)
    return { sizeBytes: seg.sizeBytes, crc32: seg.crc32, damaged };
  if (seg.sizeBytes < ref.sizeBytes || ref.sizeBytes > MAX_PREFIX_BYTES)
    return { sizeBytes: seg.sizeBytes, crc32: seg.crc32, damaged };
  let crc = 0;
  for (let off = 0; off < ref.sizeBytes; off += READ_BYTES) {
    const bytes = seg.readRaw(off, Math.min(READ_BYTES, ref.sizeBytes - off));
    crc = zlib.crc32(bytes, crc);
  }
  return { sizeBytes: ref.sizeBytes, crc32: crc >>> 0, damaged };
}

/** Bytes [offset, offset + length) of the file, within ref.sizeBytes; throws when it is not served. */
export function readFileChunk(
  sm: JournalStateMachine,
  isDamaged: (path: string) => boolean,
  ref: FileRef,
  offsetBytes: number,
  lengthBytes: number,
): Buffer {
  const seg = segmentFor(sm, ref);
  if (!seg) throw new Error(`no segment ${ref.jid}/${ref.file} here`);
  if (isDamaged(seg.path)) throw new Error(`this node's copy of ${ref.jid}/${ref.file} is damaged`);
  const end = Math.min(ref.sizeBytes, seg.sizeBytes);
  if (offsetBytes >= end) throw new Error(`offset ${offsetBytes} is past the ${end} bytes served`);
  return seg.readRaw(offsetBytes, Math.min(lengthBytes, end - offsetBytes));
}
