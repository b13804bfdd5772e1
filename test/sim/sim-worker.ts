// A worker thread of the simulation sweep (sim.test.ts): runs the seeds it is given and posts each result.
// Seeds are independent, so the sweep spreads them over the machine's cores.

import { parentPort, workerData } from 'node:worker_threads';
import { mixFor, runSim } from './cluster.js';

export interface SweepRun {
  seed: number;
  nodes: number;
  mix: string;
  faultMs: number;
}

export interface SweepResult {
  seed: number;
  nodes: number;
  mix: string;
  violations: string[];
  mixDescription: string;
  acked: number;
}

for (const r of workerData as SweepRun[]) {
  const res = runSim({
    seed: r.seed,
    nodes: r.nodes,
    mix: mixFor(r.mix, r.seed),
    faultMs: r.faultMs,
    livenessMs: 3000,
    settleMs: 4000,
  });
  const out: SweepResult = {
    seed: r.seed,
    nodes: r.nodes,
    mix: r.mix,
    violations: res.violations,
    mixDescription: res.mixDescription,
    acked: res.stats.acked,
  };
  parentPort!.postMessage(out);
}
