// The seeded simulation sweep run by `npm test`: every fault mix, 3 and 5 nodes, the swarm mix (drawn per
// seed) five times as many seeds as each named one, spread over worker threads (sim-worker.ts). Longer runs:
// npm run sim.

import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { expect } from 'chai';
import { MIXES, mixFor, replayCommand, runSim } from './cluster.js';
import type { SweepResult, SweepRun } from './sim-worker.js';

const SEEDS_PER_MIX = Number(process.env.SIM_SEEDS_PER_MIX ?? 53);
/** The fault phase of the sweep's runs (npm run sim's default is longer). */
const FAULT_MS = Number(process.env.SIM_FAULT_MS ?? 1500);
const WORKERS = Math.max(1, Math.min(2, os.availableParallelism()));
const names = Object.keys(MIXES);
const seedsFor = (name: string) => (name === 'swarm' ? 5 * SEEDS_PER_MIX : SEEDS_PER_MIX);
const total = names.reduce((n, name) => n + seedsFor(name), 0);

/** Runs every seed of the sweep on the worker threads; resolves with the results by mix. */
async function sweep(): Promise<Map<string, SweepResult[]>> {
  const runs: SweepRun[] = [];
  for (let m = 0; m < names.length; m++) {
    for (let k = 0; k < seedsFor(names[m]!); k++) {
      // Same seed -> (mix, nodes) mapping as npm run sim, so the printed command replays it.
      const seed = m + k * names.length + names.length;
      const nodes = Math.floor(seed / names.length) % 2 === 0 ? 3 : 5;
      runs.push({ seed, nodes, mix: names[m]!, faultMs: FAULT_MS });
    }
  }
  const byMix = new Map<string, SweepResult[]>(names.map((n) => [n, []]));
  const shares = Array.from({ length: WORKERS }, (_, w) => runs.filter((_, i) => i % WORKERS === w));
  await Promise.all(
    shares.map(
      (share) =>
        new Promise<void>((resolve, reject) => {
          const worker = new Worker(new URL('./sim-worker.js', import.meta.url), { workerData: share });
          worker.on('message', (r: SweepResult) => byMix.get(r.mix)!.push(r));
          worker.on('error', reject);
          worker.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`sim worker exited ${code}`))));
        }),
    ),
  );
  return byMix;
}

describe(`seeded cluster simulation (${total} seeds, ${WORKERS} threads)`, function () {
  this.timeout(900_000);
  let results: Map<string, SweepResult[]>;
  before(async () => {
    results = await sweep();
  });

  for (const name of names) {
    it(`${name}: safety, liveness after healing, convergence`, () => {
      const runs = results.get(name)!;
      expect(runs.length).to.equal(seedsFor(name));
      const failures = runs
        .filter((r) => r.violations.length > 0)
        .map(
          (r) =>
            `SIM_SEED=${r.seed} nodes=${r.nodes} (${r.mixDescription}): ${r.violations[0]}\n    replay: ${replayCommand(r, { faultMs: FAULT_MS })}`,
        );
      expect(failures, failures.join('\n')).to.deep.equal([]);
      const acked = runs.reduce((n, r) => n + r.acked, 0);
      expect(acked, 'clients made progress').to.be.greaterThan(seedsFor(name) * 20);
    });
  }

  // Seeds that long runs (`npm run sim`) failed once, replayed on every run after the fix.
  const REGRESSIONS: { seed: number; mix: string; nodes: number; faultMs: number; what: string }[] = [
    // A stale leader of term 7 won (its voters' answers were in flight) after a leader of term 8 had committed
    // index 131: the checker demanded it hold that entry. Leader completeness binds later terms only.
    { seed: 108671, mix: 'swarm', nodes: 5, faultMs: 3000, what: 'leader completeness is about later terms' },
    // A rotten byte in the leader's log, read back for a lagging follower without a check, was sent and applied
    // as another command (state machine safety): entries read from disk are checked again now.
    { seed: 56, mix: 'rot', nodes: 3, faultMs: 1500, what: 'a rotten log entry is never sent' },
    // A sync of a new segment's header failed (EIO): after the machine reset the file kept its size but not its
    // header, and recovery refused the all-zero segment as corruption. It is a torn creation: removed.
    { seed: 398, mix: 'disk', nodes: 3, faultMs: 3000, what: 'a segment whose header never reached the disk' },
    // A sync of a reused journal file failed while a snapshot was staged (EIO marks the sectors clean without
    // writing them); the fetch was retried, the next sync of the same file "succeeded", the install was trusted,
    // and after a machine reset a finalized segment read back zeros. A failed staging sync now stops the node.
    {
      seed: 3653,
      mix: 'swarm',
      nodes: 3,
      faultMs: 3000,
      what: 'a failed sync while staging a snapshot stops the node',
    },
    // After a reset of the peers forgot a journal's format, the standby's newEpoch answered NOT_FORMATTED.
    {
      seed: 33,
      mix: 'swarm',
      nodes: 3,
      faultMs: 1500,
      what: 'a journal whose format a reset forgot is formatted again',
    },
    // Rot in a segment every replica had purged but this node's snapshots still linked: no majority copy, so the
    // snapshots were to be replaced by a new one, which was still being saved when the quiet phase ended (its
    // disk slow): the end checks now wait for open repairs too.
    { seed: 2785, mix: 'swarm', nodes: 3, faultMs: 1500, what: 'a damaged snapshot of a purged segment is replaced' },
    // Found once data directories were replaced and restored (each fails with its fix reverted):
    // a follower restored from an older copy applied uncommitted entries of another term on a heartbeat's commit.
    { seed: 413, mix: 'datadir', nodes: 5, faultMs: 3000, what: 'a heartbeat commits only what was matched' },
    // a re-added node that crashed before applying its re-add would not vote; the quorum needed it.
    { seed: 460, mix: 'datadir', nodes: 3, faultMs: 3000, what: 'a node bound elsewhere still answers votes' },
    // a restored node below its floor abstained (and its leader lease never expired): no leader ever again.
    { seed: 1709, mix: 'swarm', nodes: 5, faultMs: 1500, what: 'a node below its floor votes past it' },
    // a joiner whose bootstrap failed on a full disk took its empty snapshot for journal data: never restarted.
    { seed: 404, mix: 'swarm', nodes: 3, faultMs: 1500, what: 'an interrupted first start starts again' },
  ];
  for (const r of REGRESSIONS) {
    it(`regression SIM_SEED=${r.seed} (${r.mix}, ${r.nodes} nodes): ${r.what}`, () => {
      const res = runSim({
        seed: r.seed,
        nodes: r.nodes,
        mix: mixFor(r.mix, r.seed),
        faultMs: r.faultMs,
        livenessMs: 3000,
        settleMs: 4000,
      });
      expect(res.violations, replayCommand(res, { faultMs: r.faultMs })).to.deep.equal([]);
    });
  }
});
