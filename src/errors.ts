// The one error hierarchy of qjournal: every error a JournalNode answers or libqjm throws has a stable code
// (QJM_ERR_<NAME>, the wire enum name prefixed), the HTTP status it is answered with, and says whether
// retrying can help.
// docs/ERRORS.md documents every code; a test keeps the two in step.

export const ERROR_NAMES = [
  'NOT_LEADER',
  'FENCED',
  'OUT_OF_SYNC',
  'NOT_FORMATTED',
  'ALREADY_FORMATTED',
  'NAMESPACE_MISMATCH',
  'TOO_LARGE',
  'INVALID_ARGUMENT',
  'QUORUM_UNAVAILABLE',
  'TIMEOUT',
  'BUSY',
  'LEADERSHIP_LOST',
  'DROPPED',
  'TERM_MISMATCH',
  'SHUTTING_DOWN',
  'CONF_CHANGE_IN_PROGRESS',
  'INVALID_CONF_CHANGE',
  'CORRUPT',
  'UNAVAILABLE',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'WRITER_ACTIVE',
  'INTERNAL',
  'STORAGE_FAILED',
  'PURGED',
  'TOO_MANY_JOURNALS',
  'STOOD_DOWN',
  'UNINITIALIZED',
  'STORAGE_MISMATCH',
] as const;

export type ErrorName = (typeof ERROR_NAMES)[number];
export type ErrorCode = `QJM_ERR_${ErrorName}`;

/** Whether a retry of the same request can succeed (possibly on another node, after backoff). */
const RETRIABLE: Record<ErrorName, boolean> = {
  NOT_LEADER: true,
  FENCED: false,
  OUT_OF_SYNC: false,
  NOT_FORMATTED: false,
  ALREADY_FORMATTED: false,
  NAMESPACE_MISMATCH: false,
  TOO_LARGE: false,
  INVALID_ARGUMENT: false,
  QUORUM_UNAVAILABLE: true,
  TIMEOUT: true,
  BUSY: true,
  LEADERSHIP_LOST: true,
  DROPPED: true,
  TERM_MISMATCH: true,
  SHUTTING_DOWN: true,
  CONF_CHANGE_IN_PROGRESS: true,
  INVALID_CONF_CHANGE: false,
  CORRUPT: false,
  UNAVAILABLE: true,
  UNAUTHENTICATED: false,
  FORBIDDEN: false,
  WRITER_ACTIVE: false,
  INTERNAL: false,
  // The node's disk failed; another node (a new leader) can take the write.
  STORAGE_FAILED: true,
  PURGED: false,
  TOO_MANY_JOURNALS: false,
  // The node left its cluster for good (reset away, or its storage replaced): no retry there can succeed.
  STOOD_DOWN: false,
  // The node waits to form a cluster or to be added: another node may serve.
  UNINITIALIZED: true,
  // The node's storage is not the one its cluster binds its id to; it waits to be re-added: another node may serve.
  STORAGE_MISMATCH: true,
};

/**
 * The HTTP status each error is answered with, on every route and in every envelope (protobuf or JSON): the
 * one table, documented in docs/ERRORS.md (a test keeps the two in step).
 */
const HTTP_STATUS: Record<ErrorName, number> = {
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
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  WRITER_ACTIVE: 409,
  INTERNAL: 500,
  STORAGE_FAILED: 503,
  PURGED: 410,
  TOO_MANY_JOURNALS: 409,
  STOOD_DOWN: 409,
  UNINITIALIZED: 503,
  STORAGE_MISMATCH: 409,
};

export function httpStatusOf(name: ErrorName): number {
  return HTTP_STATUS[name];
}

export function isRetriable(name: ErrorName): boolean {
  return RETRIABLE[name];
}

export function codeOf(name: ErrorName): ErrorCode {
  return `QJM_ERR_${name}`;
}

