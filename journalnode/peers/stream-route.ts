// Peer streams: POST /raft/stream, a chunked body of length-prefixed MessageBatch frames from one peer, read
// as it arrives and delivered frame by frame; the answer comes only when the stream ends (200), or early to
// refuse it, and then the connection is dropped. Every frame is bounded on the wire before it is decoded and
// checked as a batch was when each one was a request of its own: the sender's certificate names its `from`
// and every message's, the identity rules accept its storage and generation (a refusal tells the sender why,
// identity-refusal.ts), the sender is a member, one stream speaks for one node. (The snapshot transfer's
// routes are in snapshot-http.ts, beside the client that calls them.)

import type { FastifyInstance, FastifyReply } from 'fastify';
import { QjmError } from '../../src/errors.js';
import type { IncomingMessage } from 'node:http';
import { BatchLimitError, decodeBatch } from '../../src/transport/raft-codec.js';
import type { Batch } from '../../src/transport/raft-codec.js';
import { FrameReader, FrameTooLargeError } from '../../src/transport/frames.js';
import type { Logger } from '../../src/logger.js';
import { isNodeId } from '../../src/ids.js';
import { NotAMemberError, RAFT_STREAM_CONTENT_TYPE, RAFT_STREAM_PATH } from './peer-transport.js';
import type { PeerTransport } from './peer-transport.js';
import { authorizePeerBatch } from '../http/authz.js';
import { sendJsonError } from '../http/rpc-errors.js';
import type { Caller } from '../http/authz.js';
import { IdentityRefusal } from './identity-refusal.js';

export interface RaftRouteContext {
  /** The largest legal frame: one append's worth of entries and what travels with it. */
  maxBodyBytes: number;
  clusterId: string;
  transport: PeerTransport;
  logger: Logger;
}

// Why a stream was refused: a QjmError, answered in JSON with the status of its name (the one table).
const forbidden = (message: string) => new QjmError('FORBIDDEN', message);
const invalid = (message: string) => new QjmError('INVALID_ARGUMENT', message);
const tooLarge = (message: string) => new QjmError('TOO_LARGE', `MessageBatch refused: ${message}`);

/** The body of a stream request is handed to the route as it arrives, never buffered by fastify. */
export function registerRaftStreamBody(app: FastifyInstance): void {
  app.addContentTypeParser(RAFT_STREAM_CONTENT_TYPE, (_req, payload, done) => done(null, payload));
}

export function registerRaftRoutes(app: FastifyInstance, context: RaftRouteContext): void {
  app.post(RAFT_STREAM_PATH, async (req, reply) => {
    // Any other content type was parsed (and bounded) as a plain body: not a stream.
    // HTTP's status for a content type a route does not take, as fastify answers it on every other route.
    if (req.headers['content-type'] !== RAFT_STREAM_CONTENT_TYPE)
      return sendJsonError(reply, invalid(`a peer stream is sent as ${RAFT_STREAM_CONTENT_TYPE}`), 415);
    return readStream(context, req.caller, req.body as IncomingMessage, reply);
  });
}

/** Reads one peer stream to its end; resolves once it has been answered. */
function readStream(
  ctx: RaftRouteContext,
  caller: Caller | null,
  body: IncomingMessage,
  reply: FastifyReply,
): Promise<FastifyReply> {
  return new Promise<FastifyReply>((resolve) => new StreamReader(ctx, caller, body, reply, resolve).start());
}

/** One inbound stream: frames decoded and checked as they arrive, delivered in order, answered once. */
class StreamReader {
  private readonly frames: FrameReader;
  /** The node this stream speaks for: the certificate's from the start, else the first batch's. */
  private peer: string | null = null;
  private forget = () => {};
  private answered = false;
  /** Batches that arrived while a member's word on their sender is awaited (the body is paused meanwhile). */
  private waiting: Batch[] | null = null;
  private endedWhileWaiting = false;
  private closedWhileWaiting = false;
  private readonly idle: NodeJS.Timeout;

  constructor(
    private readonly ctx: RaftRouteContext,
    private readonly caller: Caller | null,
    private readonly body: IncomingMessage,
    private readonly reply: FastifyReply,
    private readonly resolve: (r: FastifyReply) => void,
  ) {
    this.frames = new FrameReader(ctx.maxBodyBytes);
    const idleMs = ctx.transport.idleTimeoutMs;
    this.idle = setTimeout(
      () => this.refuse(new QjmError('TIMEOUT', `the stream sent nothing for ${idleMs} ms`)),
      idleMs,
    );
  }

