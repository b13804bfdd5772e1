// The peer for side-by-side figures: a 3-member etcd on loopback (fsync on, as etcd always does), started
// here (installing Debian's etcd-server when etcd is missing), so the bench works from any checkout, and
// driven from this process. Writes go to the leader.

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Pool, request } from 'undici';
import { freePorts } from '../local-cluster.js';
import type { LatencyStats } from './workloads.js';
import { waitFor } from '../wait-for.js';

export interface EtcdRun {
  version: string;
  put: LatencyStats;
  txn: LatencyStats & { batch: number; concurrency: number };
  /** W6's counterpart: `concurrency` clients, each doing single puts back to back (null when W6 is not run). */
  concurrentPut: (LatencyStats & { concurrency: number }) | null;
}

/** The endpoint of the member that says it leads, or null while there is none. */
async function leaderEndpoint(endpoints: string[]): Promise<string | null> {
  for (const e of endpoints) {
    const r = await request(`${e}/v3/maintenance/status`, { method: 'POST', body: '{}' });
    const st = (await r.body.json()) as { header?: { member_id?: string }; leader?: string };
    if (st.leader && st.header?.member_id === st.leader) return e;
  }
  return null;
}

/**
 * Durable writes on etcd's v3 HTTP gateway from this process (kept warm like qjournal's writer, through
 * undici like libqjm): `put` sends one 128-byte key per request; `txn` sends `batch` puts per transaction.
 * A warm-up runs first and is not measured.
 */
async function load(
  url: string,
  mode: 'put' | 'txn',
  concurrency: number,
  seconds: number,
  batch = 128,
): Promise<LatencyStats> {
  const pool = new Pool(url, { connections: concurrency, pipelining: 1 });
  const value = Buffer.alloc(128, 'x').toString('base64');
  const b64 = (k: string) => Buffer.from(k).toString('base64');
  const lat: number[] = [];
  let records = 0;
  const run = async (w: number, until: number, measure: boolean) => {
    for (let i = 0; performance.now() < until; ) {
      let body: string;
      if (mode === 'put') body = JSON.stringify({ key: b64(`k${w}-${i++}`), value });
      else {
        const success = [];
        for (let b = 0; b < batch; b++) success.push({ requestPut: { key: b64(`k${w}-${i++}`), value } });
        body = JSON.stringify({ success });
      }
      const t0 = performance.now();
      const r = await pool.request({
        path: mode === 'put' ? '/v3/kv/put' : '/v3/kv/txn',
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json' },
      });
      const text = await r.body.text();
      if (r.statusCode !== 200) throw new Error(`etcd answered HTTP ${r.statusCode}: ${text}`);
      if (measure) {
        lat.push(performance.now() - t0);
        records += mode === 'put' ? 1 : batch;
      }
    }
  };
  try {
    const warm = performance.now() + Math.min(3, seconds) * 1000;
    await Promise.all(Array.from({ length: concurrency }, (_, w) => run(w + 100, warm, false)));
    const t0 = performance.now();
    const end = t0 + seconds * 1000;
    await Promise.all(Array.from({ length: concurrency }, (_, w) => run(w, end, true)));
    const wall = (performance.now() - t0) / 1000;
    lat.sort((a, b) => a - b);
    const pct = (q: number) => Number(lat[Math.min(lat.length - 1, Math.floor(q * lat.length))]!.toFixed(3));
    return { recordsPerSec: Math.round(records / wall), p50Ms: pct(0.5), p99Ms: pct(0.99), maxMs: pct(1) };
  } finally {
    await pool.close();
  }
}

