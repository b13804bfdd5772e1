// W1 decomposed from the nodes' own metrics (docs/PERFORMANCE.md, W1): the mean per write of the writer's flush,
// the leader's /qjm/journal handling (request parsed -> answer sent), and each node's Raft log write + fdatasync.
// Usage: npm run build && node scripts/w1-breakdown.mjs [SECONDS]
import path from 'node:path';
import os from 'node:os';
import { request } from 'undici';
import { freshCluster, warmUp, RECORD_BYTES } from '../dist/src/bench/workloads.js';
const SECONDS = Number(process.argv[2] ?? 8);
function sumCount(text, name, labelMatch = '') {
  let sum = 0,
    count = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith(`${name}_sum`) && line.includes(labelMatch)) sum += Number(line.split(' ').pop());
    if (line.startsWith(`${name}_count`) && line.includes(labelMatch)) count += Number(line.split(' ').pop());
  }
  return { sum, count };
}
async function scrape(b) {
  const out = {};
  for (const n of b.cluster.nodes) out[n.id] = await (await request(`http://${n.address}/metrics`)).body.text();
  return out;
}
const b = await freshCluster(path.join(os.tmpdir(), 'w1bd'));
try {
  await warmUp(b, 10);
  const leader = await b.cluster.waitForLeader();
  const before = await scrape(b);
  const rec = Buffer.alloc(RECORD_BYTES, 0x31);
  const lat = [];
  const end = performance.now() + SECONDS * 1000;
  while (performance.now() < end) {
    const t = performance.now();
    b.out.write(rec);
    await b.out.flush();
    lat.push(performance.now() - t);
  }
  const after = await scrape(b);
  lat.sort((x, y) => x - y);
  const mean = (xs) => xs.reduce((a, c) => a + c, 0) / xs.length;
  const d = (id, name, lm) => {
    const a = sumCount(after[id], name, lm),
      z = sumCount(before[id], name, lm);
    return { ms: (1000 * (a.sum - z.sum)) / Math.max(1, a.count - z.count), n: a.count - z.count };
  };
  console.log(
    JSON.stringify({
      writes: lat.length,
      flushMeanMs: +mean(lat).toFixed(3),
      flushP50Ms: +lat[Math.floor(lat.length / 2)].toFixed(3),
      leader,
    }),
  );
  const route = d(leader, 'qjournal_rpc_seconds', 'rpc="journal"');
  console.log(`leader /qjm/journal handling: mean ${route.ms.toFixed(3)} ms over ${route.n}`);
  for (const n of b.cluster.nodes) {
    const w = d(n.id, 'qjournal_log_write_seconds');
    console.log(
      `${n.id}${n.id === leader ? ' (leader)' : ''} log write+fdatasync: mean ${w.ms.toFixed(3)} ms over ${w.n} writes`,
    );
  }
} finally {
  await b.close();
}
process.exit(0);
