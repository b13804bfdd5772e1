// A getEdits answer written as its client takes it: the GetEditsResponse's own fields, then its `records`
// field's tag and length, then the frames chunk by chunk — views of the recent-batch cache, or ranges of
// segment files read STREAM_CHUNK_BYTES at a time, one file open at a time — so an answer of any size costs
// the node a chunk or two while its client does not read, not the answer. Small answers are built whole.

import fs from 'node:fs';
import { Readable } from 'node:stream';
import { qjournal } from '../../src/gen/proto.js';
import type { EditsPart, EditsPlan } from '../state/journal.js';
import { readPlan } from '../state/journal.js';
import { STREAM_CHUNK_BYTES, STREAM_WINDOW_BYTES } from './response-budget.js';

const pb = qjournal.journal;

/** Answers up to this size are built in memory at once: streaming them would cost more than it saves. */
export const INLINE_ANSWER_BYTES = STREAM_CHUNK_BYTES;
/** GetEditsResponse.records: field 4, length-delimited. */
const RECORDS_TAG = (4 << 3) | 2;

export interface EditsAnswerFields {
  committedTxid: number;
  leaderAddress: string;
}

export type EditsAnswer = { bytes: Uint8Array } | { stream: Readable; lengthBytes: number };

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n % 0x80) | 0x80);
    n = Math.floor(n / 0x80);
  }
  out.push(n);
  return Buffer.from(out);
}

/** The answer to a getEdits read of `plan`: its bytes (small), or a stream of exactly lengthBytes bytes. */
export function editsAnswer(plan: EditsPlan, fields: EditsAnswerFields): EditsAnswer {
  const head = { firstTxid: plan.firstTxId, count: plan.count, ...fields };
  if (plan.byteLength <= INLINE_ANSWER_BYTES)
    return { bytes: pb.GetEditsResponse.encode({ ...head, records: readPlan(plan) }).finish() };
  const prefix = Buffer.concat([
    pb.GetEditsResponse.encode(head).finish(),
    Buffer.from([RECORDS_TAG]),
    varint(plan.byteLength),
  ]);
  return { stream: new EditsStream(prefix, plan.parts), lengthBytes: prefix.byteLength + plan.byteLength };
}

/**
 * What a streamed answer of `plan` keeps alive while it is sent: the cached pieces it streams from (views, but
 * they outlive the cache while the answer is unread) and, when it reads files, its window of chunks.
 */
export function answerHolds(plan: EditsPlan): number {
  let pinned = 0;
  let files = false;
  for (const p of plan.parts) {
    if ('bytes' in p) pinned += p.bytes.byteLength;
    else files = true;
  }
  return pinned + (files ? STREAM_WINDOW_BYTES : 0);
}

/** Pushes the prefix, then every part a chunk at a time, each only when the consumer wants more. */
class EditsStream extends Readable {
  private part = -1;
  private offset = 0;
  private fd: number | null = null;
  /** A read of the file is in flight: its descriptor is closed when it returns, never under it. */
  private reading = false;

  constructor(
    private readonly prefix: Buffer,
    private readonly parts: EditsPart[],
  ) {
    super({ highWaterMark: STREAM_CHUNK_BYTES });
  }

  override _read(): void {
    if (this.part < 0) {
      this.part = 0;
      this.push(this.prefix);
      return;
    }
    const p = this.parts[this.part];
    if (!p) {
      this.push(null);
      return;
    }
    if ('bytes' in p) {
      const end = Math.min(p.bytes.byteLength, this.offset + STREAM_CHUNK_BYTES);
      const chunk = p.bytes.subarray(this.offset, end);
      this.advance(end, p.bytes.byteLength);
      this.push(chunk);
      return;
    }
    this.readFile(p);
  }

  private advance(offset: number, partEnd: number): void {
    if (offset < partEnd) {
      this.offset = offset;
      return;
    }
    this.part++;
    this.offset = 0;
  }

  private readFile(p: { segment: { path: string }; start: number; end: number }): void {
    const withFd = (fd: number) => {
      const pos = p.start + this.offset;
      const n = Math.min(STREAM_CHUNK_BYTES, p.end - pos);
      const buf = Buffer.allocUnsafe(n);
      this.reading = true;
      fs.read(fd, buf, 0, n, pos, (err, got) => {
        this.reading = false;
        if (this.destroyed) return this.closeFile();
        if (err) return this.destroy(err);
        if (got !== n) return this.destroy(new Error(`${p.segment.path}: short read at ${pos} (the file changed)`));
        if (pos + n >= p.end) this.closeFile();
        this.advance(pos + n - p.start, p.end - p.start);
        this.push(buf);
      });
    };
    // The segment's current path: a finalize renames it; the bytes of a committed range never change.
    if (this.fd !== null) return withFd(this.fd);
    fs.open(p.segment.path, 'r', (err, fd) => {
      if (err) return this.destroy(err);
      if (this.destroyed) return fs.close(fd, () => {});
      this.fd = fd;
      withFd(fd);
    });
  }

  private closeFile(): void {
    if (this.fd !== null) fs.close(this.fd, () => {});
    this.fd = null;
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    if (!this.reading) this.closeFile();
    cb(err);
  }
}
