// The seeded simulation sweep run by `npm test`: every fault mix, 3 and 5 nodes. Longer runs: npm run sim.

import { expect } from 'chai';
import { MIXES, replayCommand, runSim } from './cluster.js';

const SEEDS_PER_MIX = Number(process.env.SIM_SEEDS_PER_MIX ?? 40);
const mixes = Object.values(MIXES);

describe(`seeded cluster simulation (${SEEDS_PER_MIX * mixes.length} seeds)`, function () {
  this.timeout(300_000);
  for (let m = 0; m < mixes.length; m++) {
    const mix = mixes[m]!;
    it(`${mix.name}: safety, liveness after healing, convergence`, () => {
      const failures: string[] = [];
      let acked = 0;
      for (let k = 0; k < SEEDS_PER_MIX; k++) {
        // Same seed -> (mix, nodes) mapping as npm run sim, so the printed command replays it.
        const seed = m + k * mixes.length + mixes.length;
        const nodes = Math.floor(seed / mixes.length) % 2 === 0 ? 3 : 5;
        const r = runSim({ seed, nodes, mix, faultMs: 3000, livenessMs: 3000, settleMs: 2000 });
        acked += r.stats.acked;
        if (r.violations.length > 0) failures.push(`SIM_SEED=${seed} nodes=${nodes}: ${r.violations[0]}\n    replay: ${replayCommand(r)}`);
      }
      expect(failures, failures.join('\n')).to.deep.equal([]);
      expect(acked, 'clients made progress').to.be.greaterThan(SEEDS_PER_MIX * 100);
    });
  }
});
