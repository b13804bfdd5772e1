// The Raft transport between JournalNodes: one long-lived stream per pair of nodes and direction, as etcd's
// peer streams — a POST /raft/stream whose chunked body carries length-prefixed MessageBatch frames
// (src/transport/frames.ts). A peer's answers come back on its own stream to this node.
//
// Outbound, per peer: a bounded queue; what is queued in one turn leaves at the end of the turn as one frame
// (group commit on the wire) unless the connection pushes back, and then it waits in the queue, which drops past
// maxQueueBytes (Raft slows down to probing). A stream is kept alive by an empty frame when it has nothing
// to say, ended and reopened after streamLifetimeMs (under the receiver's request timeout; the successor
// takes the same connection, so frames stay in order), and reopened after a failure with backoff; a failure
// is reported to Raft as an unreachable peer. Frames written to a stream that fails are lost: Raft
// retransmits. Nothing leaves before the turn ends (ReplicaTransport has no flush, on purpose): a frame is
// written to its socket at once, and on loopback that write runs the receiver's wake-up on this CPU; a leader
// that sent first would start its own log write (the slowest step of a small write, traced) ~0.5 ms later,
// so its appends leave just after it.
//
// Inbound: every stream the route accepts is registered here, at most MAX_INBOUND_STREAMS_PER_PEER per peer
// (a newer one ends the oldest: a peer that reconnected after a network failure must not wait for the
// half-open old one to time out), and ended when the node stops. Batches are delivered only from members, and
// from a leader the configuration does not name yet once a member vouched for it (peer-admission.ts), each with
// its envelope (sender, storage id, generation) for the replica's identity rules; a peer that refuses this
// node's stream for those rules says why in its answer, which goes to the replica (identity-refusal.ts).

import { QjmError } from '../../src/errors.js';
import { encodeBatchFrame, messageBytes } from '../../src/transport/raft-codec.js';
import type { Batch, BatchLimits } from '../../src/transport/raft-codec.js';
import { KEEPALIVE_FRAME } from '../../src/transport/frames.js';
import type { ReplicaTransport } from '../../src/replica/env.js';
import { takeWithinBytes } from '../../src/raft/byte-limit.js';
import { MessageType } from '../../src/raft/types.js';
import type { Message, NodeId } from '../../src/raft/types.js';
import type { HttpError, HttpPools, OutboundStream } from '../../src/http-pool.js';
import type { PeerLinkJson } from '../../src/node-status.js';
import type { Logger } from '../../src/logger.js';
import type { PeerDirectory } from '../../src/replica/peer-directory.js';
import type { PeerAdmission } from './peer-admission.js';
import type { BatchEnvelope, IdentityNotice, IdentityVerdict } from '../../src/replica/identity.js';
import { parseIdentityRefusal } from './identity-refusal.js';

/** The route of peer streams, and the content type their bodies are sent with. */
export const RAFT_STREAM_PATH = '/raft/stream';
export const RAFT_STREAM_CONTENT_TYPE = 'application/x-qjournal-raft-stream';

/** Streams one peer may hold open to this node at once. */
export const MAX_INBOUND_STREAMS_PER_PEER = 2;

/** Storage id changes remembered for /status, the newest; older ones are in the log only. */
export const MAX_STORAGE_ID_CHANGES = 32;

export interface StorageIdChange {
  id: NodeId;
  from: string;
  to: string;
  atMs: number;
}

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
  /** What one batch from a peer may hold. */
  batchLimits: BatchLimits;
  clients: Pick<HttpPools, 'openStream'>;
  /** A stream silent this long is cut, at both ends; a sender with nothing to say writes a keepalive every third of it. */
  idleTimeoutMs: number;
  /** A stream is ended and reopened after this long: under the receiver's request timeout. */
  streamLifetimeMs: number;
  maxQueueBytes: number;
  maxBatchBytes: number;
  logger: Logger;
}

