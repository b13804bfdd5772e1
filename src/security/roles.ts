// Who a verified certificate says its holder is. Roles live in the certificate's subject: CN = the node id
// or the client name, O = qjournal, and one OU per role (node certificates: OU=peer); the journals a writer or
// reader may use are URI subject alternative names qjournal://journal/<JID>. Pure: the server's authorization
// (journalnode/http/authz.ts), the clients' check of a server and the certificate tools share it.

import { isJournalId, isNodeId } from '../ids.js';

export const CLIENT_ROLES = ['writer', 'reader', 'admin'] as const;
export type ClientRole = (typeof CLIENT_ROLES)[number];
/** `peer` is a JournalNode's role: it may speak Raft, as the node its certificate names. */
export type Role = 'peer' | ClientRole;
export const PEER_ROLE = 'peer';
/** The O of every certificate qjm cert issues. */
export const CERT_ORGANIZATION = 'qjournal';

/** Client names follow the node id rule: they become file names (client.<NAME>.crt) and log fields. */
export const isClientName = isNodeId;

/** The URI a client certificate names a journal with (one subject alternative name per journal). */
export const JOURNAL_URI_PREFIX = 'qjournal://journal/';

/**
 * A client's journals: the ones its certificate names (a writer or reader uses only those; admin spans every
 * journal and names none).
 */
export type Principal =
  | { kind: 'node'; id: string }
  | { kind: 'client'; name: string; roles: ClientRole[]; journals: string[] };

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
 * The journals a certificate's subject alternative names carry, as node's X.509 and TLS layers print them
 * ("URI:qjournal://journal/ns1, DNS:x"). Only an entry that is exactly such a URI with a valid journal id
 * counts; anything else (other names, an entry node had to quote because it holds a separator) is ignored,
 * so a strange name can only take journals away.
 */
export function journalsOfAltNames(altNames: string | undefined): string[] {
  const out: string[] = [];
  for (const entry of (altNames ?? '').split(', ')) {
    if (!entry.startsWith(`URI:${JOURNAL_URI_PREFIX}`)) continue;
    const jid = entry.slice(`URI:${JOURNAL_URI_PREFIX}`.length);
    if (isJournalId(jid) && !out.includes(jid)) out.push(jid);
  }
  return out;
}

/**
 * The principal a certificate makes (its subject, and its subject alternative names for a client's
 * journals), or null when it names nobody qjournal knows: no single CN of the id rule, or no role. A
 * certificate with OU=peer is a node's, whatever else it says (qjm cert never mixes them); roles qjournal
 * does not know are ignored.
 */
export function principalOfCertificate(s: SubjectFields | null | undefined, altNames?: string): Principal | null {
  if (!s) return null;
  const cn = list(s.CN);
  if (cn.length !== 1 || !isNodeId(cn[0])) return null;
  const ous = list(s.OU);
  if (ous.includes(PEER_ROLE)) return { kind: 'node', id: cn[0] };
  const roles = CLIENT_ROLES.filter((r) => ous.includes(r));
  return roles.length > 0 ? { kind: 'client', name: cn[0], roles, journals: journalsOfAltNames(altNames) } : null;
}

/** Whether the principal may use journal `jid`: admin any; a writer or reader the journals it names. */
export function mayUseJournal(p: Principal, jid: string): boolean {
  return p.kind === 'client' && (p.roles.includes('admin') || p.journals.includes(jid));
}

/** The journals a principal spans, as refusals and `qjm cert list` show them. */
export function describeJournals(p: Principal): string {
  if (p.kind === 'node') return '-';
  if (p.roles.includes('admin')) return 'all';
  return p.journals.length > 0 ? p.journals.join(',') : 'none';
}

export function rolesOf(p: Principal): Role[] {
  return p.kind === 'node' ? [PEER_ROLE] : [...p.roles];
}

/** "node n1" / "client alice (writer)": how logs and refusals name a principal. */
export function describePrincipal(p: Principal): string {
  return p.kind === 'node' ? `node ${p.id}` : `client ${p.name} (${p.roles.join(', ')})`;
}
