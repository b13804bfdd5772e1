// The journal write request on the wire, where it is handled as bytes rather than through the generated
// codec: the writer frames its records straight into the request (the header goes in front of them, in
// place), and the leader proposes the command exactly as it arrived (its slice of the request). Field
// numbers are proto/journal.proto's: WriteRequest { Command command = 1; uint64 expected_term = 2 },
// Command { string jid = 1; AppendRecordsOp append_records = 5 }, AppendRecordsOp { epoch = 1, segment_txid = 2,
// first_txid = 3, count = 4, bytes records = 5 }.

import protobuf from 'protobufjs/minimal.js';
import { putVarint, varintBytes } from './raft/bytes.js';

const { Reader, util } = protobuf;

const LENGTH_DELIMITED = 2;

// ---------------------------------------------------------------- the writer's side

/** What a journal() request says besides its records. */
export interface JournalHeader {
  jid: string;
  epoch: number;
  segmentTxId: number;
  firstTxId: number;
  count: number;
  recordsBytes: number;
}

/** The most header bytes a journal id needs in front of its records (every varint at its longest). */
export function journalHeaderRoom(jid: string): number {
  return 3 * (1 + 10) + 1 + 10 + Buffer.byteLength(jid) + 4 * (1 + 10) + 1 + 10;
}

/**
 * Writes the bytes of `WriteRequest { command: { jid, append_records: { epoch, segment_txid, first_txid, count,
 * records } } }` that precede the records, right-aligned to end at `end`; returns where they start. The
 * records already framed from `end` on complete the request.
 */
export function putJournalHeader(b: Buffer, end: number, h: JournalHeader): number {
  const jidBytes = Buffer.byteLength(h.jid);
  const varints = (
    [
      [1, h.epoch],
      [2, h.segmentTxId],
      [3, h.firstTxId],
      [4, h.count],
    ] as const
  ).filter(([, v]) => v !== 0);
  let opBytes = 1 + varintBytes(h.recordsBytes) + h.recordsBytes;
  for (const [, v] of varints) opBytes += 1 + varintBytes(v);
  const commandBytes = 1 + varintBytes(jidBytes) + jidBytes + 1 + varintBytes(opBytes) + opBytes;
  const headerBytes = 1 + varintBytes(commandBytes) + (commandBytes - h.recordsBytes);
  const start = end - headerBytes;
  let at = start;
  b[at++] = (1 << 3) | LENGTH_DELIMITED; // WriteRequest.command
  at = putVarint(b, at, commandBytes);
  b[at++] = (1 << 3) | LENGTH_DELIMITED; // Command.jid
  at = putVarint(b, at, jidBytes);
  at += b.write(h.jid, at, 'utf8');
  b[at++] = (5 << 3) | LENGTH_DELIMITED; // Command.append_records
  at = putVarint(b, at, opBytes);
  for (const [field, v] of varints) {
    b[at++] = field << 3;
    at = putVarint(b, at, v);
  }
  b[at++] = (5 << 3) | LENGTH_DELIMITED; // AppendRecordsOp.records
  at = putVarint(b, at, h.recordsBytes);
  if (at !== end) throw new Error(`journal header: wrote ${at - start} bytes, expected ${headerBytes}`);
  return start;
}

// ---------------------------------------------------------------- the leader's side

/** A WriteRequest as the write routes read it: the command's own bytes (its slice of the body) and the term. */
export interface WriteRequestParts {
  /** Null when the request has no command. */
  commandBytes: Uint8Array | null;
  expectedTerm: number;
}

export class MalformedWriteRequestError extends Error {
  override name = 'MalformedWriteRequestError';
}

/**
 * Reads a WriteRequest field by field (protobufjs's wire reader, as the batch-shape check walks a batch),
 * without decoding the command: its slice of the body is what the leader decodes, validates and proposes. A
 * request naming the command twice is refused (a protobuf decoder keeps the last one, another reader might
 * merge the two; what is checked must be what is proposed), and so are field number 0 and the group wire
 * types.
 */
export function readWriteRequest(body: Uint8Array): WriteRequestParts {
  const r = Reader.create(body);
  let commandBytes: Uint8Array | null = null;
  let expectedTerm = 0;
  // Varints read whole (as 64-bit), never cut to 32 bits: a tag or a length is what it says or refused.
  const varint = () => util.LongBits.from(r.uint64()).toNumber(true);
  try {
    while (r.pos < r.len) {
      const tag = varint();
      const field = Math.floor(tag / 8);
      const wireType = tag % 8;
      if (field === 0) throw new MalformedWriteRequestError('field number 0');
      if (field === 1 && wireType === LENGTH_DELIMITED) {
        if (commandBytes) throw new MalformedWriteRequestError('the command is given twice');
        const len = varint();
        const start = r.pos;
        r.skip(len);
        commandBytes = body.subarray(start, r.pos);
      } else if (field === 2 && wireType === 0) {
        expectedTerm = varint();
      } else if (SKIPPABLE_WIRE_TYPES.has(wireType)) {
        r.skipType(wireType);
      } else {
        throw new MalformedWriteRequestError(`wire type ${wireType}`);
      }
    }
  } catch (e) {
    // The reader's own refusals (a varint or a field running past the end, a varint over 10 bytes).
    if (e instanceof MalformedWriteRequestError) throw e;
    throw new MalformedWriteRequestError((e as Error).message);
  }
  return { commandBytes, expectedTerm };
}

/** Varint, 64-bit, length-delimited, 32-bit: every wire type but the deprecated groups. */
const SKIPPABLE_WIRE_TYPES = new Set([0, 1, LENGTH_DELIMITED, 5]);
