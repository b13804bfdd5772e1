// Raft messages on the wire: a MessageBatch (proto/raft.proto) per frame of a peer stream. The core's Message
// type mirrors the proto field for field, so decoded messages are handed to the core as they are, after
// RawNode.step has validated them. A batch is encoded as a list of chunks: entry data is written from where
// it is (never copied into an encoding, never encoded again for the next follower).

import protobuf from 'protobufjs/minimal.js';
import { qjournal } from '../gen/proto.js';
import { entryBytes } from '../raft/types.js';
import type { ConfChange, ConfChangeCodec, ConfChangeOp, Entry, Message } from '../raft/types.js';
import { putVarint, varintBytes } from '../raft/bytes.js';
import { FRAME_HEADER_BYTES } from './frames.js';

const pb = qjournal.raft;
const { Reader } = protobuf;

export interface Batch {
  from: string;
  clusterId: string;
  storageId: string;
  /** The sender's advertised address ('' when unknown). */
  fromAddress: string;
  /** The sender's reset generation (absent: 0, a cluster never reset). */
  generation?: number;
  /** Asks the receiver to answer with this number as its pong (absent or 0: no ask). */
  ping?: number;
  /** The newest ping received from the batch's receiver (absent or 0: none). */
  pong?: number;
  messages: Message[];
}

/** A batch's envelope: every field but its messages. */
function batchHead(b: Batch): qjournal.raft.IMessageBatch {
  return {
    from: b.from,
    clusterId: b.clusterId,
    storageId: b.storageId,
    fromAddress: b.fromAddress,
    generation: b.generation ?? 0,
    ping: b.ping ?? 0,
    pong: b.pong ?? 0,
  };
}

export function encodeBatch(b: Batch): Uint8Array {
  return pb.MessageBatch.encode({
    ...batchHead(b),
    messages: b.messages as unknown as qjournal.raft.IMessage[],
  }).finish();
}

/** Entry data up to this size is copied in with the headers around it; larger data is a chunk of its own. */
const INLINE_DATA_BYTES = 4096;

/**
 * Collects an encoding as chunks: small pieces are gathered into one buffer, large data is referenced where
 * it lies. The total length is known up front, so the first chunk can begin with it.
 */
class ChunkWriter {
  readonly chunks: Uint8Array[] = [];
  private buf: Buffer;
  private pos = 0;

  constructor(smallBytesHint: number) {
    this.buf = Buffer.allocUnsafe(Math.max(64, smallBytesHint));
  }

  private room(n: number): void {
    if (this.pos + n <= this.buf.byteLength) return;
    this.cut();
    this.buf = Buffer.allocUnsafe(Math.max(n, 1024));
  }

  /** Ends the current small buffer (what is written so far becomes a chunk). */
  private cut(): void {
    if (this.pos > 0) this.chunks.push(this.buf.subarray(0, this.pos));
    this.buf = this.buf.subarray(this.pos);
    this.pos = 0;
  }

  varint(v: number): void {
    this.room(10);
    this.pos = putVarint(this.buf, this.pos, v);
  }

  /** A varint field (omitted when zero, as proto3 does). */
  field(fieldNumber: number, v: number): void {
    if (v === 0) return;
    this.varint(fieldNumber << 3);
    this.varint(v);
  }

  u32be(v: number): void {
    this.room(4);
    this.buf.writeUInt32BE(v, this.pos);
    this.pos += 4;
  }

  bytes(b: Uint8Array): void {
    if (b.byteLength > INLINE_DATA_BYTES) {
      this.cut();
      this.chunks.push(b);
      return;
    }
    this.room(b.byteLength);
    this.buf.set(b, this.pos);
    this.pos += b.byteLength;
  }

  finish(): Uint8Array[] {
    this.cut();
    return this.chunks;
  }
}

/** An entry's encoding without its field tag and length: term, index, type, data. */
function entryBodyBytes(e: Entry): number {
  let n = 0;
  if (e.term !== 0) n += 1 + varintBytes(e.term);
  if (e.index !== 0) n += 1 + varintBytes(e.index);
  if (e.type !== 0) n += 1 + varintBytes(e.type);
  if (e.data.byteLength > 0) n += 1 + varintBytes(e.data.byteLength) + e.data.byteLength;
  return n;
}

/** Ids a snapshot's metadata carries in its configuration and address book (what maxMembers bounds). */
function snapshotMembers(m: Message): number {
  const s = m.snapshot;
  if (!s) return 0;
  return s.conf.voters.length + s.conf.votersOutgoing.length + s.conf.learners.length + (s.peers?.length ?? 0);
}

