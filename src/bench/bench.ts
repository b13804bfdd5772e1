// `npm run bench -- [flags]` (or `qjm bench [flags]`): every workload (W1-W6, docs/PERFORMANCE.md) on
// this machine, qjournal and (with --vs etcd) etcd side by side in the same run, the disk's limit, a table,
// and the same figures as JSON. The clusters speak plain HTTP on purpose (the journal is what is measured);
// --tls runs W1 and W2 again with mutual TLS, in the same run, to show what TLS costs. Nothing here is a
// pass/fail test: it reports what it measured.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { helpText, parseCommand, usageError, UsageError } from '../command-line.js';
import type { CommandSpec, FlagValues } from '../command-line.js';
import { renderTable } from '../text-table.js';
import { runEtcd } from './etcd.js';
import type { EtcdRun } from './etcd.js';
import {
  clusterCpuMs,
  dirBytes,
  diskLimit,
  freshCluster,
  median,
  peakRssMb,
  streamRecords,
  w1SyncLatency,
  warmUp,
  w3LeaderKill,
  w3WriterFailover,
  w4TailLag,
  w6Handlers,
} from './workloads.js';
import type { LatencyStats, ThroughputStats } from './workloads.js';

export interface BenchOptions {
  vsEtcd: boolean;
  tls: boolean;
  quick: boolean;
  out: string;
  only: Set<string>;
  dataDir: string;
  log: (s: string) => void;
}

const WORKLOADS = ['W1', 'W2', 'W3', 'W4', 'W5', 'W6'];
/** W6: the NameNode's handler threads that each await their own logSync. */
const W6_HANDLERS = 8;

export const BENCH_COMMAND = {
  name: 'qjm bench',
  summary: 'Run the benchmark on this machine (docs/PERFORMANCE.md; npm run bench -- [flags] is the same).',
  flags: {
    vs: { type: 'string', choices: ['etcd'], description: 'measure a 3-member etcd side by side' },
    tls: { type: 'boolean', description: 'also run W1 and W2 with mutual TLS, beside the plain-HTTP figures' },
    quick: {
      type: 'boolean',
      description: 'a few seconds per workload instead of 15, 3 failover trials instead of 10',
    },
    out: { type: 'string', valueName: 'FILE', description: 'where the JSON goes (default bench-out/bench.json)' },
    only: {
      type: 'string',
      valueName: 'W1,W2,...',
      description: `the workloads to run (default ${WORKLOADS.join(',')})`,
    },
    data: {
      type: 'string',
      valueName: 'DIR',
      description: 'where the clusters keep their data (default: a directory under the temp dir)',
    },
  },
} as const satisfies CommandSpec;

function benchOptions(f: FlagValues<typeof BENCH_COMMAND>): BenchOptions {
  const only = new Set((f.only ?? WORKLOADS.join(',')).split(',').map((s) => s.trim().toUpperCase()));
  const unknown = [...only].filter((w) => !WORKLOADS.includes(w));
  if (unknown.length > 0)
    throw new UsageError(`--only: unknown workload ${unknown.join(', ')} (known: ${WORKLOADS.join(', ')})`);
  return {
    vsEtcd: f.vs === 'etcd',
    tls: f.tls,
    quick: f.quick,
    out: f.out ?? 'bench-out/bench.json',
    only,
    dataDir: f.data ?? path.join(os.tmpdir(), `qjournal-bench-${process.pid}`),
    log: (s) => console.log(s),
  };
}

function machine(): Record<string, unknown> {
  const cpus = os.cpus();
  let disk = '';
  try {
    disk = execFileSync('df', ['-hT', os.tmpdir()], { encoding: 'utf8' }).trim().split('\n').pop() ?? '';
  } catch {
    disk = 'unknown';
  }
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model ?? 'unknown',
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    kernel: os.release(),
    tmpdirFs: disk.replace(/\s+/g, ' '),
  };
}

