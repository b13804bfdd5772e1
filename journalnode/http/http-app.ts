// The JournalNode's HTTP server: one fastify app (HTTPS with client certificates, or plain HTTP when the
// node runs --insecure) with the authorization hook, the body parsers, the error mapping, the draining hook
// and the latency metrics of the journal RPCs, and every route group registered on it. Built without
// listening, so tests inject requests (app.inject).

import Fastify from 'fastify';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { Server as TlsServer } from 'node:tls';
import { QjmError } from '../../src/errors.js';
import { formatMembersHeader, MEMBERS_HEADER } from '../../src/peers.js';
import type { Logger } from '../../src/logger.js';
import type { TlsMaterial } from '../../src/security/cert-files.js';
import { registerAuthorization } from './authz.js';
import { registerActivityRoute } from '../observe/activity.js';
import type { NodeActivity } from '../observe/activity.js';
import type { JournalNodeConfig } from '../config.js';
import type { NodeMetrics } from '../observe/metrics.js';
import { registerAdminRoutes } from './routes-admin.js';
import type { AdminContext } from './routes-admin.js';
import { registerQjmRoutes } from './routes-qjm.js';
import type { QjmContext } from './routes-qjm.js';
import { registerRaftRoutes, registerRaftStreamBody } from '../peers/stream-route.js';
import type { RaftRouteContext } from '../peers/stream-route.js';
import { refuseWhileDraining, sendJsonError, sendProtoError, SMALL_BODY_BYTES, toRpcError } from './rpc-errors.js';
import { jsonBusy, registerResponseBudget } from './response-budget.js';
import type { ResponseBudget } from './response-budget.js';
import { qjournal } from '../../src/gen/proto.js';
import { registerSnapshotRoutes } from '../peers/snapshot-http.js';
import { guardTlsConnections, serverTlsOptions } from './node-tls.js';

/** Routes whose answers are protobuf messages with `RpcError error = 1`. */
const PROTO_ROUTES = /^\/(qjm|admin)\//;

export interface HttpAppParts {
  config: JournalNodeConfig;
  logger: Logger;
  metrics: NodeMetrics;
  raft: RaftRouteContext;
  qjm: QjmContext;
  admin: AdminContext;
  /** The node's certificates: HTTPS with client certificates. Null: plain HTTP, no authorization (--insecure). */
  tls: TlsMaterial | null;
  /** This node's events and history: a peer's dashboard gathers them here. */
  activity: NodeActivity;
  /** True once the node is shutting down: new writes are refused (reads still served). */
  draining(): boolean;
  /** The answer bytes the node holds for its clients, shared with the dashboard port. */
  budget: ResponseBudget;
}

