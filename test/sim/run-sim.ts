// `npm run sim -- [--seeds N] [--seed S] [--start S] [--nodes 3|5|both] [--mix NAME|all] [--bug B] [--checks all|outcomes] [--data-dir-faults] [--trace] [--trace-messages]`
// Runs seeded simulations; on a failure prints SIM_SEED and the command that replays it with a trace.

import { MIXES, mixFor, replayCommand, runSim } from './cluster.js';
import type { OutsideModelBug, SimResult } from './cluster.js';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const v = process.argv[i + 1];
  return v === undefined || v.startsWith('--') ? 'true' : v;
}

function usage(msg: string): never {
  console.error(`sim: ${msg}`);
  console.error(
    'usage: npm run sim -- [--seeds N] [--seed S] [--start S] [--nodes 3|5|both] [--mix NAME|all] [--fault-ms MS] [--bug B] [--checks all|outcomes] [--data-dir-faults] [--trace] [--trace-messages]',
  );
  console.error(`mixes: ${Object.keys(MIXES).join(', ')}`);
  process.exit(2);
}

const single = arg('seed');
const seeds = Number(arg('seeds') ?? (single ? 1 : 200));
const start = Number(single ?? arg('start') ?? 1);
const nodesArg = arg('nodes') ?? 'both';
const mixArg = arg('mix') ?? 'all';
const faultMs = Number(arg('fault-ms') ?? 3000);
const trace = arg('trace') === 'true' || arg('trace-messages') === 'true';
const bug = arg('bug') as OutsideModelBug | undefined;
// On in the datadir mix (and drawn in swarm); this turns them on in every mix (but those that reset the peers).
const dataDirFaults = arg('data-dir-faults') === 'true';
const BUGS: OutsideModelBug[] = ['forget-vote', 'ack-before-persist', 'vote-before-persist'];
if (bug !== undefined && !BUGS.includes(bug)) usage(`--bug must be one of ${BUGS.join(', ')}`);
const checks = arg('checks') ?? 'all';
if (checks !== 'all' && checks !== 'outcomes') usage('--checks must be all or outcomes');
if (!Number.isInteger(seeds) || seeds < 1) usage('--seeds must be a positive integer');
if (!Number.isInteger(start)) usage('--seed/--start must be an integer');
const nodeCounts = nodesArg === 'both' ? [3, 5] : [Number(nodesArg)];
if (nodeCounts.some((n) => ![3, 5].includes(n))) usage('--nodes must be 3, 5 or both');
const mixes: string[] =
  mixArg === 'all' ? Object.keys(MIXES) : mixArg.split(',').map((m) => (MIXES[m] ? m : usage(`unknown mix ${m}`)));

const t0 = Date.now();
const byMix = new Map<
  string,
  { runs: number; failed: number; acked: number; liveness: number[]; firstFailed: number | null }
>();
const failures: SimResult[] = [];
const dataDir = { wiped: 0, restored: 0, reAdded: 0, floors: 0, caughtUp: 0 };
let done = 0;
const total = seeds;
for (let k = 0; k < seeds; k++) {
  const seed = start + k;
  // A run's mix and size come from its seed, so every seed replays alone with the same settings.
  const mixName = single && mixes.length === 1 ? mixes[0]! : mixes[seed % mixes.length]!;
  const mix = { ...mixFor(mixName, seed), ...(dataDirFaults ? { dataDirFaults: true } : {}) };
  const nodes = nodeCounts[Math.floor(seed / mixes.length) % nodeCounts.length]!;
  const r = runSim({
    seed,
    nodes,
    mix,
    checks,
    faultMs,
    livenessMs: 3000,
    settleMs: 4000,
    ...(trace ? { trace: (l: string) => console.log(l), traceMessages: arg('trace-messages') === 'true' } : {}),
    ...(bug ? { bug } : {}),
  });
  const m = byMix.get(mix.name) ?? { runs: 0, failed: 0, acked: 0, liveness: [], firstFailed: null };
  m.runs++;
  m.acked += r.stats.acked;
  for (const k of Object.keys(dataDir) as (keyof typeof dataDir)[]) dataDir[k] += r.stats[k];
  if (r.stats.livenessMs >= 0) m.liveness.push(r.stats.livenessMs);
  if (r.violations.length > 0) {
    m.failed++;
    m.firstFailed ??= seed;
    failures.push(r);
    console.log(`\nFAIL SIM_SEED=${seed} mix=${mix.name} nodes=${nodes} (${r.mixDescription})`);
    for (const v of r.violations.slice(0, 10)) console.log(`  ${v}`);
    console.log(`  replay: ${replayCommand(r, { bug, checks, faultMs, dataDirFaults })}`);
  }
  byMix.set(mix.name, m);
  done++;
  if (!single && (done % 100 === 0 || done === total)) {
    process.stdout.write(
      `sim: ${done}/${total} seeds, ${failures.length} failed, ${((Date.now() - t0) / 1000).toFixed(1)}s\n`,
    );
  }
  if (single) console.log(JSON.stringify(r.stats));
}
console.log(`\nmix         runs  failed  first  acked/run  liveness ms (median/max)`);
for (const [name, m] of byMix) {
  const l = [...m.liveness].sort((a, b) => a - b);
  const med = l.length ? l[Math.floor(l.length / 2)] : '-';
  const max = l.length ? l[l.length - 1] : '-';
  console.log(
    `${name.padEnd(10)} ${String(m.runs).padStart(5)} ${String(m.failed).padStart(7)} ${String(m.firstFailed ?? '-').padStart(6)} ${String(Math.round(m.acked / m.runs)).padStart(10)}  ${med}/${max}`,
  );
}
if (dataDir.wiped + dataDir.restored > 0)
  console.log(
    `data directories: ${dataDir.wiped} replaced by empty ones (${dataDir.reAdded} re-added), ${dataDir.restored} restored from older copies (${dataDir.floors} floors recorded, ${dataDir.caughtUp} caught up first)`,
  );
console.log(
  `${seeds} seeds (${start}..${start + seeds - 1}), nodes ${nodeCounts.join('+')}, ${((Date.now() - t0) / 1000).toFixed(1)}s: ${failures.length === 0 ? 'all passed' : `${failures.length} FAILED`}`,
);
process.exit(failures.length === 0 ? 0 : 1);
