// Raft messages on the wire: a MessageBatch (proto/raft.proto) per HTTP body between peers. The core's
// Message type mirrors the proto field for field, so decoded messages are handed to the core as they are,
// after RawNode.step has validated them.

import { qjournal } from '../gen/proto.js';
import type { ConfChange, ConfChangeCodec, ConfChangeOp, Message } from '../raft/types.js';

const pb = qjournal.raft;

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

/** Decodes a batch; throws on malformed protobuf. */
export function decodeBatch(buf: Uint8Array): Batch {
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
