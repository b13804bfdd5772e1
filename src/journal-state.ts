// The state of one journal as every layer sees it: epochs, writer, last txid and segments. One TypeScript
// shape (every field present, txids as numbers) and the one pair of conversions to and from the wire's
// JournalState message, which the RPCs (getJournalState, newEpoch's result) and snapshot manifests share.

import type { qjournal } from './gen/proto.js';

/**
 * A writer that wrote within this long is taken to be alive: `qjm finalize` (which would fence it) and a
 * forced format (which would destroy what it writes) refuse unless told otherwise.
 */
export const WRITER_ACTIVE_MS = 5000;

export type NamespaceInfoMessage = qjournal.journal.INamespaceInfo;

export interface SegmentState {
  firstTxId: number;
  /** firstTxId - 1 while an in-progress segment holds no txid. */
  lastTxId: number;
  inProgress: boolean;
  /** The file's name in the journal's directory. */
  file: string;
  sizeBytes: number;
  /** CRC32 of the file's first sizeBytes bytes (snapshot manifests; 0 where not computed). */
  crc32: number;
  layoutVersion: number;
}

export interface JournalStateData {
  jid: string;
  formatted: boolean;
  nsInfo: NamespaceInfoMessage;
  promisedEpoch: number;
  lastWriterEpoch: number;
  writerId: string;
  lastTxId: number;
  segments: SegmentState[];
  /** The request id of the newEpoch that made promisedEpoch (a retry of it answers the same epoch). */
  epochRequestId: string;
}

function segmentFromProto(s: qjournal.journal.ISegmentInfo): SegmentState {
  return {
    firstTxId: Number(s.firstTxid ?? 0),
    lastTxId: Number(s.lastTxid ?? 0),
    inProgress: s.inProgress ?? false,
    file: s.file ?? '',
    sizeBytes: Number(s.sizeBytes ?? 0),
    crc32: (s.crc32 ?? 0) >>> 0,
    layoutVersion: s.layoutVersion ?? 0,
  };
}

export function journalStateFromProto(j: qjournal.journal.IJournalState): JournalStateData {
  return {
    jid: j.jid ?? '',
    formatted: j.formatted ?? false,
    nsInfo: j.nsInfo ?? {},
    promisedEpoch: Number(j.promisedEpoch ?? 0),
    lastWriterEpoch: Number(j.lastWriterEpoch ?? 0),
    writerId: j.writerId ?? '',
    lastTxId: Number(j.lastTxid ?? 0),
    segments: (j.segments ?? []).map(segmentFromProto),
    epochRequestId: j.epochRequestId ?? '',
  };
}

export function segmentToProto(s: SegmentState): qjournal.journal.ISegmentInfo {
  const { firstTxId, lastTxId, ...same } = s;
  return { firstTxid: firstTxId, lastTxid: lastTxId, ...same };
}

export function journalStateToProto(d: JournalStateData): qjournal.journal.IJournalState {
  const { lastTxId, segments, ...same } = d;
  return { ...same, lastTxid: lastTxId, segments: segments.map(segmentToProto) };
}
