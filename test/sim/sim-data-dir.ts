// A simulated node's data directory at start, decided by the JournalNode's own rules: a first start prepares it
// (journalnode/data-dir.ts: a storage id; with --peers it waits to form, with --join it learns the cluster
// from a member and is refused while its id is still a voter there), a forming node asks the nodes named in
// --peers until the formation rule decides (src/replica/formation.ts, each answer read by
// journalnode/formation.ts's answerOf), and the outcome is written as the node writes it (finishFormation).
// What a node answers is its /status as the simulator builds it from its replica (statusOf); a node that is
// down, or cut off from the asking node, is silent.

import {
  checkOwner,
  clusterToJoin,
  DataDirError,
  finishFormation,
  prepareDataDir,
} from '../../journalnode/data-dir.js';
import type { DataDirNode, FormationOutcome, JoinedCluster } from '../../journalnode/data-dir.js';
import { answerOf } from '../../journalnode/formation.js';
import type { FormationStatus } from '../../journalnode/formation.js';
import { memberList } from '../../journalnode/http/routes-admin.js';
import type { NodeStatusJson } from '../../src/node-status.js';
import type { NodeId, Peer } from '../../src/raft/types.js';
import { decideFormation } from '../../src/replica/formation.js';
import type { PeerAnswer } from '../../src/replica/formation.js';
import { FileIdentityStore } from '../../src/storage/identity-store.js';
import { MetaStore } from '../../src/storage/raft-meta-store.js';
import type { SimCluster } from './cluster.js';
import type { SimNode } from './sim-node.js';
import { DATA_DIR, PATHS, quietLogger, simStateMachineOptions } from './sim-storage.js';

/** Where a node is dialed (the address its peers and the configuration name). */
export function simAddress(id: NodeId): string {
  return `sim-${id}:1`;
}

export function simPeer(id: NodeId, storageId?: string): Peer {
  return storageId ? { id, address: simAddress(id), storageId } : { id, address: simAddress(id) };
}

/** What the simulator's /status of a node holds: what formation, joining and the operator read of it. */
export type SimStatus = FormationStatus & Pick<NodeStatusJson, 'id' | 'state' | 'storageId' | 'identity'>;

/** A node's /status, or null when it has none to give (down, or refused at start). */
export function statusOf(node: SimNode): SimStatus | null {
  if (!node.alive) return null;
  if (node.forming) {
    return {
      id: node.id,
      state: 'uninitialized',
      clusterId: '',
      storageId: node.storageId,
      peers: [],
      initialPeers: [],
      formation: { peers: node.initialPeers ?? [], waitingFor: node.forming },
      identity: {
        state: 'uninitialized',
        storageId: node.storageId,
        generation: 0,
        boundTo: '',
        problem: `uninitialized: waiting for ${node.forming.join('; ')}`,
        repair: null,
        standDown: null,
        floor: null,
        refused: [],
        refusedBy: [],
      },
    };
  }
  if (!node.running) return null;
  const s = node.replica!.status();
  const m = node.storage!.meta.meta;
  return {
    id: node.id,
    state: s.state,
    clusterId: m.clusterId,
    storageId: m.storageId,
    peers: memberList(s),
    initialPeers: m.initialPeers ?? [],
    identity: s.identity,
  };
}

function config(node: SimNode): DataDirNode {
  return { id: node.id, dataDir: DATA_DIR, advertise: simAddress(node.id), peers: node.initialPeers ?? [] };
}

/** The /status of `id` as `asker` gets it over the simulated network: null when it does not answer. */
function ask(c: SimCluster, asker: SimNode, id: NodeId): SimStatus | null {
  const target = c.nodes.get(id);
  if (!target?.exists || c.isBlocked(asker.id, id) || c.isBlocked(id, asker.id)) return null;
  return statusOf(target);
}

export type StartStep =
  | { kind: 'run' }
  | { kind: 'forming' }
  /** The start was refused: the node stays down (`retry`: start it again later; else the operator must act). */
  | { kind: 'refused'; why: string; retry: boolean };

/**
 * A start's first step, as openDataDir takes it: the metadata, or (an empty directory) a prepared one — with
 * --join after learning the cluster from a member (the members as the operator knows them now). Throws what
 * the node's code throws on a damaged disk.
 */
export function startDataDir(c: SimCluster, node: SimNode): StartStep {
  const fs = node.fs;
  if (!fs.stat(DATA_DIR)) {
    // The data directory itself is the operator's, made before the node starts.
    fs.mkdirp(DATA_DIR);
    fs.fsyncPathSync('/');
  }
  fs.mkdirp(PATHS.raft);
  let meta = MetaStore.open(fs, PATHS.raft);
  if (!meta) {
    let joining: JoinedCluster | null = null;
    if (!node.initialPeers) {
      const learned = learnCluster(c, node);
      if ('why' in learned) return { kind: 'refused', ...learned };
      joining = learned;
    }
    const options = simStateMachineOptions(fs, c.settings, null, quietLogger);
    meta = prepareDataDir(config(node), options, c.loggerFor(node), c.newStorageId(), joining);
    if (node.wiped) {
      node.wiped = false;
      node.replacedStorage = meta.meta.storageId;
    }
  }
  checkOwner(config(node), meta);
  node.storageId = meta.meta.storageId;
  if (!meta.meta.forming) return { kind: 'run' };
  node.forming = ['the first answers'];
  return { kind: 'forming' };
}

/** --join: the first member that answers says what the cluster is (clusterToJoin refuses while this id votes). */
function learnCluster(c: SimCluster, node: SimNode): JoinedCluster | { why: string; retry: boolean } {
  const members = c.knownMembers().filter((id) => id !== node.id);
  for (const id of members) {
    const st = ask(c, node, id);
    if (!st || st.state === 'uninitialized') continue;
    try {
      return clusterToJoin(config(node), simAddress(id), st);
    } catch (e) {
      if (e instanceof DataDirError) return { why: e.message, retry: false };
      throw e;
    }
  }
  return { why: `cannot join: no member answered (asked ${members.join(', ') || 'nobody'})`, retry: true };
}

/**
 * One round of a forming node: every other node named in its --peers asked, the formation rule applied. The
 * outcome, once it decided (written by finishFormation: the node then opens its storage), or null (it waits).
 */
export function formationRound(c: SimCluster, node: SimNode): FormationOutcome | null {
  const peers = node.initialPeers!;
  const answers = new Map<NodeId, PeerAnswer>();
  for (const p of peers) {
    if (p.id === node.id) continue;
    const st = ask(c, node, p.id);
    answers.set(p.id, st ? answerOf(p.id, st) : { kind: 'silent', error: 'no answer' });
  }
  const decision = decideFormation({ id: node.id, storageId: node.storageId, peers }, answers);
  if (decision.kind === 'wait') {
    node.forming = decision.reasons;
    return null;
  }
  const fs = node.fs;
  const meta = MetaStore.open(fs, PATHS.raft)!;
  const options = simStateMachineOptions(fs, c.settings, null, quietLogger);
  finishFormation(config(node), options, meta, new FileIdentityStore(fs, PATHS.raft), decision, c.loggerFor(node));
  node.forming = null;
  return decision;
}
