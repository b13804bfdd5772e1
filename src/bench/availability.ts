// How long a fault stalls the cluster, measured on real processes with mutual TLS (docs/PERFORMANCE.md,
// "Stalls after a fault"): `node dist/src/bench/availability.js <catchup|...> [trials]`. Each figure is the
// median of its trials; nothing here is a pass/fail test.
//   catchup  the leader killed, kept down while ~5,000 entries commit (four journals, one record per flush),
//            restarted: time from its restart until its durable log is within 1,000 entries of the leader's
//            commit index, under the same load.
//   reads    kill -9 of the leader under a writer (200 records per flush) and a reader (linearizable
//            getJournalState, back to back): time from the kill until a write, and a read, issued after it
//            are acknowledged (the W3a figure for writes).
//   cut      every node behind a proxy (src/bench/blackhole-proxy.ts); the leader's inbound traffic cut for
//            1.5 s, as a partition does (connections reset, new ones swallowed), under the same writer: time
//            from the start of the cut until a write issued after it is acknowledged; and time from the heal
//            until the old leader is back in step (it knows a leader and applied what the others had
//            committed when the cut ended: the links into it work again).
//   disk     the leader's fdatasync calls held for 5 s (src/bench/disk-stall.ts, loaded into every node),
//            under the same writer: time from the start of the stall until another node leads, and until a
//            write issued after the stall began is acknowledged.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { LocalCluster } from '../local-cluster.js';
import type { NodeStatusJson } from '../node-status.js';
import { QuorumJournalManager } from '../../libqjm/index.js';
import type { EditLogOutputStream } from '../../libqjm/index.js';
import { BlackholeProxy } from './blackhole-proxy.js';
import { DISK_STALL_PRELOAD, stallFileOf } from './disk-stall.js';
import { waitFor } from '../wait-for.js';
import { median } from './workloads.js';

const NS = { namespaceId: 1, clusterId: 'CID-avail', blockPoolId: 'BP-avail' };
const RECORD_BYTES = 128;
/** QJ_KEEP=1 keeps the clusters' directories (logs included) for a look afterwards. */
const KEEP = process.env.QJ_KEEP === '1';
/** QJ_LOG_LEVEL=info for the nodes' logs (with QJ_KEEP). */
const LOG_LEVEL = process.env.QJ_LOG_LEVEL ?? 'warn';

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
    journals: Array.from({ length: journals }, (_, j) => `avail${j}`),
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

/** Trials of a loop that keeps issuing an operation: when the first one issued after `since` succeeded. */
class FirstAfter {
  since = 0;
  at = 0;
  private stopped = false;
  readonly done: Promise<void>;

  constructor(op: () => Promise<unknown>) {
    this.done = (async () => {
      while (!this.stopped) {
        const issued = performance.now();
        const ok = await op().then(
          () => true,
          () => false,
        );
        if (ok && this.since > 0 && issued > this.since && this.at === 0) this.at = performance.now();
      }
    })();
  }

  get ms(): number {
    return this.at - this.since;
  }

  stop(): Promise<void> {
    this.stopped = true;
    return this.done;
  }
}

/** kill -9 of the leader under a writer and a linearizable reader: ms until each resumes, per trial. */
export async function stallsAfterLeaderKill(
  root: string,
  trials: number,
  log: (s: string) => void,
): Promise<{ writesMs: number[]; readsMs: number[] }> {
  const cluster = await LocalCluster.create({
    nodes: 3,
    electionTimeoutMs: 1000,
    root,
    logLevel: LOG_LEVEL,
    journals: ['reads'],
  });
  cluster.startAll();
  await cluster.waitForLeader(30_000);
  const options = { journalId: 'reads', peers: cluster.addresses, nsInfo: NS, writeTimeoutMs: 60_000 };
  const writer = new QuorumJournalManager({ ...options, writerId: 'w', tls: cluster.tls('writer') });
  const reader = new QuorumJournalManager({ ...options, tls: cluster.tls('reader'), retry: { deadlineMs: 60_000 } });
  const writesMs: number[] = [];
  const readsMs: number[] = [];
  try {
    await writer.format(NS);
    const { lastTxId } = await writer.recoverUnfinalizedSegments();
    const out = await writer.startLogSegment(lastTxId + 1, -64);
    const rec = Buffer.alloc(RECORD_BYTES, 0x42);
    for (let t = 0; t < trials; t++) {
      const leader = await cluster.waitForLeader(30_000);
      const writes = new FirstAfter(async () => {
        for (let k = 0; k < 200; k++) if (!out.write(rec)) await out.drain();
        await out.flush();
      });
      const reads = new FirstAfter(() => reader.getJournalState({ linearizable: true }));
      await new Promise((r) => setTimeout(r, 500));
      const killedAt = performance.now();
      writes.since = killedAt;
      reads.since = killedAt;
      await cluster.kill(leader);
      await waitFor(() => writes.at > 0 && reads.at > 0, {
        timeoutMs: 60_000,
        intervalMs: 2,
        what: 'a write and a read acknowledged after the kill',
      });
      await Promise.all([writes.stop(), reads.stop()]);
      writesMs.push(Math.round(writes.ms));
      readsMs.push(Math.round(reads.ms));
      log(
        `    trial ${t + 1}: writes resumed ${writes.ms.toFixed(0)} ms, reads ${reads.ms.toFixed(0)} ms after the kill`,
      );
      cluster.start(leader);
      await cluster.waitForLeader(30_000);
    }
  } finally {
    await Promise.all([writer.close(), reader.close()]).catch(() => {});
    await cluster.stopAll().catch(() => {});
    await cluster.destroy(KEEP);
  }
  return { writesMs, readsMs };
}

