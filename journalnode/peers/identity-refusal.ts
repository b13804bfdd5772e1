// A peer stream refused for the identity rules (src/replica/identity.ts), both ends: the JSON the refusing node
// answers (409, `identity` beside the code and message: what the refused node needs to know about itself), and
// the sender's reading of it. The answer comes from the node the sender dialed (its certificate checked against
// the id the configuration puts at that address), yet it is checked field by field like any input from the
// network: a malformed one is ignored.

import { isClusterIdOrNone, isNodeId, isStorageBinding } from '../../src/ids.js';
import { NOTICE_KINDS } from '../../src/replica/identity.js';
import type { IdentityNotice, NoticeKind } from '../../src/replica/identity.js';

/** The HTTP status of an identity refusal. */
export const IDENTITY_REFUSAL_STATUS = 409;

/** Members one notice may name: as many as a snapshot's metadata may (journal-node.ts MAX_MEMBERS). */
const MAX_NOTICE_MEMBERS = 1024;

/** The error code a refusal carries, by what it tells the sender. */
export function refusalCode(notice: IdentityNotice | null): string {
  switch (notice?.kind) {
    case 'reset-away':
    case 'stood-down':
      return 'QJM_ERR_STOOD_DOWN';
    case 'storage-mismatch':
      return 'QJM_ERR_STORAGE_MISMATCH';
    default:
      return 'QJM_ERR_FORBIDDEN';
  }
}

/** The refusal's JSON body. */
export function identityRefusalBody(reason: string, notice: IdentityNotice | null): object {
  return notice
    ? { code: refusalCode(notice), message: reason, identity: notice }
    : { code: refusalCode(null), message: reason };
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
