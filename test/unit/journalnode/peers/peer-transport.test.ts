// The Raft transport between JournalNodes with a fake stream client whose streams the test drives by hand
// (and, for the round trip, two transports wired to each other in-process): one stream per peer, frames
// leaving at once, backpressure, the queue bound, backoff on failure and refusal, rotation, keepalives,
// inbound delivery from members only, the bound on inbound streams per peer, storage id changes.

import { expect } from 'chai';
import {
  MAX_INBOUND_STREAMS_PER_PEER,
  MAX_STORAGE_ID_CHANGES,
  NotAMemberError,
  PeerTransport,
  RAFT_STREAM_CONTENT_TYPE,
  RAFT_STREAM_PATH,
} from '../../../../journalnode/peers/peer-transport.js';
import type { PeerTransportOptions } from '../../../../journalnode/peers/peer-transport.js';
import { decodeBatch, messageBytes } from '../../../../src/transport/raft-codec.js';
import type { Batch } from '../../../../src/transport/raft-codec.js';
import { FrameReader } from '../../../../src/transport/frames.js';
import { HttpError } from '../../../../src/http-pool.js';
import type { QjmError } from '../../../../src/errors.js';
import type { OutboundStream, StreamHandlers } from '../../../../src/http-pool.js';
import { PeerDirectory } from '../../../../src/replica/peer-directory.js';
import { PeerAdmission } from '../../../../journalnode/peers/peer-admission.js';
import type { NodeStatusJson } from '../../../../src/node-status.js';
import { makeMessage, MessageType } from '../../../../src/raft/types.js';
import type { Message, NodeId } from '../../../../src/raft/types.js';
import { nextTurn, waitFor } from '../../../support/async.js';
import type { BatchEnvelope, IdentityNotice } from '../../../../src/replica/identity.js';

const LIMITS = { maxMessages: 1000, maxEntries: 10_000, maxMembers: 100 };

const CLUSTER = 'CID-t';
const ADDRESS: Record<NodeId, string> = { a: 'a:1', b: 'b:1', c: 'c:1' };
const MEMBERS = Object.entries(ADDRESS).map(([id, address]) => ({ id, address }));

const app = (to: NodeId, index: number, from: NodeId = 'a') =>
  makeMessage({ type: MessageType.App, to, from, term: 1, index });
const appResp = (to: NodeId, index: number, from: NodeId = 'a') =>
  makeMessage({ type: MessageType.AppResp, to, from, term: 1, index });
const heartbeat = (to: NodeId, from: NodeId = 'a') => makeMessage({ type: MessageType.Heartbeat, to, from, term: 1 });

/** One stream the transport opened: what it wrote (as frames), and the handlers the test calls. */
class FakeStream implements OutboundStream {
  readonly frames: Buffer[] = [];
  private readonly reader = new FrameReader(1 << 30);
  ended = false;
  destroyed = false;
  /** What write() answers: false makes the transport wait for onDrain. */
  accepts = true;

  constructor(
    readonly address: string,
    readonly path: string,
    readonly contentType: string,
    readonly idleTimeoutMs: number,
    readonly h: StreamHandlers,
    readonly atMs: number,
  ) {}

  write(chunks: readonly Uint8Array[]): boolean {
    for (const c of chunks)
      this.reader.push(Buffer.from(c.buffer, c.byteOffset, c.byteLength), (f) => this.frames.push(Buffer.from(f)));
    return this.accepts;
  }

  end(): void {
    this.ended = true;
  }

  destroy(): void {
    this.destroyed = true;
  }

  /** The batches written, keepalives left out. */
  get batches(): Batch[] {
    return this.frames.filter((f) => f.byteLength > 0).map((f) => decodeBatch(f, LIMITS));
  }

  get keepalives(): number {
    return this.frames.filter((f) => f.byteLength === 0).length;
  }
}

/** HttpPools as the transport uses it: every stream is a FakeStream. */
class FakeStreams {
  readonly opened: FakeStream[] = [];

  openStream(
    address: string,
    path: string,
    contentType: string,
    idleTimeoutMs: number,
    h: StreamHandlers,
  ): OutboundStream {
    const s = new FakeStream(address, path, contentType, idleTimeoutMs, h, Date.now());
    this.opened.push(s);
    return s;
  }

