// Bringing a node into the configuration with the storage it runs on now, as an operator does it: `qjm add-peer`
// asks the new node its storage id first (when it answers) so the change binds it from the start, and `qjm
// replace-node` re-adds a node whose data directory was replaced — the configuration binds its id to the
// storage it had, so the cluster refuses its votes and acknowledgements — as one command: remove the old
// binding, then add the node back as a learner bound to its new storage; it catches up from a snapshot and is
// promoted to voter (the same procedure as add-peer, so nothing counts from it before it holds the log).

import type { AdminClient } from '../../libqjm/index.js';
import { QjmError } from '../errors.js';
import type { MemberJson, NodeStatusJson } from '../node-status.js';
import { formatPeers } from '../peers.js';
import type { Peer } from '../peers.js';

type Out = (line: string) => void;

/** How long add-peer waits for the new node's /status (it may not be started yet: then it binds at promotion). */
const NEWCOMER_STATUS_MS = 2000;

/** What of a node's /status adding it reads. */
export type NewcomerStatus = Pick<NodeStatusJson, 'id' | 'state' | 'storageId' | 'identity'>;

/** Why `st` (the node at the address given for `id`) cannot be (re)added with its storage, or null. */
export function newcomerProblem(id: string, st: NewcomerStatus): string | null {
  if (st.id !== id) return `the node at that address is ${st.id}, not ${id}`;
  const standing = st.identity?.state;
  if (standing === 'stood-down')
    return `${id} stood down for good (${st.identity?.problem}): wipe its data directory and start it with --join first`;
  if (standing === 'member' || standing === 'below-floor')
    return `${id} is a member with its storage ${st.storageId} already`;
  if (st.state === 'uninitialized')
    return `${id} is uninitialized (waiting for its cluster to form): start it with --join <members>, or let it find the cluster`;
  return null;
}

/** The storage a node being added runs on, from its /status; null when it does not answer (yet). */
export async function newcomerStorage(admin: AdminClient, p: Peer, io: { err: Out }): Promise<string | null> {
  const [r] = await admin.statusOf([p.address], NEWCOMER_STATUS_MS);
  if (!r?.status) {
    io.err(
      `${p.id} (${p.address}) does not answer yet (${r?.error}): it is added unbound and bound, when it is promoted, to the storage it caught up on`,
    );
    return null;
  }
  const problem = newcomerProblem(p.id, r.status);
  if (problem) throw new QjmError('INVALID_CONF_CHANGE', `cannot add ${p.id}: ${problem}`);
  return r.status.storageId;
}

export interface ReplaceArgs {
  peer: Peer;
  timeoutMs: number | undefined;
  json: boolean;
}

/**
 * The membership changes that re-add `peer` bound to `storageId`, from the members as the leader's /status
 * lists them: first the voters without it (null when it is no voter: nothing to remove), then the voters with
 * it, bound to its new storage (it joins as a learner, catches up, and is promoted). A learner is refused:
 * remove it first.
 */
export function replaceSteps(
  peer: Peer,
  storageId: string,
  members: readonly MemberJson[],
): { remove: Peer[] | null; add: Peer[]; oldStorageId: string } {
  const voters = members.filter((p) => p.role === 'voter').map((p) => ({ id: p.id, address: p.address }));
  const old = members.find((p) => p.id === peer.id);
  if (old?.role === 'learner')
    throw new QjmError(
      'INVALID_CONF_CHANGE',
      `${peer.id} is a learner: remove it first (qjm remove-peer), then add it`,
    );
  const rest = voters.filter((v) => v.id !== peer.id);
  return {
    remove: old ? rest : null,
    add: [...rest, { ...peer, storageId }],
    oldStorageId: old?.storageId ?? '',
  };
}

/** `qjm replace-node`: the exit code. */
export async function runReplaceNode(admin: AdminClient, a: ReplaceArgs, io: { out: Out; err: Out }): Promise<number> {
  const { peer } = a;
  const [r] = await admin.statusOf([peer.address], NEWCOMER_STATUS_MS);
  if (!r?.status)
    throw new QjmError(
      'UNAVAILABLE',
      `${peer.id} (${peer.address}) does not answer (${r?.error}): start it on its new data directory first (with its usual --peers, or --join <members>)`,
    );
  const problem = newcomerProblem(peer.id, r.status);
  if (problem) throw new QjmError('INVALID_CONF_CHANGE', `cannot replace ${peer.id}: ${problem}`);
  const storageId = r.status.storageId;
  const steps = replaceSteps(peer, storageId, (await admin.membership()).peers);
  if (steps.remove) {
    if (!a.json)
      io.err(
        `removing ${peer.id} (bound to storage ${steps.oldStorageId || '(none)'}) from the voters: ${formatPeers(steps.remove)} must all answer meanwhile...`,
      );
    await admin.changePeers(steps.remove, a.timeoutMs);
  }
  if (!a.json)
    io.err(`adding ${peer.id} back bound to storage ${storageId}: it catches up as a learner, then becomes a voter...`);
  const msg = await admin.changePeers(steps.add, a.timeoutMs);
  io.out(
    a.json
      ? JSON.stringify({ ok: true, node: peer.id, storageId, voters: steps.add })
      : `${msg}; ${peer.id} is bound to storage ${storageId}`,
  );
  return 0;
}
