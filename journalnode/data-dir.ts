// The data directory's policy: its layout, what a first start writes (its storage id at once, then the
// cluster formed from --peers once every node named there agrees — formation.ts — or an empty state to join a
// running cluster), and the identity checks every later start makes. The layout:
//   <data>/LOCK            exclusive flock held while running
//   <data>/raft/raft_meta  term, vote, storage id, cluster id, node id (and whether the cluster still forms)
//   <data>/raft/identity   this node's standing: stood down, its floor, a binding found elsewhere
//   <data>/raft/log/       the Raft log segments
//   <data>/snapshots/      snapshots (manifest + hard links to segment files)
//   <data>/journals/<jid>/ the live segment files

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../src/logger.js';
import { PRIVATE_DIR_MODE } from '../src/file-modes.js';
import { fetchNodeStatus } from '../src/node-status.js';
import type { NodeStatusJson, StatusClient } from '../src/node-status.js';
import { emptyConf } from '../src/raft/types.js';
import type { Peer } from '../src/raft/types.js';
import type { IdentityRecord } from '../src/replica/env.js';
import type { FormationDecision } from '../src/replica/formation.js';
import { UNBOUND } from '../src/replica/identity.js';
import { FileIdentityStore } from '../src/storage/identity-store.js';
import { MetaStore } from '../src/storage/raft-meta-store.js';
import { ConfigError } from './config.js';
import type { JournalNodeConfig } from './config.js';
import { JournalStateMachine } from './state/journal-state-machine.js';
import type { StateMachineOptions } from './state/journal-state-machine.js';

export class DataDirError extends Error {
  override name = 'DataDirError';
}

export const dataDirPaths = (dataDir: string) => ({
  raft: path.join(dataDir, 'raft'),
  log: path.join(dataDir, 'raft', 'log'),
  snapshots: path.join(dataDir, 'snapshots'),
  journals: path.join(dataDir, 'journals'),
});

/**
 * A cluster's id: a hash of its initial configuration — ids, addresses and the storage each member formed
 * with — the same on every member formed with it, and another one for a cluster formed again from the same
 * --peers on new disks (whose stale nodes are then refused as another cluster's).
 */
export function clusterIdFor(peers: Peer[]): string {
  const canon = [...peers]
    .sort((a, b) => a.id.localeCompare(b.id))
    .map((p) => `${p.id}=${p.address}${p.storageId ? `@${p.storageId}` : ''}`)
    .join(',');
  return crypto.createHash('sha256').update(canon).digest('hex').slice(0, 16);
}

export interface OpenedDataDir {
  meta: MetaStore;
  clusterId: string;
  storageId: string;
  identity: FileIdentityStore;
  /** This node's standing as last recorded. */
  record: IdentityRecord;
}

/** What formation decided once it stopped waiting (formation.ts runs the asking). */
export type FormationOutcome = Exclude<FormationDecision, { kind: 'wait' }>;

/** Who the data directory is for, as its first start needs it (a JournalNodeConfig is one). */
export type DataDirNode = Pick<JournalNodeConfig, 'id' | 'dataDir' | 'advertise' | 'peers'>;

/** A new data directory's storage id: random, the same for the directory's whole life. */
export function newStorageId(): string {
  return crypto.randomBytes(8).toString('hex');
}

/**
 * Opens the node's Raft metadata, first bootstrapping an empty directory: the bootstrap snapshot (index 1,
 * the initial configuration) or, when joining, an empty state at index 0; then the metadata, whose presence
 * marks a completed bootstrap. Refuses a directory of another node, or one that holds journal data but no
 * metadata. The policy is the synchronous functions below, over the storage's FileSystem (the simulator runs
 * them on its disks); this adds the asking, over the network.
 */
