// The budget of answer bytes a node holds for its clients: a client that asks and does not read must not make
// the node keep what it asked for. Every answer takes its bytes from the node's budget and its connection's
// before its first byte is sent, and gives them back when it ends (sent, or cut). What an answer takes:
//   - a body in memory: its length (plus HEAD_BYTES);
//   - a streamed answer (read from a file as its client takes it, with backpressure): STREAM_WINDOW_BYTES,
//     the most it holds at once, plus whatever in-memory pieces it keeps alive (the route reserves those).
// An answer that does not fit either bound is refused QJM_ERR_BUSY (429, retriable) in its route's envelope.
// An answer whose client takes none of its bytes for stallTimeoutMs is cut (the socket destroyed): its budget
// comes back at once, not when the connection's idle timeout ends it.

import type { Socket } from 'node:net';
import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ServerResponse } from 'node:http';
import { QjmError } from '../../src/errors.js';
import type { Logger } from '../../src/logger.js';

/** What a streamed answer holds at once: the chunk being written and the one read ahead. */
export const STREAM_CHUNK_BYTES = 256 << 10;
export const STREAM_WINDOW_BYTES = 2 * STREAM_CHUNK_BYTES;
/** Counted for every answer besides its body: its head, and so that even empty answers are bounded in number. */
const HEAD_BYTES = 1024;

export interface ResponseBudgetOptions {
  maxBytesInFlight: number;
  maxBytesPerConnection: number;
  stallTimeoutMs: number;
  logger: Logger;
  /** Told of every answer refused for the budget and every one cut for stalling (metrics). */
  onRefused?(reason: 'budget' | 'stalled'): void;
}

interface InFlight {
  socket: object;
  lastProgressMs: number;
  lastBuffered: number;
}

export class ResponseBudget {
  private usedBytes = 0;
  private readonly perConnection = new WeakMap<object, number>();
  /** Reservations a route made before building its answer (keyed by the response). */
  private readonly reserved = new WeakMap<ServerResponse, number>();
  private readonly inFlight = new Map<ServerResponse, InFlight>();
  private timer: NodeJS.Timeout | null = null;

  constructor(readonly options: ResponseBudgetOptions) {}

  get bytesInFlight(): number {
    return this.usedBytes;
  }

  get answersInFlight(): number {
    return this.inFlight.size;
  }

  /** The bytes an answer on this connection could take now. */
  room(socket: object): number {
    const o = this.options;
    return Math.max(
      0,
      Math.min(o.maxBytesInFlight - this.usedBytes, o.maxBytesPerConnection - this.connectionBytes(socket)),
    );
  }

  private connectionBytes(socket: object): number {
    return this.perConnection.get(socket) ?? 0;
  }

  /** Takes `bytes` for an answer on `socket`; false (nothing taken) when either bound would be passed. */
  private take(socket: object, bytes: number): boolean {
    if (bytes > this.room(socket)) return false;
    this.usedBytes += bytes;
    this.perConnection.set(socket, this.connectionBytes(socket) + bytes);
    return true;
  }

  private give(socket: object, bytes: number): void {
    this.usedBytes -= bytes;
    const left = this.connectionBytes(socket) - bytes;
    if (left > 0) this.perConnection.set(socket, left);
    else this.perConnection.delete(socket);
  }

  /**
   * A route that builds a large answer reserves for it first (`bytes`: what it will hold). False: refused,
   * answer BUSY. The reservation is the answer's: given back when it ends.
   */
  reserve(reply: FastifyReply, bytes: number): boolean {
    const res = reply.raw;
    const socket = res.socket ?? res;
    if (!this.take(socket, bytes + HEAD_BYTES)) {
      this.options.onRefused?.('budget');
      return false;
    }
    this.reserved.set(res, (this.reserved.get(res) ?? 0) + bytes + HEAD_BYTES);
    res.once('close', () => this.release(res, socket));
    return true;
  }

