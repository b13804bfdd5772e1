// Repairing a damaged journal segment file from the peers, while the node serves: a finalized segment (checked
// against the size and CRC recorded when it was written), or the prefix of the in-progress file a snapshot
// holds. Every replica's files are byte-identical, so the good bytes are a peer's. The order:
//   1. ask every peer for its size and CRC of the file (the prefix); a repair goes on only when a majority of
//      the voters (this node's record counting as one) agrees on the very size and CRC this node recorded;
//   2. pull the file from one agreeing peer whose copy is not damaged, chunk by chunk, into a scratch file,
//      with a running CRC; check the CRC and every frame before anything is written over the damaged file;
//   3. write the bytes that differ over the damaged file, in place, and fdatasync it: every hard link to it
//      (the snapshots') is repaired at once, and a crash part-way leaves each sector old or new, which are the
//      same bytes but for the damage;
//   4. read it back and check it again.
// No majority, a source that sends other bytes, a file purged meanwhile: the repair stops short and says why.

import path from 'node:path';
import zlib from 'node:zlib';
import type { NodeId } from '../../src/raft/types.js';
import type { FileSystem } from '../../src/storage/file-system.js';
import type { FileHandle } from '../../src/storage/file-system.js';
import { preadIntoSync, writeAllSync } from '../../src/storage/files.js';
import { checkSegmentFile } from '../state/segment-file.js';

/** A file (or the prefix of one) as the repair names it to peers: journal, file name, bytes that matter. */
export interface FileRef {
  jid: string;
  file: string;
  sizeBytes: number;
}

/** A peer's account of the file: its size and CRC (of the prefix asked), and whether its own copy is damaged. */
export interface PeerFileHash {
  sizeBytes: number;
  crc32: number;
  damaged: boolean;
}

/** How the repair reaches the peers (HTTP between JournalNodes; the simulator's network in the simulation). */
export interface RepairSource {
  describe(peer: NodeId, ref: FileRef, cb: (err: Error | null, h?: PeerFileHash | null) => void): void;
  chunk(
    peer: NodeId,
    ref: FileRef,
    offsetBytes: number,
    lengthBytes: number,
    cb: (err: Error | null, bytes?: Uint8Array) => void,
  ): void;
}

export interface SegmentRepairJob {
  ref: FileRef;
  /** The damaged file on this node. */
  path: string;
  /** What this node recorded of it when it was written. */
  expected: { sizeBytes: number; crc32: number };
  /** The first txid of the segment, to check the frames of what is fetched (and the last, when finalized). */
  firstTxId: number;
  lastTxId: number | null;
  /** The file is still this node's to repair (not purged, not replaced by a snapshot install). */
  stillWanted(): boolean;
}

export interface SegmentRepairOptions {
  fileSystem: FileSystem;
  selfId: NodeId;
  /** The voters now (a majority of them must agree), and every member to ask. */
  voters(): NodeId[];
  members(): NodeId[];
  source: RepairSource;
  maxChunkBytes: number;
}

export type RepairOutcome = { ok: true; note: string } | { ok: false; note: string };

/** Runs one repair; done is called once with what happened, in a sentence for the damage record and the log. */
export function repairSegment(o: SegmentRepairOptions, job: SegmentRepairJob, done: (r: RepairOutcome) => void): void {
  const peers = o.members().filter((p) => p !== o.selfId);
  const answers = new Map<NodeId, PeerFileHash | null | Error>();
  if (peers.length === 0) return done({ ok: false, note: 'no peer to take a copy from' });
  const afterVotes = () => {
    const same = (h: PeerFileHash | null | Error | undefined): h is PeerFileHash =>
      !!h &&
      !(h instanceof Error) &&
      h.sizeBytes === job.expected.sizeBytes &&
      h.crc32 >>> 0 === job.expected.crc32 >>> 0;
    const voters = o.voters();
    const agreeing = voters.filter((v) => v === o.selfId || same(answers.get(v)));
    const summary = `${agreeing.length} of ${voters.length} voters (${agreeing.join(', ')}) agree on ${job.expected.sizeBytes} bytes, CRC ${hex(job.expected.crc32)}`;
    if (agreeing.length * 2 <= voters.length)
      return done({ ok: false, note: `no majority copy: ${summary}; ${describeOthers(answers, same)}` });
    const sources = peers.filter((p) => {
      const h = answers.get(p);
      return same(h) && !h.damaged;
    });
    if (sources.length === 0) return done({ ok: false, note: `${summary}, but no undamaged copy answered` });
    tryFrom(sources, 0, summary);
  };
  const tryFrom = (sources: NodeId[], i: number, summary: string, failures: string[] = []): void => {
    const peer = sources[i];
    if (peer === undefined) return done({ ok: false, note: `${summary}; every copy failed: ${failures.join('; ')}` });
    fetchInto(o, job, peer, (err, scratch) => {
      if (err || !scratch) return tryFrom(sources, i + 1, summary, [...failures, `${peer}: ${err?.message}`]);
      let written: number;
      try {
        if (!job.stillWanted())
          return done({ ok: false, note: 'the file went away during the repair (purged or replaced)' });
        written = overwrite(o.fileSystem, scratch, job);
        checkFile(o.fileSystem, job.path, job);
      } catch (e) {
        return done({ ok: false, note: `writing the good copy failed: ${(e as Error).message}` });
      } finally {
        o.fileSystem.unlink(scratch);
      }
      done({ ok: true, note: `rewrote ${written} bytes with the copy of ${peer} (${summary})` });
    });
  };
  // Answers may come back at once (a source in the same turn): everything above is defined first.
  for (const p of peers)
    o.source.describe(p, job.ref, (err, h) => {
      answers.set(p, err ?? h ?? null);
      if (answers.size === peers.length) afterVotes();
    });
}

