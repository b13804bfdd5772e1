// ReadIndex (etcd's read_only.go): the requests a leader holds until a quorum confirms its leadership, each
// queued with the commit index at the time it arrived and released once a quorum acknowledged a heartbeat
// that carried its context, or any later one (a later confirmation proves the earlier ones too); and the
// answers to this node's own reads, handed to the driver as read states.
// Bounded: at most maxPending queued at once (the rest are refused); every operation is O(1) amortized (a
// map finds a request by its context, and a confirmation releases a prefix of the queue).

import { assert } from '../assert.js';
import { bytesToHex } from './bytes.js';
import { isQuorum } from './quorum.js';
import { MessageType, makeMessage } from './types.js';
import type { ConfState, Message, NodeId, ReadState } from './types.js';

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
  /** Its place in arrival order, counted since the queue was created. */
  seq: number;
}

export type AddResult = 'queued' | 'duplicate' | 'full';

export class ReadOnlyQueue {
  // Invariant: queue[head..] are the pending reads, oldest first, queue[i].seq === base + i, and byKey holds
  // exactly them. Released reads before head are dropped from the array lazily (compact()).
  private queue: Queued[] = [];
  private head = 0;
  private base = 0;
  private readonly byKey = new Map<string, Queued>();

  constructor(private readonly maxPending: number) {
    assert(maxPending > 0, 'read-only: maxPending must be positive');
  }

  get size(): number {
    return this.queue.length - this.head;
  }

  /** Queues a read; 'duplicate' when one with the same context is queued, 'full' at the bound (not queued). */
  add(read: PendingRead, self: NodeId): AddResult {
    const key = bytesToHex(read.context);
    if (this.byKey.has(key)) return 'duplicate';
    if (this.size >= this.maxPending) return 'full';
    const q: Queued = { ...read, key, acks: new Set([self]), seq: this.base + this.queue.length };
    this.queue.push(q);
    this.byKey.set(key, q);
    return 'queued';
  }

  /** The context the next heartbeat should carry: the newest request's (it confirms all before it). */
  lastContext(): Uint8Array | undefined {
    return this.size > 0 ? this.queue[this.queue.length - 1]!.context : undefined;
  }

  /** `from` acknowledged a heartbeat carrying `context`: the reads a quorum has now confirmed, oldest first. */
  ack(from: NodeId, context: Uint8Array, conf: ConfState): PendingRead[] {
    const req = this.byKey.get(bytesToHex(context));
    if (!req) return [];
    req.acks.add(from);
    if (!isQuorum(conf, req.acks)) return [];
    const end = req.seq - this.base + 1;
    assert(end > this.head && this.queue[end - 1] === req, 'read-only: a pending read is where its seq says');
    const released = this.queue.slice(this.head, end);
    for (const r of released) this.byKey.delete(r.key);
    this.head = end;
    this.compact();
    return released;
  }

  /** Every queued read, removed (leadership was lost: they must fail). */
  drain(): PendingRead[] {
    const all = this.queue.slice(this.head);
    this.base += this.queue.length;
    this.queue = [];
    this.head = 0;
    this.byKey.clear();
    return all;
  }

  /** Drops released reads from the front once they are the larger part of the array. */
  private compact(): void {
    if (this.head < 64 || this.head * 2 < this.queue.length) return;
    this.base += this.head;
    this.queue = this.queue.slice(this.head);
    this.head = 0;
    assert(this.byKey.size === this.queue.length, 'read-only: the index holds exactly the pending reads');
  }
}

/** What ReadIndex needs of the Raft node that owns it. */
export interface ReadIndexHost {
  readonly id: NodeId;
  send(m: Message): void;
}

/** One node's ReadIndex: as leader, the reads awaiting confirmation; for itself, the answers to hand out. */
export class ReadIndex {
  private readonly queue: ReadOnlyQueue;
  private states: ReadState[] = [];

  constructor(
    private readonly host: ReadIndexHost,
    maxPending: number,
  ) {
    this.queue = new ReadOnlyQueue(maxPending);
  }

  get hasStates(): boolean {
    return this.states.length > 0;
  }

  /** The answers to this node's reads since the last call, handed over once. */
  takeStates(): ReadState[] {
    const out = this.states;
    this.states = [];
    return out;
  }

  /** An answer to a read this node asked for (the leader's, or a refusal when there is none). */
  answered(context: Uint8Array, index: number, ok: boolean): void {
    this.states.push({ context, index, ok });
  }

  /** Leader: queues a read; 'queued' means a heartbeat carrying its context must go out. */
  request(read: PendingRead): AddResult {
    const added = this.queue.add(read, this.host.id);
    // Past the bound (the leader's own reads and its followers'), refused as a read this leader cannot
    // confirm now: the reader retries.
    if (added === 'full') this.answer(read, false);
    return added;
  }

  /** Leader: answers a read, to this node's driver or to the follower that forwarded it. */
  answer(r: PendingRead, ok: boolean): void {
    if (r.from === this.host.id) {
      this.answered(r.context, r.index, ok);
      return;
    }
    const m = { type: MessageType.ReadIndexResp, to: r.from, from: this.host.id, index: r.index, context: r.context };
    this.host.send(makeMessage({ ...m, reject: !ok }));
  }

  /** Leader: `from` acknowledged a heartbeat carrying `context`; the reads a quorum now confirms are answered. */
  ack(from: NodeId, context: Uint8Array, conf: ConfState): void {
    for (const r of this.queue.ack(from, context, conf)) this.answer(r, true);
  }

  /** The context the next heartbeat carries (it confirms every read queued before it). */
  lastContext(): Uint8Array | undefined {
    return this.queue.lastContext();
  }

  /** Leadership is lost: this node's own queued reads fail (a follower's time out at the follower). */
  failAll(): void {
    for (const r of this.queue.drain()) if (r.from === this.host.id) this.answered(r.context, 0, false);
  }
}
