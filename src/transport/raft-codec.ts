// Raft messages on the wire: a MessageBatch (proto/raft.proto) per HTTP body between peers. The core's
// Message type mirrors the proto field for field, so decoded messages are handed to the core as they are,
// after RawNode.step has validated them.

import protobuf from 'protobufjs/minimal.js';
import { qjournal } from '../gen/proto.js';
import type { ConfChange, ConfChangeCodec, ConfChangeOp, Message } from '../raft/types.js';

const pb = qjournal.raft;
const { Reader } = protobuf;

export interface Batch {
  from: string;
  clusterId: string;
  storageId: string;
  /** The sender's advertised address ('' when unknown). */
  fromAddress: string;
  messages: Message[];
}

export function encodeBatch(b: Batch): Uint8Array {
  return pb.MessageBatch.encode({
    from: b.from,
    clusterId: b.clusterId,
    storageId: b.storageId,
    fromAddress: b.fromAddress,
    messages: b.messages as unknown as qjournal.raft.IMessage[],
  }).finish();
}

/** What one batch from a peer may hold; checked on the bytes before anything is decoded. */
export interface BatchLimits {
  maxMessages: number;
  /** Entries across all the batch's messages. */
  maxEntries: number;
  /** Ids in one snapshot metadata's configuration and address book. */
  maxMembers: number;
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
      if (++members > limits.maxMembers) throw new BatchLimitError(`more than ${limits.maxMembers} members in a snapshot's metadata`);
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
    if (++messages > limits.maxMessages) throw new BatchLimitError(`more than ${limits.maxMessages} messages in one batch`);
    nested((mf, mwt) => {
      if (mf === 7 && mwt === 2 && ++entries > limits.maxEntries) throw new BatchLimitError(`more than ${limits.maxEntries} entries in one batch`);
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
  return { from: m.from, clusterId: m.clusterId, storageId: m.storageId, fromAddress: m.fromAddress, messages: m.messages as unknown as Message[] };
}

/** A rough size of a message on the wire, for queue bounds. */
export function messageBytes(m: Message): number {
  let n = 64 + m.context.byteLength;
  for (const e of m.entries) n += e.data.byteLength + 24;
  return n;
}

/** The data of a configuration-change log entry (a ConfChange message of proto/raft.proto). */
export function encodeConfChange(cc: ConfChange): Uint8Array {
  return pb.ConfChange.encode({
    changes: cc.changes.map((c) => ({ op: c.op as number as qjournal.raft.ConfChange.Op, peer: { id: c.peer.id, address: c.peer.address } })),
    leaveJoint: cc.leaveJoint,
  }).finish();
}

/** Decodes a configuration-change entry; throws on malformed protobuf. */
export function decodeConfChange(data: Uint8Array): ConfChange {
  const m = pb.ConfChange.decode(data);
  return {
    changes: m.changes.map((c) => ({ op: c.op as number as ConfChangeOp, peer: { id: c.peer?.id ?? '', address: c.peer?.address ?? '' } })),
    leaveJoint: m.leaveJoint,
  };
}

export const confChangeCodec: ConfChangeCodec = { encode: encodeConfChange, decode: decodeConfChange };