  /**
   * Accounts an answer as it is sent (fastify's onSend): what it holds, unless its route reserved already.
   * Returns false when it does not fit: the caller answers BUSY instead.
   */
  admit(reply: FastifyReply, payload: unknown): boolean {
    const res = reply.raw;
    const socket = res.socket ?? res;
    if (!this.reserved.has(res)) {
      const bytes = payloadBytes(payload) + HEAD_BYTES;
      if (!this.take(socket, bytes)) {
        this.options.onRefused?.('budget');
        return false;
      }
      this.reserved.set(res, bytes);
      res.once('close', () => this.release(res, socket));
    }
    this.watch(res, socket);
    return true;
  }

  private release(res: ServerResponse, socket: object): void {
    const bytes = this.reserved.get(res);
    if (bytes === undefined) return;
    this.reserved.delete(res);
    this.inFlight.delete(res);
    this.give(socket, bytes);
  }

  /**
   * Follows an answer until it ends. Progress is its socket draining (a stream is written a chunk at a time,
   * each when the last drained), or the bytes waiting in it shrinking between two checks. (A 'data' listener
   * on a streamed payload would set it flowing past its consumer: never.)
   */
  private watch(res: ServerResponse, socket: object): void {
    const entry: InFlight = { socket, lastProgressMs: Date.now(), lastBuffered: Number.POSITIVE_INFINITY };
    this.inFlight.set(res, entry);
    const progressed = () => {
      entry.lastProgressMs = Date.now();
    };
    (socket as Partial<Socket>).on?.('drain', progressed);
    res.once('close', () => (socket as Partial<Socket>).off?.('drain', progressed));
    if (this.timer === null) {
      this.timer = setInterval(() => this.cutStalled(), Math.min(1000, this.options.stallTimeoutMs / 4));
      this.timer.unref();
    }
  }

  private cutStalled(): void {
    const now = Date.now();
    for (const [res, e] of this.inFlight) {
      const buffered = (e.socket as Partial<Socket>).writableLength ?? 0;
      if (buffered < e.lastBuffered) e.lastProgressMs = now;
      e.lastBuffered = buffered;
      if (now - e.lastProgressMs < this.options.stallTimeoutMs) continue;
      this.options.onRefused?.('stalled');
      this.options.logger.warn(
        { remote: (e.socket as Partial<Socket>).remoteAddress, url: res.req?.url },
        'cut an answer its client took no byte of within responseStallTimeoutMs',
      );
      this.inFlight.delete(res);
      res.destroy();
      (e.socket as Partial<Socket>).destroy?.();
    }
    if (this.inFlight.size === 0 && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  close(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }
}

function payloadBytes(payload: unknown): number {
  if (payload === null || payload === undefined) return 0;
  if (typeof payload === 'string') return Buffer.byteLength(payload);
  if (payload instanceof Uint8Array) return payload.byteLength;
  if (payload instanceof Readable) return STREAM_WINDOW_BYTES;
  return 0;
}

/**
 * Puts every answer of `app` under the budget (one onSend hook, registered before any route). A refused answer
 * becomes `busy(url, refusal)`: the route's own envelope with QJM_ERR_BUSY, answered with BUSY's status (429).
 */
export function registerResponseBudget(
  app: FastifyInstance,
  budget: ResponseBudget,
  busy: (url: string, refusal: QjmError) => { contentType: string; body: Buffer | string },
): void {
  app.addHook('onSend', async (req, reply, payload) => {
    if (budget.admit(reply, payload)) return payload;
    if (payload instanceof Readable) payload.destroy();
    const o = budget.options;
    const refusal = new QjmError(
      'BUSY',
      `this node holds ${budget.bytesInFlight} bytes of answers for its clients (at most ${o.maxBytesInFlight}, ${o.maxBytesPerConnection} per connection): retry later`,
    );
    const answer = busy(req.url, refusal);
    reply.code(refusal.httpStatus).header('content-type', answer.contentType).removeHeader('content-length');
    return answer.body;
  });
}

/** A refusal for the budget as the pages and JSON routes answer errors. */
export function jsonBusy(_url: string, refusal: QjmError): { contentType: string; body: string } {
  return { contentType: 'application/json; charset=utf-8', body: JSON.stringify(refusal.jsonBody()) };
}
