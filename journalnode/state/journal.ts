// One journal (one namespace's edit log): its epochs, its segments on disk, and the deterministic effect of
// each command (docs/PROTOCOL.md). Every replica applies the same commands in the same order and reaches the
// same state and byte-identical segment files. A recent-batch cache serves tailing readers from memory.

import path from 'node:path';
import { assert } from '../../src/assert.js';
import { qjournal } from '../../src/gen/proto.js';
import type { ErrorName } from '../../src/errors.js';
import type { FileSystem } from '../../src/storage/file-system.js';
import { SegmentFile } from './segment-file.js';
import { journalStateToProto } from '../../src/journal-state.js';
import type { JournalStateData, SegmentState } from '../../src/journal-state.js';

const pb = qjournal.journal;
type NsInfo = qjournal.journal.INamespaceInfo;
type Result = qjournal.journal.ICommandResult;

/** One piece of a read's answer: frames in memory (views of the cache), or a range of a segment file. */
export type EditsPart = { bytes: Buffer } | { segment: SegmentFile; start: number; end: number };

/** Where a read's frames lie, in order: `count` frames from `firstTxId`, `byteLength` bytes in all. */
export interface EditsPlan {
  firstTxId: number;
  count: number;
  byteLength: number;
  parts: EditsPart[];
}

/** Segment files one read may span: it then holds at most one open file at a time, and this many in turn. */
export const MAX_FILES_PER_READ = 16;

/** A plan's frames read into one buffer (file ranges read now). */
export function readPlan(plan: EditsPlan): Buffer {
  const bufs = plan.parts.map((p) => ('bytes' in p ? p.bytes : p.segment.readRaw(p.start, p.end - p.start)));
  return bufs.length === 1 ? bufs[0]! : Buffer.concat(bufs);
}

export interface CachedBatch {
  firstTxId: number;
  count: number;
  frames: Buffer;
}

function fail(name: ErrorName, message: string, extra: Partial<Result> = {}): Result {
  return { code: pb.ErrorCode[name], message, ...extra };
}

function nsEqual(a: NsInfo, b: NsInfo): boolean {
  return (
    Number(a.namespaceId ?? 0) === Number(b.namespaceId ?? 0) &&
    (a.clusterId ?? '') === (b.clusterId ?? '') &&
    (a.blockPoolId ?? '') === (b.blockPoolId ?? '')
  );
}

function nsString(n: NsInfo): string {
  return `namespace ${n.namespaceId ?? 0} cluster ${JSON.stringify(n.clusterId ?? '')} block pool ${JSON.stringify(n.blockPoolId ?? '')}`;
}

/** What journalStateProblem reads of a journal: a live Journal and a snapshot's record of one both fit. */
interface JournalShape {
  promisedEpoch: number;
  lastWriterEpoch: number;
  lastTxId: number;
  segments: readonly { firstTxId: number; lastTxId: number; inProgress: boolean }[];
}

/**
 * Why a journal's state breaks the journal's invariants, or null. The invariants:
 * - lastWriterEpoch <= promisedEpoch (and epochs never decrease, across format too, so a fenced writer stays
 *   fenced: the commands only ever raise them);
 * - segments are sorted and contiguous: each starts right after the previous one's last txid (purge only
 *   drops a prefix);
 * - only the last segment may be in progress, and it may be empty (lastTxId = firstTxId - 1); a finalized one
 *   holds at least one txid;
 * - the last segment ends at the journal's lastTxId.
 * Segments before `fromSegment` are not looked at (the O(1) check a node runs after every command). The same
 * rules validate a snapshot's journals where they enter (snapshot-store.ts), and are asserted after commands.
 */
