// What the peer routes that serve a node's own data share (snapshots, integrity reports, repair copies): only a
// member of the configuration this node applied may call them, and their query parameters are read strictly
// (a parameter given twice, or a number that is not plain decimal digits, is no value).

import type { FastifyRequest } from 'fastify';
import { QjmError } from '../../src/errors.js';
import type { PeerDirectory } from '../../src/replica/peer-directory.js';

/** Who the routes ask about membership. */
export type MemberDirectory = Pick<PeerDirectory, 'isMember' | 'appliedIndex'>;

/** A query parameter: its value when given once, undefined when absent, null when given twice (`?a=1&a=2`). */
export function param(q: unknown, name: string): string | null | undefined {
  const v = (q as Record<string, unknown>)[name];
  return v === undefined ? undefined : typeof v === 'string' ? v : null;
}

/** A non-negative safe integer query parameter (decimal digits only), or null. */
export function count(q: unknown, name: string): number | null {
  const v = param(q, name);
  if (typeof v !== 'string' || !/^\d{1,16}$/.test(v)) return null;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : null;
}

/**
 * A snapshot, or a copy of a segment file, is journal data: only a member of this node's applied configuration
 * (a voter, or a learner being caught up: a node being added is a learner from the change's first step) reads
 * it. A node certificate proves an identity, not membership: a stranger's or a removed node's is refused.
 */
export function nonMember(req: FastifyRequest, directory: MemberDirectory, what = 'read snapshots'): QjmError | null {
  const caller = req.caller;
  if (caller?.kind === 'insecure') return null;
  if (caller?.kind === 'node' && directory.isMember(caller.id)) return null;
  const who = caller?.kind === 'node' ? `node ${caller.id}` : 'this caller';
  return new QjmError(
    'FORBIDDEN',
    `${who} is not a member of this node's configuration (applied at index ${directory.appliedIndex}): only members ${what}`,
  );
}
