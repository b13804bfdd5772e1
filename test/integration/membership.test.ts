// Online membership changes with real processes and the qjm CLI: a new node joins (learner catch-up, then
// joint consensus), the leader is removed, leadership is transferred, a wiped member may not rejoin under
// its old identity without being removed first, OPERATIONS.md's add-node script works as written (add-peer
// may reach the leader before the node asks to join), and a member that missed the change that added the
// leader hears that leader on another member's word.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { LocalCluster } from '../../src/local-cluster.js';
import { QuorumJournalManager } from '../../libqjm/index.js';
import { waitFor } from '../support/async.js';
import { destroyCluster, startWriting } from '../support/cluster-writer.js';
import { BIN_DIR, runQjm } from '../support/qjm-process.js';

const ns = { namespaceId: 77, clusterId: 'CID-mem', blockPoolId: '' };

/** bin/qjm as the cluster's admin user. */
const qjm = (c: LocalCluster, args: string[]) => runQjm(c, args);

/** The shell script OPERATIONS.md gives for adding a node (the code block after its marker), verbatim. */
function addNodeScript(): string {
  const doc = fs.readFileSync(path.join(BIN_DIR, '..', 'docs', 'OPERATIONS.md'), 'utf8');
  const m = /<!-- add-node\.sh: tested verbatim -->\n```sh\n([\s\S]*?)```/.exec(doc);
  if (!m) throw new Error('OPERATIONS.md has no add-node script after its marker');
  return m[1]!;
}

/** The voters and learners the leader names, as "id:role". */
async function rolesAtLeader(c: LocalCluster): Promise<string[]> {
  const st = (await c.status(await c.waitForLeader()))!;
  return st.peers.map((p) => `${p.id}:${p.role}`).sort();
}

