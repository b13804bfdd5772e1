// The Raft transport between JournalNodes with a fake HTTP client whose answers the test releases by hand
// (and, for the piggyback round trip, two transports wired to each other in-process): batching per turn,
// one request in flight per peer, the queue bound, backoff on failure, held replies, stale replies,
// storage id changes.

import { expect } from 'chai';
import { NotAMemberError, PeerTransport } from '../../../journalnode/peer-transport.js';
import type { PeerTransportOptions } from '../../../journalnode/peer-transport.js';
import { decodeBatch, encodeBatch, messageBytes } from '../../../src/transport/raft-codec.js';
import type { Batch } from '../../../src/transport/raft-codec.js';
import type { HttpResponse } from '../../../src/http-pool.js';
import { PeerDirectory } from '../../../src/replica/peer-directory.js';
import { PeerAdmission } from '../../../journalnode/peer-admission.js';
import type { NodeStatusJson } from '../../../src/node-status.js';
import { makeMessage, MessageType } from '../../../src/raft/types.js';
import type { Message, NodeId } from '../../../src/raft/types.js';
import { deferred, nextTurn, waitFor, watch } from '../../support/async.js';
import type { Deferred } from '../../support/async.js';

const LIMITS = { maxMessages: 1000, maxEntries: 10_000, maxMembers: 100 };

const CLUSTER = 'CID-t';
const ADDRESS: Record<NodeId, string> = { a: 'a:1', b: 'b:1', c: 'c:1' };
const MEMBERS = Object.entries(ADDRESS).map(([id, address]) => ({ id, address }));

const app = (to: NodeId, index: number, from: NodeId = 'a') => makeMessage({ type: MessageType.App, to, from, term: 1, index });
const appResp = (to: NodeId, index: number, from: NodeId = 'a') => makeMessage({ type: MessageType.AppResp, to, from, term: 1, index });
const heartbeat = (to: NodeId, from: NodeId = 'a') => makeMessage({ type: MessageType.Heartbeat, to, from, term: 1 });

interface PeerRequest {
  address: string;
  method: string;
  path: string;
  timeoutMs: number;
  batch: Batch;
  atMs: number;
  answer: Deferred<HttpResponse>;
}

/** HttpPools as the transport uses it: every request waits until the test answers or fails it. */
class FakePools {
  readonly requests: PeerRequest[] = [];

  request(address: string, method: 'GET' | 'POST', path: string, body: Uint8Array | null, timeoutMs: number): Promise<HttpResponse> {
    const answer = deferred<HttpResponse>();
    this.requests.push({ address, method, path, timeoutMs, batch: decodeBatch(body!, LIMITS), atMs: Date.now(), answer });
    return answer.promise;
  }

  async ok(i: number, reply?: Batch): Promise<void> {
    this.requests[i]!.answer.resolve({ status: 200, body: reply ? Buffer.from(encodeBatch(reply)) : Buffer.alloc(0) });
    await nextTurn();
  }

  async fail(i: number, why = 'connect ECONNREFUSED'): Promise<void> {
    this.requests[i]!.answer.reject(new Error(why));
    await nextTurn();
  }
}

function batchFrom(from: NodeId, messages: Message[], over: Partial<Batch> = {}): Batch {
  return { from, clusterId: CLUSTER, storageId: `storage-${from}`, fromAddress: ADDRESS[from] ?? '', messages, ...over };
}

interface Rig {
  t: PeerTransport;
  pools: FakePools;
  directory: PeerDirectory;
  delivered: Message[];
  unreachable: NodeId[];
  logs: { level: string; msg: string }[];
}

const open: PeerTransport[] = [];

/**
 * A transport for `self` in a cluster of a, b and c, with a fake HTTP client, and a sink that records what
 * it delivers (or hands it to `onReceive`) and which peers it reports unreachable.
 */