class PeerState {
  queue: Message[] = [];
  queueBytes = 0;
  stream: OutboundStream | null = null;
  streamAddress = '';
  streamOpenedAtMs = 0;
  lastWriteAtMs = 0;
  /** The connection pushed back: frames wait in the queue until it drains. */
  blocked = false;
  failures = 0;
  retryTimer: NodeJS.Timeout | null = null;
  flushScheduled = false;
  lastErrorLogMs = 0;
  droppedMessages = 0;
  sentBatches = 0;
  streamsOpened = 0;
  /** The storage id this peer last reported: a change means its disk was wiped. */
  storageId = '';
  /** This peer's streams to this node, oldest first. */
  inbound: InboundStream[] = [];

  constructor(readonly id: NodeId) {}
}

/** A stream a peer opened to this node, as the route that reads it exposes it. */
export interface InboundStream {
  /** Ends the stream: answers with the error (its status and {code, message}) and drops the connection. */
  cut(e: QjmError): void;
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
  receive(messages: Message[], envelope: BatchEnvelope): void;
  reportUnreachable(id: NodeId): void;
  /** The identity rules' verdict on a batch's envelope, before anything of it is delivered. */
  admitBatch(envelope: BatchEnvelope): IdentityVerdict;
  /** A peer refused this node's stream for the identity rules and said why. */
  hearNotice(from: NodeId, notice: IdentityNotice): void;
  /** The reset generation every outbound batch carries. */
  readonly generation: number;
}

/** Until a sink is attached, inbound messages have nowhere to go: dropped (Raft tolerates loss). */
const NO_SINK: TransportSink = {
  receive() {},
  reportUnreachable() {},
  admitBatch: () => ({ ok: false, reason: 'the node is starting', notice: null }),
  hearNotice() {},
  generation: 0,
};

function envelopeOf(b: Batch): BatchEnvelope {
  return { from: b.from, storageId: b.storageId, generation: b.generation ?? 0 };
}

export class PeerTransport implements ReplicaTransport {
  private readonly peers = new Map<NodeId, PeerState>();
  private closed = false;
  private sink: TransportSink = NO_SINK;
  private readonly keepaliveTimer: NodeJS.Timeout;
  /** Peers whose storage id changed while this node ran (their disk was wiped and they rejoined), oldest first. */
  private readonly storageIdChangesSeen: StorageIdChange[] = [];

  constructor(private readonly options: PeerTransportOptions) {
    this.keepaliveTimer = setInterval(() => this.keepAlive(), Math.max(1, Math.floor(options.idleTimeoutMs / 3)));
    this.keepaliveTimer.unref();
  }

  /** The newest MAX_STORAGE_ID_CHANGES storage id changes, oldest first. */
  get storageIdChanges(): readonly StorageIdChange[] {
    return this.storageIdChangesSeen;
  }

  get batchLimits(): BatchLimits {
    return this.options.batchLimits;
  }

