// The peer stream route (journalnode/peers/stream-route.ts) against a stand-in transport: a sender the configuration
// does not name is held until a member's word comes (what it sent meanwhile is delivered in order), refused
// when nobody vouches, and a stream never speaks for two nodes, even with batches held while it waited.

import { Readable } from 'node:stream';
import { expect } from 'chai';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import { registerRaftRoutes, registerRaftStreamBody } from '../../../../journalnode/peers/stream-route.js';
import type { PeerTransport } from '../../../../journalnode/peers/peer-transport.js';
import { RAFT_STREAM_CONTENT_TYPE, RAFT_STREAM_PATH } from '../../../../journalnode/peers/peer-transport.js';
import type { Batch } from '../../../../src/transport/raft-codec.js';
import type { IdentityVerdict } from '../../../../src/replica/identity.js';
import { makeMessage, MessageType } from '../../../../src/raft/types.js';
import type { Message, NodeId } from '../../../../src/raft/types.js';
import { batchFrame } from '../../../support/peer-stream.js';
import { waitFor } from '../../../support/async.js';

const CLUSTER = 'CID-route';
const LIMITS = { maxMessages: 100, maxEntries: 100, maxMembers: 10 };
const app = (from: NodeId, index: number) => makeMessage({ type: MessageType.App, to: 'a', from, term: 3, index });
const frame = (from: NodeId, index: number) =>
  batchFrame({ from, clusterId: CLUSTER, storageId: `s-${from}`, fromAddress: '', messages: [app(from, index)] });

/** The transport as the route sees it: members heard at once, anyone else on a verdict the test releases. */
function standIn(members: NodeId[], verdict: (b: Batch) => IdentityVerdict = () => ({ ok: true })) {
  const delivered: Batch[] = [];
  const asked: NodeId[] = [];
  let release: (ok: boolean) => void = () => {};
  const word = new Promise<boolean>((r) => (release = r));
  const vouched = new Set<NodeId>();
  const t = {
    idleTimeoutMs: 5000,
    batchLimits: LIMITS,
    heard: (id: NodeId) => members.includes(id) || vouched.has(id),
    admits(from: NodeId, _m: readonly Message[]): true | Promise<boolean> {
      if (members.includes(from) || vouched.has(from)) return true;
      asked.push(from);
      return word.then((ok) => {
        if (ok) vouched.add(from);
        return ok;
      });
    },
    openInbound: () => () => {},
    identityVerdict: verdict,
    handleInbound: (b: Batch) => void delivered.push(b),
  };
  return { t, delivered, asked, release: (ok: boolean) => release(ok) };
}

async function route(transport: ReturnType<typeof standIn>['t']): Promise<FastifyInstance> {
  const a = Fastify();
  a.decorateRequest('caller', null);
  a.addHook('onRequest', async (req) => {
    req.caller = { kind: 'insecure' };
  });
  registerRaftStreamBody(a);
  registerRaftRoutes(a, {
    maxBodyBytes: 1 << 20,
    clusterId: CLUSTER,
    transport: transport as unknown as PeerTransport,
    logger: { info() {}, warn() {}, error() {}, debug() {} },
  });
  await a.ready();
  return a;
}

/** The frames as one chunk of the body: the route reads them all in one go, so later ones are held too. */
function send(a: FastifyInstance, frames: Buffer[]) {
  return a.inject({
    method: 'POST',
    url: RAFT_STREAM_PATH,
    headers: { 'content-type': RAFT_STREAM_CONTENT_TYPE },
    payload: Readable.from([Buffer.concat(frames)]),
  });
}

