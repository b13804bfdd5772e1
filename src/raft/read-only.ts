// ReadIndex requests a leader holds until a quorum confirms its leadership (etcd's read_only.go): each is
// queued with the commit index at the time it arrived and released once a quorum acknowledged a heartbeat
// that carried its context, or any later one (a later confirmation proves the earlier ones too).

import { bytesToHex } from './bytes.js';
import { isQuorum } from './quorum.js';
import type { ConfState, NodeId } from './types.js';

export interface PendingRead {
  /** The read may be served once applied reaches this. */
  index: number;
  context: Uint8Array;
  /** The node that asked: the leader itself (a local read) or a follower that forwarded it. */
  from: NodeId;
}

interface Queued extends PendingRead {
  key: string;
  acks: Set<NodeId>;
}

export class ReadOnlyQueue {
  private queue: Queued[] = [];

  /** Queues a read; false when one with the same context is already queued (a duplicate request). */
  add(read: PendingRead, self: NodeId): boolean {
    const key = bytesToHex(read.context);
    if (this.queue.some((r) => r.key === key)) return false;
    this.queue.push({ ...read, key, acks: new Set([self]) });
    return true;
  }

  /** The context the next heartbeat should carry: the newest request's (it confirms all before it). */
  lastContext(): Uint8Array | undefined {
    return this.queue[this.queue.length - 1]?.context;
  }

  /** `from` acknowledged a heartbeat carrying `context`: the reads a quorum has now confirmed, oldest first. */
  ack(from: NodeId, context: Uint8Array, conf: ConfState): PendingRead[] {
    const key = bytesToHex(context);
    const pos = this.queue.findIndex((r) => r.key === key);
    if (pos < 0) return [];
    const req = this.queue[pos]!;
    req.acks.add(from);
    if (!isQuorum(conf, req.acks)) return [];
    return this.queue.splice(0, pos + 1);
  }

  /** Every queued read, removed (leadership was lost: they must fail). */
  drain(): PendingRead[] {
    const all = this.queue;
    this.queue = [];
    return all;
  }
}
