// Peer streams: POST /raft/stream, a chunked body of length-prefixed MessageBatch frames from one peer, read
// as it arrives and delivered frame by frame; the answer comes only when the stream ends (200), or early to
// refuse it, and then the connection is dropped. Every frame is bounded on the wire before it is decoded and
// checked as a batch was when each one was a request of its own: the sender's certificate names its `from`
// and every message's, the sender is a member, one stream speaks for one node. (The snapshot transfer's
// routes are in snapshot-transfer.ts, beside the client that calls them.)

import type { FastifyInstance, FastifyReply } from 'fastify';
import type { IncomingMessage } from 'node:http';
import { BatchLimitError, decodeBatch } from '../src/transport/raft-codec.js';
import type { Batch } from '../src/transport/raft-codec.js';
import { FrameReader, FrameTooLargeError } from '../src/transport/frames.js';
import type { Logger } from '../src/logger.js';
import { isNodeId } from '../src/ids.js';
import { NotAMemberError, RAFT_STREAM_CONTENT_TYPE, RAFT_STREAM_PATH } from './peer-transport.js';
import type { PeerTransport } from './peer-transport.js';
import { authorizePeerBatch } from './authz.js';
import type { Caller } from './authz.js';

export interface RaftRouteContext {
  /** The largest legal frame: one append's worth of entries and what travels with it. */
  maxBodyBytes: number;
  clusterId: string;
  transport: PeerTransport;
  logger: Logger;
}

/** Why a stream was refused: an HTTP status and the error code and message of the JSON answer. */
class StreamRefusal extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const forbidden = (message: string) => new StreamRefusal(403, 'QJM_ERR_FORBIDDEN', message);
const invalid = (message: string) => new StreamRefusal(400, 'QJM_ERR_INVALID_ARGUMENT', message);

/** The body of a stream request is handed to the route as it arrives, never buffered by fastify. */
export function registerRaftStreamBody(app: FastifyInstance): void {
  app.addContentTypeParser(RAFT_STREAM_CONTENT_TYPE, (_req, payload, done) => done(null, payload));
}

export function registerRaftRoutes(app: FastifyInstance, ctx: RaftRouteContext): void {
  app.post(RAFT_STREAM_PATH, async (req, reply) => {
    // Any other content type was parsed (and bounded) as a plain body: not a stream.
    if (req.headers['content-type'] !== RAFT_STREAM_CONTENT_TYPE) {
      return reply.code(415).send({ code: 'QJM_ERR_INVALID_ARGUMENT', message: `a peer stream is sent as ${RAFT_STREAM_CONTENT_TYPE}` });
    }
    return readStream(ctx, req.caller, req.body as IncomingMessage, reply);
  });
}

/** Reads one peer stream to its end; resolves once it has been answered. */
function readStream(ctx: RaftRouteContext, caller: Caller | null, body: IncomingMessage, reply: FastifyReply): Promise<FastifyReply> {
  const { transport, logger } = ctx;
  return new Promise<FastifyReply>((resolve) => {
    const reader = new FrameReader(ctx.maxBodyBytes);
    /** The node this stream speaks for: the certificate's from the start, else the first batch's. */
    let peer: string | null = null;
    let forget = () => {};
    let answered = false;
    const answer = (status: number, json: object, close: boolean) => {
      if (answered) return;
      answered = true;
      clearTimeout(idle);
      forget();
      body.removeAllListeners('data');
      // A refused stream's connection is dropped: the rest of its body is not worth reading.
      if (close) reply.header('connection', 'close');
      resolve(reply.code(status).send(json));
    };
    const refuse = (r: StreamRefusal) => {
      logger.warn({ from: peer, status: r.status, error: r.message }, 'refusing a Raft stream');
      answer(r.status, { code: r.code, message: r.message }, true);
    };
    const idle = setTimeout(() => refuse(new StreamRefusal(408, 'QJM_ERR_TIMEOUT', `the stream sent nothing for ${transport.idleTimeoutMs} ms`)), transport.idleTimeoutMs);
    const open = (id: string) => {
      peer = id;
      forget = transport.openInbound(id, { cut: (status, code, message) => answer(status, { code, message }, true) });
    };
    const deliver = (b: Batch) => {
      if (peer === null) open(b.from);
      else if (b.from !== peer) throw forbidden(`this stream speaks for ${peer}, not ${JSON.stringify(b.from)}`);
      transport.handleInbound(b);
    };
    /** Batches that arrived while a member's word on their sender is awaited (the body is paused meanwhile). */
    let waiting: Batch[] | null = null;
    const onBatch = (b: Batch) => {
      if (b.clusterId !== ctx.clusterId) throw forbidden(`cluster id ${JSON.stringify(b.clusterId)} is not this cluster's`);
      if (!isNodeId(b.from)) throw invalid('bad sender id');
      const refusal = authorizePeerBatch(caller, b);
      if (refusal) throw forbidden(refusal.message);
      if (waiting) return void waiting.push(b);
      const admitted = peer === null || b.from !== peer ? transport.admits(b.from, b.messages) : true;
      if (admitted === true) return deliver(b);
      // A sender the configuration does not name (a leader this node has not learned of yet): hold the stream
      // until a member vouches for it, or refuse it.
      waiting = [b];
      body.pause();
      void admitted.then((ok) => {
        const held = waiting ?? [];
        waiting = null;
        if (answered) return;
        if (!ok) return refuse(forbidden(new NotAMemberError(b.from).message));
        withRefusals(() => held.forEach(deliver));
        if (answered) return;
        if (endedWhileWaiting) ended();
        else body.resume();
      });
    };
    const onFrame = (frame: Buffer) => {
      if (answered || frame.byteLength === 0) return; // a keepalive
      let b: Batch;
      try {
        b = decodeBatch(frame, transport.batchLimits);
      } catch (e) {
        if (e instanceof BatchLimitError) throw new StreamRefusal(413, 'QJM_ERR_TOO_LARGE', `MessageBatch refused: ${e.message}`);
        throw invalid(`malformed MessageBatch: ${(e as Error).message}`);
      }
      onBatch(b);
    };
    const withRefusals = (f: () => void) => {
      try {
        f();
      } catch (e) {
        if (e instanceof StreamRefusal) return refuse(e);
        if (e instanceof FrameTooLargeError) return refuse(new StreamRefusal(413, 'QJM_ERR_TOO_LARGE', `MessageBatch refused: ${e.message}`));
        // A removed node's certificate is still signed by the CA: membership, not the certificate, decides.
        if (e instanceof NotAMemberError) return refuse(forbidden(e.message));
        throw e;
      }
    };
    // A node certificate names its node before any byte: a member's stream is registered at once; anyone
    // else's first batch decides (a stranger or a removed node is refused, a leader a member vouches for heard).
    if (caller?.kind === 'node' && transport.heard(caller.id)) withRefusals(() => open(caller.id));
    if (answered) return;
    body.on('data', (chunk: Buffer) => {
      if (answered) return;
      idle.refresh();
      withRefusals(() => reader.push(chunk, onFrame));
    });
    const ended = () => {
      if (reader.midFrame) refuse(invalid('the stream ended in the middle of a frame'));
      else answer(200, {}, false);
    };
    let endedWhileWaiting = false;
    body.on('end', () => {
      if (waiting) endedWhileWaiting = true;
      else ended();
    });
    // The sender went away: nobody reads an answer.
    body.on('close', () => {
      if (!answered) answer(200, {}, true);
    });
  });
}
