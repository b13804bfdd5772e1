// A JournalNode, wired: buildJournalNode() constructs the parts in dependency order and hands each only what
// it needs; it does not listen, so tests can inject requests. start() listens and starts the Raft clock;
// stop() drains (handing leadership over when it can) and shuts down. Policy lives elsewhere: the data
// directory's in data-dir.ts, the HTTP server's in http-app.ts, the read-only dashboard port's in ui/.

import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import type { Server as TlsServer } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import type { Logger as PinoLogger } from 'pino';
import { DataDirLock } from '../src/data-dir-lock.js';
import type { qjournal } from '../src/gen/proto.js';
import { HttpPools } from '../src/http-pool.js';
import { fetchNodeStatus } from '../src/node-status.js';
import { confMembers } from '../src/raft/types.js';
import { PeerDirectory } from '../src/replica/peer-directory.js';
import { deriveReplicaOptions, Replica } from '../src/replica/replica.js';
import { DiskLog } from '../src/storage/raft-log.js';
import { peerBatchLimits } from '../src/transport/raft-codec.js';
import { loadNodeTls } from '../src/security/cert-files.js';
import type { TlsMaterial } from '../src/security/cert-files.js';
import type { JournalNodeConfig } from './config.js';
import { splitHostPort } from '../src/ids.js';
import { NodeActivity } from './observe/activity.js';
import { dataDirPaths, openDataDir } from './data-dir.js';
import { combineListeners } from './observe/events.js';
import { buildHttpApp } from './http/http-app.js';
import { JournalStateMachine } from './state/journal-state-machine.js';
import type { StateMachineOptions } from './state/journal-state-machine.js';
import { NodeMetrics } from './observe/metrics.js';
import { peerClientTls, serverTlsOptions } from './http/node-tls.js';
import { PeerAdmission } from './peers/peer-admission.js';
import { PeerTransport } from './peers/peer-transport.js';
import { PeerSnapshotSource } from './peers/snapshot-http.js';
import { buildStatus } from './http/routes-admin.js';
import type { AdminContext } from './http/routes-admin.js';
import { ClusterView } from './ui/cluster-view.js';
import { buildUiApp } from './ui/ui-app.js';

export { clusterIdFor, DataDirError } from './data-dir.js';

type Result = qjournal.journal.ICommandResult;

export interface JournalNode {
  readonly config: JournalNodeConfig;
  readonly app: FastifyInstance;
  /** The read-only dashboard port's app (--ui-listen); null when it is off. */
  readonly uiApp: FastifyInstance | null;
  readonly activity: NodeActivity;
  readonly replica: Replica<Result>;
  readonly stateMachine: JournalStateMachine;
  readonly transport: PeerTransport;
  readonly metrics: NodeMetrics;
  readonly logger: PinoLogger;
  readonly clusterId: string;
  readonly storageId: string;
  /** Listens on config.listen (and config.uiListen) and starts the Raft clock. Returns the main bound address. */
  start(): Promise<string>;
  /** Drains writes (handing leadership over when it can), then closes everything and releases the lock. */
  stop(): Promise<void>;
  /**
   * Reads the certificate files again (SIGHUP): new connections, served and dialed, use them. Throws
   * CertificateError, keeping the material in use, when they do not check out.
   */
  reloadTls(): void;
}

function version(): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    return pkg.version;
  } catch {
    return 'unknown';
  }
}

/** Opens (or, on an empty directory, bootstraps) the node's storage and builds the node. */
export async function buildJournalNode(
  config: JournalNodeConfig,
  options: { logger?: PinoLogger } = {},
): Promise<JournalNode> {
  const logger = options.logger ?? pino({ name: 'journalnode', level: config.logLevel, base: { node: config.id } });
  // Certificates first: a node that cannot serve securely should not even take its data directory's lock.
  const tls = config.certsDir ? loadNodeTls(config.certsDir, config.id) : null;
  const lock = DataDirLock.acquire(config.dataDir);
  try {
    return await wire(config, logger, lock, tls);
  } catch (e) {
    lock.release();
    throw e;
  }
}

interface Storage {
  stateMachine: JournalStateMachine;
  diskLog: DiskLog;
  activity: NodeActivity;
  clusterId: string;
  storageId: string;
}

