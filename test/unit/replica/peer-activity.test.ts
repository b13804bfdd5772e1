// What a leader's /status says of its followers' activity: heard from within an election timeout, read at any
// moment. The core's check-quorum marks are reset at every round, so reading them just after one showed every
// follower silent, and `qjm check-impact` / `remove-peer` refused a safe change.

import { expect } from 'chai';
import { replicaCluster, TICK_MS } from '../../support/replica-cluster.js';

describe('a leader reports its followers as heard from', () => {
  it('at every tick, the check-quorum round included, while they answer', () => {
    const c = replicaCluster();
    const seen: boolean[] = [];
    for (let t = 0; t < 40; t++) {
      // A tick without delivery: the moment between the leader's round and its followers' answers.
      c.advance(TICK_MS);
      c.r('n1').tick();
      const progress = c.r('n1').status().progress;
      seen.push(progress.n2!.recentActive && progress.n3!.recentActive);
      c.settle();
    }
    expect(seen.filter((x) => !x).length, 'ticks at which a live follower showed as silent').to.equal(0);
  });

  it('not once a follower has been silent for an election timeout', () => {
    const c = replicaCluster();
    c.cut.add('n3');
    for (let t = 0; t < 25; t++) c.tick();
    const progress = c.r('n1').status().progress;
    expect(progress.n3!.recentActive, 'n3 cut off for 2.5 election timeouts').to.equal(false);
    expect(progress.n2!.recentActive).to.equal(true);
  });
});
