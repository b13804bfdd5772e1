// Peer RPCs: POST /raft/message, a MessageBatch in and the piggybacked answer out. (The snapshot transfer's
// routes are in snapshot-transfer.ts, beside the client that calls them.)

import type { FastifyInstance } from 'fastify';
import { decodeBatch } from '../src/transport/raft-codec.js';
import type { Batch } from '../src/transport/raft-codec.js';
import type { Logger } from '../src/logger.js';
import { isNodeId } from '../src/ids.js';
import type { PeerTransport } from './peer-transport.js';
import { authorizePeerBatch, JSON_ENVELOPE, refuse } from './authz.js';

export interface RaftRouteContext {
  clusterId: string;
  transport: PeerTransport;
  logger: Logger;
}

export function registerRaftRoutes(app: FastifyInstance, ctx: RaftRouteContext): void {
  app.post('/raft/message', async (req, reply) => {
    let b: Batch;
    try {
      b = decodeBatch(req.body as Buffer);
    } catch (e) {
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
    const answer = await ctx.transport.handleInbound(b);
    return reply.type('application/x-protobuf').send(Buffer.from(answer.buffer, answer.byteOffset, answer.byteLength));
  });
}