/** The data directory opened (bootstrapped when empty): the journals and the Raft log, observed by activity. */
async function openStorage(
  config: JournalNodeConfig,
  logger: PinoLogger,
  metrics: NodeMetrics,
  snapshotSource: PeerSnapshotSource,
  clients: HttpPools,
): Promise<Storage> {
  const stateMachineOptions: StateMachineOptions = {
    dataDir: config.dataDir,
    cacheBytesPerJournal: config.cacheBytesPerJournal,
    maxWaitingReads: config.maxWaitingReads,
    maxSnapshotChunkBytes: config.maxSnapshotChunkBytes,
    keepSnapshots: config.keepSnapshots,
    source: snapshotSource,
    logger,
  };
  const { meta, clusterId, storageId } = await openDataDir(config, stateMachineOptions, logger, clients);
  const activity = new NodeActivity(config.id, metrics, meta.meta.hardState.commit);
  const stateMachine = JournalStateMachine.open({ ...stateMachineOptions, ...activity.stateMachineHooks() });
  const diskLog = DiskLog.open(dataDirPaths(config.dataDir).log, {
    maxSegmentBytes: config.maxLogSegmentBytes,
    preallocateBytes: config.logPreallocateBytes,
    // One log write carries at most a write batch plus the entry that overflows it.
    tornWriteBytes: config.maxAppendBufferBytes + config.maxAppendBodyBytes + (1 << 20),
    maxCacheBytes: config.maxLogCacheBytes,
    sync: config.sync,
    snapshot: stateMachine.snapshotMeta,
    meta,
    logger,
    onFsync: (ms) => activity.fsynced(ms),
  });
  return { stateMachine, diskLog, activity, clusterId, storageId };
}

async function wire(
  config: JournalNodeConfig,
  logger: PinoLogger,
  lock: DataDirLock,
  tls: TlsMaterial | null,
): Promise<JournalNode> {
  const directory = new PeerDirectory();
  const clients = new HttpPools({
    connectTimeoutMs: Math.min(config.peerRequestTimeoutMs, 2000),
    ...(tls ? { tls: peerClientTls(tls, directory) } : {}),
  });
  const metrics = new NodeMetrics(config.id);
  const snapshotSource = new PeerSnapshotSource({ clients, directory, requestTimeoutMs: config.peerRequestTimeoutMs });
  const { stateMachine, diskLog, activity, clusterId, storageId } = await openStorage(
    config,
    logger,
    metrics,
    snapshotSource,
    clients,
  );
  const transport = peerTransport(
    config,
    clusterId,
    storageId,
    directory,
    clients,
    peerAdmission(config, clusterId, stateMachine, directory, clients, logger),
    logger,
  );
  const replicaOptions = deriveReplicaOptions(config);
  const replica = newReplica(config, replicaOptions, {
    log: metrics.meteredLog(diskLog),
    stateMachine: stateMachine,
    transport,
    peers: directory,
    activity,
    logger,
  });
  transport.attach(replica);
  metrics.attach({ replica, stateMachine, transport, logBytesAfter: (index) => diskLog.bytesAfter(index) });

  const drain = { on: false };
  const parts = { replica, stateMachine, transport, metrics, diskLog, activity, clients, clusterId, storageId };
  const { app, uiApp } = await buildApps(config, logger, tls, drain, parts);
  const lifecycle = new Lifecycle(
    { config, logger, tls, lock, drain, tickMs: replicaOptions.tickMs },
    { app, uiApp, replica, activity, transport, stateMachine, diskLog, clients, directory, clusterId, storageId },
  );
  return {
    config,
    app,
    uiApp,
    activity,
    replica,
    stateMachine,
    transport,
    metrics,
    logger,
    clusterId,
    storageId,
    start: () => lifecycle.start(),
    stop: () => lifecycle.stop(),
    reloadTls: () => lifecycle.reloadTls(),
  };
}

/** The HTTP face and, with --ui-listen, the read-only dashboard's, over the node's parts. */
async function buildApps(
  config: JournalNodeConfig,
  logger: PinoLogger,
  tls: TlsMaterial | null,
  drain: { on: boolean },
  parts: {
    replica: Replica<Result>;
    stateMachine: JournalStateMachine;
    transport: PeerTransport;
    metrics: NodeMetrics;
    diskLog: DiskLog;
    activity: NodeActivity;
    clients: HttpPools;
    clusterId: string;
    storageId: string;
  },
): Promise<{ app: FastifyInstance; uiApp: FastifyInstance | null }> {
  const { replica, stateMachine, transport, metrics, diskLog, activity, clusterId, storageId } = parts;
  const admin: AdminContext = {
    config,
    replica,
    stateMachine,
    transport,
    metrics,
    logStats: () => diskLog.stats() as unknown as Record<string, number>,
    startedAtMs: Date.now(),
    version: version(),
    clusterId,
    storageId,
  };
  const app = await buildHttpApp({
    config,
    logger,
    metrics,
    draining: () => drain.on,
    tls,
    raft: { clusterId, transport, logger },
    qjm: { config, replica, stateMachine },
    admin,
    activity,
  });
  const uiApp =
    config.uiListen === null
      ? null
      : await buildUiApp({ admin, activity, cluster: clusterView(config, admin, activity, parts.clients) });
  return { app, uiApp };
}

