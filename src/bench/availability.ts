// How long a fault stalls the cluster, measured on real processes with mutual TLS (docs/PERFORMANCE.md,
// "Stalls after a fault"): `node dist/src/bench/availability.js <catchup|...> [trials]`. Each figure is the
// median of its trials; nothing here is a pass/fail test.
//   catchup  the leader killed, kept down while ~5,000 entries commit (four journals, one record per flush),
//            restarted: time from its restart until its durable log is within 1,000 entries of the leader's
//            commit index, under the same load.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalCluster } from '../local-cluster.js';
import type { NodeStatusJson } from '../node-status.js';
import { QuorumJournalManager } from '../../libqjm/index.js';
import { waitFor } from '../wait-for.js';
import { median } from './workloads.js';

const NS = { namespaceId: 1, clusterId: 'CID-avail', blockPoolId: 'BP-avail' };
const RECORD_BYTES = 128;
/** QJ_KEEP=1 keeps the clusters' directories (logs included) for a look afterwards. */
const KEEP = process.env.QJ_KEEP === '1';

/** A cluster under a steady load: `journals` writers, each one record per flush, back to back. */
interface Loaded {
  cluster: LocalCluster;
  /** Acknowledged flushes so far, all writers. */
  readonly acked: number;
  stop(): Promise<void>;
}

async function loadedCluster(root: string, journals: number, electionTimeoutMs: number): Promise<Loaded> {
  const cluster = await LocalCluster.create({
    nodes: 3,
    electionTimeoutMs,
    root,
    logLevel: process.env.QJ_LOG_LEVEL ?? 'warn',
  });
  cluster.startAll();
  await cluster.waitForLeader(30_000);
  let acked = 0;
  let stopping = false;
  const writers = await Promise.all(
    Array.from({ length: journals }, async (_, j) => {
      const qjm = new QuorumJournalManager({
        journalId: `avail${j}`,
        peers: cluster.addresses,
        writerId: `writer${j}`,
        nsInfo: NS,
        writeTimeoutMs: 120_000,
        tls: cluster.tls('writer'),
      });
      await qjm.format(NS);
      const { lastTxId } = await qjm.recoverUnfinalizedSegments();
      return { qjm, out: await qjm.startLogSegment(lastTxId + 1, -64) };
    }),
  );
  const rec = Buffer.alloc(RECORD_BYTES, 0x41);
  const loops = writers.map(async (w) => {
    while (!stopping) {
      w.out.write(rec);
      await w.out.flush();
      acked++;
    }
  });
  return {
    cluster,
    get acked() {
      return acked;
    },
    async stop() {
      stopping = true;
      await Promise.all(loops);
      await Promise.all(writers.map((w) => w.qjm.close()));
    },
  };
}

/** The node's status, waited for (it may be electing, or busy). */
async function statusOf(cluster: LocalCluster, id: string): Promise<NodeStatusJson> {
  return waitFor(() => cluster.status(id, 2000), { timeoutMs: 30_000, intervalMs: 20, what: `${id}'s /status` });
}

/**
 * The leader killed and kept down while `behind` entries commit, then restarted: ms from its restart until
 * its durable log is within `margin` entries of the leader's commit index.
 */
export async function catchUpAfterRestart(
  root: string,
  trials: number,
  log: (s: string) => void,
  behind = 5000,
  margin = 1000,
): Promise<number[]> {
  const l = await loadedCluster(root, 4, 1000);
  const out: number[] = [];
  try {
    for (let t = 0; t < trials; t++) {
      const victim = await l.cluster.waitForLeader(30_000);
      const before = await statusOf(l.cluster, victim);
      await l.cluster.kill(victim);
      const next = await l.cluster.waitForLeader(30_000, [victim]);
      await waitFor(async () => ((await l.cluster.status(next))?.commitIndex ?? 0) >= before.lastIndex + behind, {
        timeoutMs: 120_000,
        intervalMs: 50,
        what: `${behind} entries committed without ${victim}`,
      });
      const t0 = performance.now();
      l.cluster.start(victim);
      let gap = 0;
      let upMs = 0;
      await waitFor(
        async () => {
          const [me, lead] = await Promise.all([l.cluster.status(victim, 500), l.cluster.status(next, 500)]);
          if (!me || !lead) return false;
          gap = lead.commitIndex - me.diskIndex;
          if (upMs === 0) {
            upMs = performance.now() - t0;
            log(`      ${victim} answers after ${upMs.toFixed(0)} ms, ${gap} entries behind`);
          }
          return gap <= margin;
        },
        { timeoutMs: 180_000, intervalMs: 20, what: `${victim} within ${margin} entries of the leader` },
      );
      const ms = performance.now() - t0;
      out.push(Math.round(ms));
      log(
        `    catch-up trial ${t + 1}: ${victim} restarted ${behind}+ entries behind, within ${margin} in ${ms.toFixed(0)} ms`,
      );
      await waitFor(async () => (await l.cluster.status(victim))?.diskIndex !== undefined, {
        timeoutMs: 30_000,
        what: `${victim} up`,
      });
    }
  } finally {
    await l.stop().catch(() => {});
    await l.cluster.stopAll().catch(() => {});
    await l.cluster.destroy(KEEP);
  }
  return out;
}

const MEASURES: Record<string, (root: string, trials: number, log: (s: string) => void) => Promise<number[]>> = {
  catchup: catchUpAfterRestart,
};

if (import.meta.url === `file://${process.argv[1]}`) {
  const what = process.argv[2] ?? 'catchup';
  const trials = Number(process.argv[3] ?? 10);
  const measure = MEASURES[what];
  if (!measure) {
    console.error(`usage: availability.js <${Object.keys(MEASURES).join('|')}> [trials]`);
    process.exit(2);
  }
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-avail-'));
  try {
    const ms = await measure(root, trials, (s) => console.log(s));
    console.log(
      `${what}: median ${median(ms).toFixed(0)} ms, min ${Math.min(...ms)}, max ${Math.max(...ms)} over ${trials} trials (load average ${os
        .loadavg()
        .map((x) => x.toFixed(1))
        .join(' ')})`,
    );
  } finally {
    if (KEEP) console.log(`kept ${root}`);
    else fs.rmSync(root, { recursive: true, force: true });
  }
}
