// Forming a cluster once, with real processes and mutual TLS: nodes started with --peers on empty data
// directories wait, uninitialized, for every node named there (saying whom for, refusing everything else,
// hostile requests included), form the same configuration — each member bound to its storage — once the last
// one starts, however late, and form nothing new when restarted with the same command lines.

import { expect } from 'chai';
import { qjournal } from '../../src/gen/proto.js';
import { LocalCluster } from '../../src/local-cluster.js';
import type { NodeStatusJson } from '../../src/node-status.js';
import { RAFT_STREAM_PATH } from '../../journalnode/peers/peer-transport.js';
import { waitFor } from '../support/async.js';
import { destroyCluster } from '../support/cluster-writer.js';
import { runQjm } from '../support/qjm-process.js';

const pb = qjournal.journal;

describe('forming a cluster', function () {
  this.timeout(180_000);
  let c: LocalCluster;

  afterEach(destroyCluster(() => c));

  it('waits for every node named in --peers, refuses everything meanwhile, forms once the last one starts, and never again', async () => {
    c = await LocalCluster.create({ nodes: 3, electionTimeoutMs: 400 });
    c.start('n1');
    c.start('n2');
    const waiting = async (id: string) =>
      waitFor(
        async () => {
          const s = await c.status(id);
          return s?.state === 'uninitialized' && s.formation!.waitingFor.some((w) => w.startsWith('n3 ')) ? s : null;
        },
        { timeoutMs: 30_000, what: `${id} waits for n3` },
      );
    const st = await waiting('n1');
    expect(st.identity).to.include({ state: 'uninitialized' });
    expect(st.formation!.waitingFor.join('\n')).to.match(/n3 \(127\.0\.0\.1:\d+\) does not answer/);
    expect(st.storageId).to.match(/^[0-9a-f]{16}$/);
    await waiting('n2');
    const n1 = c.node('n1').address;

    // Everything but /status and /healthz is refused, in the route's envelope; garbage changes nothing.
    const health = await c.request(n1, 'GET', '/healthz');
    expect([health.status, JSON.parse(health.body.toString()).identity.state]).to.deep.equal([503, 'uninitialized']);
    const write = await c.request(n1, 'POST', '/qjm/journal', Buffer.from([0xff, 0x01, 0x02]));
    expect(write.status).to.equal(503);
    expect(pb.WriteResponse.decode(write.body).error?.code).to.equal(pb.ErrorCode.UNINITIALIZED);
    const admin = await c.request(n1, 'POST', '/admin/resetPeers', Buffer.alloc(70_000, 7));
    expect(admin.status).to.be.oneOf([413, 503]);
    const stream = await c.request(n1, 'POST', RAFT_STREAM_PATH, Buffer.from([0, 0, 0, 9, 1, 2, 3]));
    expect(stream.status).to.be.oneOf([415, 503]);
    const still = (await c.status('n1'))!;
    expect([still.state, still.storageId]).to.deep.equal(['uninitialized', st.storageId]);

    const status = await runQjm(c, ['status', '--peers', n1]);
    expect(status.code).to.equal(1);
    expect(status.out).to.match(/n1 .* is uninitialized: n3 .* does not answer/);
    expect(status.out).to.match(/n2 .* is uninitialized/);

    // n3, started much later: all three form the same configuration, each bound to its own storage.
    c.start('n3');
    await c.waitForLeader(30_000);
    const all = (await Promise.all(['n1', 'n2', 'n3'].map((id) => c.status(id)))) as NodeStatusJson[];
    const clusterId = all[0]!.clusterId;
    for (const s of all) {
      expect(s.clusterId, s.id).to.equal(clusterId);
      expect(s.identity?.state, s.id).to.equal('member');
      expect(s.initialPeers, s.id).to.deep.equal(all[0]!.initialPeers);
      expect(s.peers.find((p) => p.id === s.id)?.storageId, `${s.id} bound to its storage`).to.equal(s.storageId);
    }

    // The same command lines again: the same cluster, the same storage; nothing is formed anew.
    for (const id of ['n1', 'n2', 'n3']) await c.stop(id);
    c.startAll();
    await c.waitForLeader(30_000);
    for (const before of all) {
      const s = (await c.status(before.id))!;
      expect([s.clusterId, s.storageId], before.id).to.deep.equal([clusterId, before.storageId]);
    }
    const ok = await runQjm(c, ['status', '--peers', n1]);
    expect(ok.code, ok.out).to.equal(0);
  });
});
