// A fake JournalNode among the addresses an operator gives qjm: it presents a real node certificate of the
// cluster's CA — a stranger's, n9, that the cluster never added — and plays a convincing leader (its /status
// and members header name itself leader, at an applied index far ahead). qjm must never send it an admin
// request, and libqjm no journal request: the members name no node at its address, and a node's own word does
// not count. With the ids given (--peers id=host:port) it is refused at the handshake, and a real node's
// certificate at another node's address too.

import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { QuorumJournalManager } from '../../libqjm/index.js';
import { qjournal } from '../../src/gen/proto.js';
import { LocalCluster } from '../../src/local-cluster.js';
import type { NodeStatusJson } from '../../src/node-status.js';
import { loadNodeTls } from '../../src/security/cert-files.js';
import { createNodeCert } from '../../src/security/certs.js';
import { runQjm } from '../support/qjm-process.js';

const pb = qjournal.journal;

interface Impostor {
  address: string;
  /** Every request it got: "METHOD path". */
  requests: string[];
  close(): Promise<void>;
}

/** A server with node `certId`'s certificate that answers like the leader of `c` (a copy of its status). */
async function impostor(c: LocalCluster, certId: string, realStatus: NodeStatusJson): Promise<Impostor> {
  const tls = loadNodeTls(c.certsDir!, certId);
  const requests: string[] = [];
  let address = '';
  const server = https.createServer(
    { ...tls, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3' },
    (req, res) => {
      requests.push(`${req.method} ${req.url}`);
      req.resume();
      const members = [...realStatus.peers.map((p) => `${p.id}=${p.address}`), `${certId}=${address}`].join(',');
      res.setHeader('qjournal-members', `${10 ** 12} ${members}`);
      if (req.url === '/status') {
        const forged: NodeStatusJson = {
          ...realStatus,
          id: certId,
          state: 'leader',
          leader: certId,
          leaderAddress: address,
          appliedIndex: 10 ** 12,
          commitIndex: 10 ** 12,
          peers: [...realStatus.peers, { id: certId, address, role: 'voter' }],
        };
        res.setHeader('content-type', 'application/json');
        res.end(JSON.stringify(forged));
      } else if (req.url?.startsWith('/admin/')) {
        res.setHeader('content-type', 'application/x-protobuf');
        res.end(pb.AdminResponse.encode({ message: 'snapshot at index 999999' }).finish());
      } else {
        res.statusCode = 404;
        res.end('{}');
      }
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    address,
    requests,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe('qjm and a fake node with a real node certificate', function () {
  this.timeout(120_000);
  let c: LocalCluster;
  let fake: Impostor;

  before(async () => {
    c = await LocalCluster.create({ nodes: 3, electionTimeoutMs: 400 });
    c.startAll();
    const leader = await c.waitForLeader();
    await createNodeCert({ certsDir: c.certsDir! }, 'n9', ['127.0.0.1', 'localhost']);
    fake = await impostor(c, 'n9', (await c.status(leader))!);
  });
  after(async function () {
    await fake?.close();
    const failed = this.test?.parent?.tests.some((t) => t.state === 'failed') ?? false;
    await c.destroy(failed);
    if (failed) console.log(`    cluster logs kept in ${c.root}`);
  });

  const adminRequests = () => fake.requests.filter((r) => r.includes('/admin/'));

  it('an admin request aimed at it is refused before it is sent: no member names a node at its address', async () => {
    const peers = [...c.addresses, fake.address].join(',');
    const r = await runQjm(c, ['snapshot', '--peers', peers, '--node', fake.address, '--timeout', '5']);
    expect(r.code, r.out + r.err).to.not.equal(0);
    expect(r.err).to.include(fake.address).and.to.include('n9');
    expect(adminRequests(), 'admin requests the fake node got').to.deep.equal([]);
  });

  it('listed first, claiming leadership: qjm snapshots and transfers on the real leader, never on it', async () => {
    const peers = [fake.address, ...c.addresses].join(',');
    const snap = await runQjm(c, ['snapshot', '--peers', peers, '--timeout', '20']);
    expect(snap.code, snap.out + snap.err).to.equal(0);
    expect(snap.out).to.not.include('999999');
    const transfer = await runQjm(c, ['transfer-leader', '--peers', peers, '--timeout', '20']);
    expect(transfer.code, transfer.out + transfer.err).to.equal(0);
    expect(adminRequests(), 'admin requests the fake node got').to.deep.equal([]);
  });

  it('a writer and a reader given it first write and read through the real cluster; it gets no journal request', async () => {
    const peers = [fake.address, ...c.addresses];
    const ns = { namespaceId: 3, clusterId: 'CID-fake', blockPoolId: 'BP-fake' };
    const w = new QuorumJournalManager({ journalId: 'ns1', peers, writerId: 'nn1', nsInfo: ns, tls: c.tls('writer') });
    const r = new QuorumJournalManager({ journalId: 'ns1', peers, tls: c.tls('reader') });
    try {
      await w.format(ns);
      const { lastTxId } = await w.recoverUnfinalizedSegments();
      const out = await w.startLogSegment(lastTxId + 1, -64);
      for (let i = 0; i < 20; i++) out.write(Buffer.from(`edit ${i}`));
      const durable = await out.flush();
      const read: string[] = [];
      for await (const e of r.readEdits({ fromTxId: 1, inProgressOk: true }))
        read.push(Buffer.from(e.record).toString());
      expect([durable, read.length, read[19]]).to.deep.equal([20, 20, 'edit 19']);
    } finally {
      await w.close();
      await r.close();
    }
    expect(fake.requests.filter((x) => x.includes('/qjm/'))).to.deep.equal([]);
  });

  it('with ids given, a certificate that is not the named node is refused at the handshake', async () => {
    const before = fake.requests.length;
    // The fake node given as n1; then a real node (n2) given as n3.
    const asN1 = await runQjm(c, ['status', '--peers', `n1=${fake.address}`, '--timeout', '3']);
    expect(asN1.out + asN1.err).to.match(/is node n9, expected n1/);
    expect(fake.requests.length, 'not one request went through').to.equal(before);
    const wrongId = await runQjm(c, ['status', '--peers', `n3=${c.node('n2').address}`, '--timeout', '3']);
    expect(wrongId.out + wrongId.err).to.match(/is node n2, expected n3/);
    const right = await runQjm(c, ['status', '--peers', c.nodes.map((n) => `${n.id}=${n.address}`).join(',')]);
    expect(right.code, right.err).to.equal(0);
  });
});
