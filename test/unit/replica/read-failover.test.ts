// Linearizable reads across a leader change, on three replicas in one thread: a read awaiting the leader's
// confirmation fails at once, retriably (LEADERSHIP_LOST, as a write does), when the node it waits on stops
// leading (the reader then goes to the next leader) instead of waiting out readTimeoutMs.

import { expect } from 'chai';
import { DEFAULT_REPLICA_OPTIONS } from '../../../src/replica/replica.js';
import type { Replica } from '../../../src/replica/replica.js';
import type { QjmError } from '../../../src/errors.js';
import { replicaCluster, TICK_MS } from '../../support/replica-cluster.js';

const cluster = () => replicaCluster({ readTimeoutMs: 10_000 });
const OPTIONS = { readTimeoutMs: 10_000 };
const ELECTION_MS = DEFAULT_REPLICA_OPTIONS.electionTicks * TICK_MS;

/** A read's outcome as it comes: null while it waits. */
function read(replica: Replica<number>) {
  const out: { error: QjmError | null; index: number | null; atMs: number | null } = {
    error: null,
    index: null,
    atMs: null,
  };
  return {
    out,
    start: (now: () => number) =>
      replica.readIndex((e, index) => {
        out.error = e;
        out.index = index ?? null;
        out.atMs = now();
      }),
  };
}

describe('linearizable reads across a leader change', () => {
  it('a read at a follower whose leader died fails as LEADERSHIP_LOST (retriable) once it notices, not at readTimeoutMs', () => {
    const c = cluster();
    const before = read(c.r('n2'));
    before.start(c.now);
    c.settle();
    expect(before.out.index, 'with the leader alive the read is served').to.be.a('number');

    c.cut.add('n1'); // kill -9 of the leader: its messages and the ones to it are lost
    const t0 = c.now();
    const r = read(c.r('n2'));
    r.start(c.now);
    c.settle();
    expect(r.out.atMs, 'forwarded to the dead leader: waiting').to.equal(null);
    while (r.out.atMs === null && c.now() - t0 < OPTIONS.readTimeoutMs) c.tick(['n2', 'n3']);
    expect(r.out.error?.errorName).to.equal('LEADERSHIP_LOST');
    expect(r.out.error?.retriable).to.equal(true);
    expect(r.out.atMs! - t0, 'within the election timeout that makes it notice').to.be.at.most(2 * ELECTION_MS);
  });

  it("the leader's own read fails as LEADERSHIP_LOST, as its writes do, when it steps down", () => {
    const c = cluster();
    c.cut.add('n2');
    c.cut.add('n3'); // the leader is cut off from both followers: check-quorum makes it step down
    const t0 = c.now();
    const r = read(c.r('n1'));
    r.start(c.now);
    const w: { error: QjmError | null } = { error: null };
    c.r('n1').propose(new Uint8Array([1]), undefined, (e) => (w.error = e));
    while (r.out.atMs === null && c.now() - t0 < OPTIONS.readTimeoutMs) c.tick(['n1']);
    expect(c.r('n1').isLeader).to.equal(false);
    expect(r.out.error?.errorName).to.equal(w.error?.errorName).and.to.equal('LEADERSHIP_LOST');
    expect(r.out.atMs! - t0).to.be.at.most(2 * ELECTION_MS);
  });
});
