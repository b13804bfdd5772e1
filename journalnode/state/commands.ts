// The journal's commands (the data of Raft entries): the one structural validation of a command, used twice.
// The route runs it before proposing, with this node's limits, and refuses with a 4xx. Every replica runs it
// again when the entry applies, with limits that do not depend on any node's settings, so an entry that is
// not a valid command (a bug, a buggy or forged peer) is a no-op with the same error result everywhere.

import { qjournal } from '../../src/gen/proto.js';
import { validateBatch } from '../../src/edit-records.js';
import { QjmError } from '../../src/errors.js';
import { isJournalId, JOURNAL_ID_RULE } from '../../src/ids.js';
import { SETTINGS } from '../../src/settings.js';
import { WRITE_OPS } from './write-rpcs.js';

const pb = qjournal.journal;

export type OpField = (typeof WRITE_OPS)[keyof typeof WRITE_OPS];
const OP_FIELDS: OpField[] = Object.values(WRITE_OPS);

export interface CommandLimits {
  maxRecordBytes: number;
  maxBatchBytes: number;
}

/**
 * The limits every replica applies with: the largest any node may be configured with. A node's own, smaller
 * limits are checked where the command enters (the route on the leader); apply-time checks must not depend on
 * one node's settings, or replicas would disagree.
 */
export const APPLY_LIMITS: CommandLimits = {
  maxRecordBytes: SETTINGS.maxRecordBytes.max,
  maxBatchBytes: SETTINGS.maxBatchBytes.max,
};

/**
 * The most journals any replica lets a format create, whatever the command carries: the largest maxJournals a
 * node may be configured with. A format carries its leader's own, smaller limit (FormatOp.maxJournals), which
 * applies when set; both are in the command or fixed here, so every replica takes the same decision.
 */
export const APPLY_MAX_JOURNALS = SETTINGS.maxJournals.max;

/** The journal limit a committed format applies with: the one it carries, never above APPLY_MAX_JOURNALS. */
export function journalLimitOf(format: qjournal.journal.IFormatOp): number {
  const carried = Number(format.maxJournals ?? 0);
  return carried > 0 ? Math.min(carried, APPLY_MAX_JOURNALS) : APPLY_MAX_JOURNALS;
}

/** Strings in a command (writer ids, namespace strings) are at most this long. */
const MAX_STRING_CHARS = 256;

export function invalid(message: string): QjmError {
  return new QjmError('INVALID_ARGUMENT', message);
}

export function checkIndex(v: unknown, field: string, min: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw invalid(`${field} must be an integer >= ${min} and at most 2^53-1, got ${String(v)}`);
  }
  return v;
}

export function checkJid(jid: string): void {
  if (!isJournalId(jid)) throw invalid(`bad journal id ${JSON.stringify(jid)}: expected ${JOURNAL_ID_RULE}`);
}

function checkString(s: string | null | undefined, field: string): void {
  if ((s ?? '').length > MAX_STRING_CHARS) throw invalid(`${field} is limited to ${MAX_STRING_CHARS} characters`);
}

function checkNs(ns: qjournal.journal.INamespaceInfo | null | undefined): void {
  if (!ns) throw invalid('nsInfo is required');
  checkIndex(Number(ns.namespaceId ?? 0), 'nsInfo.namespaceId', 0);
  checkIndex(Number(ns.ctime ?? 0), 'nsInfo.ctime', 0);
  checkString(ns.clusterId, 'nsInfo.clusterId');
  checkString(ns.blockPoolId, 'nsInfo.blockPoolId');
}

const n = (v: number | null | undefined) => Number(v ?? 0);

function checkAppendRecords(j: qjournal.journal.IAppendRecordsOp, limits: CommandLimits): void {
  const records = j.records ?? new Uint8Array(0);
  const count = n(j.count);
  checkIndex(n(j.epoch), 'epoch', 1);
  const segmentTxid = checkIndex(n(j.segmentTxid), 'segmentTxid', 1);
  const first = checkIndex(n(j.firstTxid), 'firstTxid', 1);
  if (count < 1) throw invalid('count must be at least 1');
  checkIndex(first + count - 1, 'last txid (firstTxid + count - 1)', 1);
  if (first < segmentTxid) throw invalid(`firstTxid ${first} is before the segment's first txid ${segmentTxid}`);
  if (records.byteLength > limits.maxBatchBytes)
    throw new QjmError(
      'TOO_LARGE',
      `batch of ${records.byteLength} bytes is over maxBatchBytes (${limits.maxBatchBytes})`,
    );
  const problem = validateBatch(records, first, count, { maxRecordBytes: limits.maxRecordBytes });
  if (problem) throw new QjmError(problem.name, problem.message);
}

/** The epoch and txid fields of each operation, and the least value each may take. */
const INDEX_FIELDS: Record<OpField, [field: string, min: number][]> = {
  format: [],
  newEpoch: [],
  startSegment: [
    ['epoch', 1],
    ['txid', 1],
  ],
  appendRecords: [], // checkAppendRecords
  finalizeSegment: [
    ['epoch', 1],
    ['firstTxid', 1],
    ['lastTxid', 1],
  ],
  dropSegment: [
    ['epoch', 1],
    ['firstTxid', 1],
  ],
  purge: [
    ['epoch', 1],
    ['minTxidToKeep', 0],
    ['retainFromTxid', 0],
  ],
};

/**
 * Structural and limit checks of a command; returns the operation it carries. State checks (epochs, txid
 * continuity) are the journal's, when it applies. Throws INVALID_ARGUMENT or TOO_LARGE.
 */
export function validateCommand(cmd: qjournal.journal.ICommand, limits: CommandLimits): OpField {
  checkJid(cmd.jid ?? '');
  const present = OP_FIELDS.filter((f) => cmd[f] != null);
  if (present.length !== 1)
    throw invalid(`a command carries exactly one operation, got ${present.join(', ') || 'none'}`);
  const op = present[0]!;
  const fields = INDEX_FIELDS[op];
  for (const [field, min] of fields)
    checkIndex(n((cmd[op] as Record<string, number | null | undefined>)[field]), field, min);
  switch (op) {
    case 'format':
      checkNs(cmd.format!.nsInfo);
      break;
    case 'newEpoch':
      checkNs(cmd.newEpoch!.nsInfo);
      checkString(cmd.newEpoch!.writerId, 'writerId');
      checkString(cmd.newEpoch!.requestId, 'requestId');
      break;
    case 'appendRecords':
      checkAppendRecords(cmd.appendRecords!, limits);
      break;
    case 'finalizeSegment': {
      const f = cmd.finalizeSegment!;
      if (n(f.lastTxid) < n(f.firstTxid))
        throw invalid(`lastTxid ${n(f.lastTxid)} is before firstTxid ${n(f.firstTxid)}`);
      break;
    }
    default:
      break;
  }
  return op;
}

/**
 * A committed entry's data as a command, checked as the route checked it (with APPLY_LIMITS), or the error
 * that makes it a no-op. Deterministic: it depends only on the bytes.
 */
export function decodeCommittedCommand(data: Uint8Array): { cmd: qjournal.journal.Command } | { error: QjmError } {
  let cmd: qjournal.journal.Command;
  try {
    cmd = pb.Command.decode(data);
  } catch (e) {
    return { error: invalid(`not a command: ${(e as Error).message}`) };
  }
  try {
    validateCommand(cmd, APPLY_LIMITS);
  } catch (e) {
    if (e instanceof QjmError) return { error: e };
    throw e;
  }
  return { cmd };
}
