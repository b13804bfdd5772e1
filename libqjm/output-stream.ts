// The writer's edit log output stream, batching like the NameNode's double buffer: write() frames the record
// into the filling buffer and never waits on the network; flush() resolves with the highest txid durable on
// a quorum; while one batch is in flight the next fills. The buffered bytes are bounded: write() returns
// false past the high-water mark (await drain()), and refuses outright past twice that.
//
// No record is copied after write() frames it: the filling buffer keeps room in front of its frames for the
// request's header, so a sealed buffer becomes the journal() request body as it is (header written in
// place) and the next buffer takes over the filling; a retry resends the same bytes. A buffer comes back
// for reuse once its batch is acknowledged.

import { encodeRecord, framedSize } from '../src/edit-records.js';
import { InvalidArgumentError, QjmError, TooLargeError } from '../src/errors.js';
import { journalHeaderRoom, putJournalHeader } from '../src/journal-write-wire.js';
import type { JournalClient } from './journal-client.js';

/** What the stream needs of the client: a journal() write of an encoded request, retried under the client's policy. */
export type JournalWriter = Pick<JournalClient, 'writeEncoded'>;

export interface OutputStreamOptions {
  jid: string;
  epoch: number;
  segmentTxId: number;
  /** The next txid to assign. */
  nextTxId: number;
  maxRecordBytes: number;
  /** One journal() RPC carries at most this many bytes. */
  maxBatchBytes: number;
  /** write() returns false once this many bytes wait to be sent (backpressure). */
  highWaterMarkBytes: number;
  /** A batch is sent on its own once the filling buffer reaches this size, without waiting for flush(). */
  autoFlushBytes: number;
  /** Give up on a batch after this long (QuorumUnavailableError; the stream is then failed). */
  writeTimeoutMs: number;
}

interface Pending {
  upTo: number;
  resolve(txid: number): void;
  reject(err: Error): void;
}

interface Batch {
  /** The whole buffer the batch was framed in (it is reused once the batch is acknowledged). */
  buffer: Buffer;
  /** The journal() request: header and frames, a view of `buffer`. */
  body: Uint8Array;
  framesBytes: number;
  first: number;
  count: number;
}

function notBytes(v: unknown): string {
  const what = v === null ? 'null' : typeof v === 'object' ? (v.constructor?.name ?? 'object') : typeof v;
  const hint = typeof v === 'string' ? ' (encode it first: new TextEncoder().encode(s) or Buffer.from(s))' : '';
  return `write() takes a record as a Uint8Array (a Buffer is one), got ${what}${hint}`;
}

export class EditLogOutputStream {
  /** The filling buffer: `headroom` bytes kept for the request header, then the frames. */
  private buf: Buffer;
  private readonly headroom: number;
  private used = 0;
  /** An acknowledged batch's buffer, ready to fill again. */
  private spare: Buffer | null = null;
  private firstInBuf: number;
  private nextTxId: number;
  /** Full batches (at maxBatchBytes) waiting for the one in flight. */
  private sealed: Batch[] = [];
  /** Bytes framed but not yet durable (filling, sealed and in flight). */
  private bufferedBytes = 0;
  private inFlight = false;
  /** A flush asked for a batch while none was in flight: it is sealed at the end of the turn's microtasks. */
  private sealScheduled = false;
  private durableTxId: number;
  private failure: Error | null = null;
  private waiters: Pending[] = [];
  private drainWaiters: (() => void)[] = [];
  private closed = false;

  constructor(
    private readonly client: JournalWriter,
    private readonly options: OutputStreamOptions,
  ) {
    this.headroom = journalHeaderRoom(options.jid);
    this.buf = Buffer.allocUnsafe(this.headroom + Math.min(options.maxBatchBytes, 1 << 20));
    this.firstInBuf = options.nextTxId;
    this.nextTxId = options.nextTxId;
    this.durableTxId = options.nextTxId - 1;
  }

  /** The segment this stream writes (its first txid). */
  get segmentTxId(): number {
    return this.options.segmentTxId;
  }

  /** The highest txid known durable on a quorum. */
  get lastDurableTxId(): number {
    return this.durableTxId;
  }

  /** The last txid assigned by write(). */
  get lastWrittenTxId(): number {
    return this.nextTxId - 1;
  }

  get epoch(): number {
    return this.options.epoch;
  }

  get failed(): Error | null {
    return this.failure;
  }

