// Replicas that heal themselves, with real processes at the default integrity settings (a scrub pass every
// 30 s at 8 MiB/s, the leader comparing every 30 s) and a few MB of edits: a byte flipped in a follower's
// finalized segment while it runs is found and repaired with no operator action within 60 s, and `qjm check`
// exits non-zero before the repair and 0 after; a byte flipped in the middle of a follower's Raft log while it
// is down: after a restart it is up, repaired from its peers, caught up and voting within 30 s, and nothing
// acknowledged is lost.

import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { EditLogOutputStream, QuorumJournalManager } from '../../libqjm/index.js';
import { LocalCluster } from '../../src/local-cluster.js';
import type { NodeStatusJson } from '../../src/node-status.js';
import { waitFor } from '../../src/wait-for.js';
import { destroyCluster, startWriting } from '../support/cluster-writer.js';
import { runQjm } from '../support/qjm-process.js';

const ns = { namespaceId: 20, clusterId: 'CID-int', blockPoolId: 'BP-int' };
/** A record of 1 KiB that names its txid: a few thousand of them are a few MB. */
const record = (txid: number) => Buffer.from(`edit ${txid} `.padEnd(1024, 'r'));

/** Flips one byte of a file in place (the same inode: the snapshots' hard links see it too). */
function flip(file: string, offset: number): void {
  const fd = fs.openSync(file, 'r+');
  try {
    const b = Buffer.alloc(1);
    fs.readSync(fd, b, 0, 1, offset);
    b[0] = b[0]! ^ 0x55;
    fs.writeSync(fd, b, 0, 1, offset);
  } finally {
    fs.closeSync(fd);
  }
}

