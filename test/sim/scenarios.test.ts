// Time-driven scenarios on the simulator (real core and driver, simulated disks and network), named by
// the property they prove. Step-level scenarios are in test/unit/raft/raft-scenarios.test.ts.

import { expect } from 'chai';
import { MIXES, SimCluster, TICK_MS } from './cluster.js';
import type { SimOptions } from './cluster.js';

function cluster(seed: number, nodes = 3, over: Partial<SimOptions> = {}): SimCluster {
  return new SimCluster({ seed, nodes, mix: MIXES.calm!, faultMs: 0, livenessMs: 3000, settleMs: 2000, ...over });
}

function noViolations(c: SimCluster): void {
  expect(c.checker.violations, c.checker.violations.join('\n')).to.deep.equal([]);
}

describe('simulated scenarios', () => {
  for (const seed of [1, 2, 3]) {
    it(`PersistAndRestartAll (seed ${seed}): every node crashes mid-write; acknowledged writes survive and the cluster resumes`, () => {
      const c = cluster(seed);
      c.bootAll();
      c.startClients(2);
      c.runUntil(1500);
      const ackedBefore = c.checker.acked.size;
      expect(ackedBefore).to.be.greaterThan(50);
      for (const n of c.nodes.values()) c.crash(n);
      c.runUntil(1600);
      for (const n of c.nodes.values()) c.restart(n);
      expect(c.awaitLiveness(3000), 'a leader commits again').to.not.equal(null);
      c.stopClients();
      c.runUntil(c.q.now + 2000);
      c.finalChecks();
      noViolations(c);
    });
  }

  it('PersistAndRestartLeader: the leader crashes; a new leader takes over; the old one rejoins as a follower', () => {
    const c = cluster(7);
    c.bootAll();
    c.startClients(2);
    c.runUntil(1000);
    const old = c.leader()!;
    expect(old).to.be.a('string');
    const oldTerm = c.node(old).replica!.term;
    c.crash(c.node(old));
    const crashedAt = c.q.now;
    c.runUntil(crashedAt + 1000);
    const next = c.leader();
    expect(next).to.not.equal(undefined);
    expect(next).to.not.equal(old);
    expect(c.node(next!).replica!.term).to.be.greaterThan(oldTerm);
    c.restart(c.node(old));
    c.runUntil(c.q.now + 1000);
    expect(c.node(old).replica!.isLeader).to.equal(false);
    expect(c.node(old).replica!.leaderId).to.equal(c.leader());
    c.stopClients();
    c.runUntil(c.q.now + 2000);
    c.finalChecks();
    noViolations(c);
  });

  it('SlowFollowerCausesNoElection: a follower whose disk takes up to 150 ms per write never triggers an election', () => {
    const c = cluster(11);
    c.bootAll();
    c.startClients(2);
    c.runUntil(500);
    const lead = c.leader()!;
    const slow = [...c.nodes.values()].find((n) => n.id !== lead)!;
    slow.disk.latencyMs = [50, 150];
    const elections = c.electionCount;
    const term = c.node(lead).replica!.term;
    c.runUntil(5000);
    expect(c.electionCount, 'no new election').to.equal(elections);
    expect(c.leader()).to.equal(lead);
    expect(c.node(lead).replica!.term).to.equal(term);
    c.stopClients();
    c.runUntil(c.q.now + 3000);
    c.finalChecks();
    noViolations(c);
  });

  it('SlowLeaderDiskDoesNotStopHeartbeats: the leader\'s own fsync takes 200 ms; it keeps leading and committing', () => {
    const c = cluster(12);
    c.bootAll();
    c.startClients(2);
    c.runUntil(500);
    const lead = c.leader()!;
    c.node(lead).disk.latencyMs = [150, 250];
    const acked = c.checker.acked.size;
    c.runUntil(4000);
    expect(c.leader()).to.equal(lead);
    // Acknowledgements are paced by the leader's own disk (it applies only what it holds durably), but they
    // keep coming, and nobody times out.
    expect(c.checker.acked.size - acked, 'writes keep being acknowledged').to.be.greaterThan(20);
    expect(c.electionCount).to.equal(1);
    c.stopClients();
    c.runUntil(c.q.now + 3000);
    c.finalChecks();
    noViolations(c);
  });

  it(`FastFailover: after the leader dies a new one commits within a few election timeouts (${10 * TICK_MS} ms each)`, () => {
    const times: number[] = [];
    for (let seed = 20; seed < 30; seed++) {
      const c = cluster(seed);
      c.bootAll();
      c.startClients(1);
      c.runUntil(800);
      c.crash(c.node(c.leader()!));
      const t0 = c.q.now;
      const t = c.awaitLiveness(2000);
      expect(t).to.not.equal(null);
      times.push(t! - t0);
      noViolations(c);
    }
    // Detection takes one randomized election timeout [100, 200) ms, then a pre-vote and a vote round.
    expect(Math.max(...times)).to.be.below(4 * 10 * TICK_MS);
  });
});
