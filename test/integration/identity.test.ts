// A node that comes back different, with real processes and mutual TLS, as an operator meets it: a replaced
// disk under a member's id does not form a cluster of its own nor vote a stale node in (no acknowledged edit is
// lost; the node says what happened and the one command that repairs it), and nodes reset away by reset-peers
// that come back with their old disks stand down once they reach the reset cluster (no second writer; qjm
// status names the problem).

import fs from 'node:fs';
import { expect } from 'chai';
import { LocalCluster } from '../../src/local-cluster.js';
import { QjmError, QuorumJournalManager } from '../../libqjm/index.js';
import { qjournal } from '../../src/gen/proto.js';
import { waitFor } from '../support/async.js';
import { destroyCluster, startWriting } from '../support/cluster-writer.js';
import { runQjm } from '../support/qjm-process.js';

const pb = qjournal.journal;

const ns = { namespaceId: 19, clusterId: 'CID-identity', blockPoolId: '' };
const ELECTION_MS = 400;

/** Polls `check` every 50 ms for `forMs`: the condition must hold at every look (an absence, watched). */
async function holdsThroughout(forMs: number, what: string, check: () => Promise<string | null>): Promise<void> {
  const until = Date.now() + forMs;
  while (Date.now() < until) {
    const broken = await check();
    if (broken) throw new Error(`${what}: ${broken}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function writer(c: LocalCluster, peers: string[], o: { recoveryTimeoutMs?: number; writerId?: string } = {}) {
  return new QuorumJournalManager({
    journalId: 'ns1',
    peers,
    writerId: o.writerId ?? 'nn2',
    nsInfo: ns,
    tls: c.tls('writer'),
    ...(o.recoveryTimeoutMs ? { recoveryTimeoutMs: o.recoveryTimeoutMs, writeTimeoutMs: o.recoveryTimeoutMs } : {}),
  });
}

async function readAll(q: QuorumJournalManager): Promise<number[]> {
  const txids: number[] = [];
  for await (const e of q.readEdits({ fromTxId: 1, inProgressOk: true })) {
    expect(Buffer.from(e.record).toString(), `txid ${e.txid}`).to.equal(`e${e.txid}`);
    txids.push(e.txid);
  }
  return txids;
}

describe('a node that comes back different', function () {
  this.timeout(240_000);
  let c: LocalCluster;

  afterEach(destroyCluster(() => c));

  it('a replaced disk under a member id: no cluster of its own, no stale leader, every acknowledged edit kept; replace-node re-adds it', async () => {
    c = await LocalCluster.create({ nodes: 3, electionTimeoutMs: ELECTION_MS });
    c.startAll();
    const leader = await c.waitForLeader();
    const [follower, stale] = c.nodes.filter((n) => n.id !== leader).map((n) => n.id) as [string, string];
    await c.kill(stale);
    const w = await startWriting(c, ns);
    for (let i = 1; i <= 2000; i++) w.out.write(Buffer.from(`e${w.lastTxId + i}`));
    const acked = await w.out.flush();
    expect(acked).to.equal(w.lastTxId + 2000);
    await w.q.close();

    // The leader dies; the follower's disk is replaced by an empty one and it restarts with its usual command
    // line (--peers), beside the stale node.
    await c.kill(leader);
    await c.kill(follower);
    const f = c.node(follower);
    fs.rmSync(f.dataDir, { recursive: true, force: true });
    c.start(follower);
    c.start(stale);

    await waitFor(async () => (await c.status(follower)) && (await c.status(stale)), {
      timeoutMs: 30_000,
      what: `${follower} and ${stale} answer`,
    });
    // No leader from the empty node and the stale one, and no writer recovers at txid 0.
    const q2 = writer(c, c.addresses, { recoveryTimeoutMs: 3000 });
    const recovering = q2.recoverUnfinalizedSegments().then(
      (r) => r,
      (e: unknown) => e,
    );
    await holdsThroughout(6 * ELECTION_MS, 'no leader without the acknowledged edits', async () => {
      for (const id of [follower, stale]) {
        const s = await c.status(id);
        if (s?.state === 'leader') return `${id} leads in term ${s.term} with last index ${s.lastIndex}`;
      }
      return null;
    });
    const recovered = await recovering;
    expect(recovered, 'a writer cannot recover from the stale node and the empty one').to.be.instanceOf(QjmError);
    await q2.close();

    // The node says what happened, and the repair.
    const st = await waitFor(
      async () => {
        const s = await c.status(follower);
        return s?.identity?.state === 'storage-mismatch' ? s : null;
      },
      { timeoutMs: 30_000, what: `${follower} reports that its storage is not the one the cluster knows` },
    );
    expect(st.identity!.problem).to.match(
      new RegExp(
        `its storage is not the one the cluster knows for ${follower}: the configuration binds ${follower} to storage [0-9a-f]+, and this data directory is storage ${st.storageId}`,
      ),
    );
    expect(st.identity!.repair).to.include(`qjm replace-node --peer ${follower}=${f.address}`);
    const health = await c.request(f.address, 'GET', '/healthz');
    expect(health.status).to.equal(503);
    expect(JSON.parse(health.body.toString()).identity).to.include({ state: 'storage-mismatch' });
    await waitFor(() => /this data directory is not the storage the cluster knows for/.test(c.readLog(follower)), {
      timeoutMs: 5000,
      what: `${follower}'s log says its storage is not the one the cluster knows (pino writes asynchronously)`,
    });

    // The old leader returns: every acknowledged edit is served.
    c.start(leader);
    await c.waitForLeader(30_000, [follower]);
    const q3 = writer(c, c.addresses, { writerId: 'nn3' });
    const rec = await q3.recoverUnfinalizedSegments();
    expect(rec.lastTxId).to.equal(acked);
    expect(await readAll(q3)).to.deep.equal(Array.from({ length: acked }, (_, i) => i + 1));

    // The one repair command: the node is a voter again, bound to its new storage, holding the journal.
    const others = c.nodes
      .filter((n) => n.id !== follower)
      .map((n) => n.address)
      .join(',');
    const r = await runQjm(c, ['replace-node', '--peers', others, '--peer', `${follower}=${f.address}`]);
    expect(r.code, r.err).to.equal(0);
    expect(r.out).to.include(`${follower} is bound to storage ${st.storageId}`);
    const now = await waitFor(
      async () => {
        const l = await c.status(await c.waitForLeader(15_000));
        const m = l?.peers.find((p) => p.id === follower);
        return m?.role === 'voter' && m.storageId === st.storageId ? l : null;
      },
      { timeoutMs: 30_000, what: `${follower} a voter bound to its new storage` },
    );
    await waitFor(
      async () => {
        const s = await c.status(follower);
        return (
          s?.identity?.state === 'member' && s.appliedIndex >= now!.commitIndex && s.journals.ns1?.lastTxId === acked
        );
      },
      { timeoutMs: 30_000, what: `${follower} a member holding every acknowledged edit` },
    );
    const status = await runQjm(c, ['status', '--peers', c.node(leader).address]);
    expect(status.code, status.out).to.equal(0);
    await q3.close();
  });

  it('nodes reset away come back with their old disks: they stand down once they reach the reset cluster; no second writer; qjm status says so', async () => {
    c = await LocalCluster.create({ nodes: 3, electionTimeoutMs: ELECTION_MS });
    c.startAll();
    const survivor = await c.waitForLeader();
    const lost = c.nodes.filter((n) => n.id !== survivor).map((n) => n.id);
    const s = c.node(survivor);
    const w = await startWriting(c, ns);
    for (let i = 1; i <= 100; i++) w.out.write(Buffer.from(`e${w.lastTxId + i}`));
    const acked = await w.out.flush();
    await w.q.close();
    for (const id of lost) await c.kill(id);
    await waitFor(async () => (await c.status(survivor))?.leader === null, {
      timeoutMs: 10_000,
      what: 'the survivor knows no leader any more',
    });
    const reset = await runQjm(c, [
      'reset-peers',
      '--node',
      s.address,
      '--new-peers',
      `${survivor}=${s.address}`,
      '--yes',
    ]);
    expect(reset.code, reset.err).to.equal(0);
    expect(reset.out).to.match(/keep the lost nodes out: .* must not run again with their data/);
    expect(reset.out).to.match(/can still elect each other/);
    expect(reset.out).to.match(new RegExp(`wipe its data directory, start it with --join ${s.address}`));
    await c.waitForLeader(15_000, lost);

    // They were not lost after all: both come back with their old disks and their old command lines.
    for (const id of lost) c.start(id);
    for (const id of lost) {
      const st = await waitFor(
        async () => {
          const x = await c.status(id);
          return x?.identity?.state === 'stood-down' ? x : null;
        },
        { timeoutMs: 30_000, what: `${id} stands down` },
      );
      expect(st.state, `${id} does not lead`).to.not.equal('leader');
      expect(st.identity!.problem).to.match(
        new RegExp(
          `stood down for good: reset-peers on ${survivor} made generation 1 of cluster [0-9a-f]+ \\(members ${survivor}\\), which leaves this node out`,
        ),
      );
      expect(st.identity!.repair).to.match(/wipe its data directory, start it with --join/);
      const health = await c.request(c.node(id).address, 'GET', '/healthz');
      expect(health.status).to.equal(503);
      await waitFor(() => /STOOD DOWN for good/.test(c.readLog(id)), {
        timeoutMs: 5000,
        what: `${id}'s log says it stood down (pino writes asynchronously)`,
      });
    }

    // They serve no client: a read is answered STOOD_DOWN, final, in the route's envelope.
    for (const id of lost) {
      const body = Buffer.from(pb.GetJournalStateRequest.encode({ jid: 'ns1' }).finish());
      const r = await c.request(c.node(id).address, 'POST', '/qjm/getJournalState', body);
      const error = pb.GetJournalStateResponse.decode(r.body).error;
      expect([r.status, error?.code], id).to.deep.equal([409, pb.ErrorCode.STOOD_DOWN]);
    }
    // A writer that knows only their addresses never gets a second cluster: the stood-down nodes refuse it for good
    // (STOOD_DOWN, final, when it learns no other node), or, having learned the members from their answers and
    // passed over the nodes that stood down, it reaches the reset cluster itself, where it finds every acknowledged
    // edit and nothing more.
    const q2 = writer(
      c,
      lost.map((id) => c.node(id).address),
    );
    const recovered = await q2.recoverUnfinalizedSegments().then(
      (r) => r,
      (e: unknown) => e,
    );
    if (recovered instanceof Error) {
      expect(recovered).to.be.instanceOf(QjmError).with.property('errorName', 'STOOD_DOWN');
      expect((recovered as QjmError).retriable).to.equal(false);
    } else {
      expect((recovered as { lastTxId: number }).lastTxId).to.equal(acked);
    }
    for (const id of lost) expect((await c.status(id))!.state, `${id} still does not lead`).to.not.equal('leader');
    await q2.close();

    // The reset cluster writes on.
    const q3 = writer(c, [s.address], { writerId: 'nn3' });
    const rec = await q3.recoverUnfinalizedSegments();
    expect(rec.lastTxId).to.equal(acked);
    const out = await q3.startLogSegment(acked + 1, -64);
    out.write(Buffer.from(`e${acked + 1}`));
    expect(await out.flush()).to.equal(acked + 1);

    // qjm status over all three: one leader, and the problem named.
    const st = await runQjm(c, ['status', '--peers', c.addresses.join(',')]);
    expect(st.code, st.out).to.not.equal(0);
    expect(st.out.match(/\| leader /g)?.length ?? 0, st.out).to.equal(1);
    for (const id of lost) expect(st.out).to.match(new RegExp(`${id} \\(.*\\) stood down for good`));
    expect(st.out, st.out).to.match(
      /2 configurations: cluster [0-9a-f]+ generation 1 \(.*\); cluster [0-9a-f]+ generation 0/,
    );

    // A restart does not undo it.
    await c.kill(lost[0]!);
    c.start(lost[0]!);
    const again = await waitFor(() => c.status(lost[0]!), { timeoutMs: 20_000, what: `${lost[0]} answers again` });
    expect(again.identity?.state).to.equal('stood-down');
    await q3.close();
  });
});