/** A writer's segment held open on a cluster: a batch of 200 records per flush, as W3a writes. */
async function openSegment(cluster: LocalCluster, jid: string) {
  const options = { journalId: jid, peers: cluster.addresses, nsInfo: NS, writeTimeoutMs: 60_000 };
  const writer = new QuorumJournalManager({ ...options, writerId: 'w', tls: cluster.tls('writer') });
  await writer.format(NS);
  const { lastTxId } = await writer.recoverUnfinalizedSegments();
  const out: EditLogOutputStream = await writer.startLogSegment(lastTxId + 1, -64);
  const rec = Buffer.alloc(RECORD_BYTES, 0x43);
  const batch = async () => {
    for (let k = 0; k < 200; k++) if (!out.write(rec)) await out.drain();
    await out.flush();
  };
  return { writer, out, batch };
}

/** The leader's inbound traffic cut for `cutMs` under a writer: ms until writes resume, and until the old leader is back in step. */
export async function stallsAfterInboundCut(
  root: string,
  trials: number,
  log: (s: string) => void,
  cutMs = 1500,
): Promise<{ writesMs: number[]; backInStepMs: number[] }> {
  const cluster = await LocalCluster.create({
    nodes: 3,
    electionTimeoutMs: 1000,
    root,
    logLevel: LOG_LEVEL,
    journals: ['cut'],
  });
  const proxies = new Map<string, BlackholeProxy>();
  for (const n of cluster.nodes) {
    const p = await BlackholeProxy.start(n.listenAddress);
    proxies.set(n.id, p);
    cluster.frontWith(n.id, p.address);
  }
  cluster.startAll();
  await cluster.waitForLeader(30_000);
  const w = await openSegment(cluster, 'cut');
  const writesMs: number[] = [];
  const backInStepMs: number[] = [];
  try {
    for (let t = 0; t < trials; t++) {
      const leader = await cluster.waitForLeader(30_000);
      const writes = new FirstAfter(w.batch);
      await new Promise((r) => setTimeout(r, 500));
      const proxy = proxies.get(leader)!;
      const cutAt = performance.now();
      writes.since = cutAt;
      proxy.cut();
      await new Promise((r) => setTimeout(r, cutMs));
      proxy.heal();
      const healedAt = performance.now();
      // What the others had committed when the cut ended: the old leader is back in step once it applied that.
      const others = cluster.nodes.filter((n) => n.id !== leader);
      const sts = await Promise.all(others.map((n) => cluster.status(n.id, 2000)));
      const commit = Math.max(...sts.map((st) => st?.commitIndex ?? 0));
      await waitFor(
        async () => {
          const st = await cluster.status(leader, 500);
          return st !== null && st.leader !== null && st.appliedIndex >= commit;
        },
        { timeoutMs: 60_000, intervalMs: 10, what: `${leader} back in step` },
      );
      const stepMs = performance.now() - healedAt;
      await waitFor(() => writes.at > 0, {
        timeoutMs: 60_000,
        intervalMs: 2,
        what: 'a write acknowledged after the cut',
      });
      await writes.stop();
      writesMs.push(Math.round(writes.ms));
      backInStepMs.push(Math.round(stepMs));
      log(
        `    trial ${t + 1}: writes resumed ${writes.ms.toFixed(0)} ms after the cut began; ${leader} back in step ${stepMs.toFixed(0)} ms after the heal`,
      );
    }
  } finally {
    await w.writer.close().catch(() => {});
    await cluster.stopAll().catch(() => {});
    await cluster.destroy(KEEP);
    await Promise.all([...proxies.values()].map((p) => p.close()));
  }
  return { writesMs, backInStepMs };
}