export async function openDataDir(
  config: JournalNodeConfig,
  stateMachineOptions: StateMachineOptions,
  logger: Logger,
  http: StatusClient,
  form: (storageId: string) => Promise<FormationOutcome>,
): Promise<OpenedDataDir> {
  const dirs = dataDirPaths(config.dataDir);
  tightenModes(config.dataDir, logger);
  fs.mkdirSync(dirs.raft, { recursive: true, mode: PRIVATE_DIR_MODE });
  const fileSystem = stateMachineOptions.fileSystem;
  let meta = MetaStore.open(fileSystem, dirs.raft);
  if (!meta) {
    const joining = config.join.length > 0 ? await learnCluster(config, http) : null;
    meta = prepareDataDir(config, stateMachineOptions, logger, newStorageId(), joining);
  }
  checkOwner(config, meta);
  const identity = new FileIdentityStore(fileSystem, dirs.raft);
  if (meta.meta.forming) {
    const outcome = await form(meta.meta.storageId);
    finishFormation(config, stateMachineOptions, meta, identity, outcome, logger);
  }
  const m = meta.meta;
  const problem = peersFlagProblem(config.peers, m.initialPeers ?? []);
  if (problem) throw new ConfigError(problem);
  return { meta, clusterId: m.clusterId, storageId: m.storageId, identity, record: identity.load() };
}

/** Refuses the data directory of another node. */
export function checkOwner(node: Pick<DataDirNode, 'id' | 'dataDir'>, meta: MetaStore): void {
  if (meta.meta.nodeId && meta.meta.nodeId !== node.id)
    throw new DataDirError(`data directory ${node.dataDir} belongs to node ${meta.meta.nodeId}, not ${node.id}`);
}

/** Members as --peers names them: `id=address`, in a canonical order. */
function peerList(peers: readonly Peer[]): string {
  return peers
    .map((p) => `${p.id}=${p.address}`)
    .sort()
    .join(',');
}

/**
 * --peers on a data directory that already belongs to a cluster. It is read only while the directory is empty
 * (membership lives in the Raft log from then on), so a value that no longer says what the cluster was formed
 * with would be ignored in silence: a corrected address that changes nothing, a list naming nodes the cluster
 * never had. The same command line serves every start, so it must name the configuration the directory formed
 * with; anything else is refused, saying what differs and what to do. Null when it fits, or when there is
 * nothing to compare (--join; a directory that joined or was re-added, or formed before this was recorded).
 */
export function peersFlagProblem(given: readonly Peer[], formedWith: readonly Peer[]): string | null {
  if (given.length === 0 || formedWith.length === 0 || peerList(given) === peerList(formedWith)) return null;
  const formed = new Map(formedWith.map((p) => [p.id, p.address]));
  const differences: string[] = [];
  for (const p of given) {
    const at = formed.get(p.id);
    if (at === undefined) differences.push(`${p.id} was not among them`);
    else if (at !== p.address) differences.push(`${p.id} was at ${at}, not ${p.address}`);
  }
  for (const p of formedWith)
    if (!given.some((g) => g.id === p.id)) differences.push(`${p.id} (${p.address}) is missing`);
  return `--peers is not the configuration this data directory formed with (${peerList(formedWith)}): ${differences.join('; ')}. --peers is read only when the data directory is empty; from then on the membership lives in the Raft log, so a changed --peers would change nothing. Start with --peers ${peerList(formedWith)} as before (the members now: qjm status); change the membership online with qjm add-peer, remove-peer or change-peers`;
}

/**
 * What taking the data directory's lock creates (the directory and its parents, the LOCK file), and a function
 * that removes exactly that again: a start that fails before the node wrote anything (its port is taken) leaves
 * the file system as it found it. Only what did not exist is removed, and a directory only while empty.
 */
export function lockFootprint(dataDir: string): () => void {
  const lockFile = path.join(dataDir, 'LOCK');
  const lockExisted = fs.existsSync(lockFile);
  const created: string[] = [];
  for (let d = path.resolve(dataDir); !fs.existsSync(d); d = path.dirname(d)) created.push(d);
  return () => {
    if (!lockExisted) fs.rmSync(lockFile, { force: true });
    for (const d of created) {
      try {
        fs.rmdirSync(d);
      } catch {
        return; // not empty (or gone): what is in it is not ours
      }
    }
  };
}

