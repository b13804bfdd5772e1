// Peer lists as operators write them: "n1=127.0.0.1:8485,n2=127.0.0.1:8486" (ids and addresses, for
// journalnode --peers and membership changes) or "127.0.0.1:8485,127.0.0.1:8486" (addresses, for clients,
// which may also give the ids: then the node at each address must be the one named); and as a node tells its
// clients who the members are (the qjournal-members response header).

import { checkHostPort, isNodeId } from './ids.js';
import type { Peer } from './raft/types.js';

/** A member as operators and clients name it: its node id and the address others dial. */
export type { Peer };

function checkAddress(a: string): void {
  const problem = checkHostPort(a);
  if (problem) throw new Error(problem);
}

/** The items of a comma-separated list, trimmed, empty ones left out. */
function listItems(list: string): string[] {
  return list
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0);
}

/** Why two members may not share an address: each is dialed there, so one of them would never be reached. */
export function sameAddress(address: string, first: string, second: string): string {
  return `${address} is given to both ${first} and ${second}: every node needs an address of its own (peers dial each one there)`;
}

/** Parses "id=host:port,..." (ids required; an id or an address given twice is refused). */
export function parsePeers(s: string): Peer[] {
  const peers: Peer[] = [];
  for (const part of listItems(s)) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new Error(`expected id=host:port, got ${JSON.stringify(part)}`);
    const id = part.slice(0, eq);
    const address = part.slice(eq + 1);
    if (!isNodeId(id)) throw new Error(`bad peer id ${JSON.stringify(id)}`);
    checkAddress(address);
    if (peers.some((p) => p.id === id)) throw new Error(`peer ${id} named twice`);
    const twin = peers.find((p) => p.address === address);
    if (twin) throw new Error(sameAddress(address, twin.id, id));
    peers.push({ id, address });
  }
  if (peers.length === 0) throw new Error('no peers given');
  return peers;
}

/** A node as a client names it: its address, and its id when the client knows it. */
export interface ClientPeer {
  id?: string;
  address: string;
}

/** One entry of a client's list: "host:port" or "id=host:port". Throws naming what is wrong. */
export function parseClientPeer(part: string): ClientPeer {
  const eq = part.indexOf('=');
  const address = eq >= 0 ? part.slice(eq + 1) : part;
  checkAddress(address);
  if (eq < 0) return { address };
  const id = part.slice(0, eq);
  if (!isNodeId(id)) throw new Error(`bad peer id ${JSON.stringify(id)}`);
  return { id, address };
}

/**
 * Parses a client's list: "host:port,..." or "id=host:port,..." (or a mix); an address given twice once, the
 * same address under two ids refused.
 */
export function parseClientPeers(s: string | readonly string[]): ClientPeer[] {
  const parts = (typeof s === 'string' ? s.split(',') : s).map((x) => x.trim()).filter((x) => x.length > 0);
  const out: ClientPeer[] = [];
  for (const part of parts) {
    const p = parseClientPeer(part);
    const same = out.find((q) => q.address === p.address);
    if (same && same.id !== undefined && p.id !== undefined && same.id !== p.id)
      throw new Error(`${p.address} given as ${same.id} and as ${p.id}`);
    if (same) same.id ??= p.id;
    else out.push(p);
  }
  if (out.length === 0) throw new Error('no peers given');
  return out;
}

/** Parses a client's list: "host:port,..." or "id=host:port,..." (ids ignored). */
export function parseAddresses(s: string): string[] {
  return parseClientPeers(s).map((p) => p.address);
}

export function formatPeers(peers: readonly Peer[]): string {
  return peers.map((p) => `${p.id}=${p.address}`).join(',');
}

/**
 * The response header by which a node tells an authenticated client the members, with the index its
 * configuration was applied at (the client keeps the word of the node that applied the furthest):
 * "qjournal-members: 1234 n1=10.0.0.1:8485,n2=10.0.0.2:8485". Clients also read the older form without ids.
 */
export const MEMBERS_HEADER = 'qjournal-members';
/** Members one header may name (far above any configuration a cluster runs). */
const MAX_HEADER_MEMBERS = 64;

export function formatMembersHeader(appliedIndex: number, members: readonly Peer[]): string {
  return `${appliedIndex} ${formatPeers(members)}`;
}

/** The members a header names, or null when it is not one (a client takes nothing from a malformed header). */
export function parseMembersHeader(
  value: string,
): { appliedIndex: number; addresses: string[]; members: ClientPeer[] } | null {
  const m = /^(\d{1,16}) (\S+)$/.exec(value);
  if (!m) return null;
  try {
    const members = parseClientPeers(m[2]!);
    const addresses = members.map((p) => p.address);
    return members.length <= MAX_HEADER_MEMBERS ? { appliedIndex: Number(m[1]), addresses, members } : null;
  } catch {
    return null;
  }
}