/** start(), stop() and reloadTls() of a built node, over the parts wire() made. */
class Lifecycle {
  private ticker: NodeJS.Timeout | null = null;
  private stopped = false;

  constructor(
    private readonly node: {
      config: JournalNodeConfig;
      logger: PinoLogger;
      tls: TlsMaterial | null;
      lock: DataDirLock;
      /** Set once stop() begins: the HTTP face refuses new writes. */
      drain: { on: boolean };
      tickMs: number;
    },
    private readonly parts: {
      app: FastifyInstance;
      uiApp: FastifyInstance | null;
      replica: Replica<Result>;
      activity: NodeActivity;
      transport: PeerTransport;
      stateMachine: JournalStateMachine;
      diskLog: DiskLog;
      clients: HttpPools;
      directory: PeerDirectory;
      clusterId: string;
      storageId: string;
    },
  ) {}

  async start(): Promise<string> {
    const { config, logger, tls } = this.node;
    const { app, uiApp, replica, activity, clusterId, storageId } = this.parts;
    const { host, port } = splitHostPort(config.listen);
    const address = await app.listen({ host, port });
    const uiAddress = uiApp && config.uiListen ? await uiApp.listen(splitHostPort(config.uiListen)) : null;
    replica.start();
    activity.start();
    this.ticker = setInterval(() => replica.tick(), this.node.tickMs);
    // The malloc settings matter to throughput (docs/OPERATIONS.md, "The process environment"): say which are in force.
    logger.info(
      {
        listen: address,
        uiListen: uiAddress,
        clusterId,
        storageId,
        term: replica.term,
        security: tls ? 'mutual-tls' : 'insecure',
        glibcTunables: process.env.GLIBC_TUNABLES ?? null,
      },
      'journalnode started',
    );
    if (!tls)
      logger.warn(
        { listen: address },
        'running WITHOUT TLS (--insecure): anyone who reaches this port can read, write and reconfigure the journal; start with --certs-dir D',
      );
    return address;
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.node.drain.on = true;
    const { app, uiApp, replica, activity, transport, clients, stateMachine, diskLog } = this.parts;
    await new Promise<void>((resolve) => replica.drain(Math.min(this.node.config.proposalTimeoutMs, 5000), resolve));
    if (this.ticker) clearInterval(this.ticker);
    replica.stop();
    activity.stop();
    transport.close();
    if (uiApp) await closeWithin(uiApp, CLOSE_GRACE_MS);
    await closeWithin(app, CLOSE_GRACE_MS);
    await clients.close();
    stateMachine.close();
    diskLog.close();
    this.node.lock.release();
    this.node.logger.info({}, 'journalnode stopped');
  }

  reloadTls(): void {
    const { config, logger, tls } = this.node;
    if (!tls) {
      logger.info({}, 'SIGHUP: no certificates to reload (--insecure)');
      return;
    }
    const next = loadNodeTls(config.certsDir, config.id);
    (this.parts.app.server as unknown as TlsServer).setSecureContext(serverTlsOptions(next));
    this.parts.clients.setTls(peerClientTls(next, this.parts.directory));
    logger.info(
      { certsDir: config.certsDir, serial: new X509Certificate(next.cert).serialNumber },
      'reloaded the certificates: new connections use them',
    );
  }
}

/**
 * How fast a dead peer link is found and redialed, from the heartbeat interval: a ping per interval (and at
 * least three per idle timeout, so a quiet stream is never cut for silence), a link dead after three
 * intervals without an answer while the peer kept talking (or three of its recent round trips, if longer),
 * or after the idle timeout of silence; a redial at most two intervals after a failure. All but the silent
 * case well under the election timeout, so a link a partition broke is back before a follower would give
 * up on its leader.
 */
function linkTimings(config: JournalNodeConfig) {
  const heartbeatMs = config.electionTimeoutMs / config.electionHeartbeatFactor;
  return {
    pingIntervalMs: Math.min(heartbeatMs, config.peerRequestTimeoutMs / 3),
    pongTimeoutMs: 3 * heartbeatMs,
    // A loaded machine's round trips stretch the timeout, never past the receiver's own idle cut.
    maxPongTimeoutMs: Math.max(3 * heartbeatMs, config.peerRequestTimeoutMs),
    maxRedialBackoffMs: 2 * heartbeatMs,
  };
}