export async function runBench(options: BenchOptions): Promise<Record<string, unknown>> {
  const secs = options.quick ? 3 : 15;
  const trials = options.quick ? 3 : 10;
  const warmSecs = options.quick ? 8 : 15;
  const say = (s: string) => options.log(s);
  const results: Record<string, unknown> = {
    machine: machine(),
    mode: options.quick ? 'quick' : 'full',
    seconds: secs,
    warmUpSeconds: warmSecs,
    recordBytes: 128,
  };
  const workloads: Record<string, unknown> = {};
  say(
    `qjournal benchmark (${options.quick ? 'quick' : 'full'}): 3 JournalNodes + the writer on this machine, loopback, fsync on`,
  );
  say(
    `  plain HTTP on purpose (the journal is what is measured)${options.tls ? '; W1 and W2 again with mutual TLS after it' : '; --tls adds W1 and W2 with mutual TLS'}`,
  );

  const shared = ['W1', 'W2', 'W4', 'W5', 'W6'].some((w) => options.only.has(w));
  const { w1, w2, w2Stats, w2Cpu, w4, w6, rss, diskPerRecord } = shared
    ? await runOnOneCluster(options, secs, warmSecs, say)
    : ({ rss: [], diskPerRecord: 0 } as OneClusterRun);
  if (w4) workloads.W4 = w4;

  const tlsRun =
    options.tls && (options.only.has('W1') || options.only.has('W2')) ? await runTls(options, secs, warmSecs) : {};

  const batchBytes = w2Stats && w2Stats.writes > 0 ? Math.round(w2Stats.bytes / w2Stats.writes) : 1 << 20;
  say(`  disk: fdatasync of 4 KiB appends, and synced bandwidth at ${batchBytes} bytes per write ...`);
  const limit = diskLimit(path.join(options.dataDir, 'disk'), batchBytes);
  results.limit = limit;
  say(`    fdatasync p50 ${limit.fsyncP50Ms} ms; ${limit.syncedMBps} MB/s synced`);

  let etcd: EtcdRun | null = null;
  if (options.vsEtcd && (options.only.has('W1') || options.only.has('W2') || options.only.has('W6'))) {
    say(`  etcd: a 3-member cluster on loopback, fsync on, same workloads ...`);
    etcd = await runEtcd(path.join(options.dataDir, 'etcd'), secs, say, options.only.has('W6') ? W6_HANDLERS : 0);
  }

  if (w1) workloads.W1 = w1Result(w1, etcd, tlsRun.w1, limit);
  if (w2) workloads.W2 = w2Result(w2, w2Stats, w2Cpu, secs, etcd, tlsRun.w2, limit);
  if (w6) workloads.W6 = w6Result(w6, etcd);
  if (options.only.has('W3')) workloads.W3 = await runW3(options, trials, say);
  if (options.only.has('W5') && w2)
    workloads.W5 = { rssMbMax: Math.max(...rss), rssMbPerNode: rss, diskBytesPerRecord: diskPerRecord };
  results.workloads = workloads;
  fs.rmSync(options.dataDir, { recursive: true, force: true });
  return results;
}

type DiskLimit = ReturnType<typeof diskLimit>;

/** qjournal's figure against etcd's: how many times as many records per second. */
const ratio = (ours: number, theirs: number) => Number((ours / theirs).toFixed(2));

/** The same workload with mutual TLS, and what share of the plain figure it keeps. */
function withTls<S extends { recordsPerSec: number }>(plain: S, tls: S | undefined): Record<string, unknown> {
  return tls ? { tls, tlsOverPlain: Number((tls.recordsPerSec / plain.recordsPerSec).toFixed(3)) } : {};
}

function w1Result(w1: LatencyStats, etcd: EtcdRun | null, tls: LatencyStats | undefined, limit: DiskLimit) {
  return {
    qjournal: w1,
    ...(etcd ? { etcd: etcd.put, ratio: ratio(w1.recordsPerSec, etcd.put.recordsPerSec) } : {}),
    ...withTls(w1, tls),
    // One record per flush needs at least one fdatasync (leader and follower in parallel).
    limitRecordsPerSec: Math.round(1000 / limit.fsyncP50Ms),
    fractionOfLimit: Number((w1.recordsPerSec / (1000 / limit.fsyncP50Ms)).toFixed(3)),
  };
}

