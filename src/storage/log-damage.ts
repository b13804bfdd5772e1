// Damage to the Raft log found at start-up, and what recovery does about it (protocol-aware recovery, after
// Alagappan et al., FAST 2018): a segment read in spite of unreadable sectors (each zero-filled and named), the
// walk past a damaged frame to the next sound one (so the log's true end is known), and the two actions:
//   - damage only under the snapshot the state machine restarts from: the segments up to it are deleted, oldest
//     first — the snapshot holds every entry they held;
//   - anything else: the log is cut before the first damaged entry — later segments deleted newest first, then
//     the damaged one truncated — after the caller made durable what the node may have held beyond the cut (its
//     floor: it neither votes nor campaigns until its log holds its leader's log that far), since the node may
//     have acknowledged those entries. The cut entries come back from the leader by ordinary replication.

import path from 'node:path';
import { readU64 } from '../raft/bytes.js';
import type { IdentityRecord } from '../replica/env.js';
import type { FileSystem } from './file-system.js';
import { FRAME_HEADER_BYTES, frameDataBytes, frameProblem, logInProgressName } from './log-segment.js';

/** A disk sector: what a read can fail on alone. */
export const SECTOR_BYTES = 512;
const READ_CHUNK_BYTES = 1 << 16;

/** What recovery found and does, told to the caller before anything changes on disk (RecoveryOptions.onDamage). */
export interface LogDamage {
  file: string;
  offsetBytes: number;
  reason: string;
  /** The first entry the damage costs: nothing from here on is kept ('cut'), or it is under the snapshot ('dropped'). */
  firstIndex: number;
  /**
   * The last entry the log may have held (the true end when the log after the damage reads sound to its end; an
   * upper bound when the end itself is damaged), with its term when known.
   */
  claimedLast: { index: number; term: number | null };
  action: 'cut' | 'dropped';
}

/** A segment file's bytes, unreadable sectors zero-filled, and where those are. */
export interface TolerantRead {
  buf: Buffer;
  /** Byte offsets of the sectors that could not be read. */
  unreadable: number[];
}

/** Reads a whole file a chunk at a time; a chunk that fails is read a sector at a time, failing sectors zeroed. */
export function readTolerant(fileSystem: FileSystem, file: string): TolerantRead {
  const h = fileSystem.open(file, 'r');
  try {
    const size = h.sizeBytes();
    const buf = Buffer.alloc(size);
    const unreadable: number[] = [];
    const readAll = (at: number, n: number) => {
      for (let got = 0; got < n; ) {
        const r = h.read(buf, at + got, n - got, at + got);
        if (r === 0) return;
        got += r;
      }
    };
    for (let at = 0; at < size; at += READ_CHUNK_BYTES) {
      const n = Math.min(READ_CHUNK_BYTES, size - at);
      try {
        readAll(at, n);
      } catch {
        for (let s = at; s < at + n; s += SECTOR_BYTES) {
          try {
            readAll(s, Math.min(SECTOR_BYTES, at + n - s));
          } catch {
            buf.fill(0, s, Math.min(s + SECTOR_BYTES, at + n));
            unreadable.push(s);
          }
        }
      }
    }
    return { buf, unreadable };
  } finally {
    h.close();
  }
}

/** Whether [from, to) touches an unreadable sector. */
export function touchesUnreadable(r: TolerantRead, from: number, to: number): boolean {
  return r.unreadable.some((s) => s < to && s + SECTOR_BYTES > from);
}

/**
 * The next sound frame at or after `from` whose index is past `after` and could follow it in the bytes left:
 * every offset is tried (a damaged length field leaves no other way), the index field first (cheap), then the
 * whole frame's CRC. Null when there is none before `end`.
 */
export function resync(
  r: TolerantRead,
  from: number,
  after: number,
  end: number,
): { offset: number; index: number } | null {
  const buf = r.buf;
  const maxIndex = after + Math.ceil((end - from) / FRAME_HEADER_BYTES);
  for (let o = from; o + FRAME_HEADER_BYTES <= end; o++) {
    const index = readU64(buf, o + 16);
    if (index <= after || index > maxIndex) continue;
    const frameEnd = o + FRAME_HEADER_BYTES + frameDataBytes(buf, o);
    if (frameEnd > end || touchesUnreadable(r, o, frameEnd)) continue;
    if (frameProblem(buf, o, index, 0) === null) return { offset: o, index };
  }
  return null;
}

/** One file of the log as recovery lists it. */
export interface LogFile {
  file: string;
  first: number;
  /** The last index its name says (a closed segment), or null. */
  nameLast: number | null;
}

/**
 * Carries out the damage's action on disk, durably: 'dropped' deletes `files` up to and including the damaged
 * one, oldest first (a crash part-way leaves a suffix that still reaches the snapshot); 'cut' deletes the files
 * after it, newest first, then cuts the damaged one before its first damaged entry (removed whole when that is
 * its first entry; a closed one becomes the in-progress segment again).
 */
export function applyDamage(
  fileSystem: FileSystem,
  dir: string,
  files: LogFile[],
  damaged: number,
  d: LogDamage,
): void {
  if (d.action === 'dropped') {
    for (const f of files.slice(0, damaged + 1)) fileSystem.unlink(f.file);
    fileSystem.fsyncPathSync(dir);
    return;
  }
  for (const f of files.slice(damaged + 1).reverse()) fileSystem.unlink(f.file);
  fileSystem.fsyncPathSync(dir);
  const f = files[damaged]!;
  if (d.firstIndex <= f.first) {
    fileSystem.unlink(f.file);
    fileSystem.fsyncPathSync(dir);
    return;
  }
  const h = fileSystem.open(f.file, 'r+');
  try {
    h.truncate(d.offsetBytes);
    h.datasyncSync();
  } finally {
    h.close();
  }
  if (f.nameLast !== null) {
    fileSystem.rename(f.file, path.join(dir, logInProgressName(f.first)));
    fileSystem.fsyncPathSync(dir);
  }
}

/**
 * The identity record with the floor a cut leaves: the node may have acknowledged entries up to claimedLast, so
 * it neither votes nor campaigns until its log holds its leader's log that far (identity.ts clears it). A floor
 * already higher stays. The term, when the damaged end hides it, is the node's current term (no entry it holds
 * can be of a later one).
 */
export function floorAfterCut(record: IdentityRecord, d: LogDamage, currentTerm: number): IdentityRecord {
  if (d.action !== 'cut') return record;
  if (record.floor && record.floor.index >= d.claimedLast.index) return record;
  return { ...record, floor: { index: d.claimedLast.index, term: d.claimedLast.term ?? currentTerm } };
}

/**
 * What DiskLog.open is given to take damage at start-up: each cut's floor made durable in the node's identity
 * record before the cut (a synchronous, crash-atomic write), and every damage kept for the node to report.
 */
export class LogDamageTaker {
  readonly found: LogDamage[] = [];
  constructor(
    private current: IdentityRecord,
    private readonly store: { saveSync(r: IdentityRecord): void },
    private readonly currentTerm: number,
  ) {}

  readonly take = (d: LogDamage): void => {
    this.found.push(d);
    const next = floorAfterCut(this.current, d, this.currentTerm);
    if (next === this.current) return;
    this.store.saveSync(next);
    this.current = next;
  };

  /** The identity record, with the floor of any cut. */
  get record(): IdentityRecord {
    return this.current;
  }
}