function rig(over: Partial<PeerTransportOptions> = {}, self: NodeId = 'a', onReceive?: (ms: Message[]) => void, vouchedBy: Record<NodeId, string> = {}): Rig {
  const pools = new FakePools();
  const directory = new PeerDirectory(MEMBERS);
  const delivered: Message[] = [];
  const unreachable: NodeId[] = [];
  const logs: { level: string; msg: string }[] = [];
  const log = (level: string) => (_obj: object, msg: string) => void logs.push({ level, msg });
  const noLogs = { info() {}, warn() {}, error() {}, debug() {} };
  // Members vouch for whom `vouchedBy` names: their /status lists it.
  const admission = new PeerAdmission({
    selfId: self,
    clusterId: CLUSTER,
    directory,
    joinedFrom: [],
    fetchStatus: async (address) => ({ id: address.split(':')[0], clusterId: CLUSTER, appliedIndex: 0, peers: Object.entries(vouchedBy).map(([id, a]) => ({ id, address: a, role: 'voter' })) }) as unknown as NodeStatusJson,
    checkTimeoutMs: 100,
    refusedForMs: 1000,
    logger: noLogs,
  });
  const t = new PeerTransport({
    selfId: self,
    selfAddress: ADDRESS[self]!,
    clusterId: CLUSTER,
    storageId: `storage-${self}`,
    directory,
    admission,
    clients: pools,
    holdMs: 1000,
    requestTimeoutMs: 2000,
    maxQueueBytes: 1 << 20,
    maxBatchBytes: 1 << 20,
    batchLimits: LIMITS,
    logger: { info: log('info'), warn: log('warn'), error: log('error'), debug: log('debug') },
    ...over,
  });
  t.attach({ receive: onReceive ?? ((ms) => void delivered.push(...ms)), reportUnreachable: (id) => void unreachable.push(id) });
  open.push(t);
  return { t, pools, directory, delivered, unreachable, logs };
}

const indexes = (ms: Message[]) => ms.map((m) => m.index);

