// A node started with --peers on an empty data directory, before its cluster is formed: it serves /status and
// /healthz (saying it is uninitialized and whom it waits for; every other route answers UNINITIALIZED), and
// asks every node named in --peers for its /status until the formation rule (src/replica/formation.ts)
// decides: form the cluster, form the one a named node formed with this storage, or — this id bound to another
// storage in a formed cluster — wait to be re-added. Then it closes its port: the node proper listens on it.

import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import type { Server as TlsServer } from 'node:tls';
import { QjmError } from '../src/errors.js';
import { HttpPools } from '../src/http-pool.js';
import {
  checkHostPort,
  isClusterIdOrNone,
  isNodeId,
  isStorageBinding,
  isStorageId,
  splitHostPort,
} from '../src/ids.js';
import type { Logger } from '../src/logger.js';
import { fetchNodeStatus } from '../src/node-status.js';
import type { NodeStatusJson } from '../src/node-status.js';
import { decideFormation } from '../src/replica/formation.js';
import type { FormationDecision, PeerAnswer } from '../src/replica/formation.js';
import { PeerDirectory } from '../src/replica/peer-directory.js';
import type { NodeId, Peer } from '../src/raft/types.js';
import type { TlsMaterial } from '../src/security/cert-files.js';
import type { JournalNodeConfig } from './config.js';
import type { FormationOutcome } from './data-dir.js';
import type { PortReservation } from './port-reservation.js';
import { registerAuthorization } from './http/authz.js';
import { guardTlsConnections, peerClientTls, serverTlsOptions } from './http/node-tls.js';
import { closeWithin } from './http/http-app.js';
import { sendJsonError, sendProtoError, SMALL_BODY_BYTES } from './http/rpc-errors.js';

/** How long closing the forming node's port lets a request finish (answers here are small). */
const FORMATION_CLOSE_GRACE_MS = 200;

/** A node that has not answered the same way for this long is logged about again. */
const WAIT_LOG_INTERVAL_MS = 30_000;

export interface FormationParts {
  config: JournalNodeConfig;
  storageId: string;
  tls: TlsMaterial | null;
  logger: Logger;
  version: string;
  /** Stops the waiting (the process is told to stop): the promise rejects. */
  signal?: AbortSignal;
  /** The node's ports, held since before anything was written: --listen is released to the forming server. */
  ports?: PortReservation;
}

/** Peers one answer may name: as many as a configuration may hold. */
const MAX_ANSWER_PEERS = 1024;

/** A list of peers from a node's answer, every field checked; null when one does not check out. */
function checkedPeers(list: unknown): Peer[] | null {
  if (list === undefined) return [];
  if (!Array.isArray(list) || list.length > MAX_ANSWER_PEERS) return null;
  const out: Peer[] = [];
  for (const p of list as Partial<Peer>[]) {
    const storageId = p?.storageId ?? '';
    if (!isNodeId(p?.id) || checkHostPort(p.address) !== null || !isStorageBinding(storageId)) return null;
    out.push({ id: p.id, address: p.address!, storageId });
  }
  return out;
}

/** What of a named node's /status the formation rule reads. */
export type FormationStatus = Pick<
  NodeStatusJson,
  'id' | 'state' | 'formation' | 'storageId' | 'peers' | 'initialPeers' | 'clusterId' | 'identity'
>;

/**
 * What a named node's /status says, for the rule. Its certificate proved it is that node, yet every field it
 * gives is checked as any input from the network: an answer that does not check out counts as no answer.
 */
export function answerOf(id: NodeId, st: FormationStatus): PeerAnswer {
  if (st.id !== id) return { kind: 'silent', error: `it answers as ${JSON.stringify(st.id)}` };
  const malformed: PeerAnswer = { kind: 'silent', error: 'its /status does not check out' };
  if (st.state === 'uninitialized') {
    const peers = checkedPeers(st.formation?.peers);
    if (!peers || !isStorageId(st.storageId)) return malformed;
    return { kind: 'forming', storageId: st.storageId, peers };
  }
  const members = checkedPeers(st.peers);
  const initialPeers = checkedPeers(st.initialPeers);
  const generation = st.identity?.generation ?? 0;
  if (
    !members ||
    !initialPeers ||
    !isClusterIdOrNone(st.clusterId) ||
    !Number.isSafeInteger(generation) ||
    generation < 0
  )
    return malformed;
  return { kind: 'formed', clusterId: st.clusterId, generation, members, initialPeers };
}

/** The /status of a node waiting for its cluster to form. */
export function formingStatus(p: FormationParts, waitingFor: string[], startedAtMs: number): NodeStatusJson {
  const { config, storageId } = p;
  return {
    id: config.id,
    state: 'uninitialized',
    term: 0,
    vote: '',
    leader: null,
    leaderAddress: null,
    clusterId: '',
    storageId,
    peers: [],
    joint: false,
    commitIndex: 0,
    appliedIndex: 0,
    firstIndex: 0,
    lastIndex: 0,
    lastLogTerm: 0,
    diskIndex: 0,
    sync: null,
    snapshotIndex: 0,
    snapshotTerm: 0,
    leadTransferee: null,
    followers: {},
    pending: { proposals: 0, reads: 0, persistJobs: 0, longPolls: 0 },
    journals: {},
    storage: {},
    transport: [],
    peerStorageIdChanges: [],
    fatal: null,
    identity: {
      state: 'uninitialized',
      storageId,
      generation: 0,
      boundTo: '',
      problem: `uninitialized: the cluster forms once every node named in --peers answers, unformed, with the same --peers; waiting for: ${waitingFor.join('; ') || 'the first answers'}`,
      repair:
        'start every node named in --peers, each with the same --peers (a node that never answers keeps the cluster from forming: nothing is formed without all of them)',
      standDown: null,
      floor: null,
      refused: [],
      refusedBy: [],
    },
    initialPeers: [],
    formation: { peers: config.peers, waitingFor },
    uptimeS: Math.round((Date.now() - startedAtMs) / 1000),
    version: p.version,
    security: config.certsDir ? 'mutual-tls' : 'insecure',
  };
}