describe('peer stream route: senders the configuration does not name', () => {
  const apps: FastifyInstance[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });

  it('a leader a member vouches for: held until the word comes, then everything it sent is delivered in order', async () => {
    const s = standIn(['a', 'b']);
    const a = await route(s.t);
    apps.push(a);
    const answer = send(a, [frame('d', 1), frame('d', 2), frame('d', 3)]);
    await waitFor(() => s.asked.length > 0, { what: 'the route asks about d' });
    expect(s.asked, 'asked once, for the first batch').to.deep.equal(['d']);
    expect(s.delivered, 'nothing delivered before the word').to.deep.equal([]);
    s.release(true);
    const r = await answer;
    expect(r.statusCode).to.equal(200);
    expect(s.delivered.map((b) => b.messages[0]!.index)).to.deep.equal([1, 2, 3]);
  });

  it('nobody vouches: 403, nothing delivered', async () => {
    const s = standIn(['a', 'b']);
    const a = await route(s.t);
    apps.push(a);
    const answer = send(a, [frame('d', 1), frame('d', 2)]);
    await waitFor(() => s.asked.length > 0, { what: 'the route asks about d' });
    s.release(false);
    const r = await answer;
    expect(r.statusCode).to.equal(403);
    expect((JSON.parse(r.body) as { message: string }).message).to.include('"d" is not a member');
    expect(s.delivered).to.deep.equal([]);
  });

  it('a batch for another node, held while the word was awaited, is refused when delivered: a stream speaks for one node', async () => {
    const s = standIn(['a', 'b']);
    const a = await route(s.t);
    apps.push(a);
    const answer = send(a, [frame('d', 1), frame('b', 2)]);
    await waitFor(() => s.asked.length > 0, { what: 'the route asks about d' });
    s.release(true);
    const r = await answer;
    expect(r.statusCode).to.equal(403);
    expect((JSON.parse(r.body) as { message: string }).message).to.include('this stream speaks for d');
    expect(s.delivered.map((b) => b.from)).to.deep.equal(['d']);
  });
});

describe('peer stream route: the identity rules', () => {
  const apps: FastifyInstance[] = [];
  afterEach(async () => {
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });
  const frameWith = (from: NodeId, over: Partial<Batch>) =>
    batchFrame({
      from,
      clusterId: CLUSTER,
      storageId: `s-${from}`,
      fromAddress: '',
      messages: [app(from, 1)],
      ...over,
    });
  // The stand-in's rules: b is bound to s-b, the cluster is of generation 2.
  const rules = (b: Batch): IdentityVerdict =>
    (b.generation ?? 0) < 2
      ? {
          ok: false,
          reason: 'older generation',
          notice: { kind: 'reset-away', clusterId: CLUSTER, generation: 2, expectedStorageId: '', members: ['a'] },
        }
      : b.storageId !== `s-${b.from}`
        ? {
            ok: false,
            reason: 'another storage',
            notice: {
              kind: 'storage-mismatch',
              clusterId: CLUSTER,
              generation: 2,
              expectedStorageId: 's-b',
              members: [],
            },
          }
        : (b.generation ?? 0) > 2
          ? { ok: false, reason: 'newer generation', notice: null }
          : { ok: true };

  const table: [string, Partial<Batch>, number, string, string | null][] = [
    ['an older generation: 409, the newer one named', { generation: 0 }, 409, 'QJM_ERR_STOOD_DOWN', 'reset-away'],
    [
      'a forged storage id: 409, the binding named',
      { generation: 2, storageId: 'f00d' },
      409,
      'QJM_ERR_STORAGE_MISMATCH',
      'storage-mismatch',
    ],
    [
      'a forged newer generation: 403, the status of FORBIDDEN, nothing to tell',
      { generation: 99 },
      403,
      'QJM_ERR_FORBIDDEN',
      null,
    ],
    ['its own storage and generation: delivered', { generation: 2 }, 200, '', null],
  ];
  for (const [what, over, status, code, kind] of table)
    it(what, async () => {
      const s = standIn(['a', 'b'], rules);
      const a = await route(s.t);
      apps.push(a);
      const r = await send(a, [frameWith('b', over)]);
      expect(r.statusCode).to.equal(status);
      if (status === 200) return void expect(s.delivered.map((b) => b.from)).to.deep.equal(['b']);
      const body = JSON.parse(r.body) as { code: string; identity?: { kind: string } };
      expect(body.code).to.equal(code);
      expect(body.identity?.kind ?? null).to.equal(kind);
      expect(s.delivered, 'nothing of it is delivered').to.deep.equal([]);
    });

  it('a non-member of an older generation hears why before membership refuses it', async () => {
    const s = standIn(['a'], rules);
    const a = await route(s.t);
    apps.push(a);
    const r = await send(a, [frameWith('d', { generation: 0 })]);
    expect([r.statusCode, (JSON.parse(r.body) as { identity: { kind: string } }).identity.kind]).to.deep.equal([
      409,
      'reset-away',
    ]);
    expect(s.asked, 'no member was asked about it').to.deep.equal([]);
  });
});
