// Three real JournalNode processes on loopback: elections, replication, crash recovery, torn and corrupt
// logs, the data directory lock, and a paused leader.

import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { LocalCluster } from '../../src/local-cluster.js';
import { QuorumJournalManager } from '../../libqjm/index.js';
import { qjournal } from '../../src/gen/proto.js';
import { encodeRecords } from '../../src/edit-records.js';
import { waitFor } from '../support/async.js';
import { startWriting } from '../support/cluster-writer.js';

const ns = { namespaceId: 42, clusterId: 'CID-it', blockPoolId: 'BP-it' };
const rec = (i: number) => new TextEncoder().encode(`edit-${i}`);

const WRITER = { writeTimeoutMs: 15_000, requestTimeoutMs: 2000 };

async function writer(c: LocalCluster, id = 'nn1'): Promise<QuorumJournalManager> {
  return new QuorumJournalManager({
    journalId: 'ns1',
    peers: c.addresses,
    writerId: id,
    nsInfo: ns,
    ...WRITER,
    tls: c.tls('writer'),
  });
}

function sameFiles(c: LocalCluster, ids: string[]): void {
  const ref = c.segmentFiles(ids[0]!, 'ns1');
  expect(ref.size).to.be.greaterThan(0);
  for (const id of ids.slice(1)) {
    const f = c.segmentFiles(id, 'ns1');
    expect([...f.keys()], `segment names on ${id}`).to.deep.equal([...ref.keys()]);
    for (const [name, buf] of ref) expect(f.get(name)!.equals(buf), `${id}/${name} byte-identical`).to.equal(true);
  }
}

