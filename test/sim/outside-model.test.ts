// A checker that can never fire is a defect. Each test here breaks the implementation in a way the Raft
// model forbids (in the simulated disk, or in the driver's persist-before-send rule), and requires the
// simulator to report the violation it must cause, within a bounded number of seeds of 3 and of 5 nodes.

import { expect } from 'chai';
import { mixFor, runSim } from './cluster.js';
import type { OutsideModelBug, SimOptions } from './cluster.js';

function firstViolation(
  bug: OutsideModelBug,
  mix: string,
  nodes: number,
  maxSeeds: number,
  checks: SimOptions['checks'] = 'all',
): { seed: number; violation: string } | null {
  for (let seed = 1; seed <= maxSeeds; seed++) {
    const r = runSim({
      seed,
      nodes,
      mix: mixFor(mix, seed),
      faultMs: 3000,
      livenessMs: 3000,
      settleMs: 4000,
      bug,
      checks,
    });
    if (r.violations.length > 0) return { seed, violation: r.violations[0]! };
  }
  return null;
}

describe('faults outside the model are caught', function () {
  this.timeout(300_000);

  for (const nodes of [3, 5]) {
    it(`${nodes} nodes, a disk that forgets a durable vote: two leaders in one term (election safety)`, () => {
      const found = firstViolation('forget-vote', 'crashfast', nodes, 300);
      expect(found, 'no violation found: the checkers are blind to double votes').to.not.equal(null);
      expect(found!.violation).to.match(/election safety|leader completeness|state machine safety|acknowledged write/);
    });

    it(`${nodes} nodes, a node that acknowledges appends before persisting them: a commit without a durable quorum`, () => {
      const found = firstViolation('ack-before-persist', 'swarm', nodes, 300);
      expect(found, 'no violation found: the checkers are blind to acks that are not durable').to.not.equal(null);
      expect(found!.violation).to.match(/commit quorum/);
    });

    it(`${nodes} nodes, a node that votes before its vote is durable: a leader without a durable vote quorum`, () => {
      const found = firstViolation('vote-before-persist', 'swarm', nodes, 300);
      expect(found, 'no violation found: the checkers are blind to votes that are not durable').to.not.equal(null);
      expect(found!.violation).to.match(/vote quorum/);
    });
  }

  it('3 nodes, acks before persisting, judged by outcomes alone: a lost write, or a follower the leader counts as holding what it lost, which never converges (or with which no leader commits)', () => {
    const found = firstViolation('ack-before-persist', 'swarm', 3, 300, 'outcomes');
    expect(found, 'no violation found: without the quorum checks the faults never expose lost acks').to.not.equal(null);
    expect(found!.violation).to.match(
      /leader completeness|acknowledged (write|flush)|state machine safety|log matching|convergence|liveness/,
    );
  });
});