export interface QjmErrorDetails {
  /** NOT_LEADER: the leader's id and address, when known. */
  leaderId?: string;
  leaderAddress?: string;
  /** FENCED: the epoch the journal promised. */
  promisedEpoch?: number;
  /** TIMEOUT / LEADERSHIP_LOST: the write may or may not have been applied (repeating it is safe but for format). */
  unknownOutcome?: boolean;
  /** PURGED: the first txid the journal still holds. */
  firstAvailableTxId?: number;
  /** UNAVAILABLE: the socket error that kept the request from the node (ECONNREFUSED, EHOSTUNREACH, ...). */
  networkCode?: string;
  [key: string]: unknown;
}

export class QjmError extends Error {
  override name = 'QjmError';
  readonly code: ErrorCode;
  readonly retriable: boolean;
  /** The status this error is answered with over HTTP. */
  readonly httpStatus: number;

  constructor(
    readonly errorName: ErrorName,
    message: string,
    readonly details: QjmErrorDetails = {},
  ) {
    super(message);
    this.code = codeOf(errorName);
    this.retriable = isRetriable(errorName);
    this.httpStatus = httpStatusOf(errorName);
  }

  /** The body of a refusal on a route that answers JSON (its status is `httpStatus`). */
  jsonBody(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** The QjmError subclass of one error name: `instanceof FencedError` and `e.name === 'FencedError'` both hold. */
function typedError(errorName: ErrorName, className: string, defaults: QjmErrorDetails = {}) {
  return class extends QjmError {
    override name = className;
    constructor(message: string, details: QjmErrorDetails = {}) {
      super(errorName, message, { ...defaults, ...details });
    }
  };
}

export class NotLeaderError extends typedError('NOT_LEADER', 'NotLeaderError') {}
export class FencedError extends typedError('FENCED', 'FencedError') {}
export class OutOfSyncError extends typedError('OUT_OF_SYNC', 'OutOfSyncError') {}
export class NotFormattedError extends typedError('NOT_FORMATTED', 'NotFormattedError') {}
export class AlreadyFormattedError extends typedError('ALREADY_FORMATTED', 'AlreadyFormattedError') {}
export class NamespaceMismatchError extends typedError('NAMESPACE_MISMATCH', 'NamespaceMismatchError') {}
export class TooLargeError extends typedError('TOO_LARGE', 'TooLargeError') {}
export class InvalidArgumentError extends typedError('INVALID_ARGUMENT', 'InvalidArgumentError') {}
export class QuorumUnavailableError extends typedError('QUORUM_UNAVAILABLE', 'QuorumUnavailableError') {}
/** The txids asked for were purged: details.firstAvailableTxId names the first still held. */
export class PurgedError extends typedError('PURGED', 'PurgedError') {}
/** The node's disk failed (full, I/O error); it refuses writes until repaired. */
export class StorageFailedError extends typedError('STORAGE_FAILED', 'StorageFailedError') {}
/** The node stood down for good: reset away by reset-peers, or replaced by another storage under its id. */
export class StoodDownError extends typedError('STOOD_DOWN', 'StoodDownError') {}
/** The request may or may not have been applied: its outcome is unknown. */
export class TimeoutError extends typedError('TIMEOUT', 'TimeoutError', { unknownOutcome: true }) {}

const CLASSES: Partial<Record<ErrorName, new (message: string, details?: QjmErrorDetails) => QjmError>> = {
  NOT_LEADER: NotLeaderError,
  FENCED: FencedError,
  OUT_OF_SYNC: OutOfSyncError,
  NOT_FORMATTED: NotFormattedError,
  ALREADY_FORMATTED: AlreadyFormattedError,
  NAMESPACE_MISMATCH: NamespaceMismatchError,
  TOO_LARGE: TooLargeError,
  INVALID_ARGUMENT: InvalidArgumentError,
  QUORUM_UNAVAILABLE: QuorumUnavailableError,
  TIMEOUT: TimeoutError,
  PURGED: PurgedError,
  STORAGE_FAILED: StorageFailedError,
  STOOD_DOWN: StoodDownError,
};

/** Builds the typed error for a name (as decoded from the wire). */
export function makeError(name: ErrorName, message: string, details: QjmErrorDetails = {}): QjmError {
  const cls = CLASSES[name];
  return cls ? new cls(message, details) : new QjmError(name, message, details);
}

export function isErrorName(s: string): s is ErrorName {
  return (ERROR_NAMES as readonly string[]).includes(s);
}