  to(address: string): FakeStream[] {
    return this.opened.filter((s) => s.address === address);
  }
}

function batchFrom(from: NodeId, messages: Message[], over: Partial<Batch> = {}): Batch {
  return {
    from,
    clusterId: CLUSTER,
    storageId: `storage-${from}`,
    fromAddress: ADDRESS[from] ?? '',
    messages,
    ...over,
  };
}

interface Rig {
  t: PeerTransport;
  streams: FakeStreams;
  directory: PeerDirectory;
  delivered: Message[];
  unreachable: NodeId[];
  logs: { level: string; msg: string }[];
  /** The envelopes of the batches delivered, and the notices peers' refusals carried. */
  envelopes: BatchEnvelope[];
  notices: { from: NodeId; notice: IdentityNotice }[];
}

const open: PeerTransport[] = [];

/**
 * A transport for `self` in a cluster of a, b and c, with fake streams, and a sink that records what it
 * delivers (or hands it to `onReceive`) and which peers it reports unreachable.
 */
function rig(
  over: Partial<PeerTransportOptions> = {},
  self: NodeId = 'a',
  onReceive?: (ms: Message[]) => void,
  vouchedBy: Record<NodeId, string> = {},
): Rig {
  const streams = new FakeStreams();
  const directory = new PeerDirectory(MEMBERS);
  // Members vouch for whom `vouchedBy` names: their /status lists it.
  const admission = new PeerAdmission({
    selfId: self,
    clusterId: CLUSTER,
    directory,
    joinedFrom: [],
    fetchStatus: async (address) =>
      ({
        id: address.split(':')[0],
        clusterId: CLUSTER,
        appliedIndex: 0,
        peers: Object.entries(vouchedBy).map(([id, a]) => ({ id, address: a, role: 'voter' })),
      }) as unknown as NodeStatusJson,
    checkTimeoutMs: 100,
    refusedForMs: 1000,
    logger: { info() {}, warn() {}, error() {}, debug() {} },
  });
  const delivered: Message[] = [];
  const unreachable: NodeId[] = [];
  const logs: { level: string; msg: string }[] = [];
  const log = (level: string) => (_obj: object, msg: string) => void logs.push({ level, msg });
  const t = new PeerTransport({
    selfId: self,
    selfAddress: ADDRESS[self]!,
    clusterId: CLUSTER,
    storageId: `storage-${self}`,
    directory,
    admission,
    clients: streams,
    idleTimeoutMs: 60_000,
    streamLifetimeMs: 60_000,
    maxQueueBytes: 1 << 20,
    maxBatchBytes: 1 << 20,
    batchLimits: LIMITS,
    logger: { info: log('info'), warn: log('warn'), error: log('error'), debug: log('debug') },
    ...over,
  });
  const envelopes: BatchEnvelope[] = [];
  const notices: { from: NodeId; notice: IdentityNotice }[] = [];
  t.attach({
    receive: (ms, env) => {
      envelopes.push(env);
      if (onReceive) onReceive(ms);
      else delivered.push(...ms);
    },
    reportUnreachable: (id) => void unreachable.push(id),
    admitBatch: () => ({ ok: true }),
    hearNotice: (from, notice) => void notices.push({ from, notice }),
    generation: 3,
  });
  open.push(t);
  return { t, streams, directory, delivered, unreachable, logs, envelopes, notices };
}

const indexes = (ms: Message[]) => ms.map((m) => m.index);