function w2Result(
  w2: ThroughputStats,
  stats: OneClusterRun['w2Stats'],
  cpu: OneClusterRun['w2Cpu'],
  secs: number,
  etcd: EtcdRun | null,
  tls: ThroughputStats | undefined,
  limit: DiskLimit,
) {
  // The three nodes share this machine's disk: each fdatasyncs every record once, in its Raft log.
  const logMBps = stats ? stats.bytes / secs / 1e6 : 0;
  return {
    qjournal: w2,
    ...(etcd ? { etcd: etcd.txn, ratio: ratio(w2.recordsPerSec, etcd.txn.recordsPerSec) } : {}),
    ...withTls(w2, tls),
    ...(cpu ? { cpuUsPerRecord: cpu } : {}),
    logMBpsPerNode: Number(logMBps.toFixed(2)),
    limitMBps: limit.syncedMBps,
    fractionOfLimit: Number(((3 * logMBps) / limit.syncedMBps).toFixed(3)),
  };
}

function w6Result(w6: NonNullable<OneClusterRun['w6']>, etcd: EtcdRun | null) {
  const { opsPerSec, p50Ms, p99Ms, maxMs, handlers } = w6;
  const e = etcd?.concurrentPut;
  const theirs = e
    ? { opsPerSec: e.recordsPerSec, p50Ms: e.p50Ms, p99Ms: e.p99Ms, maxMs: e.maxMs, clients: e.concurrency }
    : null;
  return {
    qjournal: { opsPerSec, p50Ms, p99Ms, maxMs, handlers },
    ...(e && theirs ? { etcd: theirs, ratio: ratio(opsPerSec, e.recordsPerSec) } : {}),
  };
}

/** W3: failover, (a) the leader JournalNode killed under load, (b) the active writer killed. */
async function runW3(options: BenchOptions, trials: number, say: (s: string) => void) {
  say(`  W3a: kill -9 of the leader JournalNode under load, ${trials} trials (electionTimeoutMs 1000) ...`);
  const a = await w3LeaderKill(path.join(options.dataDir, 'w3a'), trials, 1000, say);
  say(`  W3b: the active writer killed; the standby recovers and writes, ${trials} trials ...`);
  const bb = await w3WriterFailover(path.join(options.dataDir, 'w3b'), trials, say);
  return {
    electionTimeoutMs: 1000,
    leaderKillMs: { median: median(a), max: Math.max(...a), trials: a },
    writerFailoverMs: { median: median(bb), max: Math.max(...bb), trials: bb },
  };
}

/** What W1, W2, W4, W5 and W6 measured on their one shared (warmed-up) cluster. */
interface OneClusterRun {
  w1?: LatencyStats;
  w2?: ThroughputStats;
  w2Stats?: { writes: number; bytes: number };
  w2Cpu?: Record<string, unknown>;
  w4?: Record<string, unknown>;
  w6?: LatencyStats & { opsPerSec: number; handlers: number };
  rss: number[];
  diskPerRecord: number;
}

