// The benchmark workloads (docs/PERFORMANCE.md), each against a fresh local cluster of real JournalNode processes:
// W1 sync latency, W2 streaming throughput, W3 failovers, W4 tail lag, W5 footprint, W6 the NameNode's own
// pattern (concurrent handlers each awaiting their own flush), CPU per record, and the disk's limit.

import { fork } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalCluster } from '../local-cluster.js';
import { QuorumJournalManager } from '../../libqjm/index.js';
import type { EditLogOutputStream, QjmOptions } from '../../libqjm/index.js';
import { waitFor } from '../wait-for.js';

export const RECORD_BYTES = 128;
const NS = { namespaceId: 1, clusterId: 'CID-bench', blockPoolId: 'BP-bench' };
const HERE = path.dirname(fileURLToPath(import.meta.url));

export interface LatencyStats {
  recordsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

export function percentile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

export function median(xs: number[]): number {
  return percentile(
    [...xs].sort((a, b) => a - b),
    0.5,
  );
}

const round = (n: number, d = 3) => Number(n.toFixed(d));

export interface Bench {
  cluster: LocalCluster;
  writer: QuorumJournalManager;
  out: EditLogOutputStream;
  close(): Promise<void>;
}

export interface FreshClusterOptions {
  electionTimeoutMs?: number;
  extraArgs?: string[];
  writerOpts?: Partial<QjmOptions>;
  /**
   * Mutual TLS, the writer with a writer certificate. Off by default on purpose: the benchmark measures the
   * journal itself; `--tls` measures the same workloads with TLS beside the plain ones.
   */
  tls?: boolean;
}

/** A fresh 3-node cluster with a formatted journal and a writer holding an open segment. */
export async function freshCluster(root: string, options: FreshClusterOptions = {}): Promise<Bench> {
  fs.rmSync(root, { recursive: true, force: true });
  fs.mkdirSync(root, { recursive: true });
  const cluster = await LocalCluster.create({
    nodes: 3,
    electionTimeoutMs: options.electionTimeoutMs ?? 1000,
    root,
    logLevel: 'warn',
    extraArgs: options.extraArgs ?? [],
    insecure: !options.tls,
    journals: ['bench'],
  });
  cluster.startAll();
  await cluster.waitForLeader(30_000);
  const writer = new QuorumJournalManager({
    journalId: 'bench',
    peers: cluster.clientPeers,
    writerId: 'bench-writer',
    nsInfo: NS,
    writeTimeoutMs: 60_000,
    tls: cluster.tls('writer'),
    ...options.writerOpts,
  });
  await writer.format(NS);
  const { lastTxId } = await writer.recoverUnfinalizedSegments();
  const out = await writer.startLogSegment(lastTxId + 1, -64);
  return {
    cluster,
    writer,
    out,
    async close() {
      await writer.close();
      await cluster.stopAll().catch(() => {});
      await cluster.destroy();
    },
  };
}

/**
 * Brings a fresh cluster to steady state before anything is measured: JournalNodes are long-running
 * servers, and for their first ~10 s V8 is still compiling the hot paths (W1 measured in one cluster went
 * from p50 4.8 ms over its first 4 s to 1.6 ms after 20 s). A short paced stream, then one record per flush:
 * both paths get optimized without leaving hundreds of MB of dirty pages for W1 to compete with.
 */
export async function warmUp(b: Bench, seconds: number): Promise<void> {
  await streamRecords(b, Math.min(1, seconds / 4), { ratePerSec: 50_000 });
  const rec = Buffer.alloc(RECORD_BYTES, 0x30);
  const end = performance.now() + (seconds - Math.min(1, seconds / 4)) * 1000;
  while (performance.now() < end) {
    b.out.write(rec);
    await b.out.flush();
  }
}

/** W1: one writer, one record per flush, back to back. */
export function w1SyncLatency(b: Bench, seconds: number): Promise<LatencyStats> {
  return writeAndFlush(b, seconds, 1, 0x31);
}

/**
 * `handlers` concurrent loops, each writing one record and awaiting its own flush, back to back: records per
 * second, and the percentiles of one flush.
 */
async function writeAndFlush(b: Bench, seconds: number, handlers: number, fill: number): Promise<LatencyStats> {
  const rec = Buffer.alloc(RECORD_BYTES, fill);
  const lat: number[] = [];
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  await Promise.all(
    Array.from({ length: handlers }, async () => {
      while (performance.now() < end) {
        const t = performance.now();
        b.out.write(rec);
        await b.out.flush();
        lat.push(performance.now() - t);
      }
    }),
  );
  const wall = (performance.now() - t0) / 1000;
  lat.sort((a, c) => a - c);
  return {
    recordsPerSec: Math.round(lat.length / wall),
    p50Ms: round(percentile(lat, 0.5)),
    p99Ms: round(percentile(lat, 0.99)),
    maxMs: round(lat[lat.length - 1]!),
  };
}

export interface ThroughputStats {
  recordsPerSec: number;
  mbPerSec: number;
  p99FlushMs: number;
  p50FlushMs: number;
  records: number;
}

/**
 * W2: one writer streaming records through the library's batching: it writes as fast as the stream takes
 * them (respecting backpressure) and asks for a flush every `flushEvery` records, never waiting on one
 * before writing on. With `ratePerSec`, it paces itself (W4 runs at half the peak).
 */
export async function streamRecords(
  b: Bench,
  seconds: number,
  options: {
    flushEvery?: number;
    ratePerSec?: number;
    onAck?: (firstTxId: number, lastTxId: number, atMs: number) => void;
  } = {},
): Promise<ThroughputStats> {
  const rec = Buffer.alloc(RECORD_BYTES, 0x32);
  const flushEvery = options.flushEvery ?? 2000;
  const flushLat: number[] = [];
  const pending: Promise<void>[] = [];
  let n = 0;
  let acked = b.out.lastDurableTxId;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  const slice = Math.max(
    1,
    Math.min(flushEvery, options.ratePerSec ? Math.ceil(options.ratePerSec / 200) : flushEvery),
  );
  while (performance.now() < end) {
    if (options.ratePerSec) {
      // Paced: never ahead of the schedule.
      const due = ((performance.now() - t0) / 1000) * options.ratePerSec;
      if (n >= due) {
        await new Promise((r) => setTimeout(r, 2));
        continue;
      }
    }
    for (let k = 0; k < slice; k++) {
      if (!b.out.write(rec)) await b.out.drain();
      n++;
    }
    if (n % flushEvery < slice || options.ratePerSec) {
      const t = performance.now();
      pending.push(
        b.out.flush().then((durable) => {
          const now = performance.now();
          flushLat.push(now - t);
          if (durable > acked) {
            options.onAck?.(acked + 1, durable, performance.timeOrigin + now);
            acked = durable;
          }
        }),
      );
      if (pending.length > 256) await pending.shift();
    } else if (n % 256 === 0) {
      await new Promise((r) => setImmediate(r));
    }
  }
  await Promise.all(pending);
  await b.out.flush();
  const wall = (performance.now() - t0) / 1000;
  flushLat.sort((a, c) => a - c);
  return {
    recordsPerSec: Math.round(n / wall),
    mbPerSec: round((n * RECORD_BYTES) / wall / 1e6, 2),
    p99FlushMs: round(percentile(flushLat, 0.99), 2),
    p50FlushMs: round(percentile(flushLat, 0.5), 2),
    records: n,
  };
}

/** W3(a): kill -9 of the leader under streaming load; ms until a flush issued after the kill is acknowledged. */
export async function w3LeaderKill(
  root: string,
  trials: number,
  electionTimeoutMs: number,
  log: (s: string) => void,
): Promise<number[]> {
  const b = await freshCluster(root, { electionTimeoutMs });
  const out: number[] = [];
  try {
    for (let t = 0; t < trials; t++) {
      const leader = await b.cluster.waitForLeader(30_000);
      let stop = false;
      let recoveredAt = 0;
      let killedAt = 0;
      const rec = Buffer.alloc(RECORD_BYTES, 0x33);
      const load = (async () => {
        while (!stop) {
          for (let k = 0; k < 200; k++) if (!b.out.write(rec)) await b.out.drain();
          const issued = performance.now();
          await b.out.flush();
          if (killedAt > 0 && issued > killedAt && recoveredAt === 0) recoveredAt = performance.now();
        }
      })();
      await new Promise((r) => setTimeout(r, 500));
      killedAt = performance.now();
      await b.cluster.kill(leader);
      await waitFor(() => recoveredAt > 0, {
        timeoutMs: 60_000,
        intervalMs: 2,
        what: 'the first write acknowledged after the kill',
      });
      stop = true;
      await load;
      out.push(round(recoveredAt - killedAt, 1));
      log(`    W3a trial ${t + 1}: ${(recoveredAt - killedAt).toFixed(0)} ms`);
      b.cluster.start(leader);
      await b.cluster.waitForLeader(30_000);
    }
  } finally {
    await b.close();
  }
  return out;
}

/**
 * W3(b): the active writer (a separate process, streaming) is killed with SIGKILL; the standby runs
 * recoverUnfinalizedSegments, opens the next segment and makes its first durable write. Time of that.
 */
export async function w3WriterFailover(root: string, trials: number, log: (s: string) => void): Promise<number[]> {
  const b = await freshCluster(root);
  const out: number[] = [];
  try {
    await b.writer.finalizeLogSegment(b.out.segmentTxId, b.out.lastDurableTxId || b.out.segmentTxId).catch(() => {});
    for (let t = 0; t < trials; t++) {
      // The active writer: a child process that recovers the journal and streams until killed.
      const child = fork(path.join(HERE, 'writer-process.js'), [b.cluster.addresses.join(','), `active-${t}`], {
        stdio: 'ignore',
      });
      await new Promise<void>((resolve, reject) => {
        child.once('message', () => resolve());
        child.once('exit', (code) => reject(new Error(`writer process exited early (${code})`)));
      });
      await new Promise((r) => setTimeout(r, 300));
      child.kill('SIGKILL');
      await new Promise((r) => child.once('exit', r));
      const standby = new QuorumJournalManager({
        journalId: 'bench',
        peers: b.cluster.addresses,
        writerId: `standby-${t}`,
        nsInfo: NS,
      });
      const t0 = performance.now();
      const { lastTxId } = await standby.recoverUnfinalizedSegments();
      const s = await standby.startLogSegment(lastTxId + 1, -64);
      s.write(Buffer.alloc(RECORD_BYTES, 0x34));
      await s.flush();
      const ms = performance.now() - t0;
      await standby.finalizeLogSegment(lastTxId + 1, lastTxId + 1);
      await standby.close();
      out.push(round(ms, 1));
      log(`    W3b trial ${t + 1}: ${ms.toFixed(1)} ms (recovered to txid ${lastTxId})`);
    }
  } finally {
    await b.close();
  }
  return out;
}

/**
 * W4: tail lag at a given rate: acknowledgement to the writer -> record received by a tailing reader process.
 * The reader reads as libqjm does (it moves to the leader), or, with readerOn 'follower', long-polls a follower
 * only (which learns of a commit from the leader's next append or heartbeat).
 */
/** Seconds of W4's load the reader tails before anything is measured. */
const W4_READER_WARM_UP_S = 2;

export async function w4TailLag(
  b: Bench,
  seconds: number,
  ratePerSec: number,
  readerOn: 'leader' | 'follower' = 'leader',
): Promise<{ p50Ms: number; p99Ms: number; samples: number }> {
  const leader = b.cluster.node(await b.cluster.waitForLeader()).address;
  const others = b.cluster.addresses.filter((a) => a !== leader);
  // Reading as libqjm does, the reader prefers the leader (the freshest node); the other nodes are its fallbacks.
  // Room for every txid it will see, so that its own bookkeeping never grows (and stalls it) mid-run.
  const capacity = String(Math.ceil((W4_READER_WARM_UP_S + seconds + 2) * ratePerSec * 1.5));
  const args =
    readerOn === 'leader'
      ? [[leader, ...others].join(','), String(b.out.lastDurableTxId + 1), 'follow', capacity]
      : [others[0]!, String(b.out.lastDurableTxId + 1), 'pin', capacity];
  const reader = fork(path.join(HERE, 'reader-process.js'), args, { stdio: 'ignore' });
  const tailing = new Promise<void>((resolve, reject) => {
    reader.once('message', () => resolve());
    reader.once('exit', (code) => reject(new Error(`reader process exited early (${code})`)));
  });
  // One record the reader must see before anything is measured: then it is connected and waiting at the end.
  b.out.write(Buffer.alloc(RECORD_BYTES, 0x35));
  await b.out.flush();
  await tailing;
  // The reader is a fresh process: its first few hundred milliseconds of reading run cold (V8 compiling its
  // read loop), with lags of tens of ms that a standby tailing for hours never sees again. Warm it first.
  await streamRecords(b, W4_READER_WARM_UP_S, { ratePerSec });
  const acks: [number, number, number][] = [];
  await streamRecords(b, seconds, { ratePerSec, onAck: (first, last, at) => acks.push([first, last, at]) });
  await new Promise((r) => setTimeout(r, 500));
  const received = await new Promise<[number, number][]>((resolve) => {
    reader.once('message', (m) => resolve(m as [number, number][]));
    reader.send('report');
  });
  reader.kill();
  // Received-at per txid; every txid of an acknowledged run is a sample (acknowledged at the run's time).
  const recvAt = new Map<number, number>();
  for (const [txid, at] of received) recvAt.set(txid, at);
  const lags: number[] = [];
  for (const [first, last, at] of acks) {
    for (let txid = first; txid <= last; txid++) {
      const r = recvAt.get(txid);
      if (r !== undefined) lags.push(Math.max(0, r - at));
    }
  }
  lags.sort((a, c) => a - c);
  return { p50Ms: round(percentile(lags, 0.5), 2), p99Ms: round(percentile(lags, 0.99), 2), samples: lags.length };
}

/**
 * W6, the NameNode's pattern: `handlers` concurrent handlers, each writing one edit and then awaiting its own
 * flush() (Hadoop's logSync); the library group-commits what they wrote meanwhile into shared round trips.
 * Operations per second, and the percentiles of one handler's flush.
 */
export async function w6Handlers(
  b: Bench,
  seconds: number,
  handlers: number,
): Promise<LatencyStats & { opsPerSec: number; handlers: number }> {
  const stats = await writeAndFlush(b, seconds, handlers, 0x36);
  return { ...stats, opsPerSec: stats.recordsPerSec, handlers };
}

/** CPU time (user + system, every thread) a process has used so far, ms, from /proc/<pid>/stat. */
export function processCpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may hold spaces, hence the last ')'): utime and stime are the 14th
  // and 15th fields of the line, in clock ticks (USER_HZ, 100 on Linux).
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLOCK_TICKS_PER_SEC;
}
const CLOCK_TICKS_PER_SEC = 100;

