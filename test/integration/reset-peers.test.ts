// reset-peers end to end, with real processes and bin/qjm: refused while the cluster has a quorum; after two
// of three nodes are lost for good, the survivor is reset to a one-node configuration, a new writer recovers
// every edit the survivor held (every acknowledged one: the survivor was the leader) and writes on, and two
// fresh nodes join until the cluster is three again.

import { expect } from 'chai';
import { LocalCluster } from '../../src/local-cluster.js';
import { AdminClient, QjmError, QuorumJournalManager } from '../../libqjm/index.js';
import { waitFor } from '../support/async.js';
import { destroyCluster, startWriting } from '../support/cluster-writer.js';
import { runQjm } from '../support/qjm-process.js';

const ns = { namespaceId: 88, clusterId: 'CID-reset', blockPoolId: '' };

describe('reset-peers', function () {
  this.timeout(120_000);
  let c: LocalCluster;

  afterEach(destroyCluster(() => c));

  it('a majority lost for good: the survivor is reset, every edit it held is recovered, the writer writes on, the cluster grows back to three', async () => {
    c = await LocalCluster.create({ nodes: 3, electionTimeoutMs: 400 });
    c.startAll();
    const w = await startWriting(c, ns);
    for (let i = 1; i <= 300; i++) w.out.write(Buffer.from(`e${w.lastTxId + i}`));
    const acked = await w.out.flush();
    expect(acked).to.equal(w.lastTxId + 300);
    const survivor = await c.waitForLeader();
    const s = c.node(survivor);
    const newPeers = `${survivor}=${s.address}`;

    let r = await runQjm(c, ['reset-peers', '--node', s.address, '--new-peers', newPeers, '--yes']);
    expect(r.code, 'refused while every node answers').to.equal(4);
    expect(r.err).to.match(
      /3 of the 3 voters answer .*: the cluster still has a quorum; reset-peers is for a majority lost for good \(--force to reset anyway\)/,
    );

    // The node's own guard, for a caller that skips qjm's checks: a node that leads (or follows) refuses.
    const admin = new AdminClient([s.address], { tls: c.tls('admin') });
    const guarded = await admin.resetPeers(s.address, [{ id: survivor, address: s.address }], false).then(
      () => null,
      (e: unknown) => e,
    );
    await admin.close();
    expect(guarded).to.be.instanceOf(QjmError).with.property('errorName', 'INVALID_CONF_CHANGE');
    expect((guarded as Error).message).to.match(
      new RegExp(`${survivor} still leads in term \\d+: reset-peers is for a majority lost for good`),
    );

    for (const n of c.nodes.filter((x) => x.id !== survivor)) await c.kill(n.id);
    await w.q.close();
    // Without a quorum the survivor stops leading (check-quorum) and knows no leader: the node's own guard.
    await waitFor(async () => (await c.status(survivor))?.leader === null, {
      timeoutMs: 10_000,
      what: 'the survivor knows no leader any more',
    });
    r = await runQjm(c, ['reset-peers', '--node', s.address, '--new-peers', newPeers, '--yes']);
    expect(r.code, r.err).to.equal(0);
    expect(r.err).to.match(new RegExp(`the longest log among the nodes that answer: ${survivor} `));
    expect(r.out).to.match(new RegExp(`${survivor} reset to voters ${survivor} \\(snapshot at index \\d+\\)`));
    expect(r.out).to.match(/the survivor's last index is \d+ in term \d+; everything up to it is now committed/);
    expect(r.out).to.match(
      /lost: .*ECONNREFUSED.*The leader among them may have committed entries beyond index \d+, up to its own last index, which is unknown/,
    );
    const held = Number(
      /journal ns1: the survivor holds txids up to (\d+); edits a writer was told are durable after txid \1 may be lost/.exec(
        r.out,
      )?.[1],
    );
    expect(held, 'the survivor led: it holds every acknowledged edit').to.be.at.least(acked);

    // A new writer, knowing only the survivor: it recovers what the survivor held, then writes on.
    const q2 = new QuorumJournalManager({
      journalId: 'ns1',
      peers: [s.address],
      writerId: 'nn2',
      nsInfo: ns,
      tls: c.tls('writer'),
    });
    const rec = await q2.recoverUnfinalizedSegments();
    expect(rec.lastTxId).to.equal(held);
    const txids: number[] = [];
    for await (const e of q2.readEdits({ fromTxId: 1, inProgressOk: true })) {
      expect(Buffer.from(e.record).toString(), `txid ${e.txid}`).to.equal(`e${e.txid}`);
      txids.push(e.txid);
    }
    expect(txids).to.deep.equal(Array.from({ length: held }, (_, i) => i + 1));
    const out = await q2.startLogSegment(held + 1, -64);
    for (let i = 1; i <= 50; i++) out.write(Buffer.from(`e${held + i}`));
    expect(await out.flush()).to.equal(held + 50);

    // Two fresh nodes join the survivor: three voters again, every node holding the same segment files.
    for (const id of ['n4', 'n5']) {
      const n = await c.addNode(id);
      c.start(id);
      r = await runQjm(c, ['add-peer', '--peers', s.address, '--peer', `${id}=${n.address}`]);
      expect(r.code, r.err).to.equal(0);
    }
    const leader = (await c.status(await c.waitForLeader()))!;
    expect(leader.peers.map((p) => `${p.id}:${p.role}`).sort()).to.deep.equal([
      `${survivor}:voter`,
      'n4:voter',
      'n5:voter',
    ]);
    for (let i = 51; i <= 60; i++) out.write(Buffer.from(`e${held + i}`));
    expect(await out.flush()).to.equal(held + 60);
    const now = (await c.status(await c.waitForLeader()))!;
    await c.waitForApplied(now.commitIndex, 20_000);
    const ref = c.segmentFiles(survivor, 'ns1');
    for (const id of ['n4', 'n5']) {
      const got = c.segmentFiles(id, 'ns1');
      expect([...got.keys()], id).to.deep.equal([...ref.keys()]);
      for (const [name, b] of ref) expect(got.get(name)!.equals(b), `${id} ${name}`).to.equal(true);
    }
    await q2.close();
  });
});