/** W1, W6, W2 (with W5's footprint) and W4, in that order, on one cluster after one warm-up. */
async function runOnOneCluster(
  o: BenchOptions,
  secs: number,
  warmSecs: number,
  say: (s: string) => void,
): Promise<OneClusterRun> {
  const r: OneClusterRun = { rss: [], diskPerRecord: 0 };
  const b = await freshCluster(path.join(o.dataDir, 'w12'));
  try {
    say(
      `  warm-up: ${warmSecs} s of streaming and single-record flushes, so V8 has compiled the hot paths (not measured) ...`,
    );
    await warmUp(b, warmSecs);
    if (o.only.has('W1')) {
      say(`  W1: one writer, one ${128}-byte record per flush, ${secs} s ...`);
      r.w1 = await w1SyncLatency(b, secs);
      say(`    ${r.w1.recordsPerSec} records/s, p50 ${r.w1.p50Ms} ms, p99 ${r.w1.p99Ms} ms`);
    }
    if (o.only.has('W6')) {
      say(
        `  W6: ${W6_HANDLERS} concurrent handlers, each writing one ${128}-byte edit and awaiting its own flush, ${secs} s ...`,
      );
      r.w6 = await w6Handlers(b, secs, W6_HANDLERS);
      say(`    ${r.w6.opsPerSec} ops/s, flush p50 ${r.w6.p50Ms} ms, p99 ${r.w6.p99Ms} ms`);
    }
    if (o.only.has('W2') || o.only.has('W4') || o.only.has('W5')) {
      const leader = await b.cluster.waitForLeader();
      const before = (await b.cluster.status(leader))!.storage as { writes: number; bytesWritten: number };
      say(`  W2: one writer streaming ${128}-byte records through the library's batching, ${secs} s ...`);
      const cpuBefore = clusterCpuMs(b.cluster);
      const writerCpuBefore = process.cpuUsage();
      r.w2 = await streamRecords(b, secs);
      r.w2Cpu = cpuPerRecord(
        cpuBefore,
        clusterCpuMs(b.cluster),
        process.cpuUsage(writerCpuBefore),
        leader,
        r.w2.records,
      );
      say(
        `    CPU per record: ${JSON.stringify(r.w2Cpu)} (us, from /proc/<pid>/stat; the writer from process.cpuUsage)`,
      );
      const after = (await b.cluster.status(leader))!.storage as { writes: number; bytesWritten: number };
      r.w2Stats = { writes: after.writes - before.writes, bytes: after.bytesWritten - before.bytesWritten };
      r.rss = peakRssMb(b.cluster);
      say(
        `    ${r.w2.recordsPerSec} records/s (${r.w2.mbPerSec} MB/s), flush p50 ${r.w2.p50FlushMs} ms, p99 ${r.w2.p99FlushMs} ms; ${r.w2Stats.writes} log writes of ${Math.round(r.w2Stats.bytes / Math.max(1, r.w2Stats.writes))} bytes on the leader`,
      );
      const totalRecords = b.out.lastDurableTxId;
      r.diskPerRecord = Math.round(
        b.cluster.nodes.reduce((n, node) => n + dirBytes(node.dataDir), 0) /
          b.cluster.nodes.length /
          Math.max(1, totalRecords),
      );
    }
    if (o.only.has('W4') && r.w2) {
      const rate = Math.round(r.w2.recordsPerSec / 2);
      say(`  W4: tail lag at half the W2 peak (${rate} records/s), a reader process tailing, ${secs} s ...`);
      const w4 = await w4TailLag(b, secs, rate);
      say(`    acknowledgement -> reader: p50 ${w4.p50Ms} ms, p99 ${w4.p99Ms} ms (${w4.samples} samples)`);
      say(
        `  W4 with the reader pinned to a follower (it learns of commits from the leader's next append), ${secs} s ...`,
      );
      const onFollower = await w4TailLag(b, secs, rate, 'follower');
      say(
        `    acknowledgement -> reader: p50 ${onFollower.p50Ms} ms, p99 ${onFollower.p99Ms} ms (${onFollower.samples} samples)`,
      );
      r.w4 = { ...w4, ratePerSec: rate, readerOnFollower: onFollower };
    }
  } finally {
    await b.close();
  }
  return r;
}

/**
 * CPU microseconds per record of each JournalNode (leader and followers) and of the writer over one run, from
 * the difference of /proc/<pid>/stat (user + system, every thread) before and after.
 */
