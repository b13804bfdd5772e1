// The data directory's policy: its layout, what a first start writes (bootstrap from --peers, or an empty
// state to join a running cluster), and the identity checks every later start makes. The layout:
//   <data>/LOCK            exclusive flock held while running
//   <data>/raft/raft_meta  term, vote, storage id, cluster id, node id
//   <data>/raft/log/       the Raft log segments
//   <data>/snapshots/      snapshots (manifest + hard links to segment files)
//   <data>/journals/<jid>/ the live segment files

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { Logger } from '../src/logger.js';
import { fetchNodeStatus } from '../src/node-status.js';
import type { StatusClient } from '../src/node-status.js';
import { emptyConf } from '../src/raft/types.js';
import type { Peer } from '../src/raft/types.js';
import { MetaStore } from '../src/storage/raft-meta-store.js';
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

/** A cluster's id: a hash of its initial configuration, the same on every member bootstrapped with it. */
export function clusterIdFor(peers: Peer[]): string {
  const canon = [...peers]
    .sort((a, b) => a.id.localeCompare(b.id))
    .map((p) => `${p.id}=${p.address}`)
    .join(',');
  return crypto.createHash('sha256').update(canon).digest('hex').slice(0, 16);
}

export interface OpenedDataDir {
  meta: MetaStore;
  clusterId: string;
  storageId: string;
}

/**
 * Opens the node's Raft metadata, first bootstrapping an empty directory: the bootstrap snapshot (index 1,
 * the initial configuration) or, when joining, an empty state at index 0; then the metadata, whose presence
 * marks a completed bootstrap. Refuses a directory of another node, or one that holds journal data but no
 * metadata.
 */
export async function openDataDir(
  config: JournalNodeConfig,
  stateMachineOptions: StateMachineOptions,
  logger: Logger,
  http: StatusClient,
): Promise<OpenedDataDir> {
  const dirs = dataDirPaths(config.dataDir);
  fs.mkdirSync(dirs.raft, { recursive: true });
  const meta =
    MetaStore.open(stateMachineOptions.fileSystem, dirs.raft) ??
    (await bootstrap(config, stateMachineOptions, logger, http));
  const m = meta.meta;
  if (m.nodeId && m.nodeId !== config.id) {
    throw new DataDirError(`data directory ${config.dataDir} belongs to node ${m.nodeId}, not ${config.id}`);
  }
  return { meta, clusterId: m.clusterId ?? '', storageId: m.storageId ?? '' };
}

async function bootstrap(
  config: JournalNodeConfig,
  stateMachineOptions: StateMachineOptions,
  logger: Logger,
  http: StatusClient,
): Promise<MetaStore> {
  const dirs = dataDirPaths(config.dataDir);
  const leftovers = [dirs.snapshots, dirs.journals].filter(
    (d) => fs.existsSync(d) && fs.readdirSync(d).some((n) => !/^snap_0{19}1$/.test(n)),
  );
  if (leftovers.length > 0) {
    throw new DataDirError(
      `data directory ${config.dataDir} holds journal data (${leftovers.join(', ')}) but no Raft metadata (raft/raft_meta): refusing to bootstrap over it`,
    );
  }
  fs.rmSync(dirs.snapshots, { recursive: true, force: true });
  const storageId = crypto.randomBytes(8).toString('hex');
  if (config.join.length > 0) {
    // Joining: an empty state at index 0 that belongs to no configuration; the leader's snapshot brings
    // the journals and the membership once an operator adds this node. Until then the members it learned
    // here are the only ones it listens to (and fetches the snapshot from).
    const { clusterId, members } = await learnCluster(config, http);
    JournalStateMachine.bootstrap(stateMachineOptions, { index: 0, term: 0, conf: emptyConf(), peers: members });
    const meta = MetaStore.create(stateMachineOptions.fileSystem, dirs.raft, {
      hardState: { term: 0, vote: '', commit: 0 },
      storageId,
      clusterId,
      nodeId: config.id,
    });
    logger.info(
      { dataDir: config.dataDir, join: config.join, clusterId },
      'prepared an empty data directory to join a running cluster: add this node with qjm add-peer',
    );
    return meta;
  }
  const peers = [...config.peers].sort((a, b) => a.id.localeCompare(b.id));
  JournalStateMachine.bootstrap(stateMachineOptions, {
    index: 1,
    term: 1,
    conf: { voters: peers.map((p) => p.id), votersOutgoing: [], learners: [] },
    peers,
  });
  const meta = MetaStore.create(stateMachineOptions.fileSystem, dirs.raft, {
    hardState: { term: 1, vote: '', commit: 1 },
    storageId,
    clusterId: clusterIdFor(config.peers),
    nodeId: config.id,
  });
  logger.info({ dataDir: config.dataDir, peers: config.peers }, 'bootstrapped a new data directory from --peers');
  return meta;
}

/**
 * Joining: asks a member of the running cluster for its cluster id and members, and refuses if this id is
 * still a voter (an empty disk under a voter's identity could vote twice in a term: remove it first).
 */
async function learnCluster(
  config: JournalNodeConfig,
  http: StatusClient,
): Promise<{ clusterId: string; members: Peer[] }> {
  const errors: string[] = [];
  for (const address of config.join) {
    try {
      const st = await fetchNodeStatus(address, 3000, http);
      const me = st.peers.find((p) => p.id === config.id);
      if (me && me.role !== 'learner') {
        throw new DataDirError(
          `node ${config.id} is still a ${me.role} of the cluster at ${address}: remove it first (qjm remove-peer --peer ${config.id}), then join`,
        );
      }
      const members = st.peers
        .filter((p) => p.id !== config.id && p.address !== '')
        .map((p) => ({ id: p.id, address: p.address }));
      return { clusterId: st.clusterId, members };
    } catch (e) {
      if (e instanceof DataDirError) throw e;
      errors.push(`${address}: ${(e as Error).message}`);
    }
  }
  throw new DataDirError(`cannot join: no member answered (${errors.join('; ')})`);
}
