// Client certificates are scoped to journals, with a real node: a writer and a reader whose certificates name
// ns1 use ns1, and every journal route asked about another journal — writes, format (of an existing or a new
// journal), newEpoch, purge, reads, the manifest, the raw segment download, a long-poll — is refused 403 naming
// the journal and the certificate's journals, before anything happens; hostile journal ids are refused alike;
// the admin spans every journal.

import { expect } from 'chai';
import { QuorumJournalManager } from '../../libqjm/index.js';
import { encodeRecords } from '../../src/edit-records.js';
import { qjournal } from '../../src/gen/proto.js';
import { HttpPools } from '../../src/http-pool.js';
import { LocalCluster } from '../../src/local-cluster.js';
import { clientTlsFrom } from '../../src/security/client-tls.js';
import type { TlsOption } from '../../src/security/client-tls.js';

const pb = qjournal.journal;
const ns = { namespaceId: 7, clusterId: 'CID-scope', blockPoolId: 'BP-scope' };

/** Every journal route, asked about `jid` with a request that would be valid there. */
function journalRequests(jid: string): [method: 'GET' | 'POST', path: string, body: Uint8Array | null][] {
  const write = (command: qjournal.journal.ICommand) =>
    pb.WriteRequest.encode({ command: { jid, ...command } }).finish();
  return [
    ['POST', '/qjm/getJournalState', pb.GetJournalStateRequest.encode({ jid }).finish()],
    ['POST', '/qjm/getEditLogManifest', pb.GetManifestRequest.encode({ jid }).finish()],
    ['POST', '/qjm/getEdits', pb.GetEditsRequest.encode({ jid, fromTxid: 1 }).finish()],
    // A long-poll past the end: refused at once, not after the wait.
    ['POST', '/qjm/getEdits', pb.GetEditsRequest.encode({ jid, fromTxid: 1000, waitMs: 20_000 }).finish()],
    ['GET', `/qjm/segment?jid=${encodeURIComponent(jid)}&first=1`, null],
    ['POST', '/qjm/format', write({ format: { nsInfo: ns } })],
    ['POST', '/qjm/format', write({ format: { nsInfo: ns, force: true, allowActiveWriter: true } })],
    ['POST', '/qjm/newEpoch', write({ newEpoch: { nsInfo: ns, writerId: 'intruder', requestId: 'x' } })],
    ['POST', '/qjm/startLogSegment', write({ startSegment: { epoch: 99, txid: 3, layoutVersion: -64 } })],
    [
      'POST',
      '/qjm/journal',
      write({
        appendRecords: {
          epoch: 1,
          segmentTxid: 1,
          firstTxid: 3,
          count: 1,
          records: encodeRecords(3, [Buffer.from('x')]),
        },
      }),
    ],
    ['POST', '/qjm/finalizeLogSegment', write({ finalizeSegment: { epoch: 1, firstTxid: 1, lastTxid: 2 } })],
    ['POST', '/qjm/dropSegment', write({ dropSegment: { epoch: 1, firstTxid: 1 } })],
    ['POST', '/qjm/purgeLogs', write({ purge: { epoch: 1, minTxidToKeep: 3 } })],
  ];
}

/** The answer's status and error (code and message) in the route's envelope. */
function refusalOf(
  path: string,
  res: { status: number; body: Buffer },
): { status: number; code: string; message: string } {
  if (path.startsWith('/qjm/segment')) {
    const j = JSON.parse(res.body.toString()) as { code: string; message: string };
    return { status: res.status, code: j.code, message: j.message };
  }
  const e = pb.WriteResponse.decode(res.body).error;
  return { status: res.status, code: e ? `QJM_ERR_${pb.ErrorCode[e.code ?? 0]}` : 'none', message: e?.message ?? '' };
}

