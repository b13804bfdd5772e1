// A JournalNode, wired: buildJournalNode() constructs the parts in dependency order and hands each only what
// it needs; it does not listen, so tests can inject requests. start() listens and starts the Raft clock;
// stop() drains (handing leadership over when it can) and shuts down. Policy lives elsewhere: the data
// directory's in data-dir.ts, the HTTP server's in http-app.ts, the read-only dashboard port's in ui/.

import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import type { Server as TlsServer } from 'node:tls';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import pinoPretty from 'pino-pretty';
import type { Logger as PinoLogger } from 'pino';
import { DataDirLock } from '../src/data-dir-lock.js';
import type { qjournal } from '../src/gen/proto.js';
import { HttpPools } from '../src/http-pool.js';
import { fetchNodeStatus } from '../src/node-status.js';
import { confMembers } from '../src/raft/types.js';
import { PeerDirectory } from '../src/replica/peer-directory.js';
import { deriveReplicaOptions, Replica } from '../src/replica/replica.js';
import type { ReplicaDeps } from '../src/replica/replica.js';
import { DiskLog } from '../src/storage/raft-log.js';
import { nodeFileSystem } from '../src/storage/node-file-system.js';
import { diskLogSettings, stateMachineSettings } from './storage-options.js';
import { loadNodeTls } from '../src/security/cert-files.js';
import type { TlsMaterial } from '../src/security/cert-files.js';
import { ConfigError } from './config.js';
import type { JournalNodeConfig } from './config.js';
import { ConnectionGuard, effectiveLimits, openFileLimit } from './http/connection-guard.js';
import type { ConnectionLimits } from './http/connection-guard.js';
import { splitHostPort } from '../src/ids.js';
import { NodeActivity } from './observe/activity.js';
import { dataDirPaths, lockFootprint, openDataDir } from './data-dir.js';
import { PortReservation } from './port-reservation.js';
import { combineListeners } from './observe/events.js';
import { buildHttpApp, closeWithin } from './http/http-app.js';
import { jsonBusy, registerResponseBudget, ResponseBudget } from './http/response-budget.js';
import { JournalStateMachine } from './state/journal-state-machine.js';
import type { StateMachineOptions } from './state/journal-state-machine.js';
import { NodeMetrics } from './observe/metrics.js';
import { peerClientTls, serverTlsOptions } from './http/node-tls.js';
import { PeerAdmission } from './peers/peer-admission.js';
import { PeerTransport } from './peers/peer-transport.js';
import { PeerSnapshotSource } from './peers/snapshot-http.js';
import { buildStatus } from './http/routes-admin.js';
import { RecentReads } from './http/retention.js';
import type { AdminContext } from './http/routes-admin.js';
import { ClusterView } from './ui/cluster-view.js';
import { buildUiApp } from './ui/ui-app.js';
import { hostChecker } from './ui/host-check.js';
import { formCluster } from './formation.js';
import type { Peer } from '../src/raft/types.js';

export { clusterIdFor, DataDirError } from './data-dir.js';

type Result = qjournal.journal.ICommandResult;

/** Raft messages in one batch between peers: far above a pipeline's worth of appends and their answers. */
const MAX_MESSAGES_PER_BATCH = 4096;
/** Members one snapshot's metadata may name. */
const MAX_MEMBERS = 1024;

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
  /** The answer bytes the node holds for its clients (response-budget.ts). */
  readonly budget: ResponseBudget;
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

/**
 * The node's pino logger: JSON lines for collectors and files; for a person at a terminal (`logFormat`
 * auto, stdout a TTY, or pretty) the same records through pino-pretty, synchronously, so nothing is lost
 * when the process exits.
 */
function nodeLogger(config: JournalNodeConfig): PinoLogger {
  const opts = { name: 'journalnode', level: config.logLevel, base: { node: config.id } };
  const pretty = config.logFormat === 'pretty' || (config.logFormat === 'auto' && process.stdout.isTTY === true);
  return pretty ? pino(opts, pinoPretty({ sync: true, colorize: process.stdout.isTTY === true })) : pino(opts);
}

