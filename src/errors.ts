// The one error hierarchy of qjournal: every error a JournalNode answers or libqjm throws has a stable code
// (QJM_ERR_<NAME>, the wire enum name prefixed) and says whether retrying can help.
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
  'UNAUTHORIZED',
  'WRITER_ACTIVE',
  'INTERNAL',
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
  UNAUTHORIZED: false,
  WRITER_ACTIVE: false,
  INTERNAL: false,
};

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
  /** TIMEOUT / LEADERSHIP_LOST: the write may or may not have been applied; retry it idempotently. */
  unknownOutcome?: boolean;
  [key: string]: unknown;
}

export class QjmError extends Error {
  override name = 'QjmError';
  readonly code: ErrorCode;
  readonly retriable: boolean;

  constructor(
    readonly errorName: ErrorName,
    message: string,
    readonly details: QjmErrorDetails = {},
  ) {
    super(message);
    this.code = codeOf(errorName);
    this.retriable = isRetriable(errorName);
  }
}

export class NotLeaderError extends QjmError {
  override name = 'NotLeaderError';
  constructor(message: string, details: QjmErrorDetails = {}) {
    super('NOT_LEADER', message, details);
  }
}
export class FencedError extends QjmError {
  override name = 'FencedError';
  constructor(message: string, details: QjmErrorDetails = {}) {
    super('FENCED', message, details);
  }
}
export class OutOfSyncError extends QjmError {
  override name = 'OutOfSyncError';
  constructor(message: string, details: QjmErrorDetails = {}) {
    super('OUT_OF_SYNC', message, details);
  }
}
export class NotFormattedError extends QjmError {
  override name = 'NotFormattedError';
  constructor(message: string, details: QjmErrorDetails = {}) {
    super('NOT_FORMATTED', message, details);
  }
}
export class AlreadyFormattedError extends QjmError {
  override name = 'AlreadyFormattedError';
  constructor(message: string, details: QjmErrorDetails = {}) {
    super('ALREADY_FORMATTED', message, details);
  }
}
export class NamespaceMismatchError extends QjmError {
  override name = 'NamespaceMismatchError';
  constructor(message: string, details: QjmErrorDetails = {}) {
    super('NAMESPACE_MISMATCH', message, details);
  }
}
export class TooLargeError extends QjmError {
  override name = 'TooLargeError';
  constructor(message: string, details: QjmErrorDetails = {}) {
    super('TOO_LARGE', message, details);
  }
}
export class InvalidArgumentError extends QjmError {
  override name = 'InvalidArgumentError';
  constructor(message: string, details: QjmErrorDetails = {}) {
    super('INVALID_ARGUMENT', message, details);
  }
}
export class QuorumUnavailableError extends QjmError {
  override name = 'QuorumUnavailableError';
  constructor(message: string, details: QjmErrorDetails = {}) {
    super('QUORUM_UNAVAILABLE', message, details);
  }
}
export class TimeoutError extends QjmError {
  override name = 'TimeoutError';
  constructor(message: string, details: QjmErrorDetails = {}) {
    super('TIMEOUT', message, { unknownOutcome: true, ...details });
  }
}

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
};

/** Builds the typed error for a name (as decoded from the wire). */
export function makeError(name: ErrorName, message: string, details: QjmErrorDetails = {}): QjmError {
  const cls = CLASSES[name];
  return cls ? new cls(message, details) : new QjmError(name, message, details);
}

export function isErrorName(s: string): s is ErrorName {
  return (ERROR_NAMES as readonly string[]).includes(s);
}
