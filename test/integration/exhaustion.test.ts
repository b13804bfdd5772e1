// Exhausting a node from the network, against real processes with mutual TLS: a reader certificate holding
// hundreds of large answers it never reads, and anyone flooding the port with connections that never even
// begin TLS. The node keeps its memory within the answer budget and its descriptors within the connection
// bounds, keeps answering /healthz (to a client at another address) and writing its files, keeps its
// leadership, and is healthy the moment the flood ends.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import type net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { expect } from 'chai';
import { QuorumJournalManager } from '../../libqjm/index.js';
import { qjournal } from '../../src/gen/proto.js';
import { LocalCluster } from '../../src/local-cluster.js';
import { startWriting } from '../support/cluster-writer.js';
import {
  memoryMb,
  openStalledReads,
  probeHealth,
  readerMaterial,
  writeLargeJournal,
} from '../support/stalled-readers.js';

const ns = { namespaceId: 1, clusterId: 'CID-exhaust', blockPoolId: 'BP' };
const MiB = 1 << 20;
/** The leader's peak RSS under 500 stalled 16 MiB reads (measured 351 MB: docs/OPERATIONS.md, "Bounds"). */
const STALLED_READS_RSS_BOUND_MB = 500;

/** The flooder's program (a process of its own: its work must not slow the probes). */
const FLOODER = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'support', 'connection-flood.js');
/** The open-file limit of the flooded nodes: the flood reaches it within a second without bounds. */
const FLOODED_MAX_OPEN_FILES = 1024;
/**
 * How slow /healthz may be during the flood here. Measured on a quiet machine it answers within 100 ms
 * throughout (docs/OPERATIONS.md, "Bounds"); this test runs beside other builds and tests on two cores, where
 * the scheduler alone delays a process by hundreds of milliseconds (load averages of 14 were seen), so it bounds
 * what no load explains: a failed probe, or a node that stops answering for seconds.
 */
const HEALTHZ_P99_BOUND_MS = 500;
const HEALTHZ_MAX_BOUND_MS = 2000;

interface FloodSummary {
  attempts: number;
  connected: number;
  failed: number;
  gaveUp: number;
  stale: number;
  closedAtOnce: number;
  closedLater: number;
  seconds: number;
}

/**
 * Floods `address` from `from`. The flooder runs at a lower priority (nice 10): an attacker's CPU is not the
 * node's, and on this machine they share two cores; what is measured is the node's work, not the flooder's.
 */
function flood(address: string, attempts: number, from: string): Promise<FloodSummary> {
  const [host, port] = address.split(':');
  return new Promise((resolve, reject) =>
    execFile(
      'nice',
      ['-n', '10', process.execPath, FLOODER, host!, port!, String(attempts), '2000', from],
      { timeout: 180_000 },
      (e, stdout) => (e ? reject(e) : resolve(JSON.parse(stdout) as FloodSummary)),
    ),
  );
}

/** A process's open file descriptors now. */
function openDescriptors(pid: number): number {
  return fs.readdirSync(`/proc/${pid}/fd`).length;
}

