// The read-only dashboard port in-process (app.inject): what it serves, what it refuses, the cluster
// aggregate with this node's events and history, and a peer that does not answer shown as unreachable.

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import type { FastifyInstance } from 'fastify';
import { qjournal } from '../../../../src/gen/proto.js';
import { HttpPools } from '../../../../src/http-pool.js';
import type { NodeStatusJson } from '../../../../src/node-status.js';
import type { JournalNode } from '../../../../journalnode/journal-node.js';
import { ClusterView } from '../../../../journalnode/ui/cluster-view.js';
import type { ClusterJson } from '../../../../journalnode/ui/cluster-view.js';
import { startSingleNode } from '../../../support/single-node.js';
import { waitFor } from '../../../support/async.js';
import { REPO_ROOT } from '../../../support/repo-root.js';

const pb = qjournal.journal;
const ns = { namespaceId: 5, clusterId: 'CID-ui', blockPoolId: 'BP-ui' };

describe("the dashboard's chart scale", () => {
  const source = fs.readFileSync(path.join(REPO_ROOT, 'journalnode', 'ui', 'static', 'chart-scale.js'), 'utf8');
  const yAxisTop = new Function(`${source}; return yAxisTop;`)() as (values: (number | null)[]) => number;
  const steady = Array.from({ length: 60 }, (_, i) => 900 + (i % 7) * 20);

  it('a catch-up spike does not flatten the rest: the axis ends a little above the bulk', () => {
    const top = yAxisTop([...steady, 45_000, null]);
    expect(top).to.be.lessThan(3000).and.greaterThan(1000);
  });

  it('without a spike the axis reaches the largest value', () => {
    expect(yAxisTop([...steady, 1400])).to.be.at.least(1400);
    expect(yAxisTop([5, 9000]), 'too few values to call one a spike').to.be.at.least(9000);
  });

  it('empty, all null or all zero: a unit axis', () => {
    expect(yAxisTop([])).to.equal(1);
    expect(yAxisTop([null, null])).to.equal(1);
    expect(yAxisTop([0, 0, 0])).to.equal(1);
  });

  it('the page loads it before its script', () => {
    const page = fs.readFileSync(path.join(REPO_ROOT, 'journalnode', 'ui', 'static', 'index.html'), 'utf8');
    expect(page.indexOf('/ui/chart-scale.js')).to.be.greaterThan(0).and.lessThan(page.indexOf('/ui/dashboard.js'));
  });
});