/** Opens (or, on an empty directory, bootstraps) the node's storage and builds the node. */
export async function buildJournalNode(
  config: JournalNodeConfig,
  options: { logger?: PinoLogger } = {},
): Promise<JournalNode> {
  const logger = options.logger ?? nodeLogger(config);
  // Certificates and the descriptor budget first: a node that cannot serve securely, or whose open-file limit
  // leaves no room for connections, should not even take its data directory's lock.
  const tls = config.certsDir ? loadNodeTls(config.certsDir, config.id) : null;
  const fileLimit = openFileLimit();
  let limits: ConnectionLimits;
  try {
    limits = effectiveLimits(config, fileLimit);
  } catch (e) {
    throw new ConfigError((e as Error).message);
  }
  // The lock first (another journalnode on this directory is the refusal to give), then the ports, held while
  // the data directory is opened: a port that cannot be bound leaves the directory as it was.
  const undoLock = lockFootprint(config.dataDir);
  const lock = DataDirLock.acquire(config.dataDir);
  let ports: PortReservation;
  try {
    ports = await PortReservation.take([config.listen, ...(config.uiListen ? [config.uiListen] : [])]);
  } catch (e) {
    lock.release();
    undoLock();
    throw e;
  }
  try {
    return await wire(config, logger, { lock, ports }, tls, { limits, fileLimit });
  } catch (e) {
    await ports.releaseAll();
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
  /** This node's storage and cluster ids and its recorded standing, for the replica's identity rules. */
  identity: NonNullable<ReplicaDeps<Result>['identity']>;
  initialPeers: Peer[];
}

/**
 * The data directory opened (on a first start with --peers, once the cluster formed): the journals and the
 * Raft log, observed by activity.
 */
async function openStorage(
  config: JournalNodeConfig,
  logger: PinoLogger,
  metrics: NodeMetrics,
  snapshotSource: PeerSnapshotSource,
  clients: HttpPools,
  tls: TlsMaterial | null,
  ports: PortReservation,
): Promise<Storage> {
  const stateMachineOptions: StateMachineOptions = {
    dataDir: config.dataDir,
    ...stateMachineSettings(config),
    source: snapshotSource.forPeer,
    fileSystem: nodeFileSystem,
    logger,
  };
  const form = (storageId: string) => formCluster({ config, storageId, tls, logger, version: version(), ports });
  const { meta, clusterId, storageId, identity, record } = await openDataDir(
    config,
    stateMachineOptions,
    logger,
    clients,
    form,
  );
  // The directory is what this start makes of it: the ports are let go until the servers listen, so that a
  // client meanwhile is refused (ECONNREFUSED), not cut after it may have sent its request.
  await ports.releaseAll();
  const activity = new NodeActivity(config.id, metrics, meta.meta.hardState.commit);
  const stateMachine = JournalStateMachine.open({ ...stateMachineOptions, ...activity.stateMachineHooks() });
  const diskLog = DiskLog.open(dataDirPaths(config.dataDir).log, {
    fileSystem: nodeFileSystem,
    ...diskLogSettings(config),
    snapshot: stateMachine.snapshotMeta,
    meta,
    logger,
    onFsync: (ms) => activity.fsynced(ms),
  });
  return {
    stateMachine,
    diskLog,
    activity,
    clusterId,
    storageId,
    identity: { storageId, clusterId, selfAddress: config.advertise, record, store: identity, nowMs: Date.now },
    initialPeers: meta.meta.initialPeers ?? [],
  };
}

async function wire(
  config: JournalNodeConfig,
  logger: PinoLogger,
  held: { lock: DataDirLock; ports: PortReservation },
  tls: TlsMaterial | null,
  files: { limits: ConnectionLimits; fileLimit: number | null },
): Promise<JournalNode> {
  const directory = new PeerDirectory();
  const clients = new HttpPools({
    connectTimeoutMs: Math.min(config.peerRequestTimeoutMs, 2000),
    ...(tls ? { tls: peerClientTls(tls, directory) } : {}),
  });
  const metrics = new NodeMetrics(config.id);
  const snapshotSource = new PeerSnapshotSource({ clients, directory, requestTimeoutMs: config.peerRequestTimeoutMs });
  const { lock, ports } = held;
  const storage = await openStorage(config, logger, metrics, snapshotSource, clients, tls, ports);
  const { stateMachine, diskLog, activity, clusterId, storageId } = storage;
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
    identity: storage.identity,
  });
  transport.attach(replica);
  const budget = answerBudget(config, logger, metrics);
  metrics.attach({
    replica,
    stateMachine,
    transport,
    logBytesAfter: (index) => diskLog.bytesAfter(index),
    responseBytes: () => budget.bytesInFlight,
  });

  const drain = { on: false };
  const names = { clusterId, storageId, initialPeers: storage.initialPeers };
  const parts = { replica, stateMachine, transport, metrics, diskLog, activity, clients, budget };
  const { app, uiApp } = await buildApps(config, logger, { tls, drain, files }, parts, names);
  const lifecycle = new Lifecycle(
    { config, logger, tls, lock, drain, files, tickMs: replicaOptions.tickMs },
    { ...parts, ...names, app, uiApp, directory },
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
    budget,
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
  face: { tls: TlsMaterial | null; drain: { on: boolean }; files: { limits: ConnectionLimits } },
  parts: {
    replica: Replica<Result>;
    stateMachine: JournalStateMachine;
    transport: PeerTransport;
    metrics: NodeMetrics;
    diskLog: DiskLog;
    activity: NodeActivity;
    clients: HttpPools;
    budget: ResponseBudget;
  },
  names: { clusterId: string; storageId: string; initialPeers: Peer[] },
): Promise<{ app: FastifyInstance; uiApp: FastifyInstance | null }> {
  const { replica, stateMachine, transport, metrics, diskLog, activity, budget } = parts;
  const { tls, drain, files } = face;
  const { clusterId, storageId, initialPeers } = names;
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
    initialPeers,
  };
  const app = await buildHttpApp({
    config,
    logger,
    metrics,
    draining: () => drain.on,
    tls,
    raft: { clusterId, transport, logger, maxBodyBytes: config.maxAppendBodyBytes + (1 << 20) },
    qjm: { config, replica, stateMachine, reads: new RecentReads(), budget },
    admin,
    activity,
    budget,
  });
  const uiApp =
    config.uiListen === null
      ? null
      : await buildUiApp({
          admin,
          activity,
          cluster: clusterView(config, admin, activity, parts.clients),
          hostAllowed: hostChecker(config.uiListen, config.uiAllowedHosts),
          underBudget: (ui) => registerResponseBudget(ui, budget, jsonBusy),
        });
  // Both ports draw on one pool of descriptors: one guard bounds their connections together.
  new ConnectionGuard(files.limits, logger, (why) => metrics.refused(why)).guardAll([
    { server: app.server, tls: tls !== null },
    ...(uiApp ? [{ server: uiApp.server, tls: false }] : []),
  ]);
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
      /** The open-file limit and the connection bounds sized from it (logged at start). */
      files: { limits: ConnectionLimits; fileLimit: number | null };
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
      budget: ResponseBudget;
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
        openFileLimit: this.node.files.fileLimit,
        connections: this.node.files.limits,
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
    const { app, uiApp, replica, activity, transport, clients, budget, stateMachine, diskLog } = this.parts;
    await new Promise<void>((resolve) => replica.drain(Math.min(this.node.config.proposalTimeoutMs, 5000), resolve));
    if (this.ticker) clearInterval(this.ticker);
    replica.stop();
    activity.stop();
    transport.close();
    if (uiApp) await closeWithin(uiApp);
    await closeWithin(app);
    await clients.close();
    budget.close();
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
/** The answer bytes the node holds for its clients (both ports), refusals and cuts counted. */
function answerBudget(config: JournalNodeConfig, logger: PinoLogger, metrics: NodeMetrics): ResponseBudget {
  return new ResponseBudget({
    maxBytesInFlight: config.maxResponseBytesInFlight,
    maxBytesPerConnection: config.maxResponseBytesPerConnection,
    stallTimeoutMs: config.responseStallTimeoutMs,
    logger,
    onRefused: (why) => metrics.refused(why === 'budget' ? 'response_budget' : 'response_stalled'),
  });
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
    // Under the receiver's request timeout (the same setting across a cluster), which bounds any one request.
    streamLifetimeMs: Math.floor(config.httpRequestTimeoutMs / 2),
    maxQueueBytes: config.maxPeerQueueBytes,
    // One batch carries at most one append's worth of entry bytes (plus what travels with it), and the
    // entries a full pipeline of appends holds.
    maxBatchBytes: config.maxAppendBodyBytes,
    batchLimits: {
      maxMessages: MAX_MESSAGES_PER_BATCH,
      maxEntries: config.maxEntriesPerAppend * config.maxInflightAppends,
      maxMembers: MAX_MEMBERS,
    },
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
    identity: NonNullable<ReplicaDeps<Result>['identity']>;
  },
): Replica<Result> {
  const { logger, activity } = parts;
  return new Replica<Result>(config.id, options, {
    identity: parts.identity,
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
