// Authorization, in one place: the table of which roles may call each route, checked by one onRequest hook
// on the node's server against the principal its verified client certificate names (401 without one, 403
// for the wrong role, each in the route's own error envelope). Three rules need the decoded body and are
// checked by their routes through the functions here: a journal route touches only the journals the
// certificate names, a Raft batch speaks only for its certificate's node, and `format` with `force` needs
// admin. In insecure mode (no TLS) everything is let through.

import type { TLSSocket } from 'node:tls';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { qjournal } from '../../src/gen/proto.js';
import { QjmError } from '../../src/errors.js';
import type { Batch } from '../../src/transport/raft-codec.js';
import {
  describeJournals,
  describePrincipal,
  mayUseJournal,
  principalOfCertificate,
  rolesOf,
} from '../../src/security/roles.js';
import type { Principal, Role, SubjectFields } from '../../src/security/roles.js';
import { sendJsonError, sendProto, toRpcError } from './rpc-errors.js';
import { WRITE_OPS } from '../state/write-rpcs.js';

const pb = qjournal.journal;

/** Who is calling: a certificate's principal, or anyone at all on a node started with --insecure. */
export type Caller = Principal | { kind: 'insecure' };
export const INSECURE_CALLER: Caller = { kind: 'insecure' };

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by the authorization hook; null (refuse) until then. */
    caller: Caller | null;
  }
}

/** How a refusal is written: the route's protobuf response with its `error` set, or JSON {code, message}. */
type Envelope =
  | { kind: 'json' }
  | { kind: 'proto'; response: { encode(m: { error: qjournal.journal.IRpcError }): { finish(): Uint8Array } } };

export const JSON_ENVELOPE: Envelope = { kind: 'json' };
const proto = (response: Extract<Envelope, { kind: 'proto' }>['response']): Envelope => ({ kind: 'proto', response });

/** 'anyone': no certificate needed. 'authenticated': any certificate (routes that do not exist answer 404). */
export type Allowed = 'anyone' | 'authenticated' | readonly Role[];

export interface RouteRule {
  allowed: Allowed;
  envelope: Envelope;
}

const READ: readonly Role[] = ['reader', 'writer', 'admin'];
const WRITE: readonly Role[] = ['writer', 'admin'];
const OBSERVE: readonly Role[] = ['reader', 'writer', 'admin', 'peer'];
const PEER: readonly Role[] = ['peer'];

/** Route (as registered) → who may call it. Routes under a prefix ending in '/*' share its rule. */
export const ROUTE_RULES: Readonly<Record<string, RouteRule>> = {
  '/healthz': { allowed: 'anyone', envelope: JSON_ENVELOPE },
  '/raft/*': { allowed: PEER, envelope: JSON_ENVELOPE },
  '/qjm/getJournalState': { allowed: READ, envelope: proto(pb.GetJournalStateResponse) },
  '/qjm/getEditLogManifest': { allowed: READ, envelope: proto(pb.GetManifestResponse) },
  '/qjm/getEdits': { allowed: READ, envelope: proto(pb.GetEditsResponse) },
  '/qjm/segment': { allowed: READ, envelope: JSON_ENVELOPE },
  ...Object.fromEntries(
    Object.keys(WRITE_OPS).map((rpc) => [`/qjm/${rpc}`, { allowed: WRITE, envelope: proto(pb.WriteResponse) }]),
  ),
  '/status': { allowed: OBSERVE, envelope: JSON_ENVELOPE },
  '/raft_stat': { allowed: OBSERVE, envelope: JSON_ENVELOPE },
  // The effective settings include file-system paths (the certificates, the data directory): not for every reader.
  '/flags': { allowed: ['admin'], envelope: JSON_ENVELOPE },
  '/metrics': { allowed: OBSERVE, envelope: JSON_ENVELOPE },
  '/activity': { allowed: OBSERVE, envelope: JSON_ENVELOPE },
  '/admin/resetPeers': { allowed: ['admin'], envelope: proto(pb.ResetPeersResponse) },
  '/admin/*': { allowed: ['admin'], envelope: proto(pb.AdminResponse) },
};

const UNKNOWN_ROUTE: RouteRule = { allowed: 'authenticated', envelope: JSON_ENVELOPE };

/** The rule of a route pattern (undefined: no route matched, the request will be a 404). */
export function ruleFor(route: string | undefined): RouteRule {
  if (route === undefined) return UNKNOWN_ROUTE;
  const exact = ROUTE_RULES[route];
  if (exact) return exact;
  for (const [pattern, rule] of Object.entries(ROUTE_RULES)) {
    if (pattern.endsWith('/*') && route.startsWith(pattern.slice(0, -1))) return rule;
  }
  return UNKNOWN_ROUTE;
}

/** The decision for one caller on one rule: null to let it through, else the refusal. */
export function decide(caller: Caller | null, allowed: Allowed): QjmError | null {
  if (allowed === 'anyone' || caller?.kind === 'insecure') return null;
  if (caller === null)
    return new QjmError(
      'UNAUTHENTICATED',
      'a client certificate is required: connect with --certs-dir D --user NAME (libqjm: the tls option)',
    );
  if (allowed === 'authenticated') return null;
  const have = rolesOf(caller);
  if (have.some((r) => allowed.includes(r))) return null;
  return new QjmError(
    'FORBIDDEN',
    `${describePrincipal(caller)} may not call this: it needs the role ${allowed.join(' or ')}`,
  );
}

