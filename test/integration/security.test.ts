// Mutual TLS and roles with real processes, as an attacker on the network would try them: no certificate,
// a certificate of another CA, the wrong role, a node's certificate speaking for another node, a certificate
// rotated under a running node (SIGHUP), and a node started with no security chosen at all.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import tls from 'node:tls';
import { expect } from 'chai';
import { AdminClient, QjmError, QuorumJournalManager } from '../../libqjm/index.js';
import { qjournal } from '../../src/gen/proto.js';
import { HttpPools } from '../../src/http-pool.js';
import type { ClientTls } from '../../src/http-pool.js';
import { JOURNALNODE_MAIN, LocalCluster } from '../../src/local-cluster.js';
import { MessageType, makeMessage } from '../../src/raft/types.js';
import { loadClientTls, loadNodeTls } from '../../src/security/cert-files.js';
import { createCa, createClientCert, createNodeCert } from '../../src/security/certs.js';
import { batchFrame, streamOnce } from '../support/peer-stream.js';
import { waitFor } from '../support/async.js';
import { renegotiateThenRequest } from '../support/tls-renegotiate.js';
import { splitHostPort } from '../../src/ids.js';
import { decodeManifest } from '../../journalnode/state/snapshot-store.js';

const pb = qjournal.journal;
const ns = { namespaceId: 10, clusterId: 'CID-sec', blockPoolId: 'BP-sec' };

/** Every route a node serves (GET or POST) with a body that would pass its decoder. */
const ROUTES: [
  method: 'GET' | 'POST',
  path: string,
  envelope: 'json' | { decode(b: Uint8Array): { error?: qjournal.journal.IRpcError | null } },
][] = [
  ['POST', '/raft/stream', 'json'],
  ['GET', '/raft/snapshot/manifest?min_index=0', 'json'],
  ['GET', '/raft/snapshot/chunk?index=1&jid=ns1&file=edits_inprogress_0000000000000000001&offset=0&length=1', 'json'],
  ['POST', '/qjm/getJournalState', pb.GetJournalStateResponse],
  ['POST', '/qjm/getEditLogManifest', pb.GetManifestResponse],
  ['POST', '/qjm/getEdits', pb.GetEditsResponse],
  ['GET', '/qjm/segment?jid=ns1&first=1', 'json'],
  ...['format', 'newEpoch', 'startLogSegment', 'journal', 'finalizeLogSegment', 'dropSegment', 'purgeLogs'].map(
    (rpc) => ['POST', `/qjm/${rpc}`, pb.WriteResponse] as ['POST', string, typeof pb.WriteResponse],
  ),
  ['GET', '/status', 'json'],
  ['GET', '/raft_stat', 'json'],
  ['GET', '/flags', 'json'],
  ['GET', '/metrics', 'json'],
  ['GET', '/activity', 'json'],
  ['POST', '/admin/changePeers', pb.AdminResponse],
  ['POST', '/admin/transferLeader', pb.AdminResponse],
  ['POST', '/admin/snapshot', pb.AdminResponse],
  ['GET', '/no/such/route', 'json'],
];

function errorCodeOf(body: Buffer, envelope: (typeof ROUTES)[number][2]): string {
  if (envelope === 'json') return (JSON.parse(body.toString()) as { code: string }).code;
  const e = envelope.decode(body).error;
  return e ? `QJM_ERR_${pb.ErrorCode[e.code ?? 0]}` : 'no error';
}

async function expectQjmError(p: Promise<unknown>, code: string): Promise<QjmError> {
  try {
    await p;
  } catch (e) {
    expect(e, String(e)).to.be.instanceOf(QjmError);
    expect((e as QjmError).code, (e as Error).message).to.equal(code);
    return e as QjmError;
  }
  return expect.fail(`expected ${code}, the call succeeded`);
}