function cpuPerRecord(
  before: Map<string, number>,
  after: Map<string, number>,
  writer: NodeJS.CpuUsage,
  leader: string,
  records: number,
): Record<string, unknown> {
  const us = (ms: number) => Number(((ms * 1000) / Math.max(1, records)).toFixed(2));
  const followers: number[] = [];
  let leaderUs = 0;
  for (const [id, ms] of after) {
    const used = ms - (before.get(id) ?? ms);
    if (id === leader) leaderUs = us(used);
    else followers.push(us(used));
  }
  return { leader: leaderUs, followers, writer: us((writer.user + writer.system) / 1000) };
}

/** W1 and W2 against a cluster with mutual TLS (the writer with a writer certificate), after the same warm-up. */
async function runTls(
  o: BenchOptions,
  secs: number,
  warmSecs: number,
): Promise<{ w1?: LatencyStats; w2?: ThroughputStats }> {
  const out: { w1?: LatencyStats; w2?: ThroughputStats } = {};
  const b = await freshCluster(path.join(o.dataDir, 'w12-tls'), { tls: true });
  try {
    o.log(
      `  mutual TLS: a fresh cluster with certificates, the writer with a writer certificate; warm-up ${warmSecs} s ...`,
    );
    await warmUp(b, warmSecs);
    if (o.only.has('W1')) {
      out.w1 = await w1SyncLatency(b, secs);
      o.log(`    W1 with TLS: ${out.w1.recordsPerSec} records/s, p50 ${out.w1.p50Ms} ms, p99 ${out.w1.p99Ms} ms`);
    }
    if (o.only.has('W2')) {
      out.w2 = await streamRecords(b, secs);
      o.log(
        `    W2 with TLS: ${out.w2.recordsPerSec} records/s (${out.w2.mbPerSec} MB/s), flush p50 ${out.w2.p50FlushMs} ms, p99 ${out.w2.p99FlushMs} ms`,
      );
    }
  } finally {
    await b.close();
  }
  return out;
}

// biome-ignore lint/suspicious/noExplicitAny: the results as JSON.parse returns them (also read back from a --json file)
export function renderResults(r: Record<string, any>): string {
  const w = r.workloads ?? {};
  const rows = [...writeRows(w), ...otherRows(w)];
  return (
    renderTable(['workload', 'qjournal', 'etcd', 'ratio', 'disk limit'], rows) +
    `\ndisk limit: fdatasync p50 ${r.limit?.fsyncP50Ms} ms, ${r.limit?.syncedMBps} MB/s synced at ${r.limit?.writeBytes} bytes per write`
  );
}

