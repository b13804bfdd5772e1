// A peer stream refused for the identity rules (src/replica/identity.ts), both ends: the JSON the refusing node
// answers (409, `identity` beside the code and message: what the refused node needs to know about itself), and
// the sender's reading of it. The answer comes from the node the sender dialed (its certificate checked against
// the id the configuration puts at that address), yet it is checked field by field like any input from the
// network: a malformed one is ignored.

import { httpStatusOf, QjmError } from '../../src/errors.js';
import type { ErrorCode, ErrorName } from '../../src/errors.js';
import { isClusterIdOrNone, isNodeId, isStorageBinding } from '../../src/ids.js';
import { NOTICE_KINDS } from '../../src/replica/identity.js';
import type { IdentityNotice, NoticeKind } from '../../src/replica/identity.js';

/**
 * The HTTP status of an identity refusal that carries a notice: STOOD_DOWN's and STORAGE_MISMATCH's in the one
 * status table (src/errors.ts), the same for both.
 */
export const IDENTITY_REFUSAL_STATUS = httpStatusOf('STOOD_DOWN');

/** Members one notice may name: as many as a snapshot's metadata may (journal-node.ts MAX_MEMBERS). */
const MAX_NOTICE_MEMBERS = 1024;

/** The error a refusal is, by what it tells the sender (no notice: a plain FORBIDDEN). */
function refusalName(notice: IdentityNotice | null): ErrorName {
  switch (notice?.kind) {
    case 'reset-away':
    case 'stood-down':
      return 'STOOD_DOWN';
    case 'storage-mismatch':
      return 'STORAGE_MISMATCH';
    default:
      return 'FORBIDDEN';
  }
}

/** A peer stream refused for the identity rules: its error by the notice, answered with the notice beside it. */
export class IdentityRefusal extends QjmError {
  constructor(
    reason: string,
    readonly notice: IdentityNotice | null,
  ) {
    super(refusalName(notice), reason);
  }

  override jsonBody(): { code: ErrorCode; message: string; identity?: IdentityNotice } {
    return this.notice ? { ...super.jsonBody(), identity: this.notice } : super.jsonBody();
  }
}

/** The refusal's JSON body. */
export function identityRefusalBody(reason: string, notice: IdentityNotice | null): object {
  return new IdentityRefusal(reason, notice).jsonBody();
}

/** The notice in a refused stream's answer, or null when there is none or it does not check out. */
export function parseIdentityRefusal(status: number, body: Buffer): IdentityNotice | null {
  if (status !== IDENTITY_REFUSAL_STATUS) return null;
  let json: unknown;
  try {
    json = JSON.parse(body.toString('utf8'));
  } catch {
    return null;
  }
  const n = (json as { identity?: unknown } | null)?.identity as Partial<IdentityNotice> | undefined;
  if (typeof n !== 'object' || n === null) return null;
  const { kind, clusterId, generation, expectedStorageId, members } = n;
  if (!NOTICE_KINDS.includes(kind as NoticeKind)) return null;
  if (!isClusterIdOrNone(clusterId)) return null;
  if (typeof generation !== 'number' || !Number.isSafeInteger(generation) || generation < 0) return null;
  if (!isStorageBinding(expectedStorageId)) return null;
  if (!Array.isArray(members) || members.length > MAX_NOTICE_MEMBERS || !members.every((m) => isNodeId(m))) return null;
  return { kind: kind as NoticeKind, clusterId, generation, expectedStorageId, members: [...members] };
}
