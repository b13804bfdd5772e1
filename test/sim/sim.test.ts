// The seeded simulation sweep run by `npm test`: every fault mix, 3 and 5 nodes, the swarm mix (drawn per
// seed) three times as many seeds as each named one. Longer runs: npm run sim.

import { expect } from 'chai';
import { MIXES, mixFor, replayCommand, runSim } from './cluster.js';

const SEEDS_PER_MIX = Number(process.env.SIM_SEEDS_PER_MIX ?? 64);
const names = Object.keys(MIXES);
const seedsFor = (name: string) => (name === 'swarm' ? 3 * SEEDS_PER_MIX : SEEDS_PER_MIX);
const total = names.reduce((n, name) => n + seedsFor(name), 0);

describe(`seeded cluster simulation (${total} seeds)`, function () {
  this.timeout(300_000);
  for (let m = 0; m < names.length; m++) {
    const name = names[m]!;
    it(`${name}: safety, liveness after healing, convergence`, () => {
      const failures: string[] = [];
      let acked = 0;
      for (let k = 0; k < seedsFor(name); k++) {
        // Same seed -> (mix, nodes) mapping as npm run sim, so the printed command replays it.
        const seed = m + k * names.length + names.length;
        const nodes = Math.floor(seed / names.length) % 2 === 0 ? 3 : 5;
        const r = runSim({ seed, nodes, mix: mixFor(name, seed), faultMs: 3000, livenessMs: 3000, settleMs: 4000 });
        acked += r.stats.acked;
        if (r.violations.length > 0)
          failures.push(
            `SIM_SEED=${seed} nodes=${nodes} (${r.mixDescription}): ${r.violations[0]}\n    replay: ${replayCommand(r)}`,
          );
      }
      expect(failures, failures.join('\n')).to.deep.equal([]);
      expect(acked, 'clients made progress').to.be.greaterThan(seedsFor(name) * 100);
    });
  }

  // Seeds that long runs (`npm run sim`) failed once, replayed on every run after the fix.
  const REGRESSIONS: { seed: number; mix: string; nodes: number; what: string }[] = [
    // A stale leader of term 7 won (its voters' answers were in flight) after a leader of term 8 had committed
    // index 131: the checker demanded it hold that entry. Leader completeness binds later terms only.
    { seed: 108671, mix: 'swarm', nodes: 5, what: 'leader completeness is about later terms' },
  ];
  for (const r of REGRESSIONS) {
    it(`regression SIM_SEED=${r.seed} (${r.mix}, ${r.nodes} nodes): ${r.what}`, () => {
      const res = runSim({
        seed: r.seed,
        nodes: r.nodes,
        mix: mixFor(r.mix, r.seed),
        faultMs: 3000,
        livenessMs: 3000,
        settleMs: 4000,
      });
      expect(res.violations, replayCommand(res)).to.deep.equal([]);
    });
  }
});