describe('security: mutual TLS and roles', function () {
  this.timeout(120_000);
  let c: LocalCluster;
  let leaderAddress: string;
  const clients: HttpPools[] = [];
  const open: { close(): Promise<void> }[] = [];

  /** An HTTP client of the test's own, closed after it. */
  function client(tls: ClientTls): HttpPools {
    const h = new HttpPools({ connectTimeoutMs: 2000, tls });
    clients.push(h);
    return h;
  }

  async function terms(): Promise<number[]> {
    return Promise.all(c.nodes.map(async (n) => (await c.status(n.id))!.term));
  }

  /** The snapshot manifest and its first chunk as `as` asks them of the leader: each answer's status and code. */
  async function snapshotReads(as: HttpPools): Promise<{ manifest: string; chunk: string }> {
    const member = client({ ...loadNodeTls(c.certsDir!, 'n1') });
    const m = await member.request(leaderAddress, 'GET', '/raft/snapshot/manifest?min_index=0', null, 5000);
    expect(m.status, "a member's manifest request").to.equal(200);
    const manifest = decodeManifest(m.body, 'the manifest');
    const j = manifest.journals.find((x) => x.segments.some((sg) => sg.sizeBytes > 0))!;
    const seg = j.segments.find((sg) => sg.sizeBytes > 0)!;
    const q = new URLSearchParams({
      index: String(manifest.meta.index),
      jid: j.jid,
      file: seg.file,
      offset: '0',
      length: String(seg.sizeBytes),
    });
    const answer = (r: { status: number; body: Buffer }) =>
      r.status === 200 ? `200 (${r.body.byteLength} bytes)` : `${r.status} ${JSON.parse(r.body.toString()).code}`;
    const chunk = await member.request(leaderAddress, 'GET', `/raft/snapshot/chunk?${q}`, null, 5000);
    expect(answer(chunk), "a member's chunk request").to.equal(`200 (${seg.sizeBytes} bytes)`);
    return {
      manifest: answer(await as.request(leaderAddress, 'GET', '/raft/snapshot/manifest?min_index=0', null, 5000)),
      chunk: answer(await as.request(leaderAddress, 'GET', `/raft/snapshot/chunk?${q}`, null, 5000)),
    };
  }

  before(async () => {
    c = await LocalCluster.create({ nodes: 3, electionTimeoutMs: 400 });
    c.startAll();
    leaderAddress = c.node(await c.waitForLeader()).address;
    const q = new QuorumJournalManager({
      journalId: 'ns1',
      peers: c.addresses,
      writerId: 'nn1',
      nsInfo: ns,
      tls: c.tls('writer'),
    });
    open.push(q);
    await q.format(ns);
    const { lastTxId } = await q.recoverUnfinalizedSegments();
    const out = await q.startLogSegment(lastTxId + 1, -64);
    out.write(Buffer.from('one edit'));
    await out.flush();
  });
  after(async function () {
    await Promise.all([...open, ...clients].map((x) => x.close()));
    const failed = this.test?.parent?.tests.some((t) => t.state === 'failed') ?? false;
    await c.destroy(failed);
    if (failed) console.log(`    cluster logs kept in ${c.root}`);
  });

  it('/status says mutual-tls; without a certificate every route but /healthz answers 401 in its own envelope, and nothing changes', async () => {
    expect((await c.status('n1'))!.security).to.equal('mutual-tls');
    const before = await terms();
    const anonymous = client({ ca: fs.readFileSync(path.join(c.certsDir!, 'ca.crt')) });
    for (const [method, route, envelope] of ROUTES) {
      const res = await anonymous.request(
        leaderAddress,
        method,
        route,
        method === 'POST' ? new Uint8Array(0) : null,
        5000,
      );
      expect(res.status, `${method} ${route}`).to.equal(401);
      expect(errorCodeOf(res.body, envelope), `${method} ${route}`).to.equal('QJM_ERR_UNAUTHENTICATED');
    }
    const h = await anonymous.request(leaderAddress, 'GET', '/healthz', null, 5000);
    expect(h.status).to.equal(200);
    expect(await terms()).to.deep.equal(before);
  });

  it('a TLS 1.2 client is refused at the handshake (TLS 1.3 only), and the node logs its address', async () => {
    const m = loadClientTls(c.certsDir!, 'reader');
    const { host, port } = splitHostPort(leaderAddress);
    const outcome = await new Promise<string>((resolve) => {
      const s = tls.connect({
        host,
        port,
        ca: m.ca,
        cert: m.cert,
        key: m.key,
        servername: 'localhost',
        maxVersion: 'TLSv1.2',
      });
      s.once('secureConnect', () => {
        resolve(`completed a ${s.getProtocol()} handshake`);
        s.destroy();
      });
      s.once('error', (e: Error & { code?: string }) => resolve(`refused: ${e.code ?? e.message}`));
    });
    expect(outcome).to.match(/^refused/);
    const leaderId = c.nodes.find((n) => n.address === leaderAddress)!.id;
    await waitFor(
      () =>
        /TLS 1.2 or older.*"remote":"127\.0\.0\.1"|"remote":"127\.0\.0\.1".*TLS 1.2 or older/.test(c.readLog(leaderId)),
      {
        timeoutMs: 5000,
        what: 'the node logs the refused protocol with the remote address',
      },
    );
  });

  it('renegotiation cannot change the caller: a reader that renegotiates with a self-made admin or node certificate gets nothing', async () => {
    const evil = path.join(c.root, 'renegotiation-certs');
    await createCa({ certsDir: evil });
    await createClientCert({ certsDir: evil }, 'admin', ['admin']);
    await createNodeCert({ certsDir: evil }, 'n1', ['127.0.0.1']);
    const reader = {
      cert: path.join(c.certsDir!, 'client.reader.crt'),
      key: path.join(c.certsDir!, 'client.reader.key'),
    };
    const before = await terms();
    const snapshotsBefore = (await c.status(c.nodes.find((n) => n.address === leaderAddress)!.id))!.snapshotIndex;
    for (const [who, route] of [
      ['client.admin', '/admin/snapshot'],
      ['node.n1', '/admin/snapshot'],
    ] as const) {
      const r = await renegotiateThenRequest(
        splitHostPort(leaderAddress),
        reader,
        { cert: path.join(evil, `${who}.crt`), key: path.join(evil, `${who}.key`) },
        'POST',
        route,
      );
      expect(r.outcome, `${who} -> ${route}: ${r.detail}`).to.equal('handshake-refused');
    }
    expect(await terms(), 'no term moved').to.deep.equal(before);
    const leaderId = c.nodes.find((n) => n.address === leaderAddress)!.id;
    expect((await c.status(leaderId))!.snapshotIndex, 'no snapshot was taken').to.equal(snapshotsBefore);
  });

  it('a client certificate of another CA is refused at the handshake', async () => {
    const evil = path.join(c.root, 'evil-certs');
    await createCa({ certsDir: evil });
    await createClientCert({ certsDir: evil }, 'admin', ['admin']);
    const m = loadClientTls(evil, 'admin');
    const intruder = client({ ca: fs.readFileSync(path.join(c.certsDir!, 'ca.crt')), cert: m.cert, key: m.key });
    let refused: Error | null = null;
    try {
      const res = await intruder.request(leaderAddress, 'POST', '/admin/snapshot', new Uint8Array(0), 5000);
      expect.fail(`answered HTTP ${res.status}`);
    } catch (e) {
      refused = e as Error;
    }
    expect(refused!.name).to.equal('HttpError');
    const leaderId = c.nodes.find((n) => n.address === leaderAddress)!.id;
    await waitFor(() => /refused a TLS client/.test(c.readLog(leaderId)), {
      timeoutMs: 5000,
      what: 'the node logs the refused handshake',
    });
    // The other way round: a client that trusts only the other CA refuses our node.
    const ours = loadClientTls(c.certsDir!, 'writer');
    const misled = new QuorumJournalManager({
      journalId: 'ns1',
      peers: [leaderAddress],
      tls: { ca: m.ca, cert: ours.cert, key: ours.key },
      retry: { deadlineMs: 1000 },
    });
    open.push(misled);
    const e = await expectQjmError(misled.getJournalState(), 'QJM_ERR_QUORUM_UNAVAILABLE');
    expect(e.message).to.match(/certificate/i);
  });

  it('a writer may not call /admin/* nor format with force: 403 FORBIDDEN; it may write', async () => {
    const admin = new AdminClient(c.addresses, { tls: c.tls('writer'), retry: { deadlineMs: 2000 } });
    open.push(admin);
    const e = await expectQjmError(admin.snapshot(leaderAddress), 'QJM_ERR_FORBIDDEN');
    expect(e.message).to.match(/client writer \(writer\) may not call this: it needs the role admin/);
    const w = new QuorumJournalManager({
      journalId: 'ns1',
      peers: c.addresses,
      tls: c.tls('writer'),
      retry: { deadlineMs: 2000 },
    });
    open.push(w);
    await expectQjmError(w.format(ns, { force: true }), 'QJM_ERR_FORBIDDEN');
    expect((await w.getJournalState()).lastTxId, 'the journal is untouched').to.equal(1);
    // The admin may do both (snapshot here; force is the same check).
    const a = new AdminClient(c.addresses, { tls: c.tls('admin') });
    open.push(a);
    expect(await a.snapshot(leaderAddress)).to.match(/snapshot at index/);
  });

  it('/flags (file-system paths among the settings) answers the admin only: 403 to a reader, a writer and a node', async () => {
    for (const tls of [
      loadClientTls(c.certsDir!, 'reader'),
      loadClientTls(c.certsDir!, 'writer'),
      loadNodeTls(c.certsDir!, 'n2'),
    ]) {
      const res = await client(tls).request(leaderAddress, 'GET', '/flags', null, 5000);
      expect([res.status, JSON.parse(res.body.toString()).code]).to.deep.equal([403, 'QJM_ERR_FORBIDDEN']);
      expect(res.body.toString()).to.not.include(c.certsDir!);
    }
    const flags = await c.request(leaderAddress, 'GET', '/flags');
    expect([flags.status, JSON.parse(flags.body.toString()).certsDir]).to.deep.equal([200, c.certsDir]);
  });

  it('a reader may read but not write: 403 FORBIDDEN', async () => {
    const r = new QuorumJournalManager({
      journalId: 'ns1',
      peers: c.addresses,
      writerId: 'intruder',
      tls: c.tls('reader'),
      retry: { deadlineMs: 2000 },
    });
    open.push(r);
    const st = await r.getJournalState();
    expect(st.lastTxId).to.equal(1);
    await expectQjmError(r.recoverUnfinalizedSegments(), 'QJM_ERR_FORBIDDEN');
    const after = await r.getJournalState();
    expect([after.promisedEpoch, after.writerId], 'no new epoch: the writer is not fenced').to.deep.equal([
      st.promisedEpoch,
      st.writerId,
    ]);
  });

  it("node n3's certificate sending a batch as n1 (or messages from n1) is refused 403, and nothing changes", async () => {
    const leader = await c.waitForLeader();
    const target = c.nodes.find((n) => n.id !== 'n3' && n.id !== 'n1') ?? c.node('n2');
    const st = (await c.status(target.id))!;
    const before = await terms();
    const n3 = client({ ...loadNodeTls(c.certsDir!, 'n3') });
    const forged = makeMessage({
      type: MessageType.Heartbeat,
      from: 'n1',
      to: target.id,
      term: 2 ** 53 - 1,
      commit: st.commitIndex,
    });
    for (const from of ['n1', 'n3']) {
      const frame = batchFrame({
        from,
        clusterId: st.clusterId,
        storageId: 'forged',
        fromAddress: c.node('n1').address,
        messages: [forged],
      });
      const res = await streamOnce(n3, target.address, [frame]);
      expect(res.status, `batch from ${from}`).to.equal(403);
      expect(JSON.parse(res.body)).to.include({ code: 'QJM_ERR_FORBIDDEN' });
    }
    // A client certificate (no peer role) may not open a peer stream at all.
    const writer = client({ ...loadClientTls(c.certsDir!, 'writer') });
    const res = await streamOnce(writer, target.address, [
      batchFrame({ from: 'n3', clusterId: st.clusterId, storageId: 'x', fromAddress: '', messages: [] }),
    ]);
    expect([res.status, JSON.parse(res.body).code]).to.deep.equal([403, 'QJM_ERR_FORBIDDEN']);
    expect(await terms(), 'no term moved').to.deep.equal(before);
    expect(await c.waitForLeader(), 'the leader stays').to.equal(leader);
  });

  it('a node certificate of a node the cluster never added may not read the snapshot: 403, logged as a warning', async () => {
    const admin = new AdminClient(c.addresses, { tls: c.tls('admin') });
    open.push(admin);
    await admin.snapshot(leaderAddress);
    await createNodeCert({ certsDir: c.certsDir! }, 'n9', ['127.0.0.1']);
    const stranger = client({ ...loadNodeTls(c.certsDir!, 'n9') });
    expect(await snapshotReads(stranger)).to.deep.equal({
      manifest: '403 QJM_ERR_FORBIDDEN',
      chunk: '403 QJM_ERR_FORBIDDEN',
    });
    const leaderId = c.nodes.find((n) => n.address === leaderAddress)!.id;
    await waitFor(
      () => /"level":40[^\n]*refused a snapshot read[^\n]*n9|n9[^\n]*refused a snapshot read/.test(c.readLog(leaderId)),
      {
        timeoutMs: 5000,
        what: 'a warning naming n9',
      },
    );
  });

  it("a member's certificate with a forged storage id or a forged generation: refused saying why (409, or 403 for a newer generation: no notice); nothing changes, nobody stands down", async () => {
    const leader = await c.waitForLeader();
    const target = c.nodes.find((n) => n.id !== 'n3') ?? c.node('n1');
    const st = (await c.status(target.id))!;
    const n3 = (await c.status('n3'))!;
    const before = await terms();
    const tls = client({ ...loadNodeTls(c.certsDir!, 'n3') });
    // A vote request far ahead: what would move every term if it were heard.
    const vote = makeMessage({
      type: MessageType.PreVote,
      from: 'n3',
      to: target.id,
      term: st.term + 1000,
      index: 1 << 30,
      logTerm: st.term + 999,
    });
    const cases: [string, { storageId: string; generation: number }, string, string | null][] = [
      [
        'another storage under n3',
        { storageId: 'f00d', generation: 0 },
        'QJM_ERR_STORAGE_MISMATCH',
        'storage-mismatch',
      ],
      ['no storage at all', { storageId: '', generation: 0 }, 'QJM_ERR_STORAGE_MISMATCH', 'storage-mismatch'],
      ['a forged newer generation', { storageId: n3.storageId, generation: 99 }, 'QJM_ERR_FORBIDDEN', null],
    ];
    for (const [what, env, code, kind] of cases) {
      const frame = batchFrame({
        from: 'n3',
        clusterId: st.clusterId,
        fromAddress: c.node('n3').address,
        messages: [vote],
        ...env,
      });
      const res = await streamOnce(tls, target.address, [frame]);
      expect(res.status, what).to.equal(kind ? 409 : 403);
      const body = JSON.parse(res.body) as { code: string; identity?: { kind: string; expectedStorageId: string } };
      expect(body.code, what).to.equal(code);
      expect(body.identity?.kind ?? null, what).to.equal(kind);
      if (kind) expect(body.identity!.expectedStorageId, what).to.equal(n3.storageId);
    }
    expect(await terms(), 'no term moved').to.deep.equal(before);
    expect(await c.waitForLeader(), 'the leader stays').to.equal(leader);
    for (const n of c.nodes)
      expect((await c.status(n.id))!.identity?.state, `${n.id} stays a member`).to.equal('member');
    expect((await c.status(target.id))!.identity!.refused.map((r) => r.id)).to.include('n3');
  });

  it('SIGHUP: a node picks up a re-issued certificate for new connections, and keeps working', async () => {
    const serialOf = async () => {
      let serial = '';
      const probe = new HttpPools({
        connectTimeoutMs: 2000,
        tls: {
          ...loadClientTls(c.certsDir!, 'reader'),
          verifyServer: (_a, cert) => {
            serial = cert.serialNumber;
            return null;
          },
        },
      });
      try {
        await probe.request(c.node('n1').address, 'GET', '/healthz', null, 5000);
      } finally {
        await probe.close();
      }
      return serial;
    };
    const old = await serialOf();
    await createNodeCert({ certsDir: c.certsDir!, overwrite: true }, 'n1', ['127.0.0.1', 'localhost']);
    const fresh = new (await import('node:crypto')).X509Certificate(
      fs.readFileSync(path.join(c.certsDir!, 'node.n1.crt')),
    ).serialNumber;
    expect(fresh).to.not.equal(old);
    expect(await serialOf(), 'before SIGHUP the old certificate is served').to.equal(old);
    c.signal('n1', 'SIGHUP');
    await waitFor(async () => (await serialOf()) === fresh, {
      timeoutMs: 10_000,
      what: 'a new connection to n1 sees the new serial',
    });
    // pino writes to stdout asynchronously: the line may land a moment after the new certificate is served.
    await waitFor(() => /reloaded the certificates/.test(c.readLog('n1')), {
      timeoutMs: 5000,
      what: "n1's log says it reloaded the certificates",
    });
    // Still a member in good standing: it answers, and the cluster still writes through every node.
    const w = new QuorumJournalManager({ journalId: 'ns1', peers: [c.node('n1').address], tls: c.tls('reader') });
    open.push(w);
    expect((await w.getJournalState()).formatted).to.equal(true);
  });

  it("a removed node's certificate no longer speaks for it: its batches are refused 403, nothing changes", async () => {
    const admin = new AdminClient(c.addresses, { tls: c.tls('admin') });
    open.push(admin);
    const keep = c.nodes.filter((n) => n.id !== 'n3').map((n) => ({ id: n.id, address: n.address }));
    await admin.changePeers(keep);
    await waitFor(async () => (await c.status('n1'))!.peers.every((p) => p.id !== 'n3'), {
      timeoutMs: 20_000,
      what: 'n1 applies the removal of n3',
    });
    const before = (await c.status('n1'))!.term;
    const st = (await c.status('n1'))!;
    const n3 = client({ ...loadNodeTls(c.certsDir!, 'n3') });
    // n3 speaks as itself (its certificate's node): a vote request in a much higher term, as a removed node
    // that never heard of its removal would send.
    const vote = makeMessage({
      type: MessageType.Vote,
      from: 'n3',
      to: 'n1',
      term: before + 10,
      index: st.lastIndex + 100,
      logTerm: before + 9,
    });
    const res = await streamOnce(n3, c.node('n1').address, [
      batchFrame({ from: 'n3', clusterId: st.clusterId, storageId: 'x', fromAddress: '', messages: [vote] }),
    ]);
    expect(res.status).to.equal(403);
    expect(JSON.parse(res.body)).to.include({ code: 'QJM_ERR_FORBIDDEN' });
    expect(JSON.parse(res.body).message, 'refused when the stream opens, before a frame is read').to.match(
      /"n3" is not a member/,
    );
    expect((await c.status('n1'))!.term, "n1's term").to.equal(before);
    // Nor may it read the snapshot any more (it could while a member). n3 itself is left out of the wait: had it
    // led, the others elected a leader after its removal, of which it never hears, and which holds no snapshot
    // yet.
    leaderAddress = c.node(await c.waitForLeader(30_000, ['n3'])).address;
    await admin.snapshot(leaderAddress);
    expect(await snapshotReads(n3)).to.deep.equal({
      manifest: '403 QJM_ERR_FORBIDDEN',
      chunk: '403 QJM_ERR_FORBIDDEN',
    });
  });

  it('a node started with neither --certs-dir nor --insecure exits 2 saying how to fix it', () => {
    const dir = path.join(c.root, 'never-created');
    const r = spawnSync(
      process.execPath,
      [JOURNALNODE_MAIN, '--id', 'n9', '--listen', '127.0.0.1:0', '--data', dir, '--peers', 'n9=127.0.0.1:1'],
      { encoding: 'utf8', timeout: 15_000 },
    );
    expect(r.status).to.equal(2);
    expect(r.stderr).to.include(
      'start with --certs-dir D (qjm cert create-ca / create-node), or --insecure to run without TLS',
    );
    expect(fs.existsSync(dir), 'the data directory is not touched').to.equal(false);
  });
});