describe('membership changes', function () {
  this.timeout(180_000);
  let c: LocalCluster;

  afterEach(destroyCluster(() => c));

  it('add-peer, remove-peer (the leader), transfer-leader: the journal keeps working and every member converges', async () => {
    c = await LocalCluster.create({ nodes: 3, electionTimeoutMs: 400 });
    c.startAll();
    await c.waitForLeader();
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
    const peers = c.nodes
      .filter((n) => n.id !== 'n4')
      .map((n) => n.address)
      .join(',');
    let r = await qjm(c, ['add-peer', '--peers', peers, '--peer', `n4=${n4.address}`]);
    expect(r.code, r.err).to.equal(0);
    expect(r.out).to.match(/voters are now .*n4/);
    const leader = await c.waitForLeader();
    const st = (await c.status(leader))!;
    expect(
      (st.peers as { id: string; role: string }[])
        .filter((p) => p.role === 'voter')
        .map((p) => p.id)
        .sort(),
    ).to.deep.equal(['n1', 'n2', 'n3', 'n4']);
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
    const peers = c.nodes
      .filter((n) => n.id !== 'n3')
      .map((n) => n.address)
      .join(',');
    let r = await qjm(c, ['remove-peer', '--peers', peers, '--peer', 'n3']);
    expect(r.code, r.err).to.equal(0);
    rmSync(n3.dataDir, { recursive: true, force: true });
    c.start('n3');
    await waitFor(() => c.status('n3'), { timeoutMs: 10_000, what: 'the wiped n3, started again, answers /status' });
    r = await qjm(c, ['add-peer', '--peers', peers, '--peer', `n3=${n3.address}`]);
    expect(r.code, r.err).to.equal(0);
    expect(await rolesAtLeader(c)).to.deep.equal(['n1:voter', 'n2:voter', 'n3:voter']);
  });

  it("OPERATIONS.md's add-node script, as written: start with --join, add-peer at once, no waiting; and add-peer first", async () => {
    c = await LocalCluster.create({ nodes: 3, electionTimeoutMs: 400 });
    c.startAll();
    const w = await startWriting(c, ns);
    for (let i = 1; i <= 50; i++) w.out.write(Buffer.from(`e${i}`));
    await w.out.flush();
    const members = c.addresses.join(',');

    // As OPERATIONS.md says: run from the qjournal directory, with the operator's certificate (ops, an admin).
    await c.addUser('ops', ['admin'], []);
    const script = path.join(c.root, 'add-node.sh');
    fs.writeFileSync(script, addNodeScript(), { mode: 0o755 });
    const n4 = await c.addNode('n4');
    const env = {
      ...process.env,
      ID: 'n4',
      ADDR: n4.address,
      DATA: n4.dataDir,
      MEMBERS: members,
      CERTS: c.certsDir!,
    };
    try {
      const r = await new Promise<{ code: number; out: string; err: string }>((resolve) =>
        execFile(script, [], { cwd: path.join(BIN_DIR, '..'), env, timeout: 120_000 }, (error, out, err) =>
          resolve({ code: error ? Number(error.code ?? 1) : 0, out, err }),
        ),
      );
      expect(
        r.code,
        `${r.err}\n${fs.existsSync(`${n4.dataDir}.log`) ? fs.readFileSync(`${n4.dataDir}.log`, 'utf8') : ''}`,
      ).to.equal(0);
      expect(r.out).to.match(/voters are now n1, n2, n3, n4/);
      expect(await rolesAtLeader(c)).to.deep.equal(['n1:voter', 'n2:voter', 'n3:voter', 'n4:voter']);
      const leader = (await c.status(await c.waitForLeader()))!;
      await waitFor(async () => ((await c.status('n4'))?.appliedIndex ?? 0) >= leader.commitIndex, {
        timeoutMs: 15_000,
        what: 'n4 applies what the leader committed',
      });

      // The other order, made certain: add-peer reaches the leader first, and the node, asking to join, finds
      // itself a learner already: it joins.
      const n5 = await c.addNode('n5');
      const adding = qjm(c, ['add-peer', '--peers', members, '--peer', `n5=${n5.address}`]);
      await waitFor(async () => (await rolesAtLeader(c)).includes('n5:learner'), {
        timeoutMs: 30_000,
        what: 'the leader lists n5 as a learner',
      });
      c.start('n5');
      const added = await adding;
      expect(added.code, added.err).to.equal(0);
      expect(await rolesAtLeader(c)).to.deep.equal(['n1:voter', 'n2:voter', 'n3:voter', 'n4:voter', 'n5:voter']);
      expect(c.readLog('n5')).to.not.match(/remove it first/);
      for (let i = 51; i <= 60; i++) w.out.write(Buffer.from(`e${i}`));
      expect(await w.out.flush()).to.equal(w.lastTxId + 60);
    } finally {
      await w.q.close();
      // The node the script started in the background: its pid is in its lock file (none if it never started).
      const lock = path.join(n4.dataDir, 'LOCK');
      const pid = fs.existsSync(lock) ? Number(fs.readFileSync(lock, 'utf8')) : 0;
      if (pid > 0) process.kill(pid, 'SIGKILL');
    }
  });

  it("a member that missed the change that added the leader hears that leader on another member's word, and catches up", async () => {
    c = await LocalCluster.create({ nodes: 3, electionTimeoutMs: 400 });
    c.startAll();
    const w = await startWriting(c, ns);
    for (let i = 1; i <= 20; i++) w.out.write(Buffer.from(`e${i}`));
    await w.out.flush();
    // n3 is down through n4's addition, n1's removal and n4 becoming leader: its configuration still says
    // n1, n2, n3, so n4 is no member in its eyes.
    await c.kill('n3');
    await c.addNode('n4');
    c.start('n4');
    const live = () =>
      c.nodes
        .filter((n) => n.proc)
        .map((n) => n.address)
        .join(',');
    let r = await qjm(c, [
      'change-peers',
      '--peers',
      live(),
      '--new-peers',
      ['n2', 'n3', 'n4'].map((id) => `${id}=${c.node(id).address}`).join(','),
    ]);
    expect(r.code, r.err).to.equal(0);
    r = await qjm(c, ['transfer-leader', '--peers', live(), '--to', 'n4']);
    expect(r.code, r.err).to.equal(0);
    await c.stop('n1');
    c.start('n3');
    // With n2 gone too, the voters n2, n3, n4 commit only if n3 follows n4.
    const leader = (await c.status('n4'))!;
    await waitFor(async () => ((await c.status('n3'))?.appliedIndex ?? 0) >= leader.commitIndex, {
      timeoutMs: 20_000,
      what: 'n3 catches up from n4',
    });
    expect(c.readLog('n3')).to.match(
      /hearing a leader this node's configuration does not name yet, on a member's word/,
    );
    await c.kill('n2');
    for (let i = 21; i <= 30; i++) w.out.write(Buffer.from(`e${i}`));
    expect(await w.out.flush(), 'n3 and n4 are a quorum').to.equal(w.lastTxId + 30);
    await w.q.close();
  });
});