export function journalStateProblem(j: JournalShape, fromSegment = 0): string | null {
  if (!Number.isSafeInteger(j.lastTxId) || j.lastTxId < 0) return `lastTxId ${j.lastTxId} is not a txid`;
  if (j.lastWriterEpoch < 0 || j.lastWriterEpoch > j.promisedEpoch)
    return `writer epoch ${j.lastWriterEpoch} beyond the promised epoch ${j.promisedEpoch}`;
  const n = j.segments.length;
  const last = j.segments[n - 1];
  if (last && last.lastTxId !== j.lastTxId)
    return `the last segment ends at ${last.lastTxId}, the journal at ${j.lastTxId}`;
  for (let i = Math.max(0, fromSegment); i < n; i++) {
    const s = j.segments[i]!;
    const prev = j.segments[i - 1];
    const where = `segment ${s.firstTxId}`;
    if (s.lastTxId < s.firstTxId - 1) return `${where} ends before it starts`;
    if (s.inProgress && i !== n - 1) return `${where} is in progress but not the last`;
    if (!s.inProgress && s.lastTxId < s.firstTxId) return `${where} is finalized without a txid`;
    if (prev && s.firstTxId !== prev.lastTxId + 1)
      return `${where} does not follow segment ${prev.firstTxId} (which ends at ${prev.lastTxId})`;
  }
  return null;
}

/** One journal's state and commands; its invariants are journalStateProblem's. */
export class Journal {
  formatted = false;
  nsInfo: NsInfo = {};
  promisedEpoch = 0;
  lastWriterEpoch = 0;
  writerId = '';
  /** The request id of the newEpoch that made promisedEpoch: its retry answers that epoch again. */
  epochRequestId = '';
  lastTxId = 0;
  segments: SegmentFile[] = [];
  private cache: CachedBatch[] = [];
  private cacheBytes = 0;

  constructor(
    private readonly fileSystem: FileSystem,
    readonly jid: string,
    readonly dir: string,
    private readonly maxCacheBytes: number,
  ) {}

  get inProgress(): SegmentFile | undefined {
    const last = this.segments[this.segments.length - 1];
    return last?.inProgress ? last : undefined;
  }

  hasSomeData(): boolean {
    return this.segments.length > 0 || this.lastTxId > 0;
  }

  /**
   * Asserts the journal's invariants (journalStateProblem): the O(1) ones about its epochs and its last two
   * segments, and with `allSegments` every segment's (tests check those after every command).
   */
  checkInvariants(allSegments: boolean): void {
    const problem = journalStateProblem(this, allSegments ? 0 : this.segments.length - 2);
    assert(problem === null, () => `journal ${this.jid}: ${problem}`);
  }

  // ---------------------------------------------------------------- commands

  format(nsInfo: NsInfo, force: boolean): Result {
    if (this.formatted && this.hasSomeData() && !force) {
      return fail(
        'ALREADY_FORMATTED',
        `journal ${this.jid} is formatted and holds data (last txid ${this.lastTxId}): qjm format --force wipes it (epochs stay; it asks first)`,
      );
    }
    for (const s of this.segments) s.remove();
    this.segments = [];
    this.clearCache();
    this.formatted = true;
    this.nsInfo = { ...nsInfo };
    this.lastTxId = 0;
    this.lastWriterEpoch = 0;
    this.writerId = '';
    this.epochRequestId = '';
    this.fileSystem.mkdirp(this.dir);
    return { code: pb.ErrorCode.OK, epoch: this.promisedEpoch };
  }

  newEpoch(nsInfo: NsInfo, writerId: string, requestId = ''): Result {
    if (!this.formatted) return fail('NOT_FORMATTED', `journal ${this.jid} is not formatted`);
    if (!nsEqual(this.nsInfo, nsInfo)) {
      return fail(
        'NAMESPACE_MISMATCH',
        `journal ${this.jid} belongs to ${nsString(this.nsInfo)}, not ${nsString(nsInfo)}`,
      );
    }
    // A retry of the newEpoch that made the current epoch (the first attempt committed, its answer was lost)
    // answers that epoch again: the writer must not fence itself.
    const retried = requestId !== '' && requestId === this.epochRequestId && writerId === this.writerId;
    if (!retried) {
      this.promisedEpoch += 1;
      this.writerId = writerId;
      this.epochRequestId = requestId;
    }
    return { code: pb.ErrorCode.OK, epoch: this.promisedEpoch, state: journalStateToProto(this.state()) };
  }

