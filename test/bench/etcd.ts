// The peer for side-by-side figures: a 3-member etcd on loopback (fsync on), started and driven by the
// scripts in ../shared/peer-bench (which install Debian's etcd-server when etcd is missing). Writes go to
// the leader's endpoint, as the peer-bench README advises.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from 'undici';
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

function load(args: string[]): Record<string, number> {
  const out = execFileSync(process.execPath, [path.join(PEER_BENCH, 'etcd-load.mjs'), ...args], { encoding: 'utf8', timeout: 120_000 });
  return JSON.parse(out.trim().split('\n').pop()!) as Record<string, number>;
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
    load(['--url', leader, '--mode', 'put', '--concurrency', '1', '--seconds', '1']); // warm-up
    const p = load(['--url', leader, '--mode', 'put', '--concurrency', '1', '--seconds', String(seconds)]);
    say(`    put, 1 client: ${p.recordsPerSec} records/s, p50 ${p.p50Ms} ms, p99 ${p.p99Ms} ms`);
    const t = load(['--url', leader, '--mode', 'txn', '--batch', '128', '--concurrency', '4', '--seconds', String(seconds)]);
    say(`    txn of 128 puts, 4 clients: ${t.recordsPerSec} records/s, p99 ${t.p99Ms} ms`);
    return {
      version,
      put: { recordsPerSec: p.recordsPerSec!, p50Ms: p.p50Ms!, p99Ms: p.p99Ms!, maxMs: p.maxMs! },
      txn: { recordsPerSec: t.recordsPerSec!, p50Ms: t.p50Ms!, p99Ms: t.p99Ms!, maxMs: t.maxMs!, batch: 128, concurrency: 4 },
    };
  } finally {
    execFileSync('bash', [script, 'stop', dir], { encoding: 'utf8' });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
