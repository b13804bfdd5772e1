// Profiles one workload: starts a 3-node cluster with --cpu-prof on every JournalNode, runs W1 or W2 from
// this process (itself profiled when run with --cpu-prof), and prints the top self-time functions of each
// profile. Usage: [WARMUP_S=10] [PROFILE_WINDOW_S=N] node --cpu-prof --cpu-prof-dir=DIR scripts/profile.mjs w1|w2 SECONDS DIR
import fs from 'node:fs';
import path from 'node:path';

const [workload = 'w1', secondsArg = '8', dir = '/tmp/qj-prof'] = process.argv.slice(2);
fs.mkdirSync(dir, { recursive: true });
process.env.QJ_NODE_ARGS = `--cpu-prof --cpu-prof-dir=${dir}`;
const w = await import('../dist/src/bench/workloads.js');
const b = await w.freshCluster(path.join(dir, 'cluster'));
const seconds = Number(secondsArg);
await w.warmUp(b, Number(process.env.WARMUP_S ?? 10));
if (workload === 'w1') console.log('W1', await w.w1SyncLatency(b, seconds));
else console.log('W2', await w.streamRecords(b, seconds));
console.log('peak RSS MB', w.peakRssMb(b.cluster));
await b.close();

/** Self time per function (and per file) from a .cpuprofile. */
export function summarize(file, top = 25) {
  const p = JSON.parse(fs.readFileSync(file, 'utf8'));
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map();
  const dt = p.timeDeltas;
  // Skip start-up: only samples from the last `window` seconds of the profile count.
  let t = p.startTime;
  const from = p.endTime - Number(process.env.PROFILE_WINDOW_S ?? 1e9) * 1e6;
  for (let i = 0; i < p.samples.length; i++) {
    t += dt[i] ?? 0;
    if (t < from) continue;
    const n = byId.get(p.samples[i]);
    const cf = n.callFrame;
    const key = `${cf.functionName || '(anon)'} ${path.basename(cf.url || '')}:${cf.lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + (dt[i] ?? 0));
  }
  const total = [...self.values()].reduce((a, b) => a + b, 0);
  const rows = [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, top);
  console.log(`\n== ${path.basename(file)}: ${(total / 1e6).toFixed(2)} s sampled`);
  for (const [k, v] of rows)
    console.log(`${((v / total) * 100).toFixed(1).padStart(5)}%  ${(v / 1e3).toFixed(0).padStart(7)} ms  ${k}`);
}
setTimeout(() => {
  for (const f of fs.readdirSync(dir).filter((f) => f.endsWith('.cpuprofile'))) summarize(path.join(dir, f));
}, 1500);