/**
 * Takes group and other permissions off everything in the data directory (the directory included): a node
 * creates its files private (src/file-modes.ts), but a directory made by hand or by an older version may be
 * world-readable. Symbolic links are left alone (never followed). Logs what it changed, once.
 */
export function tightenModes(dataDir: string, logger: Logger): void {
  const changed: string[] = [];
  const visit = (p: string) => {
    const st = fs.lstatSync(p);
    if (st.isSymbolicLink()) return;
    if ((st.mode & 0o077) !== 0) {
      fs.chmodSync(p, st.mode & 0o700);
      changed.push(p);
    }
    if (st.isDirectory()) for (const name of fs.readdirSync(p)) visit(path.join(p, name));
  };
  visit(dataDir);
  if (changed.length > 0)
    logger.warn(
      { dataDir, count: changed.length, first: changed.slice(0, 5) },
      'the data directory was readable by others: group and other permissions removed (files 0600, directories 0700)',
    );
}

/**
 * The cluster formed (or, this id bound to another storage, it waits to be re-added): the bootstrap snapshot
 * at index 1 holding the initial configuration with every member's binding — or the empty state at index 0 of
 * a node waiting to be added — then the metadata that marks the directory formed. A crash in between forms again.
 */
export function finishFormation(
  config: DataDirNode,
  stateMachineOptions: StateMachineOptions,
  meta: MetaStore,
  identity: FileIdentityStore,
  outcome: FormationOutcome,
  logger: Logger,
): void {
  const dirs = dataDirPaths(config.dataDir);
  stateMachineOptions.fileSystem.removeTree(dirs.snapshots);
  const m = meta.meta;
  if (outcome.kind === 'replaced') {
    JournalStateMachine.bootstrap(stateMachineOptions, {
      index: 0,
      term: 0,
      conf: emptyConf(),
      peers: outcome.members,
      generation: outcome.generation,
    });
    identity.saveSync({ ...identity.load(), boundElsewhere: outcome.boundTo || UNBOUND });
    meta.saveSync({ ...m, clusterId: outcome.clusterId, forming: false });
    logger.error(
      {
        clusterId: outcome.clusterId,
        boundTo: outcome.boundTo,
        storageId: m.storageId,
        by: outcome.from,
      },
      `this data directory is not the storage the cluster knows for ${config.id}: ${outcome.from} binds ${config.id} to storage ${outcome.boundTo || '(none)'}, and this directory is storage ${m.storageId} (a replaced or wiped disk). It did not form a new cluster and waits to be re-added: qjm replace-node --peer ${config.id}=${config.advertise}`,
    );
    return;
  }
  const peers = outcome.peers;
  JournalStateMachine.bootstrap(stateMachineOptions, {
    index: 1,
    term: 1,
    conf: { voters: peers.map((p) => p.id), votersOutgoing: [], learners: [] },
    peers,
    generation: 0,
  });
  const clusterId = clusterIdFor(peers);
  meta.saveSync({ ...m, hardState: { term: 1, vote: '', commit: 1 }, clusterId, forming: false, initialPeers: peers });
  logger.info(
    { clusterId, peers, ...(outcome.kind === 'adopt' ? { formedBy: outcome.from } : {}) },
    outcome.kind === 'adopt'
      ? `formed the cluster ${outcome.from} formed with this node's storage`
      : 'formed a new cluster: every node named in --peers answered, each bound to its storage',
  );
}

/**
 * A first start: the storage id, made durable before the node answers anyone. Joining (`joining`, what a
 * member said of its cluster): an empty state that belongs to no configuration, with the members learned.
 * Otherwise (--peers) the directory waits to form.
 */
