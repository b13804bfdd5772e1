// Peer RPCs: POST /raft/message, a MessageBatch in and the piggybacked answer out. (The snapshot transfer's
// routes are in snapshot-transfer.ts, beside the client that calls them.)

import type { FastifyInstance } from 'fastify';
import { QjmError } from '../src/errors.js';
import { BatchLimitError, decodeBatch } from '../src/transport/raft-codec.js';
import type { Batch } from '../src/transport/raft-codec.js';
import type { Logger } from '../src/logger.js';
import { isNodeId } from '../src/ids.js';
import { NotAMemberError } from './peer-transport.js';
import type { PeerTransport } from './peer-transport.js';
import { authorizePeerBatch, JSON_ENVELOPE, refuse } from './authz.js';

export interface RaftRouteContext {
  /** The largest legal batch: one append's worth of entries and what travels with it. */
  maxBodyBytes: number;
  clusterId: string;
  transport: PeerTransport;
  logger: Logger;
}

export function registerRaftRoutes(app: FastifyInstance, ctx: RaftRouteContext): void {
  app.post('/raft/message', { bodyLimit: ctx.maxBodyBytes }, async (req, reply) => {
    let b: Batch;
    try {
      b = decodeBatch(req.body as Buffer, ctx.transport.batchLimits);
    } catch (e) {
      if (e instanceof BatchLimitError) return reply.code(413).send({ code: 'QJM_ERR_TOO_LARGE', message: `MessageBatch refused: ${e.message}` });
      return reply.code(400).send({ code: 'QJM_ERR_INVALID_ARGUMENT', message: `malformed MessageBatch: ${(e as Error).message}` });
    }
    if (b.clusterId !== ctx.clusterId) {
      ctx.logger.warn({ from: b.from, clusterId: b.clusterId }, 'refusing Raft traffic from another cluster');
      return reply.code(403).send({ code: 'QJM_ERR_FORBIDDEN', message: `cluster id ${JSON.stringify(b.clusterId)} is not this cluster's` });
    }
    if (!isNodeId(b.from)) {
      return reply.code(400).send({ code: 'QJM_ERR_INVALID_ARGUMENT', message: 'bad sender id' });
    }
    const refusal = authorizePeerBatch(req.caller, b);
    if (refusal) {
      ctx.logger.warn({ from: b.from, error: refusal.message }, 'refusing a Raft batch');
      return refuse(reply, JSON_ENVELOPE, refusal);
    }
    let answer: Uint8Array;
    try {
      answer = await ctx.transport.handleInbound(b);
    } catch (e) {
      // A removed node's certificate is still signed by the CA: membership, not the certificate, decides.
      if (!(e instanceof NotAMemberError)) throw e;
      ctx.logger.debug({ from: b.from }, 'refusing Raft traffic from a non-member');
      return refuse(reply, JSON_ENVELOPE, new QjmError('FORBIDDEN', e.message));
    }
    return reply.type('application/x-protobuf').send(Buffer.from(answer.buffer, answer.byteOffset, answer.byteLength));
  });
}