describe('journal-scoped client certificates', function () {
  this.timeout(120_000);
  let c: LocalCluster;
  let address: string;
  const closing: { close(): Promise<void> }[] = [];

  function http(tls: TlsOption | undefined): HttpPools {
    const h = new HttpPools({ connectTimeoutMs: 2000, tls: clientTlsFrom(tls!) });
    closing.push(h);
    return h;
  }

  /** ns2's state as the admin sees it (the one certificate that may look). */
  async function ns2State(): Promise<string> {
    const res = await http(c.tls('admin')).request(
      address,
      'POST',
      '/qjm/getJournalState',
      pb.GetJournalStateRequest.encode({ jid: 'ns2' }).finish(),
      5000,
    );
    return JSON.stringify(pb.GetJournalStateResponse.decode(res.body).state);
  }

  before(async () => {
    c = await LocalCluster.create({ nodes: 1, electionTimeoutMs: 300 });
    c.startAll();
    address = c.node(await c.waitForLeader()).address;
    // ns1 is the cluster writer's journal; ns2 belongs to another master, with a certificate of its own.
    for (const [jid, tls] of [
      ['ns1', c.tls('writer')],
      ['ns2', await c.addUser('nn2', ['writer'], ['ns2'])],
    ] as const) {
      const q = new QuorumJournalManager({
        journalId: jid,
        peers: [address],
        writerId: `${jid}-master`,
        nsInfo: ns,
        tls,
      });
      closing.push(q);
      await q.format(ns);
      const { lastTxId } = await q.recoverUnfinalizedSegments();
      const out = await q.startLogSegment(lastTxId + 1, -64);
      out.write(Buffer.from(`${jid} edit 1`));
      out.write(Buffer.from(`${jid} edit 2`));
      await out.flush();
      await q.finalizeLogSegment(1, 2);
    }
  });
  after(async function () {
    await Promise.all(closing.map((x) => x.close()));
    const failed = this.test?.parent?.tests.some((t) => t.state === 'failed') ?? false;
    await c.destroy(failed);
    if (failed) console.log(`    cluster logs kept in ${c.root}`);
  });

  it('the writer and the reader of ns1 use ns1', async () => {
    for (const user of ['writer', 'reader']) {
      const res = await http(c.tls(user)).request(
        address,
        'POST',
        '/qjm/getEdits',
        pb.GetEditsRequest.encode({ jid: 'ns1', fromTxid: 1 }).finish(),
        5000,
      );
      expect([res.status, pb.GetEditsResponse.decode(res.body).count], user).to.deep.equal([200, 2]);
    }
    const seg = await http(c.tls('reader')).request(address, 'GET', '/qjm/segment?jid=ns1&first=1', null, 5000);
    expect(seg.status).to.equal(200);
  });

  it('every journal route refuses the writer and the reader of ns1 on ns2 (and on a new ns3): 403 naming both, ns2 unchanged', async () => {
    const before = await ns2State();
    for (const user of ['writer', 'reader']) {
      for (const jid of ['ns2', 'ns3']) {
        for (const [method, path, body] of journalRequests(jid)) {
          const started = Date.now();
          const r = refusalOf(path, await http(c.tls(user)).request(address, method, path, body, 10_000));
          const what = `${user} ${method} ${path} for ${jid}`;
          expect([r.status, r.code], `${what}: ${r.message}`).to.deep.equal([403, 'QJM_ERR_FORBIDDEN']);
          // A reader is refused the writes for its role first (before the body is read), the reads for the journal.
          const forRole = user === 'reader' && method === 'POST' && !path.startsWith('/qjm/get');
          expect(r.message, what).to.equal(
            forRole
              ? 'client reader (reader) may not call this: it needs the role writer or admin'
              : `client ${user} (${user}) may not use journal "${jid}": its certificate names journals ns1`,
          );
          expect(Date.now() - started, `${what} answered at once`).to.be.below(5000);
        }
      }
    }
    expect(await ns2State(), 'ns2 is as its master left it').to.equal(before);
    // ns3 was never created.
    expect(
      JSON.parse(
        await http(c.tls('admin'))
          .request(address, 'GET', '/status', null, 5000)
          .then((r) => r.body.toString()),
      ).journals,
    ).to.have.keys('ns1', 'ns2');
  });

  it('hostile journal ids are refused before they are looked at; the admin gets the validation instead', async () => {
    const writer = http(c.tls('writer'));
    const admin = http(c.tls('admin'));
    for (const jid of [
      '',
      'NS1',
      'ns1 ',
      ' ns1',
      'ns1\n',
      'ns10',
      'ns',
      '..',
      '../ns1',
      'ns1/../ns2',
      'ns1,ns2',
      'x'.repeat(10_000),
    ]) {
      const [method, path, body] = journalRequests(jid)[0]!;
      const r = refusalOf(path, await writer.request(address, method, path, body, 5000));
      expect([r.status, r.code], JSON.stringify(jid.slice(0, 20))).to.deep.equal([403, 'QJM_ERR_FORBIDDEN']);
      expect(r.message.length, 'the refusal stays short').to.be.below(400);
      const a = await admin.request(address, method, path, body, 5000);
      expect(a.status, `admin, ${JSON.stringify(jid.slice(0, 20))}`).to.be.oneOf([200, 400]);
    }
    const raw = await writer.request(address, 'GET', '/qjm/segment?jid=ns2&jid=ns1&first=1', null, 5000);
    expect(raw.status, 'a journal id given twice').to.equal(403);
    expect(await ns2State()).to.include('"lastTxid":2');
  });

  it('the admin spans every journal', async () => {
    const admin = http(c.tls('admin'));
    for (const jid of ['ns1', 'ns2']) {
      const res = await admin.request(
        address,
        'POST',
        '/qjm/getEdits',
        pb.GetEditsRequest.encode({ jid, fromTxid: 1 }).finish(),
        5000,
      );
      expect([res.status, pb.GetEditsResponse.decode(res.body).count], jid).to.deep.equal([200, 2]);
    }
  });
});