describe('dashboard port', () => {
  let node: JournalNode;
  let dir: string;
  let ui: FastifyInstance;

  before(async () => {
    ({ node, dir } = await startSingleNode({ uiListen: '127.0.0.1:0' }));
    ui = node.uiApp!;
    const write = async (command: qjournal.journal.ICommand) => {
      const r = await node.app.inject({
        method: 'POST',
        url: `/qjm/${Object.keys(command).find((k) => k !== 'jid')}`,
        headers: { 'content-type': 'application/x-protobuf' },
        payload: Buffer.from(pb.WriteRequest.encode({ command }).finish()),
      });
      expect(r.statusCode, r.body).to.equal(200);
    };
    await write({ jid: 'ns1', format: { nsInfo: ns } });
    await write({ jid: 'ns1', newEpoch: { nsInfo: ns, writerId: 'nn1' } });
    await write({ jid: 'ns1', newEpoch: { nsInfo: ns, writerId: 'nn2' } });
  });
  after(async () => {
    await node.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('is off unless --ui-listen is given', async () => {
    const { node: plain, dir: d } = await startSingleNode();
    expect(plain.uiApp).to.equal(null);
    await plain.stop();
    fs.rmSync(d, { recursive: true, force: true });
  });

  it('serves the page, its script and uPlot from node_modules, with a content security policy', async () => {
    const page = await ui.inject({ url: '/' });
    expect([page.statusCode, page.headers['content-type']]).to.deep.equal([200, 'text/html; charset=utf-8']);
    expect(page.body).to.contain('/ui/dashboard.js').and.to.contain('/ui/uPlot.iife.min.js');
    expect(page.headers['content-security-policy']).to.contain("default-src 'self'");
    for (const url of ['/ui/dashboard.js', '/ui/uPlot.iife.min.js', '/ui/uPlot.min.css']) {
      const r = await ui.inject({ url });
      expect([r.statusCode, r.body.length > 100], url).to.deep.equal([200, true]);
    }
    for (const url of ['/status', '/metrics', '/healthz', '/activity'])
      expect((await ui.inject({ url })).statusCode, url).to.equal(200);
  });

  it('answers only the Host names it was given: a page of another site (DNS rebinding) is refused 403', async () => {
    for (const url of ['/', '/status', '/metrics', '/healthz', '/activity', '/ui/cluster', '/ui/dashboard.js']) {
      for (const host of ['rebind.attacker.example:9485', '127.0.0.1.attacker.example', 'localhost@attacker.example']) {
        const r = await ui.inject({ url, headers: { host } });
        expect([r.statusCode, r.json<{ code: string }>().code], `${host} ${url}`).to.deep.equal([
          403,
          'QJM_ERR_FORBIDDEN',
        ]);
      }
      expect((await ui.inject({ url, headers: { host: '127.0.0.1:9485' } })).statusCode, url).to.equal(200);
    }
    // Refused before anything else: a write with a foreign Host gets the Host refusal, not the method's.
    expect(
      (await ui.inject({ method: 'POST', url: '/status', headers: { host: 'attacker.example' } })).statusCode,
    ).to.equal(403);
    // On the wire, as a browser tricked by DNS rebinding would send it.
    const address = ui.server.address() as net.AddressInfo;
    const answer = await new Promise<string>((resolve, reject) => {
      const s = net.connect(address.port, '127.0.0.1', () =>
        s.write(`GET /status HTTP/1.1\r\nHost: rebind.attacker.example:${address.port}\r\nConnection: close\r\n\r\n`),
      );
      let got = '';
      s.on('data', (d: Buffer) => (got += d.toString()));
      s.on('end', () => resolve(got));
      s.on('error', reject);
    });
    expect(answer.split('\r\n')[0]).to.equal('HTTP/1.1 403 Forbidden');
    expect(answer).to.not.include('"clusterId"');
  });

  it('refuses every method but GET and HEAD, and serves no journal data, admin call or peer route', async () => {
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH'] as const) {
      for (const url of ['/', '/status', '/qjm/journal', '/admin/transferLeader', '/raft/stream']) {
        const r = await ui.inject({ method, url, payload: 'x' });
        expect(r.statusCode, `${method} ${url}`).to.equal(405);
        expect(r.json<{ code: string }>().code).to.equal('QJM_ERR_INVALID_ARGUMENT');
      }
    }
    for (const url of [
      '/qjm/getEdits',
      '/qjm/segment',
      '/flags',
      '/raft_stat',
      '/raft/snapshot/manifest',
      '/raft/snapshot/chunk',
    ]) {
      expect((await ui.inject({ url })).statusCode, url).to.equal(404);
    }
    expect((await ui.inject({ method: 'HEAD', url: '/status' })).statusCode).to.equal(200);
  });

  it('/ui/cluster: the members, the leader, the journal, the merged events and the history', async () => {
    await waitFor(
      async () => (await ui.inject({ url: '/ui/cluster' })).json<ClusterJson>().members[0]!.history!.t.length > 0,
      { timeoutMs: 5000, what: 'a first history sample' },
    );
    const c = (await ui.inject({ url: '/ui/cluster?historyS=600' })).json<ClusterJson>();
    expect([c.servedBy, c.leader, c.term, c.members.map((m) => [m.id, m.reachable, m.role])]).to.deep.equal([
      'n1',
      'n1',
      node.replica.term,
      [['n1', true, 'voter']],
    ]);
    expect(c.members[0]!.status!.journals.ns1!.promisedEpoch).to.equal(2);
    expect(c.events.map((e) => `${e.kind}: ${e.message}`)).to.include.members([
      'leader: n1 became leader',
      'fenced: journal ns1: writer nn2 (epoch 2) fenced nn1 (epoch 1)',
    ]);
    expect((await ui.inject({ url: '/ui/cluster?historyS=soon' })).statusCode).to.equal(400);
    expect((await node.app.inject({ url: '/activity?events=100000' })).statusCode).to.equal(400);
    expect(
      (await node.app.inject({ url: '/activity?historyS=0&events=1' })).json<{
        history: { t: number[] };
        events: unknown[];
      }>(),
    ).to.deep.include({ history: { t: [], txns: [], fsyncs: [], fsyncP50Ms: [], fsyncP99Ms: [] } });
  });

  it('a member that does not answer is shown unreachable, with the reason; the others still show', async () => {
    const dead = net.createServer();
    await new Promise<void>((r) => dead.listen(0, '127.0.0.1', r));
    const deadAddress = `127.0.0.1:${(dead.address() as net.AddressInfo).port}`;
    await new Promise((r) => dead.close(r));
    const self = (await node.app.inject({ url: '/status' })).json<NodeStatusJson>();
    const status: NodeStatusJson = {
      ...self,
      peers: [
        ...self.peers,
        { id: 'n2', address: deadAddress, role: 'voter' },
        { id: 'n3', address: node.config.listen.replace(/:0$/, ':1'), role: 'voter' },
      ],
    };
    const clients = new HttpPools({ connectTimeoutMs: 500 });
    const view = new ClusterView({
      selfId: 'n1',
      local: (h) => ({ status, activity: node.activity.json(h, 10) }),
      clients,
      peerTimeoutMs: 500,
      cacheMs: 0,
      maxEvents: 10,
    });
    try {
      const c = await view.gather(10);
      expect(c.members.map((m) => [m.id, m.reachable, m.error])).to.deep.equal([
        ['n1', true, null],
        ['n2', false, 'ECONNREFUSED'],
        ['n3', false, 'ECONNREFUSED'],
      ]);
      expect(c.leader).to.equal('n1');
    } finally {
      await clients.close();
    }
  });

  it('a member that stops answering is listed among the events, and again when it answers (it cannot say so itself)', async () => {
    const self = (await node.app.inject({ url: '/status' })).json<NodeStatusJson>();
    // n2 is this very node under another id: it answers while its /status says n2, and not once it is "down".
    let n2Up = true;
    const app = (await import('fastify')).default();
    app.get('/status', async (_q, reply) => (n2Up ? { ...self, id: 'n2' } : reply.code(503).send({})));
    app.get('/activity', async () => ({ ...node.activity.json(10, 10), id: 'n2' }));
    await app.listen({ host: '127.0.0.1', port: 0 });
    const n2 = `127.0.0.1:${(app.server.address() as net.AddressInfo).port}`;
    const status: NodeStatusJson = { ...self, peers: [...self.peers, { id: 'n2', address: n2, role: 'voter' }] };
    const clients = new HttpPools({ connectTimeoutMs: 500 });
    const view = new ClusterView({
      selfId: 'n1',
      local: (h) => ({ status, activity: node.activity.json(h, 10) }),
      clients,
      peerTimeoutMs: 500,
      cacheMs: 0,
      maxEvents: 50,
    });
    const reach = (c: { events: { kind: string; message: string }[] }) =>
      c.events.filter((e) => e.kind === 'unreachable' || e.kind === 'reachable').map((e) => e.message);
    try {
      expect(reach(await view.gather(10)), 'first sight is not news').to.deep.equal([]);
      n2Up = false;
      expect(reach(await view.gather(10))).to.deep.equal(['n2 stopped answering (HTTP 503)']);
      expect(reach(await view.gather(10)), 'said once').to.have.length(1);
      n2Up = true;
      expect(reach(await view.gather(10))).to.deep.equal(['n2 stopped answering (HTTP 503)', 'n2 answers again']);
    } finally {
      await clients.close();
      await app.close();
    }
  });
});