/**
 * The server of a forming node: /status and /healthz; every other route refuses with UNINITIALIZED. A peer
 * asking for /status is up, and probably forming too: `asked` makes this node ask again at once, so nodes
 * started together form together rather than a poll interval apart.
 */
async function formationApp(
  p: FormationParts,
  status: () => NodeStatusJson,
  asked: () => void,
): Promise<FastifyInstance> {
  const app = (p.tls
    ? Fastify({ logger: false, bodyLimit: SMALL_BODY_BYTES, https: serverTlsOptions(p.tls) })
    : Fastify({ logger: false, bodyLimit: SMALL_BODY_BYTES })) as unknown as FastifyInstance;
  if (p.tls) guardTlsConnections(app.server as unknown as TlsServer, p.logger);
  registerAuthorization(app, p.tls ? 'mutual-tls' : 'insecure');
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', (_req, payload, done) => {
    payload.resume();
    done(null, null);
  });
  app.get('/status', async (req) => {
    if (req.caller?.kind === 'node' || req.caller?.kind === 'insecure') asked();
    return status();
  });
  app.get('/healthz', async (_req, reply) => {
    const st = status();
    const { state, problem, repair } = st.identity!;
    return reply.code(503).send({
      ok: false,
      id: st.id,
      state: st.state,
      term: 0,
      leader: null,
      fatal: null,
      identity: { state, problem, repair },
    });
  });
  const refusal = () => new QjmError('UNINITIALIZED', `${p.config.id} is uninitialized: ${status().identity!.problem}`);
  // Every refusal drops its connection: a peer's Raft stream (a body that does not end) must not outlive it.
  app.setNotFoundHandler((req, reply) => {
    reply.header('connection', 'close');
    return /^\/(qjm|admin)\//.test(req.url) ? sendProtoError(reply, refusal(), 0) : sendJsonError(reply, refusal());
  });
  return app;
}

/**
 * Serves the forming node's port and asks the named nodes until the rule decides; resolves with the decision
 * once the port is closed again.
 */
export async function formCluster(p: FormationParts): Promise<FormationOutcome> {
  const { config, logger } = p;
  // A cluster of one has nobody to wait for: formed at once, without serving the forming port.
  if (config.peers.every((x) => x.id === config.id)) {
    const alone = decideFormation({ id: config.id, storageId: p.storageId, peers: config.peers }, new Map());
    if (alone.kind !== 'wait') return alone;
  }
  const startedAtMs = Date.now();
  let waitingFor: string[] = [];
  let wake: (() => void) | null = null;
  let askedMeanwhile = false;
  const asked = () => {
    askedMeanwhile = true;
    wake?.();
  };
  const app = await formationApp(p, () => formingStatus(p, waitingFor, startedAtMs), asked);
  const directory = new PeerDirectory(config.peers);
  const clients = new HttpPools({
    connectTimeoutMs: Math.min(2000, config.formationPollMs * 4),
    ...(p.tls ? { tls: peerClientTls(p.tls, directory) } : {}),
  });
  await p.ports?.release(config.listen);
  await app.listen(splitHostPort(config.listen));
  logger.info(
    { listen: config.listen, storageId: p.storageId, peers: config.peers },
    'uninitialized: asking every node named in --peers before the cluster is formed',
  );
  let lastLog = { key: '', atMs: 0 };
  try {
    for (;;) {
      if (p.signal?.aborted) throw new Error('stopped while waiting for the cluster to form');
      askedMeanwhile = false;
      const decision = await askRound(p, clients);
      if (decision.kind !== 'wait') return decision;
      waitingFor = decision.reasons;
      const key = waitingFor.join('\n');
      if (key !== lastLog.key || Date.now() - lastLog.atMs >= WAIT_LOG_INTERVAL_MS) {
        logger.warn({ waitingFor }, 'uninitialized: the cluster is not formed yet');
        lastLog = { key, atMs: Date.now() };
      }
      // The next round after the poll interval, or at once when a peer asked meanwhile (it is up now).
      if (!askedMeanwhile)
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, config.formationPollMs);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      wake = null;
    }
  } finally {
    // Promptly: the node proper listens on this port next.
    await closeWithin(app, FORMATION_CLOSE_GRACE_MS);
    await clients.close();
  }
}

/** One round: every other named node's /status, in parallel, then the rule. */
async function askRound(p: FormationParts, clients: HttpPools): Promise<FormationDecision> {
  const { config } = p;
  const others = config.peers.filter((x) => x.id !== config.id);
  const timeoutMs = Math.max(500, Math.min(5000, config.formationPollMs * 4));
  const answers = new Map<NodeId, PeerAnswer>();
  await Promise.all(
    others.map(async (x) => {
      try {
        answers.set(x.id, answerOf(x.id, await fetchNodeStatus(x.address, timeoutMs, clients)));
      } catch (e) {
        answers.set(x.id, { kind: 'silent', error: (e as Error).message });
      }
    }),
  );
  return decideFormation({ id: config.id, storageId: p.storageId, peers: config.peers }, answers);
}