/**
 * The first messages of a batch, as many as one frame may carry within `limits` (all of them when they
 * fit), as one length-prefixed frame of a peer stream ([u32 BE length][MessageBatch]), in chunks whose
 * concatenation is the frame. Decodes with decodeBatch (after the length prefix) as encodeBatch's bytes do.
 * `count` is how many messages the frame carries; when the first one alone is over a limit, none: no frame.
 */
export function encodeBatchFrame(
  b: Batch,
  limits: BatchLimits = UNLIMITED,
): { chunks: Uint8Array[]; bytes: number; count: number } {
  const head = pb.MessageBatch.encode({ ...batchHead(b), messages: [] }).finish();
  // Each message: its fields but the entries (encoded by protobufjs, small), then its entries, field 7 each.
  const bodies: Uint8Array[] = [];
  const lengths: number[] = [];
  let total = head.byteLength;
  let small = head.byteLength;
  let entries = 0;
  for (const m of b.messages) {
    if (bodies.length === limits.maxMessages || entries + m.entries.length > limits.maxEntries) break;
    if (snapshotMembers(m) > limits.maxMembers) break;
    const body = pb.Message.encode({ ...(m as unknown as qjournal.raft.IMessage), entries: [] }).finish();
    let len = body.byteLength;
    let copied = 0;
    for (const e of m.entries) {
      const eb = entryBodyBytes(e);
      len += 1 + varintBytes(eb) + eb;
      // What the chunk writer copies: all of the entry's encoding but data it references where it lies.
      copied += 1 + varintBytes(eb) + eb - (e.data.byteLength > INLINE_DATA_BYTES ? e.data.byteLength : 0);
    }
    if (total + 1 + varintBytes(len) + len > limits.maxFrameBytes) break;
    bodies.push(body);
    lengths.push(len);
    total += 1 + varintBytes(len) + len;
    small += 11 + body.byteLength + copied;
    entries += m.entries.length;
  }
  const count = bodies.length;
  if (count === 0 && b.messages.length > 0) return { chunks: [], bytes: 0, count };
  const w = new ChunkWriter(FRAME_HEADER_BYTES + small);
  w.u32be(total);
  w.bytes(head);
  b.messages.slice(0, count).forEach((m, i) => {
    w.varint((4 << 3) | 2); // MessageBatch.messages
    w.varint(lengths[i]!);
    w.bytes(bodies[i]!);
    for (const e of m.entries) {
      w.varint((7 << 3) | 2); // Message.entries
      w.varint(entryBodyBytes(e));
      w.field(1, e.term);
      w.field(2, e.index);
      w.field(3, e.type);
      if (e.data.byteLength > 0) {
        w.varint((4 << 3) | 2);
        w.varint(e.data.byteLength);
        w.bytes(e.data);
      }
    }
  });
  return { chunks: w.finish(), bytes: FRAME_HEADER_BYTES + total, count };
}

/**
 * What one frame of a peer stream may hold: the receiver refuses a frame past any of these (checked on the
 * bytes before anything is decoded), and the sender cuts its frames by the very same description
 * (encodeBatchFrame), so a sender never builds a frame its peer refuses.
 */
export interface BatchLimits {
  /** The MessageBatch's bytes (the frame without its length prefix). */
  maxFrameBytes: number;
  maxMessages: number;
  /** Entries across all the batch's messages. */
  maxEntries: number;
  /** Ids in one snapshot metadata's configuration and address book. */
  maxMembers: number;
}

const UNLIMITED: BatchLimits = {
  maxFrameBytes: Number.POSITIVE_INFINITY,
  maxMessages: Number.POSITIVE_INFINITY,
  maxEntries: Number.POSITIVE_INFINITY,
  maxMembers: Number.POSITIVE_INFINITY,
};

/** Messages in one frame; a turn's messages to one peer are a handful (appends, heartbeats, answers). */
export const MAX_MESSAGES_PER_BATCH = 4096;
/** Ids in one snapshot's metadata: far more members than any cluster has. */
export const MAX_MEMBERS_PER_SNAPSHOT = 1024;
/** Room in a frame for what travels with a full append's entries (headers, other messages). */
const FRAME_HEADROOM_BYTES = 1 << 20;

/**
 * What a node's peer streams accept, from the settings every member of a cluster shares: a frame carries a
 * full pipeline of appends (maxInflightAppends of maxEntriesPerAppend entries) but at most one append's
 * bytes and what travels with them. A single append always fits, so no message is ever too large to send.
 */
