// The read-only dashboard port (--ui-listen): a second fastify app, plain HTTP, for a person and a scraper.
// It serves the dashboard (a static page, one script, uPlot from node_modules), the cluster aggregate the
// page polls, and this node's /status, /activity, /metrics and /healthz. Never journal data, never an admin
// action: every method but GET and HEAD is refused before routing, and no body is read; before even that, a
// Host header it was not given (host-check.ts: DNS rebinding) is refused.

import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import { QjmError } from '../../src/errors.js';
import { intParam, MAX_HISTORY_S, registerActivityRoute } from '../observe/activity.js';
import type { NodeActivity } from '../observe/activity.js';
import { registerReadOnlyRoutes } from '../http/routes-admin.js';
import type { AdminContext } from '../http/routes-admin.js';
import type { ClusterView } from './cluster-view.js';

// This file runs from dist/journalnode/ui/: the page's sources are read from the repository, not built.
const STATIC_DIR = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  'journalnode',
  'ui',
  'static',
);

export interface UiAppParts {
  admin: AdminContext;
  activity: NodeActivity;
  cluster: ClusterView;
  /** Whether a Host header names this port (host-check.ts): any other is refused before anything else. */
  hostAllowed(hostHeader: string | undefined): boolean;
  /**
   * Puts the app's answers under the node's budget (registered before any route): this port's answers count
   * in it like the main port's (journalnode/http/response-budget.ts).
   */
  underBudget(app: FastifyInstance): void;
}

interface Asset {
  type: string;
  body: Buffer;
}

/** Read once at build: a missing file stops the node at start-up, not a viewer later. */
function loadAssets(): Map<string, Asset> {
  const uplot = path.dirname(createRequire(import.meta.url).resolve('uplot/dist/uPlot.iife.min.js'));
  const js = 'text/javascript; charset=utf-8';
  const files: [string, string, string][] = [
    ['/', path.join(STATIC_DIR, 'index.html'), 'text/html; charset=utf-8'],
    ['/ui/dashboard.js', path.join(STATIC_DIR, 'dashboard.js'), js],
    ['/ui/chart-scale.js', path.join(STATIC_DIR, 'chart-scale.js'), js],
    ['/ui/uPlot.iife.min.js', path.join(uplot, 'uPlot.iife.min.js'), js],
    ['/ui/uPlot.min.css', path.join(uplot, 'uPlot.min.css'), 'text/css; charset=utf-8'],
  ];
  return new Map(files.map(([url, file, type]) => [url, { type, body: fs.readFileSync(file) }]));
}

/** Builds the dashboard app without listening (tests inject requests). */
export async function buildUiApp(p: UiAppParts): Promise<FastifyInstance> {
  const app = Fastify({
    logger: false,
    // No route reads a body; the bound only limits what a client can make the server buffer.
    bodyLimit: 1024,
    connectionTimeout: 30_000,
    requestTimeout: 10_000,
    keepAliveTimeout: 5_000,
    return503OnClosing: true,
  });
  app.removeAllContentTypeParsers();
  p.underBudget(app);
  app.addHook('onRequest', async (req, reply) => {
    if (!p.hostAllowed(req.headers.host)) {
      const e = new QjmError(
        'FORBIDDEN',
        `Host ${JSON.stringify(String(req.headers.host ?? '').slice(0, 100))} is not a name this dashboard port answers (its listen address, localhost, --ui-allowed-hosts): a page of another site?`,
      );
      return reply.code(e.httpStatus).send(e.jsonBody());
    }
    if (req.method === 'GET' || req.method === 'HEAD') return;
    const e = new QjmError(
      'INVALID_ARGUMENT',
      `${req.method} refused: the dashboard port (--ui-listen) is read-only; writes and admin calls go to the main port`,
    );
    // HTTP's own answer to a method a resource does not take, with the methods it does.
    return reply.code(405).header('allow', 'GET, HEAD').send(e.jsonBody());
  });
  app.addHook('onSend', async (_req, reply) => {
    reply.header('x-content-type-options', 'nosniff');
    reply.header('x-frame-options', 'DENY');
    reply.header('cache-control', 'no-store');
    // uPlot sizes its elements with inline styles; every script comes from this port.
    reply.header(
      'content-security-policy',
      "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'",
    );
  });
  app.setErrorHandler((err, _req, reply) => {
    // fastify's own refusals keep fastify's status (404 no route, 415 content type, ...).
    const status = (err as { statusCode?: number }).statusCode ?? 500;
    const e = new QjmError(status < 500 ? 'INVALID_ARGUMENT' : 'INTERNAL', (err as Error).message);
    return reply.code(status).send(e.jsonBody());
  });

  for (const [url, asset] of loadAssets()) app.get(url, async (_req, reply) => reply.type(asset.type).send(asset.body));
  registerReadOnlyRoutes(app, p.admin);
  registerActivityRoute(app, p.activity);
  app.get('/ui/cluster', async (req, reply) => {
    const historyS = intParam(req.query, 'historyS', MAX_HISTORY_S, MAX_HISTORY_S);
    if (typeof historyS === 'string') {
      const e = new QjmError('INVALID_ARGUMENT', historyS);
      return reply.code(e.httpStatus).send(e.jsonBody());
    }
    return p.cluster.gather(historyS);
  });
  return app;
}