export function prepareDataDir(
  config: DataDirNode,
  stateMachineOptions: StateMachineOptions,
  logger: Logger,
  storageId: string,
  joining: JoinedCluster | null,
): MetaStore {
  const dirs = dataDirPaths(config.dataDir);
  const fileSystem = stateMachineOptions.fileSystem;
  // A bootstrap snapshot (index 1 when formed, index 0 to join), whole or still in its temporary directory, is
  // what a first start that stopped before its metadata was durable leaves (a crash, a full disk): no journal data.
  const leftovers = [dirs.snapshots, dirs.journals].filter(
    (d) =>
      fileSystem.stat(d) !== null && fileSystem.readdir(d).some((n) => !/^(snap_0{19}[01]|tmp_initial_\d+)$/.test(n)),
  );
  if (leftovers.length > 0) {
    throw new DataDirError(
      `data directory ${config.dataDir} holds journal data (${leftovers.join(', ')}) but no Raft metadata (raft/raft_meta): refusing to bootstrap over it`,
    );
  }
  fileSystem.removeTree(dirs.snapshots);
  if (joining) {
    // Joining: an empty state at index 0 that belongs to no configuration; the leader's snapshot brings
    // the journals and the membership once an operator adds this node. Until then the members it learned
    // here are the only ones it listens to (and fetches the snapshot from).
    const { clusterId, members, generation } = joining;
    JournalStateMachine.bootstrap(stateMachineOptions, {
      index: 0,
      term: 0,
      conf: emptyConf(),
      peers: members,
      generation,
    });
    const meta = MetaStore.create(fileSystem, dirs.raft, {
      hardState: { term: 0, vote: '', commit: 0 },
      storageId,
      clusterId,
      nodeId: config.id,
    });
    logger.info(
      { dataDir: config.dataDir, clusterId },
      'prepared an empty data directory to join a running cluster: add this node with qjm add-peer',
    );
    return meta;
  }
  const meta = MetaStore.create(fileSystem, dirs.raft, {
    hardState: { term: 0, vote: '', commit: 0 },
    storageId,
    clusterId: '',
    nodeId: config.id,
    forming: true,
  });
  logger.info(
    { dataDir: config.dataDir, storageId, peers: config.peers },
    'a new data directory: the cluster forms once every node named in --peers answers',
  );
  return meta;
}

/** What a node joining a running cluster learned from one of its members. */
export interface JoinedCluster {
  clusterId: string;
  members: Peer[];
  generation: number;
}

/** What of a member's /status a joining node reads. */
export type JoinStatus = Pick<NodeStatusJson, 'clusterId' | 'peers' | 'identity'>;

/**
 * The cluster a member's /status describes, for node `config.id` joining it. Refuses when that id is still a
 * voter there (an empty disk under a voter's identity could vote twice in a term: remove it first).
 */
export function clusterToJoin(
  config: Pick<DataDirNode, 'id' | 'advertise'>,
  address: string,
  st: JoinStatus,
): JoinedCluster {
  const me = st.peers.find((p) => p.id === config.id);
  if (me && me.role !== 'learner') {
    throw new DataDirError(
      `node ${config.id} is still a ${me.role} of the cluster at ${address}: remove it first (qjm remove-peer --peer ${config.id}), then join; or start it with its usual --peers and re-add it with this storage: qjm replace-node --peer ${config.id}=${config.advertise}`,
    );
  }
  const members = st.peers
    .filter((p) => p.id !== config.id && p.address !== '')
    .map((p) =>
      p.storageId ? { id: p.id, address: p.address, storageId: p.storageId } : { id: p.id, address: p.address },
    );
  return { clusterId: st.clusterId, members, generation: st.identity?.generation ?? 0 };
}

/** Joining: asks the members given with --join, the first that answers says what the cluster is (clusterToJoin). */
async function learnCluster(config: JournalNodeConfig, http: StatusClient): Promise<JoinedCluster> {
  const errors: string[] = [];
  for (const address of config.join) {
    try {
      return clusterToJoin(config, address, await fetchNodeStatus(address, 3000, http));
    } catch (e) {
      if (e instanceof DataDirError) throw e;
      errors.push(`${address}: ${(e as Error).message}`);
    }
  }
  throw new DataDirError(`cannot join: no member answered (${errors.join('; ')})`);
}
