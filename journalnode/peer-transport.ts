// The Raft transport between JournalNodes. Per peer: a bounded outbound queue and at most one POST
// /raft/message in flight, carrying everything queued (group commit on the wire, and no reordering). The
// receiver holds each request briefly so its answers (usually an append acknowledgement, ready after one
// fsync) ride back in the response body: one HTTP exchange per round trip. Failures back off and are
// reported to Raft as unreachable peers.

import { encodeBatch, decodeBatch, messageBytes } from '../src/transport/raft-codec.js';
import type { Batch, BatchLimits } from '../src/transport/raft-codec.js';
import type { ReplicaTransport } from '../src/replica/env.js';
import { takeWithinBytes } from '../src/raft/byte-limit.js';
import { MessageType } from '../src/raft/types.js';
import type { Message, NodeId } from '../src/raft/types.js';
import type { HttpPools } from '../src/http-pool.js';
import type { PeerLinkJson } from '../src/node-status.js';
import type { Logger } from '../src/logger.js';
import type { PeerDirectory } from '../src/replica/peer-directory.js';
import type { PeerAdmission } from './peer-admission.js';

export interface PeerTransportOptions {
  selfId: NodeId;
  /** Where peers dial this node. */
  selfAddress: string;
  clusterId: string;
  storageId: string;
  /** Where each peer is dialed, and who is a member: the current configuration's address book. */
  directory: PeerDirectory;
  /** Who is heard: the members, and a leader the configuration does not name yet on a member's word. */
  admission: Pick<PeerAdmission, 'admits'>;
  /** What one batch from a peer (a request or a reply) may hold. */
  batchLimits: BatchLimits;
  clients: Pick<HttpPools, 'request'>;
  holdMs: number;
  requestTimeoutMs: number;
  maxQueueBytes: number;
  maxBatchBytes: number;
  logger: Logger;
}

/** Messages that ask the receiver for an answer: only a batch holding one of them is worth holding. */
const ASKS_FOR_ANSWER = new Set([
  MessageType.App,
  MessageType.Heartbeat,
  MessageType.Vote,
  MessageType.PreVote,
  MessageType.Snap,
  MessageType.ReadIndex,
]);

interface Held {
  resolve(messages: Message[]): void;
  timer: NodeJS.Timeout;
}

class PeerState {
  queue: Message[] = [];
  queueBytes = 0;
  sending = false;
  failures = 0;
  retryTimer: NodeJS.Timeout | null = null;
  flushScheduled = false;
  held: Held[] = [];
  lastErrorLogMs = 0;
  droppedMessages = 0;
  sentBatches = 0;
  /** The storage id this peer last reported: a change means its disk was wiped. */
  storageId = '';

  constructor(readonly id: NodeId) {}
}

/** A batch from an id that is not a member of the configuration (or, joining, of the members it learned), nor a leader a member vouched for. */
export class NotAMemberError extends Error {
  override name = 'NotAMemberError';
  constructor(readonly from: NodeId) {
    super(`${JSON.stringify(from)} is not a member of this cluster's configuration`);
  }
}

/** Where inbound messages go, and who hears that a peer is unreachable: the replica, attached after it is built. */
export interface TransportSink {
  receive(messages: Message[]): void;
  reportUnreachable(id: NodeId): void;
}

/** Until a sink is attached, inbound messages have nowhere to go: dropped (Raft tolerates loss). */
const NO_SINK: TransportSink = { receive() {}, reportUnreachable() {} };

export class PeerTransport implements ReplicaTransport {
  private readonly peers = new Map<NodeId, PeerState>();
  private closed = false;
  private sink: TransportSink = NO_SINK;
  /** Peers whose storage id changed while this node ran (their disk was wiped and they rejoined). */
  readonly storageIdChanges: { id: NodeId; from: string; to: string; atMs: number }[] = [];

  constructor(private readonly o: PeerTransportOptions) {}

  get batchLimits(): BatchLimits {
    return this.o.batchLimits;
  }

