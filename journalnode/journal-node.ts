// Builds a JournalNode from its configuration without listening (buildJournalNode), so tests can inject
// requests; start() listens and starts the clock, stop() drains and shuts down. Owns the data directory
// layout and its first-time bootstrap:
//   <data>/LOCK            exclusive flock held while running
//   <data>/raft/raft_meta  term, vote, storage id, cluster id, node id
//   <data>/raft/log/       the Raft log segments
//   <data>/snapshots/      snapshots (manifest + hard links to segment files)
//   <data>/journals/<jid>/ the live segment files

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import type { Logger as PinoLogger } from 'pino';
import { DataDirLock } from '../src/data-dir-lock.js';
import { qjournal } from '../src/gen/proto.js';
import { QjmError } from '../src/errors.js';
import { Replica } from '../src/replica/replica.js';
import type { ReplicaOptions } from '../src/replica/replica.js';
import type { ReplicaLog } from '../src/replica/env.js';
import type { RaftLogger } from '../src/raft/raft.js';
import type { Entry, HardState, SnapshotMeta } from '../src/raft/types.js';
import { DiskLog } from '../src/storage/raft-log.js';
import { MetaStore } from '../src/storage/raft-meta-store.js';
import type { JournalNodeConfig } from './config.js';
import { JournalStateMachine } from './journal-state-machine.js';
import type { SnapshotSource, StateMachineOptions } from './journal-state-machine.js';
import { NodeMetrics } from './metrics.js';
import { HttpPools } from '../src/http-pool.js';
import { PeerTransport } from './peer-transport.js';
import { registerAdminRoutes } from './routes-admin.js';
import { registerQjmRoutes } from './routes-qjm.js';
import { registerRaftRoutes } from './routes-raft.js';
import { decodeManifest } from './snapshot-store.js';
import { splitHostPort } from '../src/ids.js';
import { fetchNodeStatus } from '../src/node-status.js';

type Result = qjournal.journal.ICommandResult;

export interface JournalNode {
  readonly config: JournalNodeConfig;
  readonly app: FastifyInstance;
  readonly replica: Replica<Result>;
  readonly sm: JournalStateMachine;
  readonly transport: PeerTransport;
  readonly metrics: NodeMetrics;
  readonly logger: PinoLogger;
  readonly clusterId: string;
  readonly storageId: string;
  /** Listens on config.listen and starts the Raft clock. Returns the bound address. */
  start(): Promise<string>;
  /** Drains writes (handing leadership over when it can), then closes everything and releases the lock. */
  stop(): Promise<void>;
}

export class DataDirError extends Error {
  override name = 'DataDirError';
}

export function clusterIdFor(peers: { id: string; address: string }[]): string {
  const canon = [...peers].sort((a, b) => a.id.localeCompare(b.id)).map((p) => `${p.id}=${p.address}`).join(',');
  return crypto.createHash('sha256').update(canon).digest('hex').slice(0, 16);
}

function version(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    return pkg.version;
  } catch {
    return 'unknown';
  }
}

function raftLogger(log: PinoLogger): RaftLogger {
  return {
    debug: (msg, fields) => log.debug(fields ?? {}, msg),
    info: (msg, fields) => log.info(fields ?? {}, msg),
    warn: (msg, fields) => log.warn(fields ?? {}, msg),
  };
}

/** Times every log write (one group commit and its fdatasync) for the metrics. */
class TimedLog implements ReplicaLog {
  constructor(
    private readonly log: DiskLog,
    private readonly metrics: NodeMetrics,
  ) {}
  initialHardState(): HardState {
    return this.log.initialHardState();
  }
  snapshotMeta(): SnapshotMeta {
    return this.log.snapshotMeta();
  }
  firstIndex(): number {
    return this.log.firstIndex();
  }
  lastIndex(): number {
    return this.log.lastIndex();
  }
  term(index: number): number | undefined {
    return this.log.term(index);
  }
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    return this.log.entries(lo, hi, maxBytes);
  }
  write(hs: HardState | null, entries: Entry[], done: (err: Error | null) => void): void {
    const t0 = performance.now();
    let bytes = 0;
    for (const e of entries) bytes += e.data.byteLength;
    this.log.write(hs, entries, (err) => {
      this.metrics.logWriteSeconds.observe((performance.now() - t0) / 1000);
      this.metrics.logWrites.inc();
      this.metrics.logWriteBytes.inc(bytes);
      done(err);
    });
  }
  snapshotSaved(meta: SnapshotMeta, compactTo: number): void {
    this.log.snapshotSaved(meta, compactTo);
  }
  beginReset(meta: SnapshotMeta): void {
    this.log.beginReset(meta);
  }
  commitReset(meta: SnapshotMeta, done: (err: Error | null) => void): void {
    this.log.commitReset(meta, done);
  }
}

