// A checker that can never fire is a defect. Each test here breaks the implementation in a way the Raft
// model forbids, and requires the simulator to report the violation it must cause.

import { expect } from 'chai';
import { MIXES, runSim } from './cluster.js';
import type { OutsideModelBug } from './cluster.js';

function firstViolation(bug: OutsideModelBug, maxSeeds: number): { seed: number; violation: string } | null {
  for (let seed = 1; seed <= maxSeeds; seed++) {
    const r = runSim({ seed, nodes: seed % 2 === 0 ? 3 : 5, mix: MIXES.crashfast!, faultMs: 3000, livenessMs: 3000, settleMs: 2000, bug });
    if (r.violations.length > 0) return { seed, violation: r.violations[0]! };
  }
  return null;
}

describe('faults outside the model are caught', function () {
  this.timeout(300_000);

  it('a disk that forgets a durable vote: two leaders in one term (election safety)', () => {
    const found = firstViolation('forget-vote', 600);
    expect(found, 'no violation found: the checkers are blind to double votes').to.not.equal(null);
    expect(found!.violation).to.match(/election safety|leader completeness|state machine safety|acknowledged write/);
  });

  it('a node that acknowledges appends before persisting them: a committed entry is lost', () => {
    const found = firstViolation('ack-before-persist', 600);
    expect(found, 'no violation found: the checkers are blind to lost acknowledged entries').to.not.equal(null);
    expect(found!.violation).to.match(/leader completeness|acknowledged write|state machine safety|log matching/);
  });
});