export function peerBatchLimits(s: {
  maxAppendBodyBytes: number;
  maxEntriesPerAppend: number;
  maxInflightAppends: number;
}): BatchLimits {
  return {
    maxFrameBytes: s.maxAppendBodyBytes + FRAME_HEADROOM_BYTES,
    maxMessages: MAX_MESSAGES_PER_BATCH,
    maxEntries: s.maxEntriesPerAppend * s.maxInflightAppends,
    maxMembers: MAX_MEMBERS_PER_SNAPSHOT,
  };
}

export class BatchLimitError extends Error {
  override name = 'BatchLimitError';
}

/**
 * Counts a MessageBatch's repeated elements on the wire, without decoding (nothing allocated per element),
 * and throws BatchLimitError past a limit: decoding millions of tiny elements into objects is how a small
 * body would otherwise take the node's memory and CPU. Field numbers are proto/raft.proto's.
 */
export function checkBatchShape(buf: Uint8Array, limits: BatchLimits): void {
  const r = Reader.create(buf);
  let messages = 0;
  let entries = 0;
  /** Reads the fields up to `end`; `each` returns true when it consumed the field, else it is skipped. */
  const fields = (end: number, each: (field: number, wireType: number) => boolean) => {
    if (end > r.len) throw new BatchLimitError('a nested message runs past the end of the body');
    while (r.pos < end) {
      const tag = r.uint32();
      if (!each(tag >>> 3, tag & 7)) r.skipType(tag & 7);
    }
  };
  const nested = (each: (field: number, wireType: number) => boolean) => fields(r.uint32() + r.pos, each);
  const snapshotMeta = () => {
    let members = 0;
    const member = () => {
      if (++members > limits.maxMembers)
        throw new BatchLimitError(`more than ${limits.maxMembers} members in a snapshot's metadata`);
      return false;
    };
    nested((field, wt) => {
      if (field === 4 && wt === 2) return member(); // SnapshotMeta.peers
      if (field !== 3 || wt !== 2) return false;
      nested(member); // SnapshotMeta.conf: every voter, outgoing voter and learner
      return true;
    });
  };
  fields(r.len, (field, wt) => {
    if (field !== 4 || wt !== 2) return false; // MessageBatch.messages
    if (++messages > limits.maxMessages)
      throw new BatchLimitError(`more than ${limits.maxMessages} messages in one batch`);
    nested((mf, mwt) => {
      if (mf === 7 && mwt === 2 && ++entries > limits.maxEntries)
        throw new BatchLimitError(`more than ${limits.maxEntries} entries in one batch`);
      if (mf !== 12 || mwt !== 2) return false; // Message.entries are skipped, Message.snapshot is looked into
      snapshotMeta();
      return true;
    });
    return true;
  });
}

/** Decodes a batch within its limits; throws on malformed protobuf and BatchLimitError past a limit. */
export function decodeBatch(buf: Uint8Array, limits: BatchLimits): Batch {
  checkBatchShape(buf, limits);
  const m = pb.MessageBatch.decode(buf);
  return {
    from: m.from,
    clusterId: m.clusterId,
    storageId: m.storageId,
    fromAddress: m.fromAddress,
    generation: Number(m.generation),
    ping: Number(m.ping),
    pong: Number(m.pong),
    messages: m.messages as unknown as Message[],
  };
}

/** A rough size of a message on the wire, for queue bounds. */
export function messageBytes(m: Message): number {
  let n = 64 + m.context.byteLength;
  for (const e of m.entries) n += entryBytes(e);
  return n;
}

/** The data of a configuration-change log entry (a ConfChange message of proto/raft.proto). */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  return pb.ConfChange.encode({
    changes: cc.changes.map((c) => ({
      op: c.op as number as qjournal.raft.ConfChange.Op,
      peer: { id: c.peer.id, address: c.peer.address, storageId: c.peer.storageId ?? '' },
    })),
    leaveJoint: cc.leaveJoint,
  }).finish();
}

/** Decodes a configuration-change entry; throws on malformed protobuf. */
export function decodeConfChange(data: Uint8Array): ConfChange {
  const m = pb.ConfChange.decode(data);
  return {
    changes: m.changes.map((c) => ({
      op: c.op as number as ConfChangeOp,
      peer: {
        id: c.peer?.id ?? '',
        address: c.peer?.address ?? '',
        ...(c.peer?.storageId ? { storageId: c.peer.storageId } : {}),
      },
    })),
    leaveJoint: m.leaveJoint,
  };
}

export const confChangeCodec: ConfChangeCodec = { encode: encodeConfChange, decode: decodeConfChange };