/** The leader's disk stalled for `stallMs` under a writer: ms until another node leads, and until writes resume. */
export async function stallsAfterDiskStall(
  root: string,
  trials: number,
  log: (s: string) => void,
  stallMs = 5000,
): Promise<{ leaderGoneMs: number[]; writesMs: number[] }> {
  const stallDir = path.join(root, 'stalls');
  fs.mkdirSync(stallDir, { recursive: true });
  // Every node this process starts loads the stall (each holds its own fdatasync only while its file exists).
  process.env.QJ_DISK_STALL_DIR = stallDir;
  process.env.QJ_NODE_ARGS = `${process.env.QJ_NODE_ARGS ?? ''} --import=${DISK_STALL_PRELOAD}`.trim();
  // QJ_NODE_FLAGS='--leaderSyncStallMs 0' shows the same stall without the hand-over.
  const extraArgs = (process.env.QJ_NODE_FLAGS ?? '').split(' ').filter(Boolean);
  const cluster = await LocalCluster.create({
    nodes: 3,
    electionTimeoutMs: 1000,
    root,
    logLevel: LOG_LEVEL,
    journals: ['disk'],
    extraArgs,
  });
  cluster.startAll();
  await cluster.waitForLeader(30_000);
  const w = await openSegment(cluster, 'disk');
  const leaderGoneMs: number[] = [];
  const writesMs: number[] = [];
  try {
    for (let t = 0; t < trials; t++) {
      const leader = await cluster.waitForLeader(30_000);
      const writes = new FirstAfter(w.batch);
      await new Promise((r) => setTimeout(r, 500));
      const flag = stallFileOf(stallDir, leader);
      const stalledAt = performance.now();
      writes.since = stalledAt;
      fs.writeFileSync(flag, '');
      const release = setTimeout(() => fs.rmSync(flag, { force: true }), stallMs);
      try {
        const others = cluster.nodes.filter((n) => n.id !== leader);
        // Until a write issued after the stall began is acknowledged and another node leads (or, when none
        // takes over, the stall is over): how long each took.
        let goneMs = -1;
        await waitFor(
          async () => {
            const sts = await Promise.all(others.map((n) => cluster.status(n.id, 500)));
            if (goneMs < 0 && sts.some((s) => s?.state === 'leader')) goneMs = performance.now() - stalledAt;
            return writes.at > 0 && (goneMs >= 0 || !fs.existsSync(flag));
          },
          { timeoutMs: 60_000, intervalMs: 10, what: `writes after ${leader}'s disk stalled` },
        );
        await writes.stop();
        if (goneMs >= 0) leaderGoneMs.push(Math.round(goneMs));
        writesMs.push(Math.round(writes.ms));
        log(
          `    trial ${t + 1}: ${leader}'s disk stalled ${stallMs} ms: ${goneMs < 0 ? `${leader} kept leading` : `another node led ${goneMs.toFixed(0)} ms after it began`}, writes resumed ${writes.ms.toFixed(0)} ms`,
        );
      } finally {
        // The stall lasts its whole length whatever happened meanwhile: the next trial starts after it.
        await waitFor(() => !fs.existsSync(flag), {
          timeoutMs: stallMs + 10_000,
          intervalMs: 20,
          what: 'the stall over',
        });
        clearTimeout(release);
      }
      await waitFor(async () => ((await cluster.status(leader, 500))?.leader ?? null) !== null, {
        timeoutMs: 30_000,
        what: `${leader} following again`,
      });
    }
  } finally {
    await w.writer.close().catch(() => {});
    await cluster.stopAll().catch(() => {});
    await cluster.destroy(KEEP);
  }
  return { leaderGoneMs, writesMs };
}

type Measure = (root: string, trials: number, log: (s: string) => void) => Promise<Record<string, number[]>>;

const MEASURES: Record<string, Measure> = {
  catchup: async (root, trials, log) => ({ catchUpMs: await catchUpAfterRestart(root, trials, log) }),
  reads: stallsAfterLeaderKill,
  cut: (root, trials, log) => stallsAfterInboundCut(root, trials, log),
  disk: (root, trials, log) => stallsAfterDiskStall(root, trials, log),
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
    const series = await measure(root, trials, (s) => console.log(s));
    const load = os
      .loadavg()
      .map((x) => x.toFixed(1))
      .join(' ');
    for (const [name, ms] of Object.entries(series)) {
      if (ms.length === 0) {
        console.log(`${name}: none (load ${load})`);
        continue;
      }
      const range = `min ${Math.min(...ms)}, max ${Math.max(...ms)}`;
      console.log(`${name}: median ${median(ms).toFixed(0)} ms, ${range} over ${ms.length} trials (load ${load})`);
    }
  } finally {
    if (KEEP) console.log(`kept ${root}`);
    else fs.rmSync(root, { recursive: true, force: true });
  }
}