  private fenced(epoch: number): Result | null {
    if (!this.formatted) return fail('NOT_FORMATTED', `journal ${this.jid} is not formatted`);
    if (epoch !== this.promisedEpoch) {
      return fail('FENCED', `epoch ${epoch} is fenced: journal ${this.jid} promised epoch ${this.promisedEpoch}`, {
        epoch: this.promisedEpoch,
      });
    }
    return null;
  }

  startSegment(epoch: number, txid: number, layoutVersion: number): Result {
    const f = this.fenced(epoch);
    if (f) return f;
    const open = this.inProgress;
    if (open) {
      if (open.lastTxId >= open.firstTxId) {
        return fail(
          'OUT_OF_SYNC',
          `segment ${open.firstTxId} is open and holds txids ${open.firstTxId}..${open.lastTxId}: finalize it first`,
        );
      }
      if (open.firstTxId !== txid) {
        return fail('OUT_OF_SYNC', `an empty segment is open at ${open.firstTxId}, cannot start one at ${txid}`);
      }
      // An empty open segment at the same txid is replaced (a retried or restarted start).
      open.remove();
      this.segments.pop();
    } else if (txid !== this.lastTxId + 1) {
      return fail('OUT_OF_SYNC', `cannot start a segment at txid ${txid}: the journal's last txid is ${this.lastTxId}`);
    }
    this.fileSystem.mkdirp(this.dir);
    this.segments.push(SegmentFile.create(this.fileSystem, this.dir, txid, layoutVersion));
    this.lastWriterEpoch = epoch;
    return { code: pb.ErrorCode.OK, lastTxid: this.lastTxId };
  }

  /** Appends `count` framed records as txids firstTxId.. to the open segment (the `journal` RPC's command). */
  appendRecords(epoch: number, segmentTxId: number, firstTxId: number, count: number, frames: Uint8Array): Result {
    const f = this.fenced(epoch);
    if (f) return f;
    const seg = this.segments.find((s) => s.firstTxId === segmentTxId);
    if (!seg) return fail('OUT_OF_SYNC', `no segment starts at txid ${segmentTxId}`);
    const lastTxId = firstTxId + count - 1;
    if (firstTxId <= this.lastTxId) {
      // A retry of a batch already applied under this epoch answers success and changes nothing.
      if (count > 0 && seg.holdsExactly(firstTxId, frames, count))
        return { code: pb.ErrorCode.OK, lastTxid: this.lastTxId };
      return fail(
        'OUT_OF_SYNC',
        `txids ${firstTxId}..${lastTxId} overlap the journal (last txid ${this.lastTxId}) with different contents`,
      );
    }
    if (!seg.inProgress) return fail('OUT_OF_SYNC', `segment ${segmentTxId} is finalized`);
    if (firstTxId !== this.lastTxId + 1)
      return fail('OUT_OF_SYNC', `gap: batch starts at txid ${firstTxId}, the journal's last txid is ${this.lastTxId}`);
    seg.append(frames, count);
    this.lastTxId = lastTxId;
    this.lastWriterEpoch = epoch;
    // A view, not a copy: the frames are the committed entry's own bytes, which the Raft log keeps anyway.
    this.remember({ firstTxId, count, frames: Buffer.from(frames.buffer, frames.byteOffset, frames.byteLength) });
    return { code: pb.ErrorCode.OK, lastTxid: this.lastTxId };
  }

  finalizeSegment(epoch: number, firstTxId: number, lastTxId: number): Result {
    const f = this.fenced(epoch);
    if (f) return f;
    const seg = this.segments.find((s) => s.firstTxId === firstTxId);
    if (!seg) return fail('OUT_OF_SYNC', `no segment starts at txid ${firstTxId}`);
    if (!seg.inProgress) {
      if (seg.lastTxId === lastTxId) return { code: pb.ErrorCode.OK, lastTxid: this.lastTxId }; // a retried finalize
      return fail('OUT_OF_SYNC', `segment ${firstTxId} is already finalized at ${seg.lastTxId}, not ${lastTxId}`);
    }
    if (seg.lastTxId !== lastTxId)
      return fail('OUT_OF_SYNC', `segment ${firstTxId} ends at txid ${seg.lastTxId}, not ${lastTxId}`);
    if (seg.lastTxId < seg.firstTxId)
      return fail('OUT_OF_SYNC', `segment ${firstTxId} holds no txid: drop it instead of finalizing it`);
    seg.finalize();
    return { code: pb.ErrorCode.OK, lastTxid: this.lastTxId };
  }