describe('PeerTransport', () => {
  afterEach(() => {
    for (const t of open.splice(0)) t.close();
  });

  describe('sending', () => {
    it('messages queued in one turn travel as one frame per peer, on one stream per peer opened when needed', async () => {
      const { t, streams } = rig();
      t.send([app('b', 1)]);
      t.send([app('b', 2), heartbeat('c')]);
      t.send([app('b', 3)]);
      expect(streams.opened, 'nothing leaves before the end of the turn').to.have.length(0);
      await nextTurn();
      expect(streams.opened.map((s) => [s.address, s.path, s.contentType, s.idleTimeoutMs])).to.deep.equal([
        ['b:1', RAFT_STREAM_PATH, RAFT_STREAM_CONTENT_TYPE, 60_000],
        ['c:1', RAFT_STREAM_PATH, RAFT_STREAM_CONTENT_TYPE, 60_000],
      ]);
      const [toB] = streams.to('b:1');
      expect(toB!.batches).to.have.length(1);
      const b = toB!.batches[0]!;
      expect([b.from, b.clusterId, b.storageId, b.fromAddress]).to.deep.equal(['a', CLUSTER, 'storage-a', 'a:1']);
      expect(indexes(b.messages)).to.deep.equal([1, 2, 3]);
      expect(streams.to('c:1')[0]!.batches[0]!.messages.map((m) => m.type)).to.deep.equal([MessageType.Heartbeat]);
    });

    it('frames leave at once, one per turn, on the same stream: nothing waits for an answer', async () => {
      const { t, streams } = rig();
      for (let i = 1; i <= 3; i++) {
        t.send([app('b', i)]);
        await nextTurn();
      }
      expect(streams.opened).to.have.length(1);
      expect(streams.opened[0]!.batches.map((b) => indexes(b.messages))).to.deep.equal([[1], [2], [3]]);
      expect(t.stats()[0]).to.include({
        id: 'b',
        streamOpen: true,
        streamsOpened: 1,
        sentBatches: 3,
        queuedMessages: 0,
      });
    });

    it('when the connection pushes back, what queues meanwhile waits, and goes as one frame once it drains', async () => {
      const { t, streams } = rig();
      t.send([app('b', 1)]);
      await nextTurn();
      const s = streams.opened[0]!;
      s.accepts = false;
      t.send([app('b', 2)]);
      await nextTurn();
      t.send([app('b', 3)]);
      t.send([app('b', 4)]);
      await nextTurn();
      expect(
        s.batches.map((b) => indexes(b.messages)),
        'frame 2 was taken, then the stream pushed back',
      ).to.deep.equal([[1], [2]]);
      expect(t.stats()[0]).to.include({ queuedMessages: 2 });
      s.accepts = true;
      s.h.onDrain();
      expect(s.batches.map((b) => indexes(b.messages))).to.deep.equal([[1], [2], [3, 4]]);
    });

    it('a frame holds at most maxBatchBytes (but always one message)', async () => {
      const size = messageBytes(app('b', 1));
      const { t, streams } = rig({ maxBatchBytes: 2 * size });
      t.send([app('b', 1), app('b', 2), app('b', 3)]);
      await nextTurn();
      expect(streams.opened[0]!.batches.map((b) => indexes(b.messages))).to.deep.equal([[1, 2], [3]]);
    });

    it('the queue is bounded: past maxQueueBytes messages are dropped, and a dropped append reports the peer unreachable', async () => {
      const size = messageBytes(app('b', 1));
      expect(messageBytes(heartbeat('b'))).to.equal(size);
      const { t, streams, unreachable } = rig({ maxQueueBytes: 3 * size });
      t.send([app('b', 1)]);
      await nextTurn();
      streams.opened[0]!.accepts = false;
      t.send([app('b', 2)]);
      await nextTurn();
      t.send([app('b', 3), app('b', 4), app('b', 5), app('b', 6), heartbeat('b')]);
      expect(unreachable, 'only the dropped append reports').to.deep.equal(['b']);
      expect(t.stats()[0]).to.include({ droppedMessages: 2, queuedMessages: 3, queuedBytes: 3 * size });
    });

    it('a peer with no known address: its messages are dropped', async () => {
      const { t, streams, logs } = rig();
      t.send([app('x', 1)]);
      await nextTurn();
      expect(streams.opened).to.have.length(0);
      expect(t.stats().find((s) => s.id === 'x')).to.include({ droppedMessages: 1, queuedMessages: 0 });
      expect(logs.map((l) => l.msg)).to.deep.include.members(['no address known for peer x: dropping 1 messages']);
    });

    it('a stream is ended after streamLifetimeMs: the next frame opens its successor', async () => {
      const { t, streams } = rig({ streamLifetimeMs: 30 });
      t.send([app('b', 1)]);
      await nextTurn();
      await waitFor(() => Date.now() - streams.opened[0]!.atMs > 30, {
        what: 'the first stream outlives its lifetime',
      });
      t.send([app('b', 2)]);
      await nextTurn();
      expect(streams.opened).to.have.length(2);
      expect(streams.opened[0]!.ended, 'the old stream is ended, not cut').to.equal(true);
      expect(streams.opened[0]!.destroyed).to.equal(false);
      expect(streams.opened.map((s) => s.batches.map((b) => indexes(b.messages)))).to.deep.equal([[[1]], [[2]]]);
      // The old stream's answer (the receiver saw it end) changes nothing.
      streams.opened[0]!.h.onResponse(200, Buffer.alloc(0));
      expect(t.stats()[0]).to.include({ streamOpen: true, failures: 0 });
    });

    it('a quiet stream gets a keepalive (an empty frame) every third of the idle timeout', async () => {
      const { t, streams } = rig({ idleTimeoutMs: 60 });
      t.send([app('b', 1)]);
      await nextTurn();
      await waitFor(() => streams.opened[0]!.keepalives >= 2, { what: 'two keepalives' });
      expect(streams.opened[0]!.batches).to.have.length(1);
    });
  });

  describe('failures', () => {
    it('a failed stream reports the peer unreachable and backs off, doubling; what queued meanwhile goes on the next stream', async () => {
      const { t, streams, unreachable } = rig();
      t.send([app('b', 1)]);
      await nextTurn();
      streams.opened[0]!.h.onError(new HttpError('b:1: ECONNRESET', true, 'ECONNRESET'));
      expect(unreachable).to.deep.equal(['b']);
      t.send([app('b', 2)]);
      await nextTurn();
      expect(streams.opened, 'no new stream before the backoff').to.have.length(1);
      await waitFor(() => streams.opened.length === 2, { what: 'the stream after the first failure' });
      expect(
        streams.opened[1]!.batches.map((b) => indexes(b.messages)),
        'the lost frame is not resent: Raft retransmits',
      ).to.deep.equal([[2]]);
      streams.opened[1]!.h.onError(new HttpError('b:1: ECONNRESET', true, 'ECONNRESET'));
      t.send([app('b', 3)]);
      await waitFor(() => streams.opened.length === 3, { what: 'the stream after the second failure' });
      expect(unreachable).to.deep.equal(['b', 'b']);
      const [s0, s1, s2] = streams.opened;
      expect(s1!.atMs - s0!.atMs, 'first backoff 10 ms').to.be.at.least(9);
      expect(s2!.atMs - s1!.atMs, 'second backoff 20 ms').to.be.at.least(19);
      expect(t.stats()[0]!.failures).to.equal(2);
    });

    it('a refused stream (an answer before it ended) is a failure, logged with the refusal', async () => {
      const { t, streams, unreachable, logs } = rig();
      t.send([app('b', 1)]);
      await nextTurn();
      streams.opened[0]!.h.onResponse(
        403,
        Buffer.from('{"code":"QJM_ERR_FORBIDDEN","message":"\\"a\\" is not a member"}'),
      );
      expect(unreachable).to.deep.equal(['b']);
      expect(logs[0]!.msg).to.match(/^peer b \(b:1\) refused the stream: 403 \{"code":"QJM_ERR_FORBIDDEN"/);
      expect(t.stats()[0]).to.include({ streamOpen: false });
    });

    it('events of a stream this node already ended are ignored', async () => {
      const { t, streams, unreachable } = rig({ streamLifetimeMs: 20 });
      t.send([app('b', 1)]);
      await nextTurn();
      await waitFor(() => Date.now() - streams.opened[0]!.atMs > 20, { what: 'the stream outlives its lifetime' });
      t.send([app('b', 2)]);
      await nextTurn();
      streams.opened[0]!.h.onError(new HttpError('b:1: ECONNRESET', true, 'ECONNRESET'));
      expect(unreachable).to.deep.equal([]);
      expect(t.stats()[0]).to.include({ failures: 0, streamOpen: true });
    });
  });

  describe('inbound', () => {
    it('a batch is delivered: only the messages addressed to this node', () => {
      const { t, delivered } = rig();
      t.handleInbound(batchFrom('b', [app('a', 7, 'b'), app('c', 7, 'b')]));
      expect(indexes(delivered)).to.deep.equal([7]);
    });

    it('a batch from an id outside the configuration is refused: nothing delivered, no state kept for it', () => {
      const { t, delivered } = rig();
      expect(() =>
        t.handleInbound(batchFrom('mallory', [appResp('a', 1, 'mallory')], { fromAddress: 'm:9' })),
      ).to.throw(NotAMemberError);
      expect(() => t.openInbound('mallory', { cut() {} })).to.throw(NotAMemberError);
      expect(delivered).to.deep.equal([]);
      expect(t.stats().map((s) => s.id)).to.not.include('mallory');
    });

    it('a leader outside the configuration is heard once a member vouches for it, and answered at the address the member gave', async () => {
      const { t, streams, delivered } = rig({}, 'a', undefined, { d: 'd:7' });
      expect(await t.admits('d', [appResp('a', 1, 'd')]), 'only leader messages are heard from a non-member').to.equal(
        false,
      );
      expect(() => t.handleInbound(batchFrom('d', [app('a', 5, 'd')])), 'nothing before the word').to.throw(
        NotAMemberError,
      );
      expect(await t.admits('d', [app('a', 5, 'd')])).to.equal(true);
      expect(t.heard('d')).to.equal(true);
      t.openInbound('d', { cut() {} });
      t.handleInbound(batchFrom('d', [app('a', 5, 'd')]));
      expect(delivered.map((m) => [m.type, m.from, m.index])).to.deep.equal([[MessageType.App, 'd', 5]]);
      t.send([appResp('d', 5)]);
      await nextTurn();
      expect(streams.opened.map((x) => x.address)).to.deep.equal(['d:7']);
    });

    it('nobody vouches for a stranger: refused', async () => {
      const { t } = rig();
      expect(await t.admits('mallory', [app('a', 5, 'mallory')])).to.equal(false);
      expect(t.heard('mallory')).to.equal(false);
    });

    it(`at most ${MAX_INBOUND_STREAMS_PER_PEER} streams per peer: a newer one ends the oldest; close() ends every stream`, () => {
      const { t } = rig();
      const cuts: string[] = [];
      const stream = (name: string) => ({
        cut: (e: QjmError) => void cuts.push(`${name} ${e.httpStatus} ${e.code}`),
      });
      const forgetFirst = t.openInbound('b', stream('b1'));
      t.openInbound('b', stream('b2'));
      t.openInbound('c', stream('c1'));
      expect(cuts).to.deep.equal([]);
      t.openInbound('b', stream('b3'));
      expect(cuts).to.deep.equal(['b1 429 QJM_ERR_BUSY']);
      forgetFirst();
      expect(t.stats().find((s) => s.id === 'b')!.inboundStreams).to.equal(2);
      t.close();
      expect(cuts.slice(1).sort()).to.deep.equal([
        'b2 503 QJM_ERR_SHUTTING_DOWN',
        'b3 503 QJM_ERR_SHUTTING_DOWN',
        'c1 503 QJM_ERR_SHUTTING_DOWN',
      ]);
    });

    it('a peer whose storage id changes is recorded and logged as an error, once per change', () => {
      const { t, logs } = rig();
      t.handleInbound(batchFrom('b', [appResp('a', 1, 'b')], { storageId: 's1' }));
      t.handleInbound(batchFrom('b', [appResp('a', 2, 'b')], { storageId: 's1' }));
      expect(t.storageIdChanges).to.deep.equal([]);
      t.handleInbound(batchFrom('b', [appResp('a', 3, 'b')], { storageId: 's2' }));
      t.handleInbound(batchFrom('b', [appResp('a', 4, 'b')], { storageId: 's2' }));
      expect(t.storageIdChanges.map(({ id, from, to }) => ({ id, from, to }))).to.deep.equal([
        { id: 'b', from: 's1', to: 's2' },
      ]);
      expect(logs.filter((l) => l.level === 'error')).to.have.length(1);
      expect(t.stats().find((s) => s.id === 'b')!.storageId).to.equal('s2');
    });

    it(`storage id changes are a ring of the newest ${MAX_STORAGE_ID_CHANGES}: a peer changing its id each batch cannot grow it`, () => {
      const { t } = rig();
      const changes = MAX_STORAGE_ID_CHANGES * 3;
      for (let i = 0; i <= changes; i++)
        t.handleInbound(batchFrom('b', [appResp('a', i + 1, 'b')], { storageId: `s${i}` }));
      expect(t.storageIdChanges).to.have.length(MAX_STORAGE_ID_CHANGES);
      expect(t.storageIdChanges.map((c) => c.to)).to.deep.equal(
        Array.from({ length: MAX_STORAGE_ID_CHANGES }, (_, k) => `s${changes - MAX_STORAGE_ID_CHANGES + 1 + k}`),
      );
    });
  });

  it("two nodes: an append goes out on a's stream, its acknowledgement comes back on b's", async () => {
    // Each side's frames are handed straight to the other's handleInbound; b acknowledges every append.
    const wire = (to: () => PeerTransport) => ({
      openStream(_address: string, _path: string, _type: string, _idle: number, _h: StreamHandlers): OutboundStream {
        const reader = new FrameReader(1 << 30);
        return {
          write(chunks) {
            for (const c of chunks)
              reader.push(Buffer.from(c), (f) => f.byteLength > 0 && to().handleInbound(decodeBatch(f, LIMITS)));
            return true;
          },
          end() {},
          destroy() {},
        };
      },
    });
    let bRig: Rig | null = null;
    const a = rig({ clients: wire(() => bRig!.t) });
    bRig = rig({ clients: wire(() => a.t) }, 'b', (ms) => {
      for (const m of ms) if (m.type === MessageType.App) bRig!.t.send([appResp(m.from, m.index, 'b')]);
    });
    a.t.send([app('b', 1)]);
    await waitFor(() => a.delivered.length > 0, { what: "a receives b's acknowledgement" });
    expect(a.delivered.map((m) => [m.type, m.from, m.index])).to.deep.equal([[MessageType.AppResp, 'b', 1]]);
  });

  describe('identity', () => {
    it("every batch carries this node's generation; every delivery, its sender's envelope", async () => {
      const { t, streams, envelopes } = rig();
      t.send([app('b', 1)]);
      await nextTurn();
      expect(streams.opened[0]!.batches.map((b) => [b.from, b.storageId, b.generation])).to.deep.equal([
        ['a', 'storage-a', 3],
      ]);
      t.handleInbound(batchFrom('b', [appResp('a', 1, 'b')], { generation: 7 }));
      expect(envelopes).to.deep.equal([{ from: 'b', storageId: 'storage-b', generation: 7 }]);
    });

    it("a peer's identity refusal goes to the replica; a malformed one, or another status, does not", async () => {
      const { t, streams, notices } = rig();
      const notice: IdentityNotice = {
        kind: 'reset-away',
        clusterId: 'c0ffee',
        generation: 4,
        expectedStorageId: '',
        members: ['b'],
      };
      const answers: [number, string][] = [
        [409, JSON.stringify({ code: 'QJM_ERR_STOOD_DOWN', message: 'x', identity: notice })],
        [409, JSON.stringify({ code: 'QJM_ERR_STOOD_DOWN', identity: { ...notice, generation: -4 } })],
        [409, '{"identity": '],
        [403, JSON.stringify({ code: 'QJM_ERR_FORBIDDEN', identity: notice })],
      ];
      for (const [i, [status, body]] of answers.entries()) {
        // After each refusal the transport backs off, then opens the next stream for what is queued.
        t.send([heartbeat('b')]);
        await waitFor(() => streams.to('b:1').length > i && streams.to('b:1')[i]!.batches.length > 0, {
          what: `stream ${i + 1} to b, with a batch`,
          timeoutMs: 5000,
        });
        streams.to('b:1')[i]!.h.onResponse(status, Buffer.from(body));
      }
      expect(notices).to.deep.equal([{ from: 'b', notice }]);
    });
  });
});
