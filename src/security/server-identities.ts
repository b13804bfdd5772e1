// What a qjournal client knows of which node is at which address, and the check it makes of a server at
// every handshake: a JournalNode's certificate (role peer) and, once the id at that address is established,
// that very id. Established: given by the caller (id=host:port), or named by a majority of the other nodes
// that told this client their configuration (the qjournal-members header, /status) — never on a node's own
// word (a stranger's certificate would vouch for itself), except for a client given that one address alone.

import type { PeerCertificate } from 'node:tls';
import { checkNodeServer } from './client-tls.js';
import { principalOfCertificate } from './roles.js';
import type { SubjectFields } from './roles.js';

/** What the client knows of the node at an address. */
export type Identity =
  | { kind: 'known'; id: string; how: 'given' | 'named by the members' | 'the only address given' }
  | { kind: 'unknown' }
  | { kind: 'disputed'; ids: string[] };

/** Addresses the testimony is kept for, and reporters heard per address: far above any cluster, and bounded. */
const MAX_ADDRESSES = 256;
const MAX_REPORTERS = 64;

/** A node as a client names it: its address, and its id when known (src/peers.ts parses them). */
type NamedAddress = { id?: string; address: string };

export class ServerIdentities {
  private readonly given = new Map<string, string>();
  /** address -> (the node that said it -> the id it puts at the address) */
  private readonly testimony = new Map<string, Map<string, string>>();
  /** address -> the id the last handshake there presented */
  private readonly presented = new Map<string, string>();
  private readonly soleAddress: string | null;

  constructor(peers: readonly NamedAddress[]) {
    for (const p of peers) if (p.id !== undefined) this.given.set(p.address, p.id);
    this.soleAddress = peers.length === 1 ? peers[0]!.address : null;
  }

  /** The node expected at `address`. */
  identityAt(address: string): Identity {
    const given = this.given.get(address);
    if (given !== undefined) return { kind: 'known', id: given, how: 'given' };
    const said = this.testimony.get(address);
    if (said && said.size > 0) {
      const votes = new Map<string, number>();
      for (const id of said.values()) votes.set(id, (votes.get(id) ?? 0) + 1);
      for (const [id, n] of votes) if (2 * n > said.size) return { kind: 'known', id, how: 'named by the members' };
      return { kind: 'disputed', ids: [...votes.keys()].sort() };
    }
    const seen = this.presented.get(address);
    if (address === this.soleAddress && seen !== undefined)
      return { kind: 'known', id: seen, how: 'the only address given' };
    return { kind: 'unknown' };
  }

  /** The id the last handshake at `address` presented (undefined before one). */
  presentedAt(address: string): string | undefined {
    return this.presented.get(address);
  }

  /** The check of a server's certificate at a handshake with `address`: the problem, or null. */
  check(address: string, cert: PeerCertificate): string | null {
    const expected = this.identityAt(address);
    if (expected.kind === 'disputed')
      return `${address}: the members disagree which node is there (${expected.ids.join(' or ')}): give its id (ID=${address})`;
    const problem = checkNodeServer(address, cert, expected.kind === 'known' ? expected.id : undefined);
    if (problem) return problem;
    const p = principalOfCertificate(cert.subject as SubjectFields, cert.subjectaltname);
    if (p?.kind === 'node') this.presented.set(address, p.id);
    return null;
  }

  /**
   * The check of a connection that will carry requests: as check(), and the node must be established there
   * (given, named by the members, or the only address given). The problem names the certificate met.
   */
  checkEstablished(address: string, cert: PeerCertificate): string | null {
    const problem = this.check(address, cert);
    if (problem) return problem;
    const id = this.identityAt(address);
    if (id.kind === 'known') return null;
    const presented = this.presented.get(address);
    return `refusing to send to ${address}: no member names a node there (it presented node ${presented}'s certificate); if it is a member, give its id: ID=${address}`;
  }

  /**
   * The node at `reporter` (its certificate's id as presented there) says its configuration puts `members`
   * where they are. Heard only from a node that names itself at the address it was reached at; what it says of
   * its own address does not count. Returns the addresses whose established node changed away from the one
   * last presented there: connections open to them must go.
   */
  learn(reporter: string, members: readonly NamedAddress[]): string[] {
    const reporterId = this.presented.get(reporter);
    if (reporterId === undefined) return [];
    if (!members.some((m) => m.address === reporter && m.id === reporterId)) return [];
    const changed: string[] = [];
    for (const m of members) {
      if (m.id === undefined || m.address === reporter) continue;
      let said = this.testimony.get(m.address);
      if (!said) {
        if (this.testimony.size >= MAX_ADDRESSES) continue;
        said = new Map();
        this.testimony.set(m.address, said);
      }
      if (!said.has(reporterId) && said.size >= MAX_REPORTERS) continue;
      said.set(reporterId, m.id);
      const now = this.identityAt(m.address);
      const seen = this.presented.get(m.address);
      if (seen !== undefined && !(now.kind === 'known' && now.id === seen)) changed.push(m.address);
    }
    return changed;
  }
}