  dropSegment(epoch: number, firstTxId: number): Result {
    const f = this.fenced(epoch);
    if (f) return f;
    const seg = this.segments.find((s) => s.firstTxId === firstTxId);
    if (!seg) return { code: pb.ErrorCode.OK, lastTxid: this.lastTxId }; // already dropped: a retry
    if (!seg.inProgress || seg.lastTxId >= seg.firstTxId) {
      return fail(
        'OUT_OF_SYNC',
        `segment ${firstTxId} holds txids (${seg.firstTxId}..${seg.lastTxId}): only an empty in-progress segment can be dropped`,
      );
    }
    seg.remove();
    this.segments = this.segments.filter((s) => s !== seg);
    return { code: pb.ErrorCode.OK, lastTxid: this.lastTxId };
  }

  /**
   * Deletes the finalized segments that end below minTxIdToKeep, but none that ends at or after
   * retainFromTxId (the retention floor the leader put in the command; 0: none).
   */
  purge(epoch: number, minTxIdToKeep: number, retainFromTxId = 0): Result {
    const f = this.fenced(epoch);
    if (f) return f;
    const below = retainFromTxId > 0 ? Math.min(minTxIdToKeep, retainFromTxId) : minTxIdToKeep;
    const keep: SegmentFile[] = [];
    for (const s of this.segments) {
      if (!s.inProgress && s.lastTxId < below) s.remove();
      else keep.push(s);
    }
    this.segments = keep;
    return { code: pb.ErrorCode.OK, lastTxid: this.lastTxId, purgedBelowTxid: below };
  }

  // ---------------------------------------------------------------- reads

  state(): JournalStateData {
    return {
      jid: this.jid,
      formatted: this.formatted,
      nsInfo: { ...this.nsInfo },
      promisedEpoch: this.promisedEpoch,
      lastWriterEpoch: this.lastWriterEpoch,
      writerId: this.writerId,
      lastTxId: this.lastTxId,
      segments: this.segments.map((s) => s.describe()),
      epochRequestId: this.epochRequestId,
    };
  }

  /** A journal as a snapshot recorded it; `open` turns each recorded segment into its file. */
  static restore(
    fileSystem: FileSystem,
    d: JournalStateData,
    dir: string,
    maxCacheBytes: number,
    open: (s: SegmentState) => SegmentFile,
  ): Journal {
    const { jid, segments, ...fields } = d;
    const j = Object.assign(new Journal(fileSystem, jid, dir, maxCacheBytes), fields);
    j.segments = segments.map(open);
    return j;
  }

  /** The first txid a read can still get: the first segment's, or the next txid when nothing is held. */
  firstHeldTxId(): number {
    return this.segments[0]?.firstTxId ?? this.lastTxId + 1;
  }

  /** Segments holding txids >= sinceTxId (Hadoop's getEditLogManifest). */
  manifest(sinceTxId: number, inProgressOk: boolean): SegmentState[] {
    return this.segments
      .filter((s) => s.lastTxId >= sinceTxId && s.lastTxId >= s.firstTxId && (inProgressOk || !s.inProgress))
      .map((s) => s.describe());
  }