/** The peer streams, bounded by the node's settings. */
function peerTransport(
  config: JournalNodeConfig,
  clusterId: string,
  storageId: string,
  directory: PeerDirectory,
  clients: HttpPools,
  admission: PeerAdmission,
  logger: PinoLogger,
): PeerTransport {
  return new PeerTransport({
    selfId: config.id,
    selfAddress: config.advertise,
    clusterId,
    storageId,
    directory,
    admission,
    clients,
    idleTimeoutMs: config.peerRequestTimeoutMs,
    ...linkTimings(config),
    // Under the receiver's request timeout (the same setting across a cluster), which bounds any one request.
    streamLifetimeMs: Math.floor(config.httpRequestTimeoutMs / 2),
    maxQueueBytes: config.maxPeerQueueBytes,
    batchLimits: peerBatchLimits(config),
    logger,
  });
}

/** Who is heard besides the members: a leader they vouch for (asked through the peer client). */
function peerAdmission(
  config: JournalNodeConfig,
  clusterId: string,
  stateMachine: JournalStateMachine,
  directory: PeerDirectory,
  clients: HttpPools,
  logger: PinoLogger,
): PeerAdmission {
  // A node that joined starts from a state that names no configuration, holding the members it learned.
  const snap = stateMachine.snapshotMeta;
  const joinedFrom = confMembers(snap.conf).includes(config.id) ? [] : (snap.peers ?? []);
  return new PeerAdmission({
    selfId: config.id,
    clusterId,
    directory,
    joinedFrom,
    fetchStatus: (address, timeoutMs) => fetchNodeStatus(address, timeoutMs, clients),
    // Well within the stream's idle timeout: the sender's stream is held until the verdict.
    checkTimeoutMs: Math.min(1000, config.peerRequestTimeoutMs / 2),
    refusedForMs: 1000,
    logger,
  });
}

/** The replica over this node's log, state machine and transport; its events go to the log and the activity feed. */
function newReplica(
  config: JournalNodeConfig,
  options: ReturnType<typeof deriveReplicaOptions>,
  parts: {
    log: ReturnType<NodeMetrics['meteredLog']>;
    stateMachine: JournalStateMachine;
    transport: PeerTransport;
    peers: PeerDirectory;
    activity: NodeActivity;
    logger: PinoLogger;
  },
): Replica<Result> {
  const { logger, activity } = parts;
  return new Replica<Result>(config.id, options, {
    log: parts.log,
    stateMachine: parts.stateMachine,
    transport: parts.transport,
    clock: { now: () => performance.now(), defer: (fn) => setImmediate(fn) },
    random: Math.random,
    peers: parts.peers,
    logger: logger.child({ component: 'raft' }),
    listener: combineListeners(
      {
        onRoleChange: (state, lead, term) => logger.info({ state, leader: lead || null, term }, 'raft role changed'),
        onFatal: (err) =>
          logger.fatal(
            { error: err.message },
            'storage failure: this node stopped serving; restart it after fixing the disk',
          ),
      },
      activity.listener(),
    ),
  });
}

/**
 * How long stop() lets open connections finish after the writes drained. Idle keep-alive connections close at
 * once; a connection that never sent a request (a client that gave up while connecting) or an upload that stalls
 * would otherwise hold the process until its socket timeout.
 */
const CLOSE_GRACE_MS = 2000;

/** fastify's close, then every connection still open after `graceMs` cut. */
async function closeWithin(app: FastifyInstance, graceMs: number): Promise<void> {
  const cut = setTimeout(() => app.server.closeAllConnections(), graceMs);
  try {
    await app.close();
  } finally {
    clearTimeout(cut);
  }
}

/** The dashboard's view of the cluster: this node in-process, its peers through the peer client. */
function clusterView(
  config: JournalNodeConfig,
  admin: AdminContext,
  activity: NodeActivity,
  clients: HttpPools,
): ClusterView {
  return new ClusterView({
    selfId: config.id,
    local: (historyS) => ({ status: buildStatus(admin), activity: activity.json(historyS, 100) }),
    clients,
    // Within the page's one-second poll; the connect timeout of the pool is its own (at most 2 s).
    peerTimeoutMs: 900,
    cacheMs: 500,
    maxEvents: 100,
  });
}
