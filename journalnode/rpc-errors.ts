// Errors on the wire: each error name maps to an HTTP status and to the RpcError message libqjm decodes.
// Bad input is a 4xx and changes nothing; a journal rejection (FENCED, OUT_OF_SYNC, ...) is a 409.

import { qjournal } from '../src/gen/proto.js';
import { QjmError } from '../src/errors.js';
import type { ErrorName } from '../src/errors.js';

const pb = qjournal.journal;

export const HTTP_STATUS: Record<ErrorName, number> = {
  NOT_LEADER: 421,
  FENCED: 409,
  OUT_OF_SYNC: 409,
  NOT_FORMATTED: 404,
  ALREADY_FORMATTED: 409,
  NAMESPACE_MISMATCH: 409,
  TOO_LARGE: 413,
  INVALID_ARGUMENT: 400,
  QUORUM_UNAVAILABLE: 503,
  TIMEOUT: 504,
  BUSY: 429,
  LEADERSHIP_LOST: 503,
  DROPPED: 503,
  TERM_MISMATCH: 409,
  SHUTTING_DOWN: 503,
  CONF_CHANGE_IN_PROGRESS: 409,
  INVALID_CONF_CHANGE: 400,
  CORRUPT: 500,
  UNAVAILABLE: 503,
  UNAUTHORIZED: 403,
  WRITER_ACTIVE: 409,
  INTERNAL: 500,
};

export function errorNameOf(code: number): ErrorName {
  const name = pb.ErrorCode[code] as string | undefined;
  return name && name !== 'OK' && name in HTTP_STATUS ? (name as ErrorName) : 'INTERNAL';
}

export function toRpcError(e: QjmError, term: number): qjournal.journal.IRpcError {
  const d = e.details;
  return {
    code: pb.ErrorCode[e.errorName],
    message: e.message,
    leaderId: typeof d.leaderId === 'string' ? d.leaderId : '',
    leaderAddress: typeof d.leaderAddress === 'string' ? d.leaderAddress : '',
    promisedEpoch: typeof d.promisedEpoch === 'number' ? d.promisedEpoch : 0,
    unknownOutcome: d.unknownOutcome === true,
    term,
  };
}

/** A thrown value as a QjmError (anything unexpected is INTERNAL). */
export function asQjmError(e: unknown): QjmError {
  if (e instanceof QjmError) return e;
  return new QjmError('INTERNAL', e instanceof Error ? e.message : String(e));
}

export function invalid(message: string): QjmError {
  return new QjmError('INVALID_ARGUMENT', message);
}