/** CPU ms used so far by each running JournalNode, by node id. */
export function clusterCpuMs(c: LocalCluster): Map<string, number> {
  return new Map(c.nodes.filter((n) => n.proc?.pid).map((n) => [n.id, processCpuMs(n.proc!.pid!)]));
}

/** Peak resident memory (VmHWM) of each JournalNode process, MB. */
export function peakRssMb(c: LocalCluster): number[] {
  return c.nodes.map((n) => {
    const s = fs.readFileSync(`/proc/${n.proc!.pid}/status`, 'utf8');
    return round(Number(/VmHWM:\s+(\d+) kB/.exec(s)![1]) / 1024, 1);
  });
}

export function dirBytes(dir: string): number {
  let total = 0;
  const seen = new Set<number>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) {
        const st = fs.statSync(p);
        if (seen.has(st.ino)) continue; // a snapshot's hard link is the same bytes
        seen.add(st.ino);
        total += st.size;
      }
    }
  };
  walk(dir);
  return total;
}

/** The disk's limit: fdatasync latency of a 4 KiB append, and synced sequential bandwidth at a write size. */
export function diskLimit(
  dir: string,
  writeBytes: number,
): { fsyncP50Ms: number; syncedMBps: number; writeBytes: number } {
  fs.mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'disk-probe.bin');
  const fd = fs.openSync(file, 'w');
  try {
    const b4 = Buffer.alloc(4096, 1);
    const lat: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const t = performance.now();
      fs.writeSync(fd, b4);
      fs.fdatasyncSync(fd);
      lat.push(performance.now() - t);
    }
    lat.sort((a, c) => a - c);
    const big = Buffer.alloc(Math.max(4096, writeBytes), 2);
    let bytes = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < 1500) {
      fs.writeSync(fd, big);
      fs.fdatasyncSync(fd);
      bytes += big.byteLength;
    }
    return {
      fsyncP50Ms: round(percentile(lat, 0.5)),
      syncedMBps: round(bytes / ((performance.now() - t0) / 1000) / 1e6, 1),
      writeBytes: big.byteLength,
    };
  } finally {
    fs.closeSync(fd);
    fs.rmSync(file, { force: true });
  }
}