export function replicaOptions(c: JournalNodeConfig): ReplicaOptions {
  return {
    tickMs: Math.max(1, Math.floor(c.electionTimeoutMs / c.electionHeartbeatFactor)),
    electionTicks: c.electionHeartbeatFactor,
    // Timeouts in [T, 1.5 T): with pre-vote a split vote needs two timeouts within a network delay of each
    // other, so the narrower range costs almost nothing and bounds failover detection at 1.5 T.
    electionJitterTicks: Math.max(1, Math.floor(c.electionHeartbeatFactor / 2)),
    heartbeatTicks: 1,
    maxEntriesPerAppend: c.maxEntriesPerAppend,
    maxAppendBytes: c.maxAppendBodyBytes,
    maxInflightMsgs: c.maxInflightAppends,
    maxInflightBytes: c.maxAppendBodyBytes * c.maxInflightAppends,
    maxUncommittedBytes: c.maxUncommittedBytes,
    maxApplyBytes: c.maxAppendBodyBytes,
    maxApplyEntries: c.applyBatch,
    maxWriteBatchBytes: c.maxAppendBufferBytes,
    maxWriteBatchEntries: c.leaderBatch,
    snapshotEntries: 0,
    snapshotLogBytes: c.snapshotLogBytes,
    snapshotIntervalMs: c.snapshotIntervalS * 1000,
    keepEntriesAfterSnapshot: c.keepEntriesAfterSnapshot,
    proposalTimeoutMs: c.proposalTimeoutMs,
    readTimeoutMs: c.readTimeoutMs,
    catchupMargin: c.catchupMargin,
    changePeersTimeoutMs: Math.max(60_000, c.electionTimeoutMs * 60),
    preVote: true,
    checkQuorum: true,
  };
}

/**
 * Joining: asks a member of the running cluster for its cluster id, and refuses if this id is still a
 * member (an empty disk under a member's identity could vote twice in a term: remove it first).
 */
async function learnCluster(config: JournalNodeConfig): Promise<string> {
  const errors: string[] = [];
  for (const address of config.join) {
    try {
      const st = await fetchNodeStatus(address, 3000);
      const me = st.peers.find((p) => p.id === config.id);
      if (me && me.role !== 'learner') {
        throw new DataDirError(`node ${config.id} is still a ${me.role} of the cluster at ${address}: remove it first (qjm remove-peer --peer ${config.id}), then join`);
      }
      return st.clusterId;
    } catch (e) {
      if (e instanceof DataDirError) throw e;
      errors.push(`${address}: ${(e as Error).message}`);
    }
  }
  throw new DataDirError(`cannot join: no member answered (${errors.join('; ')})`);
}

/** Opens (or, on an empty directory, bootstraps) the node's storage and builds the node. */
export async function buildJournalNode(config: JournalNodeConfig, opts: { logger?: PinoLogger } = {}): Promise<JournalNode> {
  const logger = opts.logger ?? pino({ name: 'journalnode', level: config.logLevel, base: { node: config.id } });
  const lock = DataDirLock.acquire(config.dataDir);
  try {
    return await open(config, logger, lock);
  } catch (e) {
    lock.release();
    throw e;
  }
}

