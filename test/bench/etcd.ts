// The peer for side-by-side figures: a 3-member etcd on loopback (fsync on), started and driven by the
// script in ../shared/peer-bench (which installs Debian's etcd-server when etcd is missing) and driven from
// this process. Writes go to the leader's endpoint, as the peer-bench README advises.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Pool, request } from 'undici';
import type { LatencyStats } from './workloads.js';

const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const PEER_BENCH = path.resolve(REPO, '..', 'shared', 'peer-bench');

export interface EtcdRun {
  version: string;
  put: LatencyStats;
  txn: LatencyStats & { batch: number; concurrency: number };
}

async function leaderEndpoint(endpoints: string[]): Promise<string> {
  for (const e of endpoints) {
    const r = await request(`${e}/v3/maintenance/status`, { method: 'POST', body: '{}' });
    const st = (await r.body.json()) as { header: { member_id: string }; leader: string };
    if (st.header.member_id === st.leader) return e;
  }
  return endpoints[0]!;
}

/**
 * Durable writes on etcd's v3 HTTP gateway from this process (kept warm like qjournal's writer, through
 * undici like libqjm): `put` sends one 128-byte key per request; `txn` sends `batch` puts per transaction.
 * The same protocol as ../shared/peer-bench/etcd-load.mjs, with a warm-up that is not measured.
 */
async function load(url: string, mode: 'put' | 'txn', concurrency: number, seconds: number, batch = 128): Promise<LatencyStats> {
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
      const r = await pool.request({ path: mode === 'put' ? '/v3/kv/put' : '/v3/kv/txn', method: 'POST', body, headers: { 'content-type': 'application/json' } });
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

export async function runEtcd(dir: string, seconds: number, say: (s: string) => void): Promise<EtcdRun> {
  if (!fs.existsSync(path.join(PEER_BENCH, 'etcd-cluster.sh'))) throw new Error(`no peer-bench scripts at ${PEER_BENCH}`);
  const script = path.join(PEER_BENCH, 'etcd-cluster.sh');
  const started = execFileSync('bash', [script, 'start', dir], { encoding: 'utf8', timeout: 600_000 });
  try {
    const endpoints = started.trim().split('\n').filter((l) => l.startsWith('http'));
    const version = execFileSync('etcd', ['--version'], { encoding: 'utf8' }).split('\n')[0] ?? 'etcd';
    const leader = await leaderEndpoint(endpoints);
    say(`    ${version}; leader ${leader}`);
    const p = await load(leader, 'put', 1, seconds);
    say(`    put, 1 client: ${p.recordsPerSec} records/s, p50 ${p.p50Ms} ms, p99 ${p.p99Ms} ms`);
    const t = await load(leader, 'txn', 4, seconds);
    say(`    txn of 128 puts, 4 clients: ${t.recordsPerSec} records/s, p99 ${t.p99Ms} ms`);
    return { version, put: p, txn: { ...t, batch: 128, concurrency: 4 } };
  } finally {
    execFileSync('bash', [script, 'stop', dir], { encoding: 'utf8' });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