  get idleTimeoutMs(): number {
    return this.options.idleTimeoutMs;
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

  // ---------------------------------------------------------------- outbound

  send(messages: Message[]): void {
    if (this.closed) return;
    const touched = new Set<PeerState>();
    for (const m of messages) {
      const p = this.peer(m.to);
      const size = messageBytes(m);
      if (p.queueBytes + size > this.options.maxQueueBytes) {
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
    const fit = takeWithinBytes(p.queue.length, (k) => messageBytes(p.queue[k]!), this.options.maxBatchBytes);
    const out = p.queue.splice(0, fit.count);
    p.queueBytes -= fit.bytes;
    if (p.queue.length === 0) p.queueBytes = 0;
    return out;
  }

  private flushPeer(p: PeerState): void {
    if (this.closed || p.queue.length === 0 || p.retryTimer || p.blocked) return;
    const address = this.options.directory.addressOf(p.id);
    if (!address) {
      this.logRateLimited(p, `no address known for peer ${p.id}: dropping ${p.queue.length} messages`);
      p.droppedMessages += p.queue.length;
      p.queue = [];
      p.queueBytes = 0;
      return;
    }
    const stream = this.streamTo(p, address);
    if (!stream) return;
    while (p.queue.length > 0) {
      const frame = encodeBatchFrame({
        from: this.options.selfId,
        clusterId: this.options.clusterId,
        storageId: this.options.storageId,
        fromAddress: this.options.selfAddress,
        generation: this.sink.generation,
        messages: this.takeBatch(p),
      });
      p.sentBatches++;
      p.lastWriteAtMs = Date.now();
      if (!stream.write(frame.chunks)) {
        p.blocked = true;
        return;
      }
    }
  }

  /** The open stream to the peer, after rotating one that lived its time or points at an old address. */
  private streamTo(p: PeerState, address: string): OutboundStream | null {
    const now = Date.now();
    if (p.stream && p.streamAddress === address && now - p.streamOpenedAtMs < this.options.streamLifetimeMs)
      return p.stream;
    this.endStream(p);
    let stream: OutboundStream;
    try {
      stream = this.options.clients.openStream(
        address,
        RAFT_STREAM_PATH,
        RAFT_STREAM_CONTENT_TYPE,
        this.options.idleTimeoutMs,
        {
          onResponse: (status, body) => {
            if (p.stream !== stream) return; // a stream this node ended: its answer closes it
            p.stream = null;
            p.blocked = false;
            // 200 before we ended it: the peer stopped (it ends every stream when it shuts down).
            if (status === 200) return this.flushPeer(p);
            const notice = parseIdentityRefusal(status, body);
            if (notice) this.sink.hearNotice(p.id, notice);
            this.failed(p, `peer ${p.id} (${address}) refused the stream: ${status} ${body.toString('utf8', 0, 300)}`);
          },
          onError: (err: HttpError) => {
            if (p.stream !== stream) return;
            p.stream = null;
            p.blocked = false;
            this.failed(p, `peer ${p.id} (${address}) unreachable: ${err.message}`);
          },
          onDrain: () => {
            if (p.stream !== stream) return;
            p.blocked = false;
            this.flushPeer(p);
          },
        },
      );
    } catch (e) {
      this.failed(p, `peer ${p.id} (${address}): ${(e as Error).message}`);
      return null;
    }
    p.stream = stream;
    p.streamAddress = address;
    p.streamOpenedAtMs = now;
    p.lastWriteAtMs = now;
    p.streamsOpened++;
    return stream;
  }

  /** Ends the peer's stream cleanly (the receiver answers it; its connection goes to the next stream). */
  private endStream(p: PeerState): void {
    const s = p.stream;
    p.stream = null;
    p.blocked = false;
    s?.end();
  }

  /** Every third of the idle timeout: a keepalive on each quiet stream; a stream past its lifetime is ended. */
  private keepAlive(): void {
    const now = Date.now();
    for (const p of this.peers.values()) {
      if (!p.stream || p.blocked) continue;
      if (now - p.streamOpenedAtMs >= this.options.streamLifetimeMs) {
        this.endStream(p);
        this.flushPeer(p);
      } else if (now - p.lastWriteAtMs >= this.options.idleTimeoutMs / 3) {
        p.lastWriteAtMs = now;
        if (!p.stream.write([KEEPALIVE_FRAME])) p.blocked = true;
      }
    }
  }

  private failed(p: PeerState, why: string): void {
    if (this.closed) return;
    p.failures++;
    this.logRateLimited(p, why);
    this.sink.reportUnreachable(p.id);
    // Back off: 10 ms, doubling, at most 1 s. What queues meanwhile goes in the next stream.
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
    this.options.logger.warn({ peer: p.id, failures: p.failures }, msg);
  }

  private noteStorageId(p: PeerState, storageId: string): void {
    if (!storageId) return;
    if (p.storageId && p.storageId !== storageId) {
      const seen = this.storageIdChangesSeen;
      seen.push({ id: p.id, from: p.storageId, to: storageId, atMs: Date.now() });
      // A ring: a peer flapping between disks (or a forged id each batch) must not grow it.
      if (seen.length > MAX_STORAGE_ID_CHANGES) seen.shift();
      this.options.logger.error(
        { peer: p.id, oldStorageId: p.storageId, newStorageId: storageId },
        'peer storage id changed: its data directory was wiped or replaced; it must be removed and re-added (qjm remove-peer / add-peer) to rejoin safely',
      );
    }
    p.storageId = storageId;
  }

  // ---------------------------------------------------------------- inbound

  /** A member, or a leader a member vouched for: its streams and batches are heard without asking. */
  heard(peer: NodeId): boolean {
    return this.options.directory.isMember(peer) || this.options.directory.isVouched(peer);
  }

  /**
   * Whether a batch from `from` may be heard: true at once for a member or a vouched-for leader, else the
   * promise of a member's word (the route holds the stream until it comes; PeerAdmission bounds the asking).
   */
  admits(from: NodeId, messages: readonly Message[]): true | Promise<boolean> {
    return this.options.admission.admits(from, messages);
  }

  /**
   * A stream from `peer` begins: past MAX_INBOUND_STREAMS_PER_PEER the oldest is ended. Returns the
   * function that forgets the stream when it ends. Throws NotAMemberError for a non-member (nothing is kept).
   */
  openInbound(peer: NodeId, s: InboundStream): () => void {
    if (!this.heard(peer)) throw new NotAMemberError(peer);
    if (this.closed) {
      s.cut(new QjmError('SHUTTING_DOWN', `${this.options.selfId} is shutting down`));
      return () => {};
    }
    const p = this.peer(peer);
    p.inbound.push(s);
    while (p.inbound.length > MAX_INBOUND_STREAMS_PER_PEER) {
      const message = `peer ${peer} opened a newer stream: this one is ended (at most ${MAX_INBOUND_STREAMS_PER_PEER} per peer)`;
      p.inbound.shift()!.cut(new QjmError('BUSY', message));
    }
    return () => {
      p.inbound = p.inbound.filter((x) => x !== s);
    };
  }

  /** The identity rules' verdict on a batch (its sender's storage and generation), before admission. */
  identityVerdict(b: Batch): IdentityVerdict {
    return this.sink.admitBatch(envelopeOf(b));
  }

  /** An inbound batch from a peer (already checked for cluster id and sender): its messages for this node are delivered. */
  handleInbound(b: Batch): void {
    // Only members (and a leader a member vouched for) speak for the cluster; nothing (state, metrics labels,
    // delivery) is kept for anyone else.
    if (!this.heard(b.from)) throw new NotAMemberError(b.from);
    this.noteStorageId(this.peer(b.from), b.storageId);
    const mine = b.messages.filter((m) => m.to === this.options.selfId);
    if (mine.length > 0) this.sink.receive(mine, envelopeOf(b));
  }

  stats(): PeerLinkJson[] {
    return [...this.peers.values()].map((p) => ({
      id: p.id,
      queuedMessages: p.queue.length,
      queuedBytes: p.queueBytes,
      streamOpen: p.stream !== null,
      streamsOpened: p.streamsOpened,
      inboundStreams: p.inbound.length,
      failures: p.failures,
      droppedMessages: p.droppedMessages,
      sentBatches: p.sentBatches,
      storageId: p.storageId,
    }));
  }

  close(): void {
    this.closed = true;
    clearInterval(this.keepaliveTimer);
    for (const p of this.peers.values()) {
      if (p.retryTimer) clearTimeout(p.retryTimer);
      this.endStream(p);
      const e = new QjmError('SHUTTING_DOWN', `${this.options.selfId} is shutting down`);
      for (const s of p.inbound.splice(0)) s.cut(e);
      p.queue = [];
    }
  }
}