async function open(config: JournalNodeConfig, logger: PinoLogger, lock: DataDirLock): Promise<JournalNode> {
  const raftDir = path.join(config.dataDir, 'raft');
  fs.mkdirSync(raftDir, { recursive: true });
  const clients = new HttpPools({ connectTimeoutMs: Math.min(config.peerRequestTimeoutMs, 2000) });
  let transportRef: PeerTransport | null = null;
  let replicaRef: Replica<Result> | null = null;
  const metrics = new NodeMetrics(config.id, () => replicaRef, () => smRef, () => transportRef);
  let smRef: JournalStateMachine | null = null;

  const source: SnapshotSource = {
    async manifest(peer, minIndex) {
      const address = replicaRef?.addressOf(peer) ?? transportRef?.announcedAddress(peer);
      if (!address) throw new Error(`no address for peer ${peer}`);
      const res = await clients.request(address, 'GET', `/raft/snapshot/manifest?min_index=${minIndex}`, null, config.peerRequestTimeoutMs);
      if (res.status !== 200) throw new Error(`peer ${peer} has no snapshot >= ${minIndex}: ${res.status} ${res.body.toString('utf8', 0, 200)}`);
      return decodeManifest(res.body, `snapshot manifest from ${peer}`);
    },
    async chunk(peer, index, jid, file, offset, length) {
      const address = replicaRef?.addressOf(peer) ?? transportRef?.announcedAddress(peer);
      if (!address) throw new Error(`no address for peer ${peer}`);
      const q = new URLSearchParams({ index: String(index), jid, file, offset: String(offset), length: String(length) });
      const res = await clients.request(address, 'GET', `/raft/snapshot/chunk?${q.toString()}`, null, config.peerRequestTimeoutMs * 4);
      if (res.status !== 200) throw new Error(`peer ${peer}: chunk ${jid}/${file}@${offset}: ${res.status}`);
      return res.body;
    },
  };
  const smOpts: StateMachineOptions = {
    dataDir: config.dataDir,
    cacheBytesPerJournal: config.cacheBytesPerJournal,
    maxSnapshotChunkBytes: config.maxSnapshotChunkBytes,
    keepSnapshots: config.keepSnapshots,
    source,
    logger,
    onJournal: (jid, txns, bytes) => {
      metrics.batchesWritten.inc({ jid });
      metrics.txnsWritten.inc({ jid }, txns);
      metrics.bytesWritten.inc({ jid }, bytes);
    },
  };

  // First start on an empty directory: the bootstrap snapshot (index 1, the initial configuration), then the
  // Raft metadata, whose presence marks a completed bootstrap.
  let meta = MetaStore.open(raftDir);
  if (!meta) {
    const snapDir = path.join(config.dataDir, 'snapshots');
    const journalsDir = path.join(config.dataDir, 'journals');
    const leftovers = [snapDir, journalsDir].filter((d) => fs.existsSync(d) && fs.readdirSync(d).some((n) => !/^snap_0{19}1$/.test(n)));
    if (leftovers.length > 0) {
      throw new DataDirError(`data directory ${config.dataDir} holds journal data (${leftovers.join(', ')}) but no Raft metadata (raft/raft_meta): refusing to bootstrap over it`);
    }
    fs.rmSync(snapDir, { recursive: true, force: true });
    if (config.join.length > 0) {
      // Joining: an empty state at index 0 that belongs to no configuration; the leader's snapshot brings
      // the journals and the membership once an operator adds this node.
      const clusterId = await learnCluster(config);
      JournalStateMachine.bootstrap(smOpts, { index: 0, term: 0, conf: { voters: [], votersOutgoing: [], learners: [] }, peers: [] });
      meta = MetaStore.create(raftDir, { hardState: { term: 0, vote: '', commit: 0 }, storageId: crypto.randomBytes(8).toString('hex'), clusterId, nodeId: config.id });
      logger.info({ dataDir: config.dataDir, join: config.join, clusterId }, 'prepared an empty data directory to join a running cluster: add this node with qjm add-peer');
    } else {
      const peers = [...config.peers].sort((a, b) => a.id.localeCompare(b.id));
      JournalStateMachine.bootstrap(smOpts, { index: 1, term: 1, conf: { voters: peers.map((p) => p.id), votersOutgoing: [], learners: [] }, peers });
      meta = MetaStore.create(raftDir, {
        hardState: { term: 1, vote: '', commit: 1 },
        storageId: crypto.randomBytes(8).toString('hex'),
        clusterId: clusterIdFor(config.peers),
        nodeId: config.id,
      });
      logger.info({ dataDir: config.dataDir, peers: config.peers }, 'bootstrapped a new data directory from --peers');
    }
  }
  const m = meta.meta;
  if (m.nodeId && m.nodeId !== config.id) {
    throw new DataDirError(`data directory ${config.dataDir} belongs to node ${m.nodeId}, not ${config.id}`);
  }
  const clusterId = m.clusterId ?? '';
  const storageId = m.storageId ?? '';

  const sm = JournalStateMachine.open(smOpts);
  smRef = sm;
  const diskLog = DiskLog.open(path.join(raftDir, 'log'), {
    maxSegmentBytes: config.maxLogSegmentBytes,
    preallocateBytes: config.logPreallocateBytes,
    // One log write carries at most a write batch plus the entry that overflows it.
    tornWriteBytes: config.maxAppendBufferBytes + config.maxAppendBodyBytes + (1 << 20),
    maxCacheBytes: config.maxLogCacheBytes,
    sync: config.sync,
    snapshot: sm.snapshotMeta,
    meta,
    logger,
  });
  const log = new TimedLog(diskLog, metrics);
  const raftLog = logger.child({ component: 'raft' });

  const transport = new PeerTransport({
    selfId: config.id,
    selfAddress: config.advertise,
    clusterId,
    storageId,
    resolve: (id) => replicaRef?.addressOf(id),
    deliver: (msgs) => replicaRef?.receive(msgs),
    onUnreachable: (id) => replicaRef?.reportUnreachable(id),
    clients,
    holdMs: config.peerHoldMs,
    requestTimeoutMs: config.peerRequestTimeoutMs,
    maxQueueBytes: config.maxPeerQueueBytes,
    maxBatchBytes: config.maxAppendBodyBytes * 2,
    logger,
  });
  transportRef = transport;

  const replica = new Replica<Result>(config.id, replicaOptions(config), {
    log,
    stateMachine: sm,
    transport,
    clock: { now: () => performance.now(), defer: (fn) => setImmediate(fn) },
    random: Math.random,
    logger: raftLogger(raftLog),
    listener: {
      onRoleChange: (state, lead, term) => logger.info({ state, leader: lead || null, term }, 'raft role changed'),
      onFatal: (err) => logger.fatal({ error: err.message }, 'storage failure: this node stopped serving; restart it after fixing the disk'),
    },
  });
  replicaRef = replica;

  const app = Fastify({ logger: false, bodyLimit: config.maxAppendBodyBytes * 2 + (1 << 20) });
  // Protobuf only: every other body type is refused (415) before a handler sees it.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser(['application/x-protobuf', 'application/octet-stream'], { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  let draining = false;
  const startedAtMs = Date.now();
  registerRaftRoutes(app, { config, clusterId, transport, sm, logger });
  app.setErrorHandler((err, _req, reply) => {
    const e = err as Error & { statusCode?: number };
    const status = e.statusCode ?? 500;
    if (status >= 500) logger.error({ error: e.message }, 'request failed');
    const code = status === 413 ? 'QJM_ERR_TOO_LARGE' : status === 415 ? 'QJM_ERR_INVALID_ARGUMENT' : status < 500 ? 'QJM_ERR_INVALID_ARGUMENT' : 'QJM_ERR_INTERNAL';
    return reply.code(status).send({ code, message: e.message });
  });
  // The journal RPCs get the draining check and the latency metrics; peer traffic stays hook-free.
  await app.register(async (scope) => {
    scope.addHook('onRequest', async (req, reply) => {
      if (draining && req.method === 'POST' && !req.url.startsWith('/qjm/get')) {
        const err = new QjmError('SHUTTING_DOWN', `${config.id} is shutting down`, replica.leaderDetails());
        const bytes = qjournal.journal.WriteResponse.encode({ error: { code: qjournal.journal.ErrorCode.SHUTTING_DOWN, message: err.message, leaderId: err.details.leaderId ?? '', leaderAddress: err.details.leaderAddress ?? '' } }).finish();
        return reply.code(503).type('application/x-protobuf').send(Buffer.from(bytes));
      }
    });
    scope.addHook('onResponse', async (req, reply) => {
      metrics.rpcSeconds.observe({ rpc: req.url.split('?')[0]!.slice(5), code: String(reply.statusCode) }, reply.elapsedTime / 1000);
    });
    registerQjmRoutes(scope, { config, replica, sm });
  });
  registerAdminRoutes(app, {
    config,
    replica,
    sm,
    transport,
    metrics,
    logStats: () => diskLog.stats() as unknown as Record<string, number>,
    startedAtMs,
    version: version(),
    clusterId,
    storageId,
  });

  let ticker: NodeJS.Timeout | null = null;
  let stopped = false;
  const node: JournalNode = {
    config,
    app,
    replica,
    sm,
    transport,
    metrics,
    logger,
    clusterId,
    storageId,
    async start() {
      const { host, port } = splitHostPort(config.listen);
      const address = await app.listen({ host, port });
      replica.start();
      ticker = setInterval(() => replica.tick(), replicaOptions(config).tickMs);
      logger.info({ listen: address, clusterId, storageId, term: replica.term }, 'journalnode started');
      return address;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      draining = true;
      // Hand leadership to a caught-up voter first: the cluster keeps a leader without an election timeout.
      if (replica.isLeader) {
        const s = replica.status();
        const best = Object.entries(s.progress)
          .filter(([id, p]) => s.conf.voters.includes(id) && p.match === s.lastIndex)
          .sort((a, b) => b[1].match - a[1].match)[0];
        if (best) await new Promise<void>((resolve) => replica.transferLeader(best[0], () => resolve()));
      }
      // Let in-flight writes finish (bounded).
      const deadline = Date.now() + Math.min(config.proposalTimeoutMs, 5000);
      while (replica.status().pendingProposals > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
      if (ticker) clearInterval(ticker);
      replica.stop();
      transport.close();
      await app.close();
      await clients.close();
      sm.close();
      diskLog.close();
      lock.release();
      logger.info({}, 'journalnode stopped');
    },
  };
  return node;
}