  /** The transport and the replica need each other: the replica is built with the transport, then attached. */
  attach(sink: TransportSink): void {
    this.sink = sink;
  }

  private peer(id: NodeId): PeerState {
    let p = this.peers.get(id);
    if (!p) {
      p = new PeerState(id);
      this.peers.set(id, p);
    }
    return p;
  }

  send(messages: Message[]): void {
    if (this.closed) return;
    const touched = new Set<PeerState>();
    for (const m of messages) {
      const p = this.peer(m.to);
      const size = messageBytes(m);
      if (p.queueBytes + size > this.o.maxQueueBytes) {
        // The peer is not keeping up (or is down): drop, and let Raft slow down to probing.
        p.droppedMessages++;
        if (m.type === MessageType.App) this.sink.reportUnreachable(m.to);
        continue;
      }
      p.queue.push(m);
      p.queueBytes += size;
      touched.add(p);
    }
    for (const p of touched) this.scheduleFlush(p);
  }

  /** Sends what is queued for every peer now instead of at the end of this turn. */
  flush(): void {
    for (const p of this.peers.values()) {
      if (!p.flushScheduled) continue;
      p.flushScheduled = false;
      this.flushPeer(p);
    }
  }

  private scheduleFlush(p: PeerState): void {
    if (p.flushScheduled) return;
    p.flushScheduled = true;
    // Messages produced in the same turn travel together.
    queueMicrotask(() => {
      if (!p.flushScheduled) return;
      p.flushScheduled = false;
      this.flushPeer(p);
    });
  }

  private takeBatch(p: PeerState): Message[] {
    const fit = takeWithinBytes(p.queue.length, (k) => messageBytes(p.queue[k]!), this.o.maxBatchBytes);
    const out = p.queue.splice(0, fit.count);
    p.queueBytes -= fit.bytes;
    if (p.queue.length === 0) p.queueBytes = 0;
    return out;
  }

  private flushPeer(p: PeerState): void {
    if (this.closed) return;
    while (p.queue.length > 0 && p.held.length > 0) {
      const h = p.held.shift()!;
      clearTimeout(h.timer);
      h.resolve(this.takeBatch(p));
    }
    if (p.queue.length === 0 || p.sending || p.retryTimer) return;
    const address = this.o.directory.addressOf(p.id);
    if (!address) {
      this.logRateLimited(p, `no address known for peer ${p.id}: dropping ${p.queue.length} messages`);
      p.droppedMessages += p.queue.length;
      p.queue = [];
      p.queueBytes = 0;
      return;
    }
    const messages = this.takeBatch(p);
    const body = encodeBatch({ from: this.o.selfId, clusterId: this.o.clusterId, storageId: this.o.storageId, fromAddress: this.o.selfAddress, messages });
    p.sending = true;
    p.sentBatches++;
    this.o.clients.request(address, 'POST', '/raft/message', body, this.o.requestTimeoutMs).then(
      (res) => {
        p.sending = false;
        if (res.status !== 200) {
          this.failed(p, `peer ${p.id} (${address}) answered ${res.status}: ${res.body.toString('utf8', 0, 200)}`);
          return;
        }
        p.failures = 0;
        if (res.body.byteLength > 0) this.receiveReply(p, res.body);
        this.flushPeer(p);
      },
      (err: Error) => {
        p.sending = false;
        this.failed(p, `peer ${p.id} (${address}) unreachable: ${err.message}`);
      },
    );
  }

  private receiveReply(p: PeerState, body: Buffer): void {
    let b: Batch;
    try {
      b = decodeBatch(body, this.o.batchLimits);
    } catch (e) {
      this.o.logger.warn({ peer: p.id, error: (e as Error).message }, 'dropping a malformed reply batch');
      return;
    }
    if (b.clusterId !== this.o.clusterId || b.from !== p.id) {
      this.o.logger.warn({ peer: p.id, from: b.from, clusterId: b.clusterId }, 'dropping a reply from the wrong cluster or node');
      return;
    }
    this.noteStorageId(p, b.storageId);
    this.sink.receive(b.messages.filter((m) => m.to === this.o.selfId));
  }

