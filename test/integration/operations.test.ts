// What operators rely on, with real processes: the status pages and metrics, a clean SIGTERM that hands
// leadership over, and a follower that comes back after the leader compacted its log (snapshot install).

import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { LocalCluster } from '../../src/local-cluster.js';
import { AdminClient, QuorumJournalManager } from '../../libqjm/index.js';
import { startWriting } from '../support/cluster-writer.js';

const ns = { namespaceId: 7, clusterId: 'CID-ops', blockPoolId: 'BP-ops' };

async function get(c: LocalCluster, address: string, path: string): Promise<{ status: number; body: string }> {
  const r = await c.request(address, 'GET', path);
  return { status: r.status, body: r.body.toString() };
}

describe('operating JournalNodes', function () {
  this.timeout(120_000);
  let c: LocalCluster;
  let keep = false;

  afterEach(async function () {
    keep = this.currentTest?.state === 'failed';
    await c.destroy(keep);
    if (keep) console.log(`    cluster logs kept in ${c.root}`);
  });

  it('status, raft_stat, flags, metrics and healthz describe the node', async () => {
    c = await LocalCluster.create({ nodes: 3, electionTimeoutMs: 400 });
    c.startAll();
    const leader = await c.waitForLeader();
    const { q, out } = await startWriting(c, ns);
    for (let i = 0; i < 10; i++) out.write(Buffer.from(`e${i}`));
    await out.flush();
    const addr = c.node(leader).address;

    // biome-ignore lint/suspicious/noExplicitAny: the test reads /status as an operator's script would
    const st = JSON.parse((await get(c, addr, '/status')).body) as Record<string, any>;
    expect(st).to.include({ id: leader, state: 'leader', leader, security: 'mutual-tls' });
    for (const k of ['term', 'commitIndex', 'appliedIndex', 'lastIndex', 'diskIndex', 'snapshotIndex', 'snapshotTerm'])
      expect(st[k], k).to.be.a('number');
    expect(Object.keys(st.followers).sort()).to.deep.equal(
      c.nodes
        .map((n) => n.id)
        .filter((id) => id !== leader)
        .sort(),
    );
    expect(st.followers[Object.keys(st.followers)[0]!]).to.have.keys([
      'nextIndex',
      'matchIndex',
      'state',
      'inflight',
      'recentActive',
      'lagEntries',
    ]);
    expect(st.journals.ns1).to.include({ promisedEpoch: 1, lastWriterEpoch: 1, lastTxId: 10 });
    expect(st.peers.map((p: { id: string }) => p.id).sort()).to.deep.equal(['n1', 'n2', 'n3']);

    const page = await get(c, addr, '/raft_stat');
    expect(page.body.startsWith('<!doctype html>'), 'an HTML page').to.equal(true);
    expect(page.body).to.include('next_index').and.include('ns1');

    const flags = JSON.parse((await get(c, addr, '/flags')).body) as Record<string, unknown>;
    for (const k of [
      'electionTimeoutMs',
      'snapshotIntervalS',
      'snapshotLogBytes',
      'catchupMargin',
      'sync',
      'maxAppendBufferBytes',
      'leaderBatch',
      'maxEntriesPerAppend',
      'maxAppendBodyBytes',
      'maxLogSegmentBytes',
      'maxSnapshotChunkBytes',
      'applyBatch',
      'electionHeartbeatFactor',
    ]) {
      expect(flags, k).to.have.property(k);
    }
    expect(flags.electionTimeoutMs).to.equal(400);

    const metrics = (await get(c, addr, '/metrics')).body;
    for (const name of [
      'qjournal_raft_term',
      'qjournal_raft_commit_index',
      'qjournal_raft_follower_lag_entries',
      'qjournal_log_write_seconds_bucket',
      'qjournal_journal_txns_written_total',
      'qjournal_journal_promised_epoch',
      'qjournal_journal_last_txid',
    ]) {
      expect(metrics, name).to.include(name);
    }
    expect(metrics).to.match(/qjournal_journal_txns_written_total\{[^}]*jid="ns1"[^}]*\} 10/);

    const h = await get(c, addr, '/healthz');
    expect(h.status).to.equal(200);
    expect(JSON.parse(h.body)).to.include({ ok: true, leader });
    await q.close();

    // The process's own files are private: its log, and everything in its data directory (the umask of a
    // node process, beside the modes every creation gives).
    const n = c.node(leader);
    const open: string[] = [];
    for (const e of fs.readdirSync(n.dataDir, { withFileTypes: true, recursive: true })) {
      const p = path.join(e.parentPath, e.name);
      if ((fs.lstatSync(p).mode & 0o077) !== 0) open.push(p);
    }
    expect(open, 'readable by others').to.deep.equal([]);
    expect((fs.statSync(n.dataDir).mode & 0o777).toString(8)).to.equal('700');
    expect((fs.statSync(n.logFile).mode & 0o777).toString(8)).to.equal('600');
  });

  it('SIGTERM: the leader hands over leadership, exits 0, and writes continue on the others', async () => {
    c = await LocalCluster.create({ nodes: 3, electionTimeoutMs: 2000 });
    c.startAll();
    const leader = await c.waitForLeader();
    const { q, out } = await startWriting(c, ns);
    out.write(Buffer.from('before'));
    await out.flush();
    const t0 = Date.now();
    expect(await c.stop(leader)).to.equal(0);
    const next = await c.waitForLeader(10_000, [leader]);
    // A transfer, not an election timeout (2 s here), moved leadership.
    expect(Date.now() - t0).to.be.below(2000);
    expect(next).to.not.equal(leader);
    out.write(Buffer.from('after'));
    expect(await out.flush()).to.equal(2);
    expect(c.readLog(leader)).to.include('journalnode stopped');
    await q.close();
  });

  it('a follower back after the leader compacted past it is caught up by snapshot install, files byte-identical', async () => {
    c = await LocalCluster.create({
      nodes: 3,
      electionTimeoutMs: 500,
      extraArgs: ['--snapshotLogBytes', '16384', '--keepEntriesAfterSnapshot', '5', '--maxSnapshotChunkBytes', '4096'],
    });
    c.startAll();
    const leader = await c.waitForLeader();
    const q = new QuorumJournalManager({
      journalId: 'ns1',
      peers: c.addresses,
      writerId: 'nn1',
      nsInfo: ns,
      tls: c.tls('writer'),
    });
    await q.format(ns);
    await q.recoverUnfinalizedSegments();
    let out = await q.startLogSegment(1, -64);
    let txid = 1;
    const writeN = async (n: number) => {
      for (let i = 0; i < n; i++) out.write(Buffer.alloc(200, txid++ % 251));
      await out.flush();
    };
    await writeN(50);
    const victim = c.nodes.find((n) => n.id !== leader)!.id;
    const victimLast = (await c.status(victim))!.lastIndex;
    await c.kill(victim);
    // Finalize one segment (the follower will reuse nothing of it: it never saw it) and write plenty more.
    for (let round = 0; round < 4; round++) {
      for (let k = 0; k < 10; k++) await writeN(20);
      await q.finalizeLogSegment(out.segmentTxId, txid - 1);
      out = await q.startLogSegment(txid, -64);
    }
    await writeN(30);
    const admin = new AdminClient(c.addresses, { tls: c.tls('admin') });
    await admin.snapshot();
    const lst = (await c.status(leader))!;
    expect(lst.snapshotIndex, 'the leader took snapshots past what the follower holds').to.be.greaterThan(victimLast);
    expect(
      (lst as unknown as { firstIndex: number }).firstIndex,
      'and compacted its log past it: appends alone cannot catch it up',
    ).to.be.greaterThan(victimLast + 1);
    c.start(victim);
    await c.waitForApplied(lst.commitIndex, 30_000);
    expect(c.readLog(victim)).to.match(/snapshot fetched/);
    const ref = c.segmentFiles(leader, 'ns1');
    const got = c.segmentFiles(victim, 'ns1');
    expect([...got.keys()]).to.deep.equal([...ref.keys()]);
    for (const [name, buf] of ref) expect(got.get(name)!.equals(buf), name).to.equal(true);
    // The installed node serves reads of every txid.
    let n = 0;
    for await (const e of q.readEdits({ fromTxId: 1, inProgressOk: true })) {
      expect(e.txid).to.equal(++n);
    }
    expect(n).to.equal(txid - 1);
    await admin.close();
    await q.close();
  });
});
