// Peer RPCs: POST /raft/message (a MessageBatch in, the piggybacked answer out) and the snapshot transfer a
// follower pulls from the leader (the manifest, then files in chunks of at most maxSnapshotChunkBytes).

import type { FastifyInstance } from 'fastify';
import { decodeBatch } from '../src/transport/raft-codec.js';
import type { Batch } from '../src/transport/raft-codec.js';
import type { JournalNodeConfig } from './config.js';
import type { JournalStateMachine } from './journal-state-machine.js';
import type { PeerTransport } from './peer-transport.js';
import { encodeManifest } from './snapshot-store.js';
import { isJournalId, isNodeId } from '../src/ids.js';

export interface RaftRouteContext {
  config: JournalNodeConfig;
  clusterId: string;
  transport: PeerTransport;
  sm: JournalStateMachine;
  logger: { warn(obj: object, msg: string): void };
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
      return reply.code(403).send({ code: 'QJM_ERR_UNAUTHORIZED', message: `cluster id ${JSON.stringify(b.clusterId)} is not this cluster's` });
    }
    if (!isNodeId(b.from)) {
      return reply.code(400).send({ code: 'QJM_ERR_INVALID_ARGUMENT', message: 'bad sender id' });
    }
    const answer = await ctx.transport.handleInbound(b);
    return reply.type('application/x-protobuf').send(Buffer.from(answer.buffer, answer.byteOffset, answer.byteLength));
  });

  app.get('/raft/snapshot/manifest', async (req, reply) => {
    const minIndex = Number((req.query as Record<string, string>).min_index ?? 0);
    if (!Number.isSafeInteger(minIndex) || minIndex < 0) return reply.code(400).send({ code: 'QJM_ERR_INVALID_ARGUMENT', message: 'bad min_index' });
    const newest = ctx.sm.snapshots.newest();
    if (!newest || newest.index < minIndex) {
      return reply.code(404).send({ code: 'QJM_ERR_UNAVAILABLE', message: `no snapshot at index >= ${minIndex} (newest: ${newest?.index ?? 'none'})` });
    }
    return reply.type('application/x-protobuf').send(encodeManifest(newest.manifest));
  });

  app.get('/raft/snapshot/chunk', async (req, reply) => {
    const q = req.query as Record<string, string | undefined>;
    const index = Number(q.index);
    const offset = Number(q.offset);
    const length = Number(q.length);
    const jid = q.jid ?? '';
    const file = q.file ?? '';
    if (
      ![index, offset, length].every((n) => Number.isSafeInteger(n) && n >= 0) ||
      !isJournalId(jid) ||
      !/^edits_(inprogress_\d{19}|\d{19}-\d{19})$/.test(file) ||
      length > ctx.config.maxSnapshotChunkBytes
    ) {
      return reply.code(400).send({ code: 'QJM_ERR_INVALID_ARGUMENT', message: `bad chunk request (length at most ${ctx.config.maxSnapshotChunkBytes})` });
    }
    try {
      return reply.type('application/octet-stream').send(ctx.sm.snapshots.readChunk(index, jid, file, offset, length));
    } catch (e) {
      return reply.code(404).send({ code: 'QJM_ERR_UNAVAILABLE', message: (e as Error).message });
    }
  });
}