describe('integrity: damage found and repaired from the peers (real processes)', function () {
  this.timeout(240_000);
  let c: LocalCluster;
  let q: QuorumJournalManager;
  let out: EditLogOutputStream;
  let written = 0;
  afterEach(async function () {
    await q?.close();
    await destroyCluster(() => c).call(this);
  });

  /** Writes n records, flushing every 100 (a Raft entry each); returns the last txid. */
  async function writeRecords(n: number): Promise<number> {
    let last = written;
    for (let i = 0; i < n; i++) {
      out.write(record(++written));
      if (written % 100 === 0) last = await out.flush();
    }
    return written > last ? out.flush() : last;
  }

  async function statusOf(id: string): Promise<NodeStatusJson> {
    const s = await c.status(id, 3000);
    if (!s) throw new Error(`${id} does not answer /status`);
    return s;
  }

  /** Every txid written, read back from the cluster: nothing acknowledged is lost, every record as written. */
  async function readsBackEverything(): Promise<void> {
    let next = 1;
    for await (const e of q.readEdits({ fromTxId: 1, inProgressOk: true })) {
      expect(e.txid).to.equal(next);
      expect(Buffer.from(e.record).equals(record(e.txid)), `txid ${e.txid}`).to.equal(true);
      next++;
    }
    expect(next - 1).to.equal(written);
  }

  async function cluster(): Promise<void> {
    c = await LocalCluster.create({ nodes: 3, electionTimeoutMs: 400 });
    c.startAll();
    const w = await startWriting(c, ns);
    ({ q, out } = w);
    written = w.lastTxId;
  }

  it('a byte flipped in a follower’s finalized segment is repaired within 60 s with no operator action; qjm check exits 1 before, 0 after', async () => {
    await cluster();
    const last = await writeRecords(3000);
    await q.finalizeLogSegment(1, last);
    out = await q.startLogSegment(last + 1, -64);
    await writeRecords(200);
    const leader = await c.waitForLeader();
    const follower = c.nodes.find((n) => n.id !== leader)!.id;
    const name = `edits_${String(1).padStart(19, '0')}-${String(last).padStart(19, '0')}`;
    const file = path.join(c.node(follower).dataDir, 'journals', 'ns1', name);
    const good = fs.readFileSync(path.join(c.node(leader).dataDir, 'journals', 'ns1', name));
    await waitFor(() => fs.existsSync(file) && fs.readFileSync(file).equals(good), {
      timeoutMs: 20_000,
      what: `${follower} holds ${name}`,
    });
    expect(good.byteLength).to.be.greaterThan(3_000_000);

    // No operator action: the scrubber finds it, the node repairs it.
    const flippedAt = Date.now();
    flip(file, good.byteLength >> 1);
    const repaired = await waitFor(
      async () => {
        const rec = (await statusOf(follower)).integrity?.damage.find((d) => d.file === file && d.state === 'repaired');
        return rec && fs.readFileSync(file).equals(good) ? rec : null;
      },
      { timeoutMs: 60_000, intervalMs: 250, what: `${follower} repairs ${name}` },
    );
    const tookMs = Date.now() - flippedAt;
    console.log(
      `      found by ${repaired.foundBy} and repaired ${Math.round(tookMs / 100) / 10} s after the flip: ${repaired.note}`,
    );
    expect(repaired.foundBy).to.equal('scrub');
    expect(repaired.note).to.match(/with the copy of n\d \(\d of 3 voters/);
    expect(tookMs).to.be.below(60_000);
    await readsBackEverything();

    // qjm check reads every file of every node: the damage shows (exit 1), then it is repaired (exit 0).
    flip(file, good.byteLength >> 2);
    const before = await runQjm(c, ['check', '--peers', c.peersFlag], 'reader');
    expect(before.code, before.out + before.err).to.equal(1);
    expect(before.out).to.match(new RegExp(`${follower} damage ${file.replace(/[.\\/]/g, '\\$&')}`));
    await waitFor(() => fs.readFileSync(file).equals(good), { timeoutMs: 30_000, what: 'the second repair' });
    const after = await runQjm(c, ['check', '--peers', c.peersFlag], 'reader');
    expect(after.code, after.out + after.err).to.equal(0);
    expect(after.out).to.match(/every replica agrees \(3 nodes\)/);
  });

  it('a byte flipped in the middle of a follower’s Raft log: after a restart it is up, repaired, caught up and voting within 30 s; nothing acknowledged is lost', async () => {
    await cluster();
    await writeRecords(3000);
    const leader = await c.waitForLeader();
    const follower = c.nodes.find((n) => n.id !== leader)!.id;
    const lead = await statusOf(leader);
    await c.waitForApplied(lead.commitIndex);
    expect(await c.stop(follower)).to.equal(0);
    // The middle of the follower's log: inside the data of its middle entry (frames: [u32 data length][u32 crc]
    // [u64 term][u64 index][u8 type][data] after a 32-byte header). Not its last entry: damage there can look like
    // a write torn by a crash, and is cut as one (OPERATIONS.md).
    const logDir = path.join(c.node(follower).dataDir, 'raft', 'log');
    const seg = path.join(logDir, fs.readdirSync(logDir).sort().at(-1)!);
    const bytes = fs.readFileSync(seg);
    const frames: { offset: number; length: number }[] = [];
    for (let off = 32; off + 25 <= bytes.byteLength && bytes.readUInt32BE(off + 4) !== 0; ) {
      frames.push({ offset: off, length: bytes.readUInt32BE(off) });
      off += 25 + bytes.readUInt32BE(off);
    }
    expect(frames.length).to.be.greaterThan(20);
    const middle = frames[frames.length >> 1]!;
    flip(seg, middle.offset + 25 + (middle.length >> 1));
    await writeRecords(300); // the cluster goes on without it

    const restartedAt = Date.now();
    c.start(follower);
    const target = (await statusOf(leader)).lastIndex;
    const healthy = await waitFor(
      async () => {
        const s = await c.status(follower, 1000);
        if (!s || s.fatal) return null;
        const l = await c.status(leader, 1000);
        return s.identity?.state === 'member' &&
          s.identity.floor === null &&
          l &&
          s.lastIndex >= target &&
          s.appliedIndex >= target
          ? s
          : null;
      },
      { timeoutMs: 30_000, intervalMs: 250, what: `${follower} up, caught up and voting again` },
    );
    console.log(
      `      up, caught up and voting ${Math.round((Date.now() - restartedAt) / 100) / 10} s after the restart`,
    );
    const found = healthy.integrity?.damage.find((d) => d.kind === 'log' && d.foundBy === 'start-up');
    expect(found, 'the damage recovery dealt with is recorded').to.not.equal(undefined);
    expect(c.readLog(follower)).to.match(/damaged Raft log: keeping entries before \d+/);
    await waitFor(
      async () => (await statusOf(follower)).integrity?.damage.some((d) => d.kind === 'log' && d.state === 'repaired'),
      { timeoutMs: 30_000, what: 'the damage record closed once the floor cleared' },
    );
    await writeRecords(100);
    await readsBackEverything();
    // It votes: with the leader gone, the follower can be elected (or elect the other).
    await c.stop(leader);
    const next = await c.waitForLeader(30_000, [leader]);
    expect([follower, c.nodes.find((n) => n.id !== leader && n.id !== follower)!.id]).to.include(next);
  });
});