  /**
   * Frames a record as the next txid. Returns false when the caller should wait (await drain()) before
   * writing more. Throws once the stream has failed (FencedError after another writer took over).
   */
  write(record: Uint8Array): boolean {
    if (this.failure) throw this.failure;
    if (this.closed) throw new QjmError('INVALID_ARGUMENT', 'the stream is closed');
    // Called from JavaScript, anything may arrive: refuse it here, where the caller's try can catch it, rather
    // than let a string reach the framing inside a later turn (an uncatchable RangeError).
    if (!(record instanceof Uint8Array)) throw new InvalidArgumentError(notBytes(record));
    if (record.byteLength > this.options.maxRecordBytes)
      throw new TooLargeError(
        `record of ${record.byteLength} bytes is over maxRecordBytes (${this.options.maxRecordBytes})`,
      );
    const size = framedSize(record.byteLength);
    if (this.bufferedBytes + size > 2 * this.options.highWaterMarkBytes) {
      throw new QjmError(
        'BUSY',
        `${this.bufferedBytes} bytes are waiting to be written: await drain() when write() returns false`,
      );
    }
    // A batch never exceeds maxBatchBytes: a full buffer is sealed and queued behind the batch in flight.
    if (this.used > 0 && this.used + size > this.options.maxBatchBytes) this.seal();
    const room = this.buf.byteLength - this.headroom;
    if (this.used + size > room) {
      // Grown while it fills (a buffer starts at 1 MiB); a grown buffer is the one reused from then on.
      const grown = Buffer.allocUnsafe(
        this.headroom + Math.min(Math.max(room * 2, this.used + size), Math.max(this.options.maxBatchBytes, size)),
      );
      this.buf.copy(grown, this.headroom, this.headroom, this.headroom + this.used);
      this.buf = grown;
    }
    encodeRecord(this.buf, this.headroom + this.used, this.nextTxId, record);
    this.used += size;
    this.nextTxId++;
    this.bufferedBytes += size;
    if (this.used >= this.options.autoFlushBytes && !this.inFlight) this.seal();
    this.pump();
    return this.bufferedBytes < this.options.highWaterMarkBytes;
  }

  /** Resolves once the buffered bytes drop below the high-water mark. */
  drain(): Promise<void> {
    if (this.failure) return Promise.reject(this.failure);
    if (this.bufferedBytes < this.options.highWaterMarkBytes) return Promise.resolve();
    return new Promise((resolve) => this.drainWaiters.push(resolve));
  }

  /** Resolves with the highest durable txid once every record written before the call is durable. */
  flush(): Promise<number> {
    if (this.failure) return Promise.reject(this.failure);
    const upTo = this.nextTxId - 1;
    if (upTo <= this.durableTxId) return Promise.resolve(this.durableTxId);
    const p = new Promise<number>((resolve, reject) => this.waiters.push({ upTo, resolve, reject }));
    // Group commit: while a batch is in flight, what fills meanwhile goes out as one batch after it. With
    // nothing in flight the batch is sealed at the end of this turn's microtasks, not at once: handlers woken
    // together by the last acknowledgement each write and flush in turn, and all of them share this request
    // instead of the first going alone.
    if (!this.inFlight && !this.sealScheduled) {
      this.sealScheduled = true;
      queueMicrotask(() => {
        this.sealScheduled = false;
        if (this.inFlight || this.failure) return;
        this.seal();
        this.pump();
      });
    }
    return p;
  }

  /** The filling buffer becomes a batch as it is (its header written in front of the frames); a spare takes over. */
  private seal(): void {
    if (this.used === 0) return;
    const first = this.firstInBuf;
    const count = this.nextTxId - first;
    const end = this.headroom + this.used;
    const start = putJournalHeader(this.buf, this.headroom, {
      jid: this.options.jid,
      epoch: this.options.epoch,
      segmentTxId: this.options.segmentTxId,
      firstTxId: first,
      count,
      recordsBytes: this.used,
    });
    this.sealed.push({ buffer: this.buf, body: this.buf.subarray(start, end), framesBytes: this.used, first, count });
    this.buf = this.spare ?? Buffer.allocUnsafe(this.buf.byteLength);
    this.spare = null;
    this.used = 0;
    this.firstInBuf = this.nextTxId;
  }

  private pump(): void {
    if (this.inFlight || this.failure) return;
    const b = this.sealed.shift();
    if (!b) return;
    this.inFlight = true;
    void this.send(b);
  }

  private async send(b: Batch): Promise<void> {
    try {
      await this.client.writeEncoded('journal', b.body, { deadlineMs: this.options.writeTimeoutMs });
    } catch (e) {
      this.inFlight = false;
      this.fail(e as Error);
      return;
    }
    this.inFlight = false;
    // Acknowledged: nothing reads the batch's bytes any more.
    if (b.buffer.byteLength === this.buf.byteLength) this.spare = b.buffer;
    this.durableTxId = b.first + b.count - 1;
    this.bufferedBytes -= b.framesBytes;
    const done = this.waiters.filter((w) => w.upTo <= this.durableTxId);
    this.waiters = this.waiters.filter((w) => w.upTo > this.durableTxId);
    for (const w of done) w.resolve(this.durableTxId);
    if (this.bufferedBytes < this.options.highWaterMarkBytes && this.drainWaiters.length > 0) {
      const ds = this.drainWaiters;
      this.drainWaiters = [];
      for (const d of ds) d();
    }
    // What filled while that batch was in flight goes next, if anyone waits for it or it is large enough.
    if (this.sealed.length === 0 && (this.waiters.length > 0 || this.used >= this.options.autoFlushBytes)) this.seal();
    this.pump();
  }

  private fail(e: Error): void {
    // A failed batch fails the stream: its outcome may be unknown, and a later batch would leave a gap. The
    // writer recovers (recoverUnfinalizedSegments) or, when fenced, stops writing for good.
    this.failure = e;
    const ws = this.waiters;
    this.waiters = [];
    for (const w of ws) w.reject(e);
    const ds = this.drainWaiters;
    this.drainWaiters = [];
    for (const d of ds) d();
  }

  /** Flushes, then refuses further writes (the caller then finalizes the segment). */
  async close(): Promise<number> {
    const last = await this.flush();
    this.closed = true;
    return last;
  }
}
