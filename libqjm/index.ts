// libqjm: the writer and reader library of qjournal (import from 'qjournal/libqjm').
export { QuorumJournalManager } from './quorum-journal-manager.js';
export type {
  QjmOptions,
  NamespaceInfo,
  SegmentDescriptor,
  EditLogManifest,
  JournalStatus,
} from './quorum-journal-manager.js';
export { EditLogOutputStream } from './output-stream.js';
export { AdminClient } from './admin-client.js';
export type { IntegrityReportOf, NodeStatusReport } from './admin-client.js';
export type { Edit, ReadEditsOptions } from './edit-reader.js';
export type { TlsOption } from './tls-option.js';
export type { RetryObserver } from './retry-policy.js';
export {
  QjmError,
  NotLeaderError,
  FencedError,
  OutOfSyncError,
  NotFormattedError,
  AlreadyFormattedError,
  NamespaceMismatchError,
  TooLargeError,
  InvalidArgumentError,
  QuorumUnavailableError,
  TimeoutError,
  PurgedError,
  StorageFailedError,
  StoodDownError,
  ERROR_NAMES,
} from '../src/errors.js';
export type { ErrorCode, ErrorName } from '../src/errors.js';