describe('exhaustion from the network (real processes, mutual TLS)', function () {
  this.timeout(240_000);
  let c: LocalCluster;
  afterEach(async function () {
    const failed = this.currentTest?.state === 'failed';
    await c.destroy(failed);
    if (failed) console.log(`    cluster logs kept in ${c.root}`);
  });

  it('500 readers that never read 16 MiB answers: the leader stays within its budget, healthy and leading; a reader that reads gets every edit', async () => {
    // An election timeout of 3 s (both tests): 500 TLS handshakes, or a flood, on a machine shared with other
    // builds can delay a heartbeat past 1 s by scheduling alone; what moved leadership before was the node itself
    // (gigabytes of answers, seconds of garbage collection).
    c = await LocalCluster.create({ nodes: 3, electionTimeoutMs: 3000 });
    c.startAll();
    const leader = c.node(await c.waitForLeader());
    // 24 MiB: txid 1 is older than the recent-batch cache (16 MiB), so the answers stream from the files.
    const last = await writeLargeJournal(c, 24);
    const term = (await c.status(leader.id))!.term;
    const before = memoryMb(leader.proc!.pid!);

    const health = probeHealth(c, leader.address);
    const body = qjournal.journal.GetEditsRequest.encode({ jid: 'ns1', fromTxid: 1, maxBytes: 16 * MiB }).finish();
    let stalled: net.Socket[] = [];
    try {
      stalled = await openStalledReads({
        address: leader.address,
        tls: readerMaterial(c),
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

  it('50,000 connections from one address that never begin TLS: descriptors stay bounded, every /healthz from another address answers, writes, new segments and a snapshot go on, healthy the moment it ends', async () => {
    c = await LocalCluster.create({ nodes: 3, electionTimeoutMs: 3000, maxOpenFiles: FLOODED_MAX_OPEN_FILES });
    c.startAll();
    const leader = c.node(await c.waitForLeader());
    const term = (await c.status(leader.id))!.term;
    // The prober is 127.0.0.2 and the flood 127.0.0.3: the bound per address leaves the prober (and the peers,
    // and the writer, at 127.0.0.1) their connections.
    const prober = new Agent({
      connect: { ca: fs.readFileSync(path.join(c.certsDir!, 'ca.crt'), 'utf8'), localAddress: '127.0.0.2' },
      keepAliveTimeout: 60_000,
    });
    const latencies: number[] = [];
    let failures = 0;
    let probing = true;
    const probe = async () => {
      const t0 = performance.now();
      const r = await request(`https://${leader.address}/healthz`, { dispatcher: prober, headersTimeout: 5000 }).then(
        async (res) => {
          await res.body.arrayBuffer();
          return res.statusCode;
        },
        () => 0,
      );
      latencies.push(performance.now() - t0);
      if (r !== 200) failures++;
    };
    await probe();
    const probes = (async () => {
      while (probing) {
        await probe();
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    // A writer at 127.0.0.1 writes throughout and starts a new segment every 20 batches: the node opens files
    // during the flood, which it could not once connections had taken its descriptors.
    const writer = await startWriting(c, ns, { writerId: 'w' });
    const q = writer.q;
    let writing = true;
    let batches = 0;
    let segments = 0;
    let most = 0;
    const writes = (async () => {
      let out = writer.out;
      let first = writer.lastTxId + 1;
      let last = writer.lastTxId;
      while (writing) {
        segments++;
        for (let b = 0; b < 20 && writing; b++) {
          for (let k = 0; k < 10; k++) out.write(Buffer.from(`edit ${batches}.${k}`));
          last = await out.flush();
          batches++;
          most = Math.max(most, openDescriptors(leader.proc!.pid!));
          await new Promise((r) => setTimeout(r, 50));
        }
        await q.finalizeLogSegment(first, last);
        first = last + 1;
        if (writing) out = await q.startLogSegment(first, -64);
      }
    })();
    try {
      const flooding = flood(leader.address, 50_000, '127.0.0.3');
      // And a snapshot in the middle of it (files linked, a manifest written, directories fsynced).
      await new Promise((r) => setTimeout(r, 3000));
      const snap = await c.request(leader.address, 'POST', '/admin/snapshot', new Uint8Array(0), 30_000);
      const f = await flooding;
      const afterMs = performance.now();
      const h = await request(`https://${leader.address}/healthz`, { dispatcher: prober });
      const healthy = { status: h.statusCode, body: (await h.body.json()) as { ok: boolean; fatal: string | null } };
      const healthyInMs = performance.now() - afterMs;
      probing = false;
      await probes;
      writing = false;
      await writes;
      const sorted = [...latencies].sort((a, b) => a - b);
      const p99 = sorted[Math.floor(sorted.length * 0.99)]!;
      const max = sorted[sorted.length - 1]!;
      console.log(
        `    flood: ${f.attempts} attempts in ${f.seconds.toFixed(1)} s (${f.connected} connected, ${f.closedAtOnce} of them closed within 50 ms and ${f.closedLater} later, ${f.failed} reset before the client saw them connect, ${f.gaveUp} not accepted within 3 s, ${f.stale} never accepted by the node once the kernel's queue was full); leader's descriptors at most ${most} of ${FLOODED_MAX_OPEN_FILES}; /healthz from 127.0.0.2: ${latencies.length} probes, p99 ${p99.toFixed(1)} ms, max ${max.toFixed(1)} ms, ${failures} failed; healthy ${healthyInMs.toFixed(1)} ms after; ${batches} batches in ${segments} segments written meanwhile, a snapshot taken (${snap.status})`,
      );
      expect(f.attempts).to.equal(50_000);
      expect(failures, '/healthz failures during the flood').to.equal(0);
      expect(p99, '99th percentile of /healthz during the flood (ms)').to.be.below(HEALTHZ_P99_BOUND_MS);
      expect(max, 'slowest /healthz during the flood (ms)').to.be.below(HEALTHZ_MAX_BOUND_MS);
      expect(healthy.status, '/healthz right after').to.equal(200);
      expect(healthy.body).to.include({ ok: true, fatal: null });
      expect(most, 'descriptors stayed under the limit').to.be.below(FLOODED_MAX_OPEN_FILES);
      expect(snap.status, 'a snapshot during the flood').to.equal(200);
      expect(segments, 'segments started during the flood').to.be.above(1);
      const st = (await c.status(leader.id))!;
      expect([st.state, st.term, st.fatal], 'still the leader, same term, no fatal state').to.deep.equal([
        'leader',
        term,
        null,
      ]);
      const metrics = (await c.request(leader.address, 'GET', '/metrics')).body.toString();
      expect(metrics).to.match(/qjournal_http_refused_total\{[^}]*reason="connections_per_address"[^}]*\} [1-9]/);
    } finally {
      probing = false;
      writing = false;
      await probes;
      await writes.catch(() => {});
      await q.close();
      await prober.close();
    }
  });
});