  /**
   * Where the committed frames from fromTxId on lie (possibly across segments), within the limits: views of
   * the recent-batch cache when it holds them, or ranges of segment files, read nothing yet. An answer spans
   * at most MAX_FILES_PER_READ segment files. Empty (count 0) when there is nothing to read.
   */
  planEdits(fromTxId: number, maxTxns: number, maxBytes: number, inProgressOk: boolean): EditsPlan {
    const cached = this.planFromCache(fromTxId, maxTxns, maxBytes, inProgressOk);
    if (cached) return cached;
    const plan: EditsPlan = { firstTxId: 0, count: 0, byteLength: 0, parts: [] };
    let next = fromTxId;
    for (const s of this.segments) {
      if (s.lastTxId < next || (s.inProgress && !inProgressOk)) continue;
      if (s.firstTxId > next) break; // a gap (purged) — return what is contiguous
      const r = s.locate(next, maxTxns - plan.count, Math.max(1, maxBytes - plan.byteLength));
      if (r.count === 0) break;
      if (plan.firstTxId === 0) plan.firstTxId = r.firstTxId;
      plan.parts.push({ segment: s, start: r.start, end: r.end });
      plan.count += r.count;
      plan.byteLength += r.end - r.start;
      next = r.firstTxId + r.count;
      if (plan.count >= maxTxns || plan.byteLength >= maxBytes || plan.parts.length >= MAX_FILES_PER_READ) break;
    }
    return plan;
  }

  /** Committed frames from fromTxId on, within the limits, read into one buffer (small answers, tests). */
  readEdits(
    fromTxId: number,
    maxTxns: number,
    maxBytes: number,
    inProgressOk: boolean,
  ): { frames: Buffer; firstTxId: number; count: number } {
    const plan = this.planEdits(fromTxId, maxTxns, maxBytes, inProgressOk);
    return { frames: readPlan(plan), firstTxId: plan.firstTxId, count: plan.count };
  }

  private planFromCache(fromTxId: number, maxTxns: number, maxBytes: number, inProgressOk: boolean): EditsPlan | null {
    // The cache holds the newest batches, which belong to the in-progress segment (or one just finalized).
    if (this.cache.length === 0 || fromTxId < this.cache[0]!.firstTxId || fromTxId > this.lastTxId) return null;
    // Without inProgressOk, nothing of the open segment is served.
    const open = this.inProgress;
    const lastServable = !inProgressOk && open ? open.firstTxId - 1 : this.lastTxId;
    if (fromTxId > lastServable) return null;
    maxTxns = Math.min(maxTxns, lastServable - fromTxId + 1);
    let i = this.cache.length - 1;
    while (i > 0 && this.cache[i]!.firstTxId > fromTxId) i--;
    const parts: EditsPart[] = [];
    let count = 0;
    let bytes = 0;
    for (; i < this.cache.length && count < maxTxns; i++) {
      const b = this.cache[i]!;
      let frames = b.frames;
      let first = b.firstTxId;
      let n = b.count;
      if (first < fromTxId) {
        // Skip the frames before fromTxId inside this batch.
        let off = 0;
        for (let t = first; t < fromTxId; t++) off += 16 + frames.readUInt32BE(off + 12);
        frames = frames.subarray(off);
        n -= fromTxId - first;
        first = fromTxId;
      }
      if (count + n > maxTxns || (count > 0 && bytes + frames.byteLength > maxBytes)) {
        // Take only a prefix of this batch.
        let off = 0;
        let k = 0;
        while (k < n && count + k < maxTxns) {
          const sz = 16 + frames.readUInt32BE(off + 12);
          if (count + k > 0 && bytes + off + sz > maxBytes) break;
          off += sz;
          k++;
        }
        if (k > 0) parts.push({ bytes: frames.subarray(0, off) });
        count += k;
        bytes += off;
        break;
      }
      parts.push({ bytes: frames });
      count += n;
      bytes += frames.byteLength;
    }
    if (count === 0) return null;
    return { firstTxId: fromTxId, count, byteLength: bytes, parts };
  }

  private remember(b: CachedBatch): void {
    if (this.maxCacheBytes <= 0) return;
    this.cache.push(b);
    this.cacheBytes += b.frames.byteLength;
    while (this.cacheBytes > this.maxCacheBytes && this.cache.length > 1) {
      this.cacheBytes -= this.cache.shift()!.frames.byteLength;
    }
  }

  clearCache(): void {
    this.cache = [];
    this.cacheBytes = 0;
  }

  segmentAt(firstTxId: number): SegmentFile | undefined {
    return this.segments.find((s) => s.firstTxId === firstTxId);
  }

  closeFiles(): void {
    for (const s of this.segments) s.close();
  }

  static dirFor(root: string, jid: string): string {
    return path.join(root, jid);
  }
}