export async function buildHttpApp(p: HttpAppParts): Promise<FastifyInstance> {
  const c = p.config;
  const options = {
    logger: false,
    // Each route with a larger legal body says so (the journal write, the Raft batch); all others are small.
    bodyLimit: SMALL_BODY_BYTES,
    // A long-poll keeps its connection idle for up to maxWaitMs: the idle timeout must outlast it.
    connectionTimeout: c.maxWaitMs + 30_000,
    requestTimeout: c.httpRequestTimeoutMs,
    keepAliveTimeout: c.httpKeepAliveTimeoutMs,
  };
  // A client that connects and never finishes its handshake is closed (connection-guard.ts bounds the rest).
  const app = (p.tls
    ? Fastify({ ...options, https: { ...serverTlsOptions(p.tls), handshakeTimeout: c.tlsHandshakeTimeoutMs } })
    : Fastify(options)) as unknown as FastifyInstance;
  app.server.headersTimeout = c.httpHeadersTimeoutMs;
  if (p.tls) guardTlsConnections(app.server as unknown as TlsServer, p.logger);
  underBounds(app, p);
  registerAuthorization(app, p.tls ? 'mutual-tls' : 'insecure');
  // Protobuf only: every other body type is refused (415) before a handler sees it.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    ['application/x-protobuf', 'application/octet-stream'],
    { parseAs: 'buffer' },
    (_req, body, done) => done(null, body),
  );
  registerRaftStreamBody(app);
  const term = () => p.qjm.replica.term;
  // fastify's own refusals (body too large, wrong content type, no such route) answer in the route's envelope:
  // protobuf on the RPC routes, so libqjm reads them as typed errors (TOO_LARGE is never retried).
  const refuse = (reply: FastifyReply, url: string, status: number, message: string) => {
    const e = new QjmError(status === 413 ? 'TOO_LARGE' : status < 500 ? 'INVALID_ARGUMENT' : 'INTERNAL', message);
    if (PROTO_ROUTES.test(url)) return sendProtoError(reply, e, term(), status);
    return sendJsonError(reply, e, status);
  };
  app.setErrorHandler((err, req, reply) => {
    const e = err as Error & { statusCode?: number };
    const status = e.statusCode ?? 500;
    if (status >= 500) p.logger.error({ error: e.message, url: req.url }, 'request failed');
    return refuse(reply, req.url, status, e.message);
  });
  app.setNotFoundHandler((req, reply) =>
    refuse(reply, req.url, 404, `no route ${req.method} ${req.url.split('?')[0]}`),
  );
  registerRaftRoutes(app, p.raft);
  registerSnapshotRoutes(app, {
    stateMachine: p.qjm.stateMachine,
    maxSnapshotChunkBytes: p.config.maxSnapshotChunkBytes,
    directory: p.qjm.replica.peers,
    logger: p.logger,
  });
  // The journal RPCs get the draining check and the latency metrics; peer traffic stays hook-free.
  await app.register(async (scope) => {
    scope.addHook('onRequest', async (req, reply) => {
      if (p.draining() && req.method === 'POST' && !req.url.startsWith('/qjm/get'))
        return refuseWhileDraining(reply, p.config.id, p.qjm.replica.leaderDetails());
    });
    // An authenticated client learns the members (ids and addresses) from every answer: libqjm's route table
    // follows the cluster through membership changes, and its check of a server learns which node is where.
    // One without a certificate learns nothing.
    scope.addHook('onSend', async (req, reply, payload) => {
      const members = req.caller === null ? [] : p.qjm.replica.peers.list().filter((m) => m.address !== '');
      if (members.length > 0) reply.header(MEMBERS_HEADER, formatMembersHeader(p.qjm.replica.appliedIndex, members));
      return payload;
    });
    scope.addHook('onResponse', async (req, reply) => {
      p.metrics.rpcSeconds.observe(
        { rpc: req.url.split('?')[0]!.slice(5), code: String(reply.statusCode) },
        reply.elapsedTime / 1000,
      );
    });
    registerQjmRoutes(scope, p.qjm);
  });
  registerAdminRoutes(app, p.admin);
  registerActivityRoute(app, p.activity);
  return app;
}

/**
 * Before any route: every answer, refusals included, is held within the budget (in the route's envelope when
 * refused); handshakes that time out are counted.
 */
function underBounds(app: FastifyInstance, p: HttpAppParts): void {
  if (p.tls)
    app.server.on('tlsClientError', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ERR_TLS_HANDSHAKE_TIMEOUT') p.metrics.refused('tls_handshake_timeout');
    });
  registerResponseBudget(app, p.budget, (url, refusal) =>
    PROTO_ROUTES.test(url)
      ? {
          contentType: 'application/x-protobuf',
          body: Buffer.from(
            qjournal.journal.WriteResponse.encode({ error: toRpcError(refusal, p.qjm.replica.term) }).finish(),
          ),
        }
      : jsonBusy(url, refusal),
  );
}

/**
 * How long stop() lets open connections finish after the writes drained. Idle keep-alive connections close at
 * once; a connection that never sent a request (a client that gave up while connecting) or an upload that stalls
 * would otherwise hold the process until its socket timeout.
 */
export const CLOSE_GRACE_MS = 2000;

/** fastify's close, then every connection still open after `graceMs` cut. */
export async function closeWithin(app: FastifyInstance, graceMs = CLOSE_GRACE_MS): Promise<void> {
  const cut = setTimeout(() => app.server.closeAllConnections(), graceMs);
  try {
    await app.close();
  } finally {
    clearTimeout(cut);
  }
}
