// Exhausting a node from the network, against real processes with mutual TLS: a reader certificate holding
// hundreds of large answers it never reads. The node keeps its memory within the answer budget, keeps
// answering /healthz, keeps its leadership, and a reader that behaves still reads every edit.

import fs from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import { QuorumJournalManager } from '../../libqjm/index.js';
import { qjournal } from '../../src/gen/proto.js';
import { LocalCluster } from '../../src/local-cluster.js';
import { memoryMb, openStalledReads } from '../support/stalled-readers.js';

const ns = { namespaceId: 1, clusterId: 'CID-exhaust', blockPoolId: 'BP' };
const MiB = 1 << 20;
/** The leader's peak RSS under 500 stalled 16 MiB reads (measured 351 MB: docs/OPERATIONS.md, "Bounds"). */
const STALLED_READS_RSS_BOUND_MB = 500;

/** /healthz probed every 100 ms until stopped: the slowest answer and the failures. */
function probeHealth(c: LocalCluster, address: string): { stop(): Promise<{ worstMs: number; failures: number }> } {
  let running = true;
  let worstMs = 0;
  let failures = 0;
  const loop = (async () => {
    while (running) {
      const t0 = performance.now();
      const ok = await c.request(address, 'GET', '/healthz', null, 5000).then(
        (r) => r.status === 200,
        () => false,
      );
      worstMs = Math.max(worstMs, performance.now() - t0);
      if (!ok) failures++;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { worstMs, failures };
    },
  };
}

describe('exhaustion from the network (real processes, mutual TLS)', function () {
  this.timeout(240_000);
  let c: LocalCluster;
  let failed = false;
  afterEach(function () {
    if (this.currentTest?.state === 'failed') failed = true;
  });
  after(async () => {
    await c.destroy(failed);
    if (failed) console.log(`    cluster logs kept in ${c.root}`);
  });

  it('500 readers that never read 16 MiB answers: the leader stays within its budget, healthy and leading; a reader that reads gets every edit', async () => {
    c = await LocalCluster.create({ nodes: 3, electionTimeoutMs: 1000 });
    c.startAll();
    const leader = c.node(await c.waitForLeader());
    const q = new QuorumJournalManager({
      journalId: 'ns1',
      peers: c.addresses,
      writerId: 'w',
      nsInfo: ns,
      tls: c.tls('writer'),
    });
    await q.format(ns);
    const { lastTxId } = await q.recoverUnfinalizedSegments();
    const out = await q.startLogSegment(lastTxId + 1, -64);
    // 24 MiB: txid 1 is older than the recent-batch cache (16 MiB), so the answers stream from the files.
    let last = 0;
    for (let i = 0; i < 24; i++) {
      for (let k = 0; k < 16; k++) out.write(Buffer.alloc(64 << 10, (i + k) % 251));
      last = await out.flush();
    }
    await q.finalizeLogSegment(lastTxId + 1, last);
    await q.close();
    const term = (await c.status(leader.id))!.term;
    const before = memoryMb(leader.proc!.pid!);

    const health = probeHealth(c, leader.address);
    const certs = c.certsDir!;
    const material = {
      ca: fs.readFileSync(path.join(certs, 'ca.crt'), 'utf8'),
      cert: fs.readFileSync(path.join(certs, 'client.reader.crt'), 'utf8'),
      key: fs.readFileSync(path.join(certs, 'client.reader.key'), 'utf8'),
    };
    const body = qjournal.journal.GetEditsRequest.encode({ jid: 'ns1', fromTxid: 1, maxBytes: 16 * MiB }).finish();
    let stalled: net.Socket[] = [];
    try {
      stalled = await openStalledReads({
        address: leader.address,
        tls: material,
        path: '/qjm/getEdits',
        body,
        count: 500,
      });
      expect(stalled.length, 'every stalled reader connected').to.equal(500);
      // Meanwhile a reader that reads: told BUSY while the budget is full, it backs off and gets everything.
      const reader = new QuorumJournalManager({ journalId: 'ns1', peers: [leader.address], tls: c.tls('reader') });
      let n = 0;
      for await (const e of reader.readEdits({ fromTxId: 1, maxBytesPerRead: 16 * MiB })) {
        expect(e.txid).to.equal(++n);
        if (n === last) break;
      }
      await reader.close();
      expect(n).to.equal(last);
      const during = memoryMb(leader.proc!.pid!);
      const h = await health.stop();
      console.log(
        `    500 stalled 16 MiB reads: leader peak RSS ${before.peakMb.toFixed(0)} -> ${during.peakMb.toFixed(0)} MB, /healthz worst ${h.worstMs.toFixed(0)} ms, ${h.failures} failures`,
      );
      expect(h.failures, '/healthz failures').to.equal(0);
      expect(during.peakMb, 'peak RSS (MB)').to.be.below(STALLED_READS_RSS_BOUND_MB);
      const st = (await c.status(leader.id))!;
      expect([st.state, st.term], 'still the leader, same term').to.deep.equal(['leader', term]);
    } finally {
      await health.stop();
      for (const s of stalled) s.destroy();
    }
  });
});