describe('PeerTransport', () => {
  afterEach(() => {
    for (const t of open.splice(0)) t.close();
  });

  describe('sending', () => {
    it('messages queued in one turn travel in one batch per peer', async () => {
      const { t, pools } = rig();
      t.send([app('b', 1)]);
      t.send([app('b', 2), heartbeat('c')]);
      t.send([app('b', 3)]);
      expect(pools.requests, 'nothing leaves before the end of the turn').to.have.length(0);
      await nextTurn();
      expect(pools.requests.map((r) => r.address)).to.deep.equal(['b:1', 'c:1']);
      const r = pools.requests[0]!;
      expect([r.method, r.path, r.timeoutMs]).to.deep.equal(['POST', '/raft/message', 2000]);
      expect([r.batch.from, r.batch.clusterId, r.batch.storageId, r.batch.fromAddress]).to.deep.equal(['a', CLUSTER, 'storage-a', 'a:1']);
      expect(indexes(r.batch.messages)).to.deep.equal([1, 2, 3]);
      expect(pools.requests[1]!.batch.messages.map((m) => m.type)).to.deep.equal([MessageType.Heartbeat]);
    });

    it('flush() sends what is queued now instead of at the end of the turn', () => {
      const { t, pools } = rig();
      t.send([app('b', 1)]);
      t.flush();
      expect(pools.requests).to.have.length(1);
    });

    it('at most one request in flight per peer: what queues meanwhile goes next, as one batch', async () => {
      const { t, pools } = rig();
      t.send([app('b', 1)]);
      await nextTurn();
      t.send([app('b', 2)]);
      await nextTurn();
      t.send([app('b', 3)]);
      await nextTurn();
      expect(pools.requests).to.have.length(1);
      expect(t.stats()[0]).to.include({ id: 'b', sending: true, queuedMessages: 2 });
      await pools.ok(0);
      expect(pools.requests).to.have.length(2);
      expect(indexes(pools.requests[1]!.batch.messages)).to.deep.equal([2, 3]);
      await pools.ok(1);
      expect(t.stats()[0]).to.include({ sending: false, queuedMessages: 0, sentBatches: 2 });
    });

    it('a batch holds at most maxBatchBytes (but always one message)', async () => {
      const size = messageBytes(app('b', 1));
      const { t, pools } = rig({ maxBatchBytes: 2 * size });
      t.send([app('b', 1), app('b', 2), app('b', 3)]);
      await nextTurn();
      await pools.ok(0);
      expect(pools.requests.map((r) => indexes(r.batch.messages))).to.deep.equal([[1, 2], [3]]);
    });

    it('the queue is bounded: past maxQueueBytes messages are dropped, and a dropped append reports the peer unreachable', async () => {
      const size = messageBytes(app('b', 1));
      expect(messageBytes(heartbeat('b'))).to.equal(size);
      const { t, pools, unreachable } = rig({ maxQueueBytes: 3 * size });
      t.send([app('b', 1)]);
      await nextTurn();
      t.send([app('b', 2), app('b', 3), app('b', 4), app('b', 5), heartbeat('b')]);
      expect(unreachable, 'only the dropped append reports').to.deep.equal(['b']);
      expect(t.stats()[0]).to.include({ droppedMessages: 2, queuedMessages: 3, queuedBytes: 3 * size });
      await pools.ok(0);
      expect(indexes(pools.requests[1]!.batch.messages)).to.deep.equal([2, 3, 4]);
    });

    it('a peer with no known address: its messages are dropped', async () => {
      const { t, pools, logs } = rig();
      t.send([app('x', 1)]);
      await nextTurn();
      expect(pools.requests).to.have.length(0);
      expect(t.stats().find((s) => s.id === 'x')).to.include({ droppedMessages: 1, queuedMessages: 0 });
      expect(logs.map((l) => l.msg)).to.deep.include.members(['no address known for peer x: dropping 1 messages']);
    });
  });

  describe('failures', () => {
    it('a failed request reports the peer unreachable and backs off, doubling; what queued meanwhile goes in the next batch', async () => {
      const { t, pools, unreachable } = rig();
      t.send([app('b', 1)]);
      await nextTurn();
      await pools.fail(0);
      expect(unreachable).to.deep.equal(['b']);
      t.send([app('b', 2)]);
      await nextTurn();
      expect(pools.requests, 'no retry before the backoff').to.have.length(1);
      await waitFor(() => pools.requests.length === 2, { what: 'the retry after the first failure' });
      expect(indexes(pools.requests[1]!.batch.messages), 'the failed batch is not resent: Raft retransmits').to.deep.equal([2]);
      t.send([app('b', 3)]);
      await pools.fail(1);
      await waitFor(() => pools.requests.length === 3, { what: 'the retry after the second failure' });
      expect(unreachable).to.deep.equal(['b', 'b']);
      const [r0, r1, r2] = pools.requests;
      expect(r1!.atMs - r0!.atMs, 'first backoff 10 ms').to.be.at.least(9);
      expect(r2!.atMs - r1!.atMs, 'second backoff 20 ms').to.be.at.least(19);
      expect(t.stats()[0]!.failures).to.equal(2);
      await pools.ok(2);
      expect(t.stats()[0]!.failures, 'a success resets the backoff').to.equal(0);
    });

    it('an answer other than 200 is a failure too', async () => {
      const { t, pools, unreachable, logs } = rig();
      t.send([app('b', 1)]);
      await nextTurn();
      pools.requests[0]!.answer.resolve({ status: 403, body: Buffer.from('cluster id "x" is not this cluster\'s') });
      await nextTurn();
      expect(unreachable).to.deep.equal(['b']);
      expect(logs[0]!.msg).to.match(/^peer b \(b:1\) answered 403: cluster id/);
    });
  });

  describe('replies', () => {
    it('the reply to a request is delivered: only messages addressed to this node', async () => {
      const { t, pools, delivered } = rig();
      t.send([app('b', 1)]);
      await nextTurn();
      await pools.ok(0, batchFrom('b', [appResp('a', 1, 'b'), appResp('c', 1, 'b')]));
      expect(delivered.map((m) => [m.type, m.to, m.index])).to.deep.equal([[MessageType.AppResp, 'a', 1]]);
    });

    it('a reply from the wrong cluster or the wrong node is dropped', async () => {
      const { t, pools, delivered, logs } = rig();
      for (const [i, reply] of [batchFrom('b', [appResp('a', 1, 'b')], { clusterId: 'CID-other' }), batchFrom('c', [appResp('a', 1, 'c')])].entries()) {
        t.send([app('b', i + 1)]);
        await nextTurn();
        await pools.ok(i, reply);
      }
      expect(delivered).to.deep.equal([]);
      expect(logs.filter((l) => l.msg === 'dropping a reply from the wrong cluster or node')).to.have.length(2);
      t.send([app('b', 3)]);
      await nextTurn();
      await pools.ok(2, batchFrom('b', [appResp('a', 3, 'b')]));
      expect(indexes(delivered), 'the right one is delivered').to.deep.equal([3]);
    });

    it('a malformed reply is dropped', async () => {
      const { t, pools, delivered, logs } = rig();
      t.send([app('b', 1)]);
      await nextTurn();
      pools.requests[0]!.answer.resolve({ status: 200, body: Buffer.from([0xff, 0xff, 0xff]) });
      await nextTurn();
      expect(delivered).to.deep.equal([]);
      expect(logs.map((l) => l.msg)).to.include('dropping a malformed reply batch');
    });
  });

  describe('inbound batches', () => {
    it('are delivered, and the held reply carries what this node queues for the sender within holdMs', async () => {
      const { t, pools, delivered } = rig();
      const reply = watch(t.handleInbound(batchFrom('b', [app('a', 7, 'b'), app('c', 7, 'b')])));
      expect(indexes(delivered)).to.deep.equal([7]);
      await nextTurn();
      expect(reply.outcome, 'held while nothing is queued for b').to.equal('pending');
      t.send([appResp('b', 7)]);
      await nextTurn();
      expect(reply.outcome).to.not.equal('pending');
      const b = decodeBatch((reply.outcome as { resolved: Uint8Array }).resolved, LIMITS);
      expect([b.from, b.clusterId, b.storageId]).to.deep.equal(['a', CLUSTER, 'storage-a']);
      expect(b.messages.map((m) => [m.type, m.index])).to.deep.equal([[MessageType.AppResp, 7]]);
      expect(pools.requests, 'the answer rode back on the reply: no request of its own').to.have.length(0);
    });

    it('with nothing to send back, the held reply is answered empty after holdMs', async () => {
      const { t } = rig({ holdMs: 50 });
      const t0 = Date.now();
      const b = decodeBatch(await t.handleInbound(batchFrom('b', [heartbeat('a', 'b')])), LIMITS);
      expect(Date.now() - t0).to.be.at.least(45);
      expect(b.messages).to.deep.equal([]);
    });

    it('a batch of answers only is not held (holding it would block the sender)', async () => {
      const { t } = rig({ holdMs: 10_000 });
      const reply = watch(t.handleInbound(batchFrom('b', [appResp('a', 1, 'b')])));
      await nextTurn();
      expect(reply.outcome).to.not.equal('pending');
    });

    it('a peer whose storage id changes is recorded and logged as an error, once per change', async () => {
      const { t, logs } = rig();
      await t.handleInbound(batchFrom('b', [appResp('a', 1, 'b')], { storageId: 's1' }));
      await t.handleInbound(batchFrom('b', [appResp('a', 2, 'b')], { storageId: 's1' }));
      expect(t.storageIdChanges).to.deep.equal([]);
      await t.handleInbound(batchFrom('b', [appResp('a', 3, 'b')], { storageId: 's2' }));
      await t.handleInbound(batchFrom('b', [appResp('a', 4, 'b')], { storageId: 's2' }));
      expect(t.storageIdChanges.map(({ id, from, to }) => ({ id, from, to }))).to.deep.equal([{ id: 'b', from: 's1', to: 's2' }]);
      expect(logs.filter((l) => l.level === 'error')).to.have.length(1);
      expect(t.stats().find((s) => s.id === 'b')!.storageId).to.equal('s2');
    });

    it('a batch from an id outside the configuration is refused: nothing delivered, no state kept for it', async () => {
      const { t, delivered } = rig();
      const refused = watch(t.handleInbound(batchFrom('mallory', [appResp('a', 1, 'mallory')], { fromAddress: 'm:9' })));
      await nextTurn();
      expect(refused.outcome).to.have.property('rejected').that.is.instanceOf(NotAMemberError);
      expect(delivered).to.deep.equal([]);
      expect(t.stats().map((s) => s.id)).to.not.include('mallory');
    });

    it('a leader outside the configuration that a member vouches for is heard, and answered at the address the member gave', async () => {
      const { t, pools, delivered } = rig({ holdMs: 0 }, 'a', undefined, { d: 'd:7' });
      const refused = watch(t.handleInbound(batchFrom('d', [appResp('a', 1, 'd')])));
      await nextTurn();
      expect(refused.outcome, 'only leader messages are heard from a non-member').to.have.property('rejected').that.is.instanceOf(NotAMemberError);
      const heard = watch(t.handleInbound(batchFrom('d', [app('a', 5, 'd')])));
      await waitFor(() => delivered.length > 0, { what: "the vouched leader's append delivered" });
      expect(delivered.map((m) => [m.type, m.from, m.index])).to.deep.equal([[MessageType.App, 'd', 5]]);
      await waitFor(() => heard.outcome !== 'pending', { what: 'the held reply' });
      t.send([appResp('d', 5)]);
      await nextTurn();
      expect(pools.requests.map((r) => r.address)).to.deep.equal(['d:7']);
    });
  });

  it('two nodes: an append and its acknowledgement make one HTTP exchange', async () => {
    // a's requests go straight to b's handleInbound; b acknowledges every append it is handed.
    let b: PeerTransport | null = null;
    const viaB = {
      requests: 0,
      async request(_address: string, _m: 'GET' | 'POST', _p: string, body: Uint8Array | null): Promise<HttpResponse> {
        this.requests++;
        return { status: 200, body: Buffer.from(await b!.handleInbound(decodeBatch(body!, LIMITS))) };
      },
    };
    const a = rig({ clients: viaB });
    const bRig = rig({}, 'b', (ms) => {
      for (const m of ms) if (m.type === MessageType.App) b!.send([appResp(m.from, m.index, 'b')]);
    });
    b = bRig.t;
    a.t.send([app('b', 1)]);
    await waitFor(() => a.delivered.length > 0, { what: "a receives b's acknowledgement" });
    expect(a.delivered.map((m) => [m.type, m.from, m.index])).to.deep.equal([[MessageType.AppResp, 'b', 1]]);
    expect([viaB.requests, bRig.pools.requests.length], 'requests a and b made').to.deep.equal([1, 0]);
  });
});