  private failed(p: PeerState, why: string): void {
    if (this.closed) return;
    p.failures++;
    this.logRateLimited(p, why);
    this.sink.reportUnreachable(p.id);
    // Back off: 10 ms, doubling, at most 1 s. What queues meanwhile goes in the next batch.
    const delay = Math.min(1000, 10 * 2 ** Math.min(p.failures - 1, 7));
    p.retryTimer = setTimeout(() => {
      p.retryTimer = null;
      this.flushPeer(p);
    }, delay);
  }

  private logRateLimited(p: PeerState, msg: string): void {
    const now = Date.now();
    if (now - p.lastErrorLogMs < 5000) return;
    p.lastErrorLogMs = now;
    this.o.logger.warn({ peer: p.id, failures: p.failures }, msg);
  }

  private noteStorageId(p: PeerState, storageId: string): void {
    if (!storageId) return;
    if (p.storageId && p.storageId !== storageId) {
      this.storageIdChanges.push({ id: p.id, from: p.storageId, to: storageId, atMs: Date.now() });
      this.o.logger.error(
        { peer: p.id, oldStorageId: p.storageId, newStorageId: storageId },
        'peer storage id changed: its data directory was wiped or replaced; it must be removed and re-added (qjm remove-peer / add-peer) to rejoin safely',
      );
    }
    p.storageId = storageId;
  }

  /**
   * An inbound batch from a peer (already checked for cluster id). Delivers it, then answers with what this
   * node sends back to that peer within holdMs (piggybacked), or an empty batch.
   */
  handleInbound(b: Batch): Promise<Uint8Array> {
    // Only members (and a leader a member vouched for) speak for the cluster; nothing (state, metrics labels,
    // delivery) is kept for anyone else.
    const admitted = this.o.admission.admits(b.from, b.messages);
    if (admitted === true) return this.deliverInbound(b);
    return admitted.then((ok) => (ok ? this.deliverInbound(b) : Promise.reject(new NotAMemberError(b.from))));
  }

  private deliverInbound(b: Batch): Promise<Uint8Array> {
    const p = this.peer(b.from);
    this.noteStorageId(p, b.storageId);
    this.sink.receive(b.messages.filter((m) => m.to === this.o.selfId));
    return new Promise<Uint8Array>((resolve) => {
      const reply = (messages: Message[]) => resolve(encodeBatch({ from: this.o.selfId, clusterId: this.o.clusterId, storageId: this.o.storageId, fromAddress: this.o.selfAddress, messages }));
      // A batch of answers asks for nothing back: holding it would only block the sender's next batch,
      // which queues behind this one (and hold us up in turn).
      if (this.closed || this.o.holdMs <= 0 || !b.messages.some((m) => ASKS_FOR_ANSWER.has(m.type))) {
        reply(this.closed ? [] : this.takeBatch(p));
        return;
      }
      const held: Held = {
        resolve: reply,
        timer: setTimeout(() => {
          p.held = p.held.filter((h) => h !== held);
          reply([]);
        }, this.o.holdMs),
      };
      p.held.push(held);
      if (p.queue.length > 0) this.scheduleFlush(p);
    });
  }

  stats(): PeerLinkJson[] {
    return [...this.peers.values()].map((p) => ({
      id: p.id,
      queuedMessages: p.queue.length,
      queuedBytes: p.queueBytes,
      sending: p.sending,
      failures: p.failures,
      droppedMessages: p.droppedMessages,
      sentBatches: p.sentBatches,
      storageId: p.storageId,
    }));
  }

  close(): void {
    this.closed = true;
    for (const p of this.peers.values()) {
      if (p.retryTimer) clearTimeout(p.retryTimer);
      for (const h of p.held) {
        clearTimeout(h.timer);
        h.resolve([]);
      }
      p.held = [];
      p.queue = [];
    }
  }
}