function hex(crc: number): string {
  return (crc >>> 0).toString(16).padStart(8, '0');
}

function describeOthers(
  answers: Map<NodeId, PeerFileHash | null | Error>,
  same: (h: PeerFileHash | null | Error | undefined) => boolean,
): string {
  const parts: string[] = [];
  for (const [p, h] of answers) {
    if (same(h)) continue;
    if (h instanceof Error) parts.push(`${p} unreachable (${h.message})`);
    else if (h === null) parts.push(`${p} does not hold it`);
    else parts.push(`${p} has ${h.sizeBytes} bytes, CRC ${hex(h.crc32)}`);
  }
  return parts.join(', ') || 'no other answer';
}

/** Pulls the file from `peer` into a scratch file beside it; checks the CRC and the frames. */
function fetchInto(
  o: SegmentRepairOptions,
  job: SegmentRepairJob,
  peer: NodeId,
  cb: (err: Error | null, scratch?: string) => void,
): void {
  const scratch = path.join(path.dirname(job.path), `.repair.${path.basename(job.path)}`);
  let handle: FileHandle;
  try {
    handle = o.fileSystem.open(scratch, 'w+');
  } catch (e) {
    return cb(e as Error);
  }
  const fail = (e: Error) => {
    handle.close();
    o.fileSystem.unlink(scratch);
    cb(e);
  };
  const size = job.expected.sizeBytes;
  const next = (offset: number, crc: number): void => {
    if (offset >= size) {
      if (crc >>> 0 !== job.expected.crc32 >>> 0)
        return fail(new Error(`its copy's CRC ${hex(crc)} is not the one agreed on`));
      try {
        checkFramesIn(handle, scratch, job);
      } catch (e) {
        return fail(e as Error);
      }
      handle.close();
      return cb(null, scratch);
    }
    const length = Math.min(o.maxChunkBytes, size - offset);
    o.source.chunk(peer, job.ref, offset, length, (err, bytes) => {
      if (err || !bytes) return fail(err ?? new Error('no bytes'));
      if (bytes.byteLength === 0 || bytes.byteLength > length)
        return fail(new Error(`sent ${bytes.byteLength} bytes at ${offset} (asked ${length})`));
      try {
        writeAllSync(handle, bytes, offset);
      } catch (e) {
        return fail(e as Error);
      }
      next(offset + bytes.byteLength, zlib.crc32(bytes, crc));
    });
  };
  next(0, 0);
}

/** Every frame of the fetched file: whole, CRC right, txids from the segment's first (to its last when finalized). */
function checkFramesIn(handle: FileHandle, file: string, job: SegmentRepairJob): void {
  const r = checkSegmentFile(handle, file, job.expected.sizeBytes, job.firstTxId);
  if (job.lastTxId !== null && r.lastTxId !== job.lastTxId)
    throw new Error(`${file}: holds txids up to ${r.lastTxId}, not ${job.lastTxId}`);
  if (r.crc32 >>> 0 !== job.expected.crc32 >>> 0)
    throw new Error(`${file}: CRC ${hex(r.crc32)} is not the one agreed on`);
}

/** The chunk size the scratch copy is compared and written with. */
const COMPARE_BYTES = 1 << 16;

/** Writes the scratch copy's bytes that differ over the damaged file (whose bytes may not even read), then fdatasyncs it. */
function overwrite(fileSystem: FileSystem, scratch: string, job: SegmentRepairJob): number {
  const src = fileSystem.open(scratch, 'r');
  const dst = fileSystem.open(job.path, 'r+');
  let written = 0;
  try {
    const good = Buffer.allocUnsafe(COMPARE_BYTES);
    const have = Buffer.allocUnsafe(COMPARE_BYTES);
    for (let off = 0; off < job.expected.sizeBytes; off += COMPARE_BYTES) {
      const n = preadIntoSync(src, good, off, Math.min(COMPARE_BYTES, job.expected.sizeBytes - off));
      let same = false;
      try {
        same = preadIntoSync(dst, have, off, n) === n && good.subarray(0, n).equals(have.subarray(0, n));
      } catch {
        same = false; // an unreadable sector: written over
      }
      if (same) continue;
      writeAllSync(dst, good.subarray(0, n), off);
      written += n;
    }
    dst.datasyncSync();
  } finally {
    src.close();
    dst.close();
  }
  return written;
}

/** Reads the repaired file back: the agreed CRC, every frame. */
function checkFile(fileSystem: FileSystem, file: string, job: SegmentRepairJob): void {
  const h = fileSystem.open(file, 'r');
  try {
    checkFramesIn(h, file, job);
  } finally {
    h.close();
  }
}
