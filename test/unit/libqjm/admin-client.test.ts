// AdminClient's leader calls against stand-in nodes (fastify on loopback answering AdminResponse): the
// retry policy follows NOT_LEADER at once, retries what is retriable until the deadline, and lets final
// errors through.

import { expect } from 'chai';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import { qjournal } from '../../../src/gen/proto.js';
import { AdminClient } from '../../../libqjm/admin-client.js';
import { QjmError } from '../../../src/errors.js';

const pb = qjournal.journal;

/** A stand-in node: answers every admin POST with what `answer` returns, and counts the requests. */
async function standIn(
  answer: (n: number) => qjournal.journal.IAdminResponse,
): Promise<{ app: FastifyInstance; address: string; requests: string[] }> {
  const app = Fastify();
  const requests: string[] = [];
  app.addContentTypeParser('application/x-protobuf', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  app.post('/admin/*', async (req, reply) => {
    requests.push(req.url);
    return reply
      .type('application/x-protobuf')
      .send(Buffer.from(pb.AdminResponse.encode(answer(requests.length)).finish()));
  });
  const url = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, address: url.replace('http://', ''), requests };
}

describe('AdminClient leader calls', () => {
  const apps: FastifyInstance[] = [];
  const clients: AdminClient[] = [];
  afterEach(async () => {
    await Promise.all(clients.splice(0).map((c) => c.close()));
    await Promise.all(apps.splice(0).map((a) => a.close()));
  });

  async function node(answer: (n: number) => qjournal.journal.IAdminResponse) {
    const s = await standIn(answer);
    apps.push(s.app);
    return s;
  }
  function admin(peers: string[], retry = { initialBackoffMs: 1000, maxBackoffMs: 1000 }): AdminClient {
    const a = new AdminClient(peers, { requestTimeoutMs: 2000, retry });
    clients.push(a);
    return a;
  }

  it('a NOT_LEADER answer naming the leader is followed at once, without backing off', async () => {
    const leader = await node(() => ({ message: 'leadership moved to n2' }));
    const follower = await node(() => ({
      error: {
        code: pb.ErrorCode.NOT_LEADER,
        message: 'not the leader',
        leaderId: 'n2',
        leaderAddress: leader.address,
        term: 3,
      },
    }));
    // A 1 s backoff: a redirect that slept would take at least 500 ms.
    const t0 = Date.now();
    expect(await admin([follower.address]).transferLeader('n2')).to.equal('leadership moved to n2');
    expect(Date.now() - t0).to.be.lessThan(500);
    expect([follower.requests, leader.requests]).to.deep.equal([['/admin/transferLeader'], ['/admin/transferLeader']]);
  });

  it('snapshot: a snapshot the node is already saving (BUSY) is waited out, and the request repeated on that node', async () => {
    const n = await node((i) =>
      i < 3
        ? { error: { code: pb.ErrorCode.BUSY, message: 'a snapshot is already being saved' } }
        : { message: 'snapshot at index 42' },
    );
    expect(await admin([n.address], { initialBackoffMs: 5, maxBackoffMs: 10 }).snapshot(n.address)).to.equal(
      'snapshot at index 42',
    );
    expect(n.requests).to.deep.equal(['/admin/snapshot', '/admin/snapshot', '/admin/snapshot']);
  });

  it('a retriable error is retried until the node answers', async () => {
    const n = await node((i) =>
      i < 3
        ? { error: { code: pb.ErrorCode.CONF_CHANGE_IN_PROGRESS, message: 'a change is in progress' } }
        : { message: 'voters are now n1' },
    );
    expect(
      await admin([n.address], { initialBackoffMs: 5, maxBackoffMs: 10 }).changePeers([
        { id: 'n1', address: n.address },
      ]),
    ).to.equal('voters are now n1');
    expect(n.requests).to.have.length(3);
  });

  it('a final error surfaces at once', async () => {
    const n = await node(() => ({
      error: { code: pb.ErrorCode.INVALID_CONF_CHANGE, message: 'would leave no voter' },
    }));
    const err = await admin([n.address])
      .changePeers([])
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect(err).to.be.instanceOf(QjmError);
    expect((err as QjmError).errorName).to.equal('INVALID_CONF_CHANGE');
    expect(n.requests).to.have.length(1);
  });

  it('past the deadline the last error surfaces', async () => {
    const n = await node(() => ({ error: { code: pb.ErrorCode.BUSY, message: 'busy' } }));
    const t0 = Date.now();
    const err = await admin([n.address], { initialBackoffMs: 20, maxBackoffMs: 40 })
      .transferLeader('n2', 300)
      .then(
        () => null,
        (e: unknown) => e,
      );
    expect((err as QjmError).errorName).to.equal('BUSY');
    expect(Date.now() - t0).to.be.within(150, 2000);
    expect(n.requests.length).to.be.greaterThan(2);
  });
});