/** The table's rows for the write workloads: W1, W2 (plain, then with TLS), W6, W2's CPU. */
// biome-ignore lint/suspicious/noExplicitAny: the results as JSON.parse returns them
function writeRows(w: Record<string, any>): string[][] {
  const rows: string[][] = [];
  const ratio = (x: number | undefined) => (x === undefined ? '-' : `${x}x`);
  if (w.W1) {
    const q = w.W1.qjournal;
    rows.push([
      'W1 sync latency',
      `${q.recordsPerSec} rec/s, p50 ${q.p50Ms} ms, p99 ${q.p99Ms} ms, max ${q.maxMs} ms`,
      w.W1.etcd ? `${w.W1.etcd.recordsPerSec} rec/s, p50 ${w.W1.etcd.p50Ms} ms, p99 ${w.W1.etcd.p99Ms} ms` : '-',
      ratio(w.W1.ratio),
      `${(100 * w.W1.fractionOfLimit).toFixed(0)}% of 1/fsync`,
    ]);
  }
  if (w.W2) {
    const q = w.W2.qjournal;
    rows.push([
      'W2 throughput',
      `${q.recordsPerSec} rec/s, ${q.mbPerSec} MB/s, flush p99 ${q.p99FlushMs} ms`,
      w.W2.etcd ? `${w.W2.etcd.recordsPerSec} rec/s, p99 ${w.W2.etcd.p99Ms} ms` : '-',
      ratio(w.W2.ratio),
      `${(100 * w.W2.fractionOfLimit).toFixed(0)}% of synced MB/s (3 logs)`,
    ]);
  }
  const ofPlain = (x: number) => `${(100 * x).toFixed(0)}% of plain`;
  if (w.W1?.tls)
    rows.push([
      'W1 with mutual TLS',
      `${w.W1.tls.recordsPerSec} rec/s, p50 ${w.W1.tls.p50Ms} ms, p99 ${w.W1.tls.p99Ms} ms, max ${w.W1.tls.maxMs} ms`,
      '-',
      ofPlain(w.W1.tlsOverPlain),
      '',
    ]);
  if (w.W2?.tls)
    rows.push([
      'W2 with mutual TLS',
      `${w.W2.tls.recordsPerSec} rec/s, ${w.W2.tls.mbPerSec} MB/s, flush p99 ${w.W2.tls.p99FlushMs} ms`,
      '-',
      ofPlain(w.W2.tlsOverPlain),
      '',
    ]);
  if (w.W6) {
    const q = w.W6.qjournal;
    const e = w.W6.etcd;
    rows.push([
      `W6 ${q.handlers} handlers, own flush`,
      `${q.opsPerSec} ops/s, flush p50 ${q.p50Ms} ms, p99 ${q.p99Ms} ms`,
      e ? `${e.opsPerSec} puts/s (${e.clients} clients), p50 ${e.p50Ms} ms, p99 ${e.p99Ms} ms` : '-',
      ratio(w.W6.ratio),
      '',
    ]);
  }
  if (w.W2?.cpuUsPerRecord) {
    const c = w.W2.cpuUsPerRecord;
    rows.push([
      'W2 CPU per record',
      `leader ${c.leader} us, followers ${c.followers.join(' / ')} us, writer ${c.writer} us`,
      '-',
      '-',
      '',
    ]);
  }
  return rows;
}

/** The table's rows for failover, tailing and footprint: W3, W4, W5. */
// biome-ignore lint/suspicious/noExplicitAny: the results as JSON.parse returns them
function otherRows(w: Record<string, any>): string[][] {
  const rows: string[][] = [];
  if (w.W3)
    rows.push([
      'W3 failover',
      `leader kill ${w.W3.leaderKillMs.median} ms (max ${w.W3.leaderKillMs.max}); writer ${w.W3.writerFailoverMs.median} ms (max ${w.W3.writerFailoverMs.max})`,
      '-',
      '-',
      `electionTimeoutMs ${w.W3.electionTimeoutMs}`,
    ]);
  if (w.W4) {
    rows.push(['W4 tail lag', `p50 ${w.W4.p50Ms} ms, p99 ${w.W4.p99Ms} ms at ${w.W4.ratePerSec} rec/s`, '-', '-', '']);
    const f = w.W4.readerOnFollower;
    if (f) rows.push(['W4, reader on a follower', `p50 ${f.p50Ms} ms, p99 ${f.p99Ms} ms`, '-', '-', '']);
  }
  if (w.W5)
    rows.push([
      'W5 footprint',
      `peak RSS ${w.W5.rssMbMax} MB per node; ${w.W5.diskBytesPerRecord} bytes on disk per record`,
      '-',
      '-',
      '',
    ]);
  return rows;
}

export async function runBenchCommand(f: FlagValues<typeof BENCH_COMMAND>): Promise<number> {
  const o = benchOptions(f);
  const r = await runBench(o);
  console.log(`\n${renderResults(r)}`);
  fs.mkdirSync(path.dirname(path.resolve(o.out)), { recursive: true });
  fs.writeFileSync(o.out, `${JSON.stringify(r, null, 2)}\n`);
  console.log(`\nwrote ${o.out}`);
  return 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  try {
    const p = parseCommand(BENCH_COMMAND, process.argv.slice(2));
    if (p.help) console.log(helpText(BENCH_COMMAND));
    else process.exitCode = await runBenchCommand(p.flags);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(usageError(BENCH_COMMAND, e.message));
    process.exitCode = 2;
  }
}