/** Writes a refusal in the route's envelope. */
export function refuse(reply: FastifyReply, envelope: Envelope, e: QjmError): FastifyReply {
  if (envelope.kind === 'proto')
    return sendProto(reply, e.httpStatus, envelope.response.encode({ error: toRpcError(e, 0) }).finish());
  return sendJsonError(reply, e);
}

/**
 * Each connection's principal, settled once when its handshake completes (settlePrincipal, called by
 * node-tls.ts) and never read again from the socket: a later handshake on the same connection (a
 * renegotiation, which node-tls.ts also refuses) cannot change who the caller is. Null: no certificate.
 */
const principals = new WeakMap<object, Principal | null>();

/** The principal of the connection's verified chain, worked out at its handshake and kept for its life. */
export function settlePrincipal(socket: TLSSocket): Principal | null {
  const settled = principals.get(socket);
  if (settled !== undefined) return settled;
  let p: Principal | null = null;
  // Sockets whose certificate failed verification are cut at the handshake (node-tls.ts). `authorized`
  // alone is not enough: a resumed TLS session of a client that never sent a certificate reads as
  // authorized, with no certificate at all.
  const cert = socket.authorized ? socket.getPeerCertificate() : undefined;
  const subject = cert?.subject as SubjectFields | undefined;
  if (subject && Object.keys(subject).length > 0) {
    // A certificate of this CA that names no role may call only what needs just a certificate (a 404).
    p = principalOfCertificate(subject, cert?.subjectaltname) ?? {
      kind: 'client',
      name: String(subject.CN ?? '?'),
      roles: [],
      journals: [],
    };
  }
  principals.set(socket, p);
  return p;
}

/** The principal settled at the connection's handshake; null (refused) when none was. */
export function settledPrincipal(socket: object): Principal | null {
  return principals.get(socket) ?? null;
}

/** Installs the one hook: every request gets its caller, then the route's rule decides. */
export function registerAuthorization(app: FastifyInstance, mode: 'mutual-tls' | 'insecure'): void {
  app.decorateRequest('caller', null);
  app.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
    if (mode === 'insecure') {
      req.caller = INSECURE_CALLER;
      return;
    }
    req.caller = settledPrincipal(req.raw.socket);
    const rule = ruleFor(req.routeOptions.url);
    const refusal = decide(req.caller, rule.allowed);
    if (refusal) return refuse(reply, rule.envelope, refusal);
  });
}

/**
 * A Raft batch may speak only for the node its certificate names: the batch's `from` and every message's.
 * (Whether that node is a member of the configuration is checked beside this, by the caller.) Returns the
 * refusal, or null.
 */
export function authorizePeerBatch(caller: Caller | null, batch: Batch): QjmError | null {
  if (caller?.kind === 'insecure') return null;
  if (caller?.kind !== 'node') return new QjmError('FORBIDDEN', 'Raft traffic needs a node certificate');
  if (batch.from !== caller.id)
    return new QjmError(
      'FORBIDDEN',
      `node ${caller.id}'s certificate cannot send a batch from ${JSON.stringify(batch.from)}`,
    );
  const forged = batch.messages.find((m) => m.from !== caller.id);
  if (forged)
    return new QjmError(
      'FORBIDDEN',
      `node ${caller.id}'s certificate cannot send a message from ${JSON.stringify(forged.from)}`,
    );
  return null;
}

/**
 * A journal route may touch only a journal the caller's certificate names (admin: any). Every route that takes
 * a journal id asks this before it acts, with the id as the request carries it. Returns the refusal, or null.
 */
export function authorizeJournal(caller: Caller | null, jid: string): QjmError | null {
  if (caller?.kind === 'insecure') return null;
  if (caller !== null && mayUseJournal(caller, jid)) return null;
  if (caller?.kind !== 'client') return new QjmError('FORBIDDEN', 'journal routes need a client certificate');
  const refused = `${describePrincipal(caller)} may not use journal ${JSON.stringify(jid).slice(0, 140)}`;
  if (caller.journals.length === 0)
    return new QjmError(
      'FORBIDDEN',
      `${refused}: its certificate names no journal (issued before certificates were scoped to journals); re-issue it: qjm cert create-client ${caller.name} --role ${caller.roles.join(',')} --journal JID[,JID] --overwrite`,
    );
  return new QjmError('FORBIDDEN', `${refused}: its certificate names journals ${describeJournals(caller)}`);
}

/**
 * A forced format (it wipes a journal) and a forced purge (past the retention floor): admin only. Throws the
 * refusal (the route answers it).
 */
export function requireAdminToForce(caller: Caller | null, what: string): void {
  const refusal = decide(caller, ['admin']);
  if (refusal) throw new QjmError(refusal.errorName, `${what} with force: ${refusal.message}`);
}

/** Who a caller is, in a log line or a message: a certificate's name, or "anonymous". */
export function callerName(caller: Caller | null): string {
  if (!caller || caller.kind === 'insecure') return 'anonymous';
  return caller.kind === 'node' ? `node ${caller.id}` : caller.name;
}