describe('JournalNode processes', function () {
  this.timeout(120_000);
  let c: LocalCluster;
  let failed = false;

  beforeEach(async () => {
    failed = false;
    c = await LocalCluster.create({ nodes: 3, electionTimeoutMs: 500 });
  });
  afterEach(async function () {
    if (this.currentTest?.state === 'failed') failed = true;
    await c.destroy(failed);
    if (failed) console.log(`    cluster logs kept in ${c.root}`);
  });

  it('elects a leader; writes through the leader commit on all three, with byte-identical segment files', async () => {
    c.startAll();
    await c.waitForLeader();
    const q = await writer(c);
    await q.format(ns);
    const { epoch, lastTxId } = await q.recoverUnfinalizedSegments();
    expect([epoch, lastTxId]).to.deep.equal([1, 0]);
    const out = await q.startLogSegment(1, -64);
    for (let i = 1; i <= 500; i++) out.write(rec(i));
    expect(await out.flush()).to.equal(500);
    await q.finalizeLogSegment(1, 500);
    const leader = (await c.status(c.nodes[0]!.id))!.leader!;
    const st = (await c.status(leader))!;
    await c.waitForApplied(st.commitIndex);
    for (const n of c.nodes) expect((await c.status(n.id))!.journals.ns1!.lastTxId, n.id).to.equal(500);
    sameFiles(c, ['n1', 'n2', 'n3']);
    await q.close();
  });

  it('kill -9 of the leader mid-write: no acknowledged write is lost, a new leader takes over, files converge', async () => {
    c.startAll();
    const first = await c.waitForLeader();
    const q = await writer(c);
    await q.format(ns);
    await q.recoverUnfinalizedSegments();
    const out = await q.startLogSegment(1, -64);
    let acked = 0;
    let killed = false;
    let next = 1;
    // Keep writing in small flushes; kill the leader in the middle.
    const writing = (async () => {
      while (next <= 3000) {
        for (let k = 0; k < 20; k++) out.write(rec(next++));
        acked = await out.flush();
        if (!killed && acked >= 1000) {
          killed = true;
          await c.kill(first);
        }
      }
    })();
    await writing;
    expect(acked).to.equal(3000);
    const second = await c.waitForLeader(15_000, [first]);
    expect(second).to.not.equal(first);
    await q.finalizeLogSegment(1, 3000);
    c.start(first);
    await c.waitForLeader();
    const st = (await c.status(second))!;
    await c.waitForApplied(st.commitIndex, 20_000);
    for (const n of c.nodes) {
      const s = (await c.status(n.id))!;
      expect(s.journals.ns1!.lastTxId, `${n.id} holds every acknowledged txid`).to.equal(3000);
    }
    sameFiles(c, ['n1', 'n2', 'n3']);
    // Every txid reads back exactly once, in order.
    let expectTx = 1;
    for await (const e of q.readEdits({ fromTxId: 1 })) {
      expect(e.txid).to.equal(expectTx);
      expect(Buffer.from(e.record).toString()).to.equal(`edit-${expectTx}`);
      expectTx++;
    }
    expect(expectTx).to.equal(3001);
    await q.close();
  });

  it('a torn log tail is cut at restart; the node catches up', async () => {
    c.startAll();
    const { q, out } = await startWriting(c, ns, WRITER);
    for (let i = 1; i <= 200; i++) out.write(rec(i));
    await out.flush();
    const leader = (await c.status('n1'))!.leader!;
    const victim = c.nodes.find((n) => n.id !== leader)!;
    await c.kill(victim.id);
    const logDir = path.join(victim.dataDir, 'raft', 'log');
    const seg = fs
      .readdirSync(logDir)
      .filter((f) => f.startsWith('log_'))
      .sort()
      .pop()!;
    const file = path.join(logDir, seg);
    // The file ends in preallocated zeros; cut into the last entry itself.
    fs.truncateSync(file, dataEnd(fs.readFileSync(file)) - 7);
    for (let i = 201; i <= 300; i++) out.write(rec(i));
    await out.flush();
    c.start(victim.id);
    await c.waitForLeader();
    const st = (await c.status(leader))!;
    await c.waitForApplied(st.commitIndex, 20_000);
    expect((await c.status(victim.id))!.journals.ns1!.lastTxId).to.equal(300);
    expect(c.readLog(victim.id)).to.match(/torn/i);
    await q.close();
  });

  it('a flipped byte in the middle of the log: the node refuses to start and names the file and offset', async () => {
    c.startAll();
    const { q, out } = await startWriting(c, ns, WRITER);
    for (let i = 1; i <= 300; i++) {
      out.write(rec(i));
      if (i % 10 === 0) await out.flush();
    }
    await out.flush();
    const victim = c.nodes[2]!;
    await c.kill(victim.id);
    const logDir = path.join(victim.dataDir, 'raft', 'log');
    const seg = fs
      .readdirSync(logDir)
      .filter((f) => f.startsWith('log_'))
      .sort()[0]!;
    const file = path.join(logDir, seg);
    const buf = fs.readFileSync(file);
    const at = Math.floor(dataEnd(buf) / 2);
    buf[at]! ^= 0xff;
    fs.writeFileSync(file, buf);
    const n = c.start(victim.id);
    const code = await n.exit;
    expect(code).to.equal(3);
    const log = c.readLog(victim.id);
    expect(log).to.include(seg);
    expect(log).to.match(/offset \d+/);
    await q.close();
  });

  it('a second process on the same data directory is refused', async () => {
    c.start('n1');
    // It takes the lock before it listens: once it answers, the directory is held.
    await waitFor(() => c.status('n1'), {
      timeoutMs: 15_000,
      what: 'n1 answers /status (it holds the data directory lock)',
    });
    const n = c.node('n1');
    const { spawnSync } = await import('node:child_process');
    const { JOURNALNODE_MAIN } = await import('../../src/local-cluster.js');
    const r = spawnSync(
      process.execPath,
      [JOURNALNODE_MAIN, ...c.args(n).map((a) => (a === n.address ? '127.0.0.1:1' : a))],
      { encoding: 'utf8', timeout: 15_000 },
    );
    expect(r.status).to.equal(3);
    expect(r.stderr).to.match(/in use by another journalnode process/);
  });

  it('SIGSTOP of the leader past the election timeout, then SIGCONT: it steps down and commits nothing in its old term', async () => {
    c.startAll();
    const old = await c.waitForLeader();
    const q = await writer(c);
    await q.format(ns);
    await q.recoverUnfinalizedSegments();
    const out = await q.startLogSegment(1, -64);
    for (let i = 1; i <= 50; i++) out.write(rec(i));
    await out.flush();
    const oldTerm = (await c.status(old))!.term;
    c.signal(old, 'SIGSTOP');
    const next = await c.waitForLeader(10_000, [old]);
    // While the old leader sleeps, the cluster moves on.
    for (let i = 51; i <= 100; i++) out.write(rec(i));
    await out.flush();
    c.signal(old, 'SIGCONT');
    // A write sent straight to the old leader as it wakes must not be acknowledged in its old term.
    const body = qjournal.journal.WriteRequest.encode({
      command: {
        jid: 'ns1',
        appendRecords: { epoch: 1, segmentTxid: 1, firstTxid: 101, count: 1, records: encodeRecords(101, [rec(101)]) },
      },
      expectedTerm: oldTerm,
    }).finish();
    const res = await c.request(c.node(old).address, 'POST', '/qjm/journal', body);
    const wr = qjournal.journal.WriteResponse.decode(res.body);
    expect(wr.error, 'the stale leader refuses').to.not.equal(null);
    const s = await waitFor(
      async () => {
        const st = await c.status(old);
        // Stepping down (a higher term seen in an answer) comes before hearing the new leader's heartbeat.
        return st && st.state !== 'leader' && st.term > oldTerm && st.leader !== null ? st : null;
      },
      { timeoutMs: 10_000, what: `${old} steps down to a term above ${oldTerm} and follows the new leader` },
    );
    expect(s!.state).to.equal('follower');
    expect(s!.term).to.be.greaterThan(oldTerm);
    expect(s!.leader).to.equal(next);
    const lst = (await c.status(next))!;
    await c.waitForApplied(lst.commitIndex);
    for (const n of c.nodes) expect((await c.status(n.id))!.journals.ns1!.lastTxId).to.equal(100);
    sameFiles(c, ['n1', 'n2', 'n3']);
    await q.close();
  });
});

/** The offset just past the last non-zero byte: where the entries end and preallocated zeros begin. */
function dataEnd(buf: Buffer): number {
  let end = buf.length;
  while (end > 0 && buf[end - 1] === 0) end--;
  return end;
}
