// The rule that forms a cluster once, explicitly: a node started with --peers on an empty data directory
// bootstraps only when every node named there answers as unformed with the same --peers, and the initial
// configuration then binds each member to the storage id it reported, the same on every node. A node that
// finds a named node already formed either adopts that very configuration (it was formed with this node's
// storage: it started late, or lost the race) or, when the configuration binds its id to another storage
// (its disk was replaced), never bootstraps: it waits to be re-added. Pure: the JournalNode asks its peers
// (journalnode/formation.ts) and the simulator may feed it answers of its own.

import type { NodeId, Peer } from '../raft/types.js';

/** What one named node answered, as the forming node reads its /status. */
export type PeerAnswer =
  | { kind: 'silent'; error: string }
  | { kind: 'forming'; storageId: string; peers: Peer[] }
  | {
      kind: 'formed';
      clusterId: string;
      generation: number;
      /** Its current configuration's members, each with its storage binding ('' when unbound). */
      members: Peer[];
      /** The configuration it formed with (empty: it joined, or formed before bindings). */
      initialPeers: Peer[];
    };

export type FormationDecision =
  | { kind: 'wait'; reasons: string[] }
  /** Every named node is unformed with the same --peers: form with these bindings. */
  | { kind: 'form'; peers: Peer[] }
  /** A named node formed the cluster with this node's storage: form that very configuration. */
  | { kind: 'adopt'; peers: Peer[]; clusterId: string; from: NodeId }
  /** The cluster names this id bound to another storage (or to none): wait to be re-added, never bootstrap. */
  | { kind: 'replaced'; from: NodeId; clusterId: string; generation: number; members: Peer[]; boundTo: string };

export interface FormingNode {
  id: NodeId;
  storageId: string;
  /** Its --peers (itself included). */
  peers: readonly Peer[];
}

const key = (ps: readonly Peer[]) =>
  ps
    .map((p) => `${p.id}=${p.address}`)
    .sort()
    .join(',');

/** The initial configuration, canonical: sorted by id, every member with its storage id. */
export function initialConfiguration(peers: readonly Peer[]): Peer[] {
  return [...peers]
    .sort((a, b) => a.id.localeCompare(b.id))
    .map((p) => ({ id: p.id, address: p.address, storageId: p.storageId ?? '' }));
}

export function decideFormation(self: FormingNode, answers: ReadonlyMap<NodeId, PeerAnswer>): FormationDecision {
  const reasons: string[] = [];
  let adopt: Extract<FormationDecision, { kind: 'adopt' }> | null = null;
  for (const [id, a] of answers) {
    if (a.kind !== 'formed') continue;
    const me = a.members.find((p) => p.id === self.id);
    if (!me) {
      reasons.push(
        `${id} is a member of cluster ${a.clusterId}, whose configuration does not name ${self.id}: to join it, start this node with --join and add it (qjm add-peer)`,
      );
      continue;
    }
    if ((me.storageId ?? '') !== self.storageId)
      return {
        kind: 'replaced',
        from: id,
        clusterId: a.clusterId,
        generation: a.generation,
        members: a.members.filter((p) => p.id !== self.id),
        boundTo: me.storageId ?? '',
      };
    const mine = a.initialPeers.find((p) => p.id === self.id);
    if (mine?.storageId === self.storageId && key(a.initialPeers) === key(self.peers))
      adopt ??= { kind: 'adopt', peers: initialConfiguration(a.initialPeers), clusterId: a.clusterId, from: id };
    else
      reasons.push(
        `${id} formed cluster ${a.clusterId} with this node's storage but with other --peers (${key(a.initialPeers)}): give this node the same --peers`,
      );
  }
  if (adopt) return adopt;
  if (reasons.length > 0) return { kind: 'wait', reasons };
  const bound: Peer[] = [];
  for (const p of self.peers) {
    if (p.id === self.id) {
      bound.push({ ...p, storageId: self.storageId });
      continue;
    }
    const a = answers.get(p.id);
    if (!a || a.kind === 'silent') reasons.push(`${p.id} (${p.address}) does not answer${a ? `: ${a.error}` : ''}`);
    else if (a.kind === 'forming' && a.storageId === '') reasons.push(`${p.id} answers without a storage id`);
    else if (a.kind === 'forming' && key(a.peers) !== key(self.peers))
      reasons.push(`${p.id} was started with other --peers (${key(a.peers)}, this node: ${key(self.peers)})`);
    else if (a.kind === 'forming') bound.push({ ...p, storageId: a.storageId });
  }
  if (reasons.length > 0) return { kind: 'wait', reasons };
  return { kind: 'form', peers: initialConfiguration(bound) };
}
