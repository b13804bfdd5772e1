// A leader whose own disk stalls, on three replicas in one thread: past leaderSyncStallMs it hands leadership
// to a voter holding its whole log and writes go on without it; a slow write is logged, naming the node, the
// bytes and the time; each node's recent write latency and a leader's view of its followers' acknowledgements.

import { expect } from 'chai';
import { replicaCluster, TICK_MS } from '../../support/replica-cluster.js';

const STALL_MS = 300;
const ELECTION_MS = 10 * TICK_MS;

function propose(c: ReturnType<typeof replicaCluster>, id: string, byte: number) {
  const out: { error: string | null; index: number | null } = { error: null, index: null };
  c.r(id).propose(new Uint8Array([byte]), undefined, (e, res) => {
    out.error = e ? e.errorName : null;
    out.index = res?.index ?? null;
  });
  return out;
}

describe('a leader whose disk stalls', () => {
  it('hands leadership to a caught-up voter past leaderSyncStallMs; writes go on without it', () => {
    const c = replicaCluster({ leaderSyncStallMs: STALL_MS });
    c.hold('n1'); // n1's disk stalls: its log writes never finish
    const stalledAt = c.now();
    const first = propose(c, 'n1', 1);
    c.settle();
    expect(first.index, 'the followers hold it, the leader cannot apply what it has not written').to.equal(null);
    while (c.r('n1').isLeader && c.now() - stalledAt < 10 * STALL_MS) c.tick();
    const movedAfterMs = c.now() - stalledAt;
    expect(c.r('n1').isLeader, 'n1 no longer leads').to.equal(false);
    for (let t = 0; t < 5 && c.leader() === undefined; t++) c.tick();
    const next = c.leader();
    expect(next).to.be.oneOf(['n2', 'n3']);
    expect(movedAfterMs, 'within the stall bound and an election timeout').to.be.at.most(STALL_MS + ELECTION_MS);
    const handOver = c.lines.find((l) => l.node === 'n1' && l.msg.includes('handing leadership'));
    expect(handOver?.level).to.equal('warn');
    expect(handOver?.obj).to.include({ node: 'n1', to: next });
    const after = propose(c, next!, 2);
    for (let t = 0; t < 5 && after.index === null; t++) c.tick();
    expect(after.error).to.equal(null);
    expect(after.index, 'a write commits and applies on the new leader').to.be.a('number');
  });

  it('keeps leading when no voter holds its whole log (their disks stalled too), and with leaderSyncStallMs 0', () => {
    for (const [stallMs, holdFollowers] of [
      [STALL_MS, true],
      [0, false],
    ] as const) {
      const c = replicaCluster({ leaderSyncStallMs: stallMs });
      c.hold('n1');
      if (holdFollowers) for (const id of ['n2', 'n3']) c.hold(id);
      propose(c, 'n1', 1);
      for (let t = 0; t < (3 * STALL_MS) / TICK_MS; t++) c.tick();
      expect(c.r('n1').isLeader, `leaderSyncStallMs ${stallMs}`).to.equal(true);
      expect(c.lines.some((l) => l.msg.includes('handing leadership'))).to.equal(false);
    }
  });

  it('a slow log write is a warning naming the node, the bytes and the time; latencies show in p50 and p99', () => {
    const c = replicaCluster({ slowSyncWarnMs: 200 });
    c.hold('n2');
    propose(c, 'n1', 7);
    c.settle();
    c.advance(250); // n2's write takes 250 ms
    c.release('n2');
    const warn = c.lines.find((l) => l.node === 'n2' && l.level === 'warn' && l.msg.startsWith('slow disk'));
    expect(warn?.obj).to.include({ node: 'n2', ms: 250, bytes: 1, entries: 1 });
    expect(warn?.msg).to.match(/log write of 1 bytes \(entries \d+-\d+\) on n2 took 250 ms/);
    expect(c.lines.filter((l) => l.msg.startsWith('slow disk')).map((l) => l.node)).to.deep.equal(['n2']);
    const own = c.r('n2').latencies();
    expect(own.sync?.p99Ms).to.equal(250);
    expect(own.acks, 'a follower measures no acknowledgements').to.deep.equal({});
    const lead = c.r('n1').latencies();
    expect(Object.keys(lead.acks).sort()).to.deep.equal(['n2', 'n3']);
    expect(lead.acks.n2?.p99Ms, "n2's acknowledgement waited for its slow write").to.be.at.least(250);
    expect(lead.acks.n3?.p99Ms).to.be.below(250);
  });
});
