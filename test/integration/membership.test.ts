// Online membership changes with real processes and the qjm CLI: a new node joins (learner catch-up, then
// joint consensus), the leader is removed, leadership is transferred, and a wiped member may not rejoin
// under its old identity without being removed first.

import { execFile } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect } from 'chai';
import { LocalCluster } from '../../src/local-cluster.js';
import { QuorumJournalManager } from '../../libqjm/index.js';
import { waitFor } from '../support/async.js';

const QJM = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'bin', 'qjm.js');
const ns = { namespaceId: 77, clusterId: 'CID-mem', blockPoolId: '' };

/** bin/qjm as the cluster's admin user. */
function qjm(c: LocalCluster, args: string[]): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [QJM, ...args], { timeout: 120_000, env: { ...process.env, ...c.qjmEnv('admin') } }, (error, stdout, stderr) => {
      resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, out: stdout, err: stderr });
    });
  });
}

describe('membership changes', function () {
  this.timeout(180_000);
  let c: LocalCluster;

  afterEach(async function () {
    const failed = this.currentTest?.state === 'failed';
    await c.destroy(failed);
    if (failed) console.log(`    cluster logs kept in ${c.root}`);
  });

  it('add-peer, remove-peer (the leader), transfer-leader: the journal keeps working and every member converges', async () => {
    c = await LocalCluster.create({ nodes: 3, electionTimeoutMs: 400 });
    c.startAll();
    await c.waitForLeader();
    const q = new QuorumJournalManager({ journalId: 'ns1', peers: c.addresses, writerId: 'nn1', nsInfo: ns, tls: c.tls('writer') });
    await q.format(ns);
    await q.recoverUnfinalizedSegments();
    let out = await q.startLogSegment(1, -64);
    for (let i = 1; i <= 100; i++) out.write(Buffer.from(`e${i}`));
    await out.flush();
    await q.finalizeLogSegment(1, 100);
    out = await q.startLogSegment(101, -64);
    for (let i = 101; i <= 150; i++) out.write(Buffer.from(`e${i}`));
    await out.flush();

    const n4 = await c.addNode('n4');
    c.start('n4');
    const joined = await waitFor(() => c.status('n4'), { timeoutMs: 10_000, what: 'the joining n4 answers /status' });
    expect(joined.state, 'the joining node waits as a follower').to.equal('follower');
    const peers = c.nodes.filter((n) => n.id !== 'n4').map((n) => n.address).join(',');
    let r = await qjm(c, ['add-peer', '--peers', peers, '--peer', `n4=${n4.address}`]);
    expect(r.code, r.err).to.equal(0);
    expect(r.out).to.match(/voters are now .*n4/);
    const leader = await c.waitForLeader();
    const st = (await c.status(leader))!;
    expect((st.peers as { id: string; role: string }[]).filter((p) => p.role === 'voter').map((p) => p.id).sort()).to.deep.equal(['n1', 'n2', 'n3', 'n4']);
    await c.waitForApplied(st.commitIndex, 30_000);
    const ref = c.segmentFiles(leader, 'ns1');
    const got = c.segmentFiles('n4', 'ns1');
    expect([...got.keys()]).to.deep.equal([...ref.keys()]);
    for (const [name, b] of ref) expect(got.get(name)!.equals(b), name).to.equal(true);

    // Remove the leader itself: it steps down once the change commits; the others elect a leader.
    r = await qjm(c, ['remove-peer', '--peers', c.addresses.join(','), '--peer', leader]);
    expect(r.code, r.err).to.equal(0);
    await c.stop(leader);
    const next = await c.waitForLeader(15_000, [leader]);
    expect(next).to.not.equal(leader);
    for (let i = 151; i <= 160; i++) out.write(Buffer.from(`e${i}`));
    expect(await out.flush()).to.equal(160);

    const target = c.nodes.find((n) => n.proc && n.id !== next)!.id;
    r = await qjm(c, ['transfer-leader', '--peers', c.addresses.join(','), '--to', target]);
    expect(r.code, r.err).to.equal(0);
    expect(await c.waitForLeader(10_000, [leader])).to.equal(target);
    for (let i = 161; i <= 170; i++) out.write(Buffer.from(`e${i}`));
    expect(await out.flush()).to.equal(170);
    await q.close();
  });

  it('a wiped member cannot rejoin under its identity until it is removed', async () => {
    c = await LocalCluster.create({ nodes: 3, electionTimeoutMs: 400 });
    c.startAll();
    await c.waitForLeader();
    const n3 = c.node('n3');
    await c.kill('n3');
    n3.joining = true;
    const { rmSync } = await import('node:fs');
    rmSync(n3.dataDir, { recursive: true, force: true });
    c.start('n3');
    expect(await n3.exit).to.equal(3);
    expect(c.readLog('n3')).to.match(/still a voter of the cluster.*remove it first/);
    const peers = c.nodes.filter((n) => n.id !== 'n3').map((n) => n.address).join(',');
    let r = await qjm(c, ['remove-peer', '--peers', peers, '--peer', 'n3']);
    expect(r.code, r.err).to.equal(0);
    rmSync(n3.dataDir, { recursive: true, force: true });
    c.start('n3');
    await waitFor(() => c.status('n3'), { timeoutMs: 10_000, what: 'the wiped n3, started again, answers /status' });
    r = await qjm(c, ['add-peer', '--peers', peers, '--peer', `n3=${n3.address}`]);
    expect(r.code, r.err).to.equal(0);
    const leader = await c.waitForLeader();
    expect(((await c.status(leader))!.peers as { id: string; role: string }[]).map((p) => `${p.id}:${p.role}`).sort()).to.deep.equal(['n1:voter', 'n2:voter', 'n3:voter']);
  });
});
