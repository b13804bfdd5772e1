// libqjm against a real 3-node cluster, one journal per test, named for the Hadoop QJM tests they mirror
// (TestQuorumJournalManager, TestQJMWithFaults), plus a seeded randomized failover loop.

import { expect } from 'chai';
import { LocalCluster } from '../../src/local-cluster.js';
import { FencedError, type QjmError, QuorumJournalManager } from '../../libqjm/index.js';
import type { EditLogOutputStream } from '../../libqjm/index.js';
import { Prng } from '../../src/prng.js';
import { waitFor } from '../support/async.js';

const ns = { namespaceId: 1234, clusterId: 'CID-qjm', blockPoolId: 'BP-qjm' };
const text = (s: string) => new TextEncoder().encode(s);

describe('libqjm on a real cluster', function () {
  this.timeout(180_000);
  let c: LocalCluster;
  let jidSeq = 0;
  const open: QuorumJournalManager[] = [];

  function qjm(
    jid: string,
    writerId = 'nn1',
    peers?: string[],
    extra: Record<string, unknown> = {},
  ): QuorumJournalManager {
    const q = new QuorumJournalManager({
      journalId: jid,
      peers: peers ?? c.addresses,
      writerId,
      nsInfo: ns,
      requestTimeoutMs: 2000,
      writeTimeoutMs: 15_000,
      tls: c.tls('writer'),
      ...extra,
    });
    open.push(q);
    return q;
  }

  async function fresh(writerId = 'nn1'): Promise<{ jid: string; q: QuorumJournalManager }> {
    const jid = `j${++jidSeq}`;
    const q = qjm(jid, writerId);
    await q.format(ns);
    return { jid, q };
  }

  async function writeTxns(out: EditLogOutputStream, from: number, n: number, tag = 'e'): Promise<number> {
    for (let t = from; t < from + n; t++) out.write(text(`${tag}-${t}`));
    return out.flush();
  }

  /** How many getEdits requests a node has answered (HTTP 200), from its /metrics. */
  async function getEditsAnswered(address: string): Promise<number> {
    const res = await c.request(address, 'GET', '/metrics');
    const m = /qjournal_rpc_seconds_count\{[^}]*rpc="getEdits",code="200"[^}]*\} (\d+)/.exec(res.body.toString());
    return m ? Number(m[1]) : 0;
  }

  async function getEditsAnsweredByAll(): Promise<number> {
    let n = 0;
    for (const node of c.nodes) if (node.proc) n += await getEditsAnswered(node.address);
    return n;
  }

  async function readAll(
    q: QuorumJournalManager,
    fromTxId = 1,
    inProgressOk = true,
  ): Promise<{ txid: number; s: string }[]> {
    const out: { txid: number; s: string }[] = [];
    for await (const e of q.readEdits({ fromTxId, inProgressOk }))
      out.push({ txid: e.txid, s: Buffer.from(e.record).toString() });
    return out;
  }

  before(async () => {
    // Each test writes a journal of its own (j1, j2, ..., the failover loop's): the writer's certificate names them all.
    c = await LocalCluster.create({
      nodes: 3,
      electionTimeoutMs: 300,
      journals: [...Array.from({ length: 40 }, (_, i) => `j${i + 1}`), `loop${SEED}`],
      // No retention beyond the newest finalized segment: the purge test below purges a few txids (the
      // default floor, 1,000,000 txids, is tested with qjm purge in cli.test.ts).
      extraArgs: ['--minTxnsRetained', '0'],
    });
    c.startAll();
    await c.waitForLeader();
  });
  afterEach(async () => {
    await Promise.all(open.splice(0).map((q) => q.close()));
    for (const n of c.nodes) if (!n.proc) c.start(n.id);
    await c.waitForLeader(20_000);
  });
  after(async function () {
    const failed = this.test?.parent?.tests.some((t) => t.state === 'failed') ?? false;
    await c.destroy(failed);
    if (failed) console.log(`    cluster logs kept in ${c.root}`);
  });

  it('SingleWriter: segments written, finalized and read back in order', async () => {
    const { q } = await fresh();
    const { epoch, lastTxId } = await q.recoverUnfinalizedSegments();
    expect([epoch, lastTxId]).to.deep.equal([1, 0]);
    let out = await q.startLogSegment(1, -64);
    expect(await writeTxns(out, 1, 3)).to.equal(3);
    await q.finalizeLogSegment(1, 3);
    out = await q.startLogSegment(4, -64);
    expect(await writeTxns(out, 4, 4)).to.equal(7);
    await q.finalizeLogSegment(4, 7);
    const m = await q.getEditLogManifest(1);
    expect(m.segments).to.deep.equal([
      { firstTxId: 1, lastTxId: 3, inProgress: false },
      { firstTxId: 4, lastTxId: 7, inProgress: false },
    ]);
    expect(m.committedTxId).to.equal(7);
    expect((await readAll(q)).map((e) => e.s)).to.deep.equal([1, 2, 3, 4, 5, 6, 7].map((t) => `e-${t}`));
  });

  it('FormatAndHasSomeData: an unformatted journal has no data; a formatted one has once written; format refuses then (forced: not under a live writer)', async () => {
    const q = qjm(`j${++jidSeq}`);
    expect(await q.hasSomeData()).to.equal(false);
    await q.format(ns);
    expect(await q.hasSomeData()).to.equal(false);
    await q.recoverUnfinalizedSegments();
    const out = await q.startLogSegment(1, -64);
    await writeTxns(out, 1, 1);
    expect(await q.hasSomeData()).to.equal(true);
    try {
      await q.format(ns);
      expect.fail('format must refuse a journal with data');
    } catch (e) {
      expect((e as QjmError).code).to.equal('QJM_ERR_ALREADY_FORMATTED');
    }
    // Wiping a journal that holds data is the admin's: a writer certificate is refused.
    try {
      await q.format(ns, { force: true });
      expect.fail('format --force needs the admin role');
    } catch (e) {
      expect((e as QjmError).code).to.equal('QJM_ERR_FORBIDDEN');
    }
    const admin = qjm(q.journalId, 'ops', undefined, { tls: c.tls('admin') });
    // Even for an admin, not under a writer that wrote in the last seconds, unless said.
    try {
      await admin.format(ns, { force: true });
      expect.fail('a forced format must refuse while the writer wrote in the last seconds');
    } catch (e) {
      expect((e as QjmError).code).to.equal('QJM_ERR_WRITER_ACTIVE');
    }
    expect(await q.hasSomeData(), 'the refused formats changed nothing').to.equal(true);
    await admin.format(ns, { force: true, allowActiveWriter: true });
    expect(await q.hasSomeData()).to.equal(false);
  });

  it('ReaderWhileAnotherWrites: without in-progress a reader sees only finalized segments; with follow it sees new edits', async () => {
    const { jid, q } = await fresh();
    await q.recoverUnfinalizedSegments();
    let out = await q.startLogSegment(1, -64);
    await writeTxns(out, 1, 5);
    await q.finalizeLogSegment(1, 5);
    out = await q.startLogSegment(6, -64);
    await writeTxns(out, 6, 3);
    const reader = qjm(jid, 'standby');
    expect((await readAll(reader, 1, false)).map((e) => e.txid)).to.deep.equal([1, 2, 3, 4, 5]);
    expect((await readAll(reader, 1, true)).map((e) => e.txid)).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8]);
    const seen: number[] = [];
    const ac = new AbortController();
    const answeredBefore = await getEditsAnsweredByAll();
    const tail = (async () => {
      for await (const e of reader.readEdits({
        fromTxId: 9,
        inProgressOk: true,
        follow: true,
        signal: ac.signal,
        waitMs: 500,
      })) {
        seen.push(e.txid);
        if (e.txid === 12) ac.abort();
      }
    })();
    // Write only once the reader follows: one long-poll came back empty, so the next one is waiting.
    await waitFor(async () => (await getEditsAnsweredByAll()) > answeredBefore, {
      timeoutMs: 10_000,
      what: 'the reader finishes its first long-poll',
    });
    await writeTxns(out, 9, 4);
    await tail;
    expect(seen).to.deep.equal([9, 10, 11, 12]);
  });

  it('a following reader started on a follower moves to the leader (a follower sees commits one append late)', async () => {
    const { jid, q } = await fresh();
    await q.recoverUnfinalizedSegments();
    const out = await q.startLogSegment(1, -64);
    await writeTxns(out, 1, 3);
    const leader = c.node(await c.waitForLeader());
    const follower = c.nodes.find((n) => n.id !== leader.id)!;
    const before = {
      leader: await getEditsAnswered(leader.address),
      follower: await getEditsAnswered(follower.address),
    };
    // The follower first in its list, and no leader known yet: its first read goes to the follower.
    const reader = qjm(jid, 'standby', [follower.address, ...c.addresses.filter((a) => a !== follower.address)]);
    const seen: number[] = [];
    const ac = new AbortController();
    const tail = (async () => {
      for await (const e of reader.readEdits({
        fromTxId: 1,
        inProgressOk: true,
        follow: true,
        signal: ac.signal,
        waitMs: 500,
      })) {
        seen.push(e.txid);
        if (e.txid === 9) ac.abort();
      }
    })();
    for (let t = 4; t <= 9; t += 2) {
      // Each write lands while the reader waits for it: it has read everything before.
      await waitFor(() => seen.includes(t - 1), { timeoutMs: 10_000, what: `the reader has read txid ${t - 1}` });
      await writeTxns(out, t, 2);
    }
    await tail;
    expect(seen).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const after = {
      leader: await getEditsAnswered(leader.address),
      follower: await getEditsAnswered(follower.address),
    };
    expect(after.follower - before.follower, 'reads served by the follower').to.equal(1);
    expect(after.leader - before.leader, 'reads served by the leader').to.be.at.least(2);
  });

  it('OneNodeMissingSegments: a node down for a segment and another stopped later; reading from either still gets every txid', async () => {
    const { jid, q } = await fresh();
    await q.recoverUnfinalizedSegments();
    let out = await q.startLogSegment(1, -64);
    await writeTxns(out, 1, 10);
    await q.finalizeLogSegment(1, 10);
    await c.kill('n3');
    out = await q.startLogSegment(11, -64);
    await writeTxns(out, 11, 10);
    await q.finalizeLogSegment(11, 20);
    c.start('n3');
    await c.waitForLeader();
    await c.kill('n2');
    out = await q.startLogSegment(21, -64);
    await writeTxns(out, 21, 10);
    await q.finalizeLogSegment(21, 30);
    // Read from n3 alone: it missed a whole segment while down, and must still serve all of it.
    const fromN3 = qjm(jid, 'reader', [c.node('n3').address]);
    const got = await readAll(fromN3, 1, false);
    expect(got.map((e) => e.txid)).to.deep.equal(Array.from({ length: 30 }, (_, i) => i + 1));
  });

  it('MajorityDownGivesClearError: with two of three nodes down a write fails within the configured timeout', async () => {
    const { jid } = await fresh();
    const q = qjm(jid, 'nn1', undefined, { writeTimeoutMs: 2000 });
    await q.recoverUnfinalizedSegments();
    const out = await q.startLogSegment(1, -64);
    await writeTxns(out, 1, 2);
    await c.kill('n1');
    await c.kill('n2');
    const t0 = Date.now();
    out.write(text('doomed'));
    try {
      await out.flush();
      expect.fail('a write without a quorum must fail');
    } catch (e) {
      const err = e as QjmError;
      expect(err.code).to.equal('QJM_ERR_QUORUM_UNAVAILABLE');
      expect(err.message).to.match(/not acknowledged by a quorum within \d+ ms/);
    }
    expect(Date.now() - t0, 'within writeTimeoutMs (2 s) plus one request').to.be.below(2000 + 2500);
  });

  it('CrashAtBeginningOfSegment: an empty in-progress segment is dropped by recovery and the same txid restarts', async () => {
    const { jid, q } = await fresh();
    await q.recoverUnfinalizedSegments();
    let out = await q.startLogSegment(1, -64);
    await writeTxns(out, 1, 5);
    await q.finalizeLogSegment(1, 5);
    await q.startLogSegment(6, -64); // the writer dies right here
    const next = qjm(jid, 'nn2');
    const r = await next.recoverUnfinalizedSegments();
    expect(r.lastTxId).to.equal(5);
    expect((await next.getEditLogManifest(1, { inProgressOk: true })).segments.map((s) => s.firstTxId)).to.deep.equal([
      1,
    ]);
    out = await next.startLogSegment(6, -64);
    expect(await writeTxns(out, 6, 2)).to.equal(7);
  });

  it('InProgressRecovery: unfinalized batches are recovered up to the last durable txid', async () => {
    const { jid, q } = await fresh();
    await q.recoverUnfinalizedSegments();
    const out = await q.startLogSegment(1, -64);
    await writeTxns(out, 1, 7);
    out.write(text('never-flushed-8')); // buffered in the dead writer, never sent
    const next = qjm(jid, 'nn2');
    const r = await next.recoverUnfinalizedSegments();
    expect(r.lastTxId).to.equal(7);
    const m = await next.getEditLogManifest(1, { inProgressOk: true });
    expect(m.segments).to.deep.equal([{ firstTxId: 1, lastTxId: 7, inProgress: false }]);
  });

  it('ChangeWritersLogsInSync: two writers in turn; every node holds byte-identical segment files', async () => {
    const { jid, q } = await fresh();
    await q.recoverUnfinalizedSegments();
    let out = await q.startLogSegment(1, -64);
    await writeTxns(out, 1, 20, 'w1');
    const w2 = qjm(jid, 'nn2');
    const r = await w2.recoverUnfinalizedSegments();
    out = await w2.startLogSegment(r.lastTxId + 1, -64);
    await writeTxns(out, r.lastTxId + 1, 20, 'w2');
    await w2.finalizeLogSegment(r.lastTxId + 1, r.lastTxId + 20);
    const st = (await c.status((await c.status('n1'))!.leader!))!;
    await c.waitForApplied(st.commitIndex);
    const ref = c.segmentFiles('n1', jid);
    expect([...ref.keys()]).to.have.length(2);
    for (const id of ['n2', 'n3']) {
      const f = c.segmentFiles(id, jid);
      expect([...f.keys()]).to.deep.equal([...ref.keys()]);
      for (const [name, b] of ref) expect(f.get(name)!.equals(b), `${id}/${name}`).to.equal(true);
    }
  });

  it('PurgeLogs: finalized segments ending below the bound are deleted on every node', async () => {
    const { jid, q } = await fresh();
    await q.recoverUnfinalizedSegments();
    for (const first of [1, 11, 21]) {
      const out = await q.startLogSegment(first, -64);
      await writeTxns(out, first, 10);
      await q.finalizeLogSegment(first, first + 9);
    }
    await q.purgeLogsOlderThan(15);
    expect((await q.getEditLogManifest(1)).segments.map((s) => s.firstTxId)).to.deep.equal([11, 21]);
    const st = (await c.status((await c.status('n1'))!.leader!))!;
    await c.waitForApplied(st.commitIndex);
    for (const n of c.nodes)
      expect([...c.segmentFiles(n.id, jid).keys()], n.id).to.deep.equal([
        'edits_0000000000000000011-0000000000000000020',
        'edits_0000000000000000021-0000000000000000030',
      ]);
  });

  it('ReadNotOnSegmentBoundary: reading from a txid inside a segment starts exactly there', async () => {
    const { q } = await fresh();
    await q.recoverUnfinalizedSegments();
    let out = await q.startLogSegment(1, -64);
    await writeTxns(out, 1, 10);
    await q.finalizeLogSegment(1, 10);
    out = await q.startLogSegment(11, -64);
    await writeTxns(out, 11, 10);
    const got = await readAll(q, 7);
    expect(got.map((e) => e.txid)).to.deep.equal(Array.from({ length: 14 }, (_, i) => i + 7));
    expect(got[0]!.s).to.equal('e-7');
    expect((await q.getEditLogManifest(12, { inProgressOk: true })).segments.map((s) => s.firstTxId)).to.deep.equal([
      11,
    ]);
  });

  it("NewWriterTakesOver: the old writer's next flush fails FENCED; the new one continues at last+1; one contiguous history", async () => {
    const { jid, q } = await fresh();
    await q.recoverUnfinalizedSegments();
    const old = await q.startLogSegment(1, -64);
    await writeTxns(old, 1, 10, 'old');
    const nn2 = qjm(jid, 'nn2');
    const r = await nn2.recoverUnfinalizedSegments();
    expect(r).to.deep.equal({ epoch: 2, lastTxId: 10 });
    old.write(text('old-11'));
    try {
      await old.flush();
      expect.fail('the fenced writer must fail');
    } catch (e) {
      expect(e).to.be.instanceOf(FencedError);
      expect((e as FencedError).retriable).to.equal(false);
    }
    expect(() => old.write(text('old-12')), 'a fenced stream stays failed').to.throw(FencedError);
    const out = await nn2.startLogSegment(11, -64);
    await writeTxns(out, 11, 5, 'new');
    const all = await readAll(nn2);
    expect(all.map((e) => e.txid)).to.deep.equal(Array.from({ length: 15 }, (_, i) => i + 1));
    expect(all.map((e) => e.s.split('-')[0])).to.deep.equal([...Array(10).fill('old'), ...Array(5).fill('new')]);
  });

  it('EpochsAreUnique: writers racing to recover while the leader is killed each get a distinct epoch', async () => {
    const { jid } = await fresh();
    const leader = (await c.status('n1'))!.leader!;
    const writers = Array.from({ length: 6 }, (_, i) => qjm(jid, `w${i}`));
    const racing = writers.map((w) => w.recoverUnfinalizedSegments());
    await c.kill(leader); // some newEpoch proposals die with it (outcome unknown) and are retried
    const results = await Promise.allSettled(racing);
    const epochs = results.map((r) => (r.status === 'fulfilled' ? r.value.epoch : -1));
    expect(
      epochs.filter((e) => e < 0),
      'with a majority up, every recovery succeeds',
    ).to.deep.equal([]);
    expect(new Set(epochs).size, `epochs ${epochs.join(',')}`).to.equal(epochs.length);
  });

  const ITERATIONS = Number(process.env.QJM_FAILOVER_ITERATIONS ?? 100);
  const SEED = Number(process.env.QJM_FAILOVER_SEED ?? 20261125);
  it(`randomized failover loop (${ITERATIONS} iterations, QJM_FAILOVER_SEED=${SEED}): recovered last txid >= last acknowledged, no txid twice`, async () => {
    const rng = new Prng(SEED);
    const jid = `loop${SEED}`;
    const admin = qjm(jid, 'formatter');
    await admin.format(ns);
    let lastAcked = 0;
    let lastEpoch = 0;
    const possible = new Map<number, Set<string>>(); // txid -> what some writer sent for it
    const acked = new Map<number, string>();
    let down: string | null = null;
    let restarting: Promise<void> = Promise.resolve();
    const maybeFault = async () => {
      if (down === null && rng.chance(0.12)) {
        down = rng.pick(c.nodes.map((n) => n.id));
        await c.kill(down);
      } else if (down !== null && rng.chance(0.5)) {
        const id = down;
        down = null;
        c.start(id);
        restarting = c.waitForLeader(20_000).then(() => undefined);
      }
    };
    try {
      for (let i = 0; i < ITERATIONS; i++) {
        const w = qjm(jid, `w${i}`);
        const { epoch, lastTxId } = await w.recoverUnfinalizedSegments();
        expect(epoch, `iteration ${i}: epochs only grow`).to.be.greaterThan(lastEpoch);
        expect(lastTxId, `iteration ${i}: recovery keeps every acknowledged txid`).to.be.at.least(lastAcked);
        lastEpoch = epoch;
        lastAcked = Math.max(lastAcked, lastTxId);
        let next = lastTxId + 1;
        const out = await w.startLogSegment(next, -64);
        const batches = rng.int(1, 5);
        for (let b = 0; b < batches; b++) {
          const n = rng.int(1, 20);
          for (let k = 0; k < n; k++) {
            const s = `w${i}-${next}`;
            if (!possible.has(next)) possible.set(next, new Set());
            possible.get(next)!.add(s);
            out.write(text(s));
            next++;
          }
          await maybeFault();
          if (rng.chance(0.85)) {
            const durable = await out.flush();
            for (let t = lastAcked + 1; t <= durable; t++) acked.set(t, `w${i}-${t}`);
            lastAcked = Math.max(lastAcked, durable);
          }
        }
        // The writer either finalizes cleanly or dies mid-segment (the next one recovers).
        if (rng.chance(0.5) && out.lastDurableTxId === out.lastWrittenTxId && out.lastWrittenTxId >= out.segmentTxId) {
          await w.finalizeLogSegment(out.segmentTxId, out.lastWrittenTxId);
        }
        await w.close();
        open.splice(open.indexOf(w), 1);
      }
      if (down) c.start(down);
      await restarting;
      await c.waitForLeader(20_000);
      const final = qjm(jid, 'final');
      const r = await final.recoverUnfinalizedSegments();
      expect(r.lastTxId).to.be.at.least(lastAcked);
      const all = await readAll(final, 1, false);
      expect(
        all.map((e) => e.txid),
        'one contiguous history, no txid twice',
      ).to.deep.equal(Array.from({ length: r.lastTxId }, (_, i) => i + 1));
      for (const e of all) {
        expect(possible.get(e.txid)?.has(e.s), `txid ${e.txid} holds ${e.s}, which no writer sent for it`).to.equal(
          true,
        );
        const a = acked.get(e.txid);
        if (a !== undefined) expect(e.s, `acknowledged txid ${e.txid}`).to.equal(a);
      }
    } catch (e) {
      console.log(
        `    failover loop failed; replay with QJM_FAILOVER_SEED=${SEED} QJM_FAILOVER_ITERATIONS=${ITERATIONS}`,
      );
      throw e;
    }
  });
});