  start(): void {
    const { caller, body } = this;
    // A node certificate names its node before any byte: a member's stream is registered at once; anyone
    // else's first batch decides (a stranger or a removed node is refused, a leader a member vouches for heard).
    if (caller?.kind === 'node' && this.ctx.transport.heard(caller.id)) this.withRefusals(() => this.open(caller.id));
    if (this.answered) return;
    body.on('data', (chunk: Buffer) => {
      if (this.answered) return;
      this.idle.refresh();
      this.withRefusals(() => this.frames.push(chunk, (frame) => this.onFrame(frame)));
    });
    body.on('end', () => {
      if (this.waiting) this.endedWhileWaiting = true;
      else this.ended();
    });
    // The sender went away: nobody reads an answer. What it sent before is still delivered (after a vouch
    // awaited, when one is).
    body.on('close', () => {
      if (this.waiting) this.closedWhileWaiting = true;
      else if (!this.answered) this.answer(200, {}, true);
    });
  }

  /** Answers once: 200 with an empty body when the stream ended, or a refusal. */
  private answer(status: number, json: object, close: boolean): void {
    if (this.answered) return;
    this.answered = true;
    clearTimeout(this.idle);
    this.forget();
    this.body.removeAllListeners('data');
    // A refused stream's connection is dropped: the rest of its body is not worth reading.
    if (close) this.reply.header('connection', 'close');
    this.resolve(this.reply.code(status).send(json));
  }

  private refuse(e: QjmError): void {
    // An identity refusal: the replica logged why (once per peer and reason); the sender reconnects with backoff.
    if (e instanceof IdentityRefusal)
      this.ctx.logger.debug({ from: this.peer, error: e.message }, 'refusing a Raft stream: identity');
    else this.ctx.logger.warn({ from: this.peer, status: e.httpStatus, error: e.message }, 'refusing a Raft stream');
    this.answer(e.httpStatus, e.jsonBody(), true);
  }

  private ended(): void {
    if (this.frames.midFrame) this.refuse(invalid('the stream ended in the middle of a frame'));
    else this.answer(200, {}, false);
  }

  private open(id: string): void {
    this.peer = id;
    this.forget = this.ctx.transport.openInbound(id, {
      cut: (e) => this.answer(e.httpStatus, e.jsonBody(), true),
    });
  }

  private deliver(b: Batch): void {
    if (this.peer === null) this.open(b.from);
    // Batches held while a vouch was awaited were checked before the stream knew whom it speaks for.
    else if (b.from !== this.peer)
      throw forbidden(`this stream speaks for ${this.peer}, not ${JSON.stringify(b.from)}`);
    this.ctx.transport.handleInbound(b);
  }

  private onFrame(frame: Buffer): void {
    if (this.answered || frame.byteLength === 0) return; // a keepalive
    let b: Batch;
    try {
      b = decodeBatch(frame, this.ctx.transport.batchLimits);
    } catch (e) {
      if (e instanceof BatchLimitError) throw tooLarge(e.message);
      throw invalid(`malformed MessageBatch: ${(e as Error).message}`);
    }
    this.onBatch(b);
  }

  private onBatch(b: Batch): void {
    if (b.clusterId !== this.ctx.clusterId)
      throw forbidden(`cluster id ${JSON.stringify(b.clusterId)} is not this cluster's`);
    if (!isNodeId(b.from)) throw invalid('bad sender id');
    const refusal = authorizePeerBatch(this.caller, b);
    if (refusal) throw forbidden(refusal.message);
    if (this.peer !== null && b.from !== this.peer)
      throw forbidden(`this stream speaks for ${this.peer}, not ${JSON.stringify(b.from)}`);
    if (this.waiting) return void this.waiting.push(b);
    // Before membership: a node reset away is no member of this configuration, and must hear why.
    const verdict = this.ctx.transport.identityVerdict(b);
    if (!verdict.ok) throw new IdentityRefusal(verdict.reason, verdict.notice);
    const admitted = this.peer === null ? this.ctx.transport.admits(b.from, b.messages) : true;
    if (admitted === true) return this.deliver(b);
    this.admitLater(b, admitted);
  }

  /**
   * A sender the configuration does not name (a leader this node has not learned of yet): the stream is held,
   * its body paused, until a member vouches for the sender (what arrived meanwhile is delivered in order) or
   * nobody does (refused). PeerAdmission bounds the asking in number and time.
   */
  private admitLater(b: Batch, admitted: Promise<boolean>): void {
    this.waiting = [b];
    this.body.pause();
    void admitted.then((ok) => {
      const held = this.waiting ?? [];
      this.waiting = null;
      if (this.answered) return;
      if (!ok) return this.refuse(forbidden(new NotAMemberError(b.from).message));
      this.withRefusals(() => {
        for (const x of held) this.deliver(x);
      });
      if (this.answered) return;
      if (this.endedWhileWaiting) this.ended();
      else if (this.closedWhileWaiting) this.answer(200, {}, true);
      else this.body.resume();
    });
  }

  private withRefusals(f: () => void): void {
    try {
      f();
    } catch (e) {
      if (e instanceof QjmError) return this.refuse(e);
      if (e instanceof FrameTooLargeError) return this.refuse(tooLarge(e.message));
      // A removed node's certificate is still signed by the CA: membership, not the certificate, decides.
      if (e instanceof NotAMemberError) return this.refuse(forbidden(e.message));
      throw e;
    }
  }
}
