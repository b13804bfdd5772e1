// Peer lists as operators write them: "n1=127.0.0.1:8485,n2=127.0.0.1:8486" (ids and addresses, for
// journalnode --peers and membership changes) or "127.0.0.1:8485,127.0.0.1:8486" (addresses, for clients);
// and as a node tells its clients who the members are (the qjournal-members response header).

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

/** Parses "id=host:port,..." (ids required). */
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
    peers.push({ id, address });
  }
  if (peers.length === 0) throw new Error('no peers given');
  return peers;
}

/** Parses a client's list: "host:port,..." or "id=host:port,..." (ids ignored). */
export function parseAddresses(s: string): string[] {
  const out: string[] = [];
  for (const part of listItems(s)) {
    const eq = part.indexOf('=');
    const address = eq > 0 ? part.slice(eq + 1) : part;
    checkAddress(address);
    if (!out.includes(address)) out.push(address);
  }
  if (out.length === 0) throw new Error('no peers given');
  return out;
}

export function formatPeers(peers: readonly Peer[]): string {
  return peers.map((p) => `${p.id}=${p.address}`).join(',');
}

/**
 * The response header by which a node tells an authenticated client the members' addresses, with the index
 * its configuration was applied at (the client keeps the word of the node that applied the furthest):
 * "qjournal-members: 1234 10.0.0.1:8485,10.0.0.2:8485".
 */
export const MEMBERS_HEADER = 'qjournal-members';
/** Members one header may name (far above any configuration a cluster runs). */
const MAX_HEADER_MEMBERS = 64;

export function formatMembersHeader(appliedIndex: number, addresses: readonly string[]): string {
  return `${appliedIndex} ${addresses.join(',')}`;
}

/** The members a header names, or null when it is not one (a client takes nothing from a malformed header). */
export function parseMembersHeader(value: string): { appliedIndex: number; addresses: string[] } | null {
  const m = /^(\d{1,16}) (\S+)$/.exec(value);
  if (!m) return null;
  try {
    const addresses = parseAddresses(m[2]!);
    return addresses.length <= MAX_HEADER_MEMBERS ? { appliedIndex: Number(m[1]), addresses } : null;
  } catch {
    return null;
  }
}