/** The etcd binary, installed from Debian's packages (etcd-server) when it is missing. */
function ensureEtcd(say: (s: string) => void): string {
  const which = () => spawnSync('sh', ['-c', 'command -v etcd'], { encoding: 'utf8' }).stdout.trim();
  let bin = which();
  if (bin) return bin;
  say('    etcd is not installed: installing etcd-server from the Debian packages (apt-get) ...');
  const r = spawnSync(
    'sh',
    ['-c', 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq etcd-server'],
    { encoding: 'utf8', timeout: 600_000 },
  );
  bin = which();
  if (!bin)
    throw new Error(
      `could not install etcd (apt-get exited ${r.status}): ${(r.stderr || r.stdout).trim().slice(-500)}; install etcd-server, or run without --vs etcd`,
    );
  return bin;
}

interface EtcdCluster {
  endpoints: string[];
  version: string;
  stop(): Promise<void>;
}

/** A fresh 3-member etcd cluster on loopback (fsync on, as etcd always does), data under dir. */
async function startEtcd(dir: string, say: (s: string) => void): Promise<EtcdCluster> {
  const bin = ensureEtcd(say);
  const version = execFileSync(bin, ['--version'], { encoding: 'utf8' }).split('\n')[0] ?? 'etcd';
  fs.rmSync(dir, { recursive: true, force: true });
  fs.mkdirSync(dir, { recursive: true });
  const ports = await freePorts(6);
  const peerUrl = (i: number) => `http://127.0.0.1:${ports[3 + i]}`;
  const clientUrl = (i: number) => `http://127.0.0.1:${ports[i]}`;
  const initial = [0, 1, 2].map((i) => `e${i + 1}=${peerUrl(i)}`).join(',');
  const procs: ChildProcess[] = [0, 1, 2].map((i) => {
    const log = fs.openSync(path.join(dir, `e${i + 1}.log`), 'w');
    const args = [
      '--name',
      `e${i + 1}`,
      '--data-dir',
      path.join(dir, `e${i + 1}`),
      '--listen-peer-urls',
      peerUrl(i),
      '--initial-advertise-peer-urls',
      peerUrl(i),
      '--listen-client-urls',
      clientUrl(i),
      '--advertise-client-urls',
      clientUrl(i),
      '--initial-cluster',
      initial,
      '--initial-cluster-state',
      'new',
      '--log-level',
      'error',
    ];
    const p = spawn(bin, args, { stdio: ['ignore', log, log] });
    fs.closeSync(log);
    return p;
  });
  const stop = async () => {
    await Promise.all(
      procs.map((p) =>
        p.exitCode !== null || p.signalCode !== null
          ? Promise.resolve()
          : new Promise<void>((resolve) => {
              p.once('exit', () => resolve());
              p.kill('SIGTERM');
            }),
      ),
    );
  };
  const endpoints = [0, 1, 2].map(clientUrl);
  try {
    await waitFor(() => leaderEndpoint(endpoints).catch(() => null), {
      timeoutMs: 20_000,
      intervalMs: 100,
      what: `an etcd leader (see ${dir}/e*.log)`,
    });
  } catch (e) {
    await stop();
    throw e;
  }
  return { endpoints, version, stop };
}

export async function runEtcd(
  dir: string,
  seconds: number,
  say: (s: string) => void,
  concurrentClients = 0,
): Promise<EtcdRun> {
  const etcd = await startEtcd(dir, say);
  try {
    const leader = (await leaderEndpoint(etcd.endpoints)) ?? etcd.endpoints[0]!;
    say(`    ${etcd.version}; leader ${leader}`);
    const p = await load(leader, 'put', 1, seconds);
    say(`    put, 1 client: ${p.recordsPerSec} records/s, p50 ${p.p50Ms} ms, p99 ${p.p99Ms} ms`);
    const t = await load(leader, 'txn', 4, seconds);
    say(`    txn of 128 puts, 4 clients: ${t.recordsPerSec} records/s, p99 ${t.p99Ms} ms`);
    let c: EtcdRun['concurrentPut'] = null;
    if (concurrentClients > 0) {
      const s = await load(leader, 'put', concurrentClients, seconds);
      c = { ...s, concurrency: concurrentClients };
      say(
        `    put, ${concurrentClients} concurrent clients: ${s.recordsPerSec} puts/s, p50 ${s.p50Ms} ms, p99 ${s.p99Ms} ms`,
      );
    }
    return { version: etcd.version, put: p, txn: { ...t, batch: 128, concurrency: 4 }, concurrentPut: c };
  } finally {
    await etcd.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
