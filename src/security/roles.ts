// Who a verified certificate says its holder is. Roles live in the certificate's subject: CN = the node id
// or the client name, O = qjournal, and one OU per role (node certificates: OU=peer). Pure: the server's
// authorization (journalnode/http/authz.ts), the clients' check of a server and the certificate tools share it.

import { isNodeId } from '../ids.js';

export const CLIENT_ROLES = ['writer', 'reader', 'admin'] as const;
export type ClientRole = (typeof CLIENT_ROLES)[number];
/** `peer` is a JournalNode's role: it may speak Raft, as the node its certificate names. */
export type Role = 'peer' | ClientRole;
export const PEER_ROLE = 'peer';
/** The O of every certificate qjm cert issues. */
export const CERT_ORGANIZATION = 'qjournal';

/** Client names follow the node id rule: they become file names (client.<NAME>.crt) and log fields. */
export const isClientName = isNodeId;

export type Principal = { kind: 'node'; id: string } | { kind: 'client'; name: string; roles: ClientRole[] };

/** A subject as node's TLS layer reports it: a field given twice (OU=writer, OU=reader) is an array. */
export interface SubjectFields {
  CN?: string | string[];
  O?: string | string[];
  OU?: string | string[];
}

const list = (v: string | string[] | undefined): string[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);

export function isClientRole(s: string): s is ClientRole {
  return (CLIENT_ROLES as readonly string[]).includes(s);
}

/**
 * The principal a certificate's subject makes, or null when it names nobody qjournal knows: no single CN of
 * the id rule, or no role. A certificate with OU=peer is a node's, whatever else it says (qjm cert never
 * mixes them); roles qjournal does not know are ignored.
 */
export function principalOfSubject(s: SubjectFields | null | undefined): Principal | null {
  if (!s) return null;
  const cn = list(s.CN);
  if (cn.length !== 1 || !isNodeId(cn[0])) return null;
  const ous = list(s.OU);
  if (ous.includes(PEER_ROLE)) return { kind: 'node', id: cn[0] };
  const roles = CLIENT_ROLES.filter((r) => ous.includes(r));
  return roles.length > 0 ? { kind: 'client', name: cn[0], roles } : null;
}

export function rolesOf(p: Principal): Role[] {
  return p.kind === 'node' ? [PEER_ROLE] : [...p.roles];
}

/** "node n1" / "client alice (writer)": how logs and refusals name a principal. */
export function describePrincipal(p: Principal): string {
  return p.kind === 'node' ? `node ${p.id}` : `client ${p.name} (${p.roles.join(', ')})`;
}
