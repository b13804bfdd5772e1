// Time-driven scenarios on the simulator (real core and driver, simulated disks and network), named by
// the property they prove. Step-level scenarios are in test/unit/raft/raft-scenarios.test.ts.

import { expect } from 'chai';
import { MIXES, SimCluster, TICK_MS } from './cluster.js';
import type { SimNode, SimOptions } from './cluster.js';
import type { QjmError } from '../../src/errors.js';
import type { ResetResult } from '../../src/replica/replica.js';

function cluster(seed: number, nodes = 3, over: Partial<SimOptions> = {}): SimCluster {
  return new SimCluster({ seed, nodes, mix: MIXES.calm!, faultMs: 0, livenessMs: 3000, settleMs: 4000, ...over });
}

function noViolations(c: SimCluster): void {
  expect(c.checker.violations, c.checker.violations.join('\n')).to.deep.equal([]);
}

/** A cluster booted, with `clients` clients writing, run to untilMs. */
function running(
  seed: number,
  clients: number,
  untilMs: number,
  nodes = 3,
  over: Partial<SimOptions> = {},
): SimCluster {
  const c = cluster(seed, nodes, over);
  c.bootAll();
  c.startClients(clients);
  c.runUntil(untilMs);
  return c;
}

/** Clients stop, every member converges, and no checker fired at any point. */
function settled(c: SimCluster): void {
  c.settle(4000);
  noViolations(c);
}

describe('simulated scenarios', () => {
  for (const seed of [1, 2, 3]) {
    it(`PersistAndRestartAll (seed ${seed}): every node crashes mid-write; acknowledged writes survive and the cluster resumes`, () => {
      const c = running(seed, 2, 1500);
      const ackedBefore = c.checker.acked.size;
      expect(ackedBefore).to.be.greaterThan(50);
      for (const n of c.nodes.values()) c.crash(n);
      c.runUntil(1600);
      for (const n of c.nodes.values()) c.restart(n);
      expect(c.awaitLiveness(3000), 'a leader commits again').to.not.equal(null);
      settled(c);
    });
  }

  it('PersistAndRestartLeader: the leader crashes; a new leader takes over; the old one rejoins as a follower', () => {
    const c = running(7, 2, 1000);
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
    settled(c);
  });

  it('SlowFollowerCausesNoElection: a follower whose disk takes up to 150 ms per write never triggers an election', () => {
    const c = running(11, 2, 500);
    const lead = c.leader()!;
    const slow = [...c.nodes.values()].find((n) => n.id !== lead)!;
    slow.latencyMs = [50, 150];
    const elections = c.electionCount;
    const term = c.node(lead).replica!.term;
    c.runUntil(5000);
    expect(c.electionCount, 'no new election').to.equal(elections);
    expect(c.leader()).to.equal(lead);
    expect(c.node(lead).replica!.term).to.equal(term);
    settled(c);
  });

  it("SlowLeaderDiskDoesNotStopHeartbeats: the leader's own fsync takes 200 ms; it keeps leading and committing", () => {
    const c = running(12, 2, 500);
    const lead = c.leader()!;
    c.node(lead).latencyMs = [150, 250];
    const acked = c.checker.acked.size;
    c.runUntil(4000);
    expect(c.leader()).to.equal(lead);
    // Acknowledgements are paced by the leader's own disk (it applies only what it holds durably), but they
    // keep coming, and nobody times out.
    expect(c.checker.acked.size - acked, 'writes keep being acknowledged').to.be.greaterThan(10);
    expect(c.electionCount).to.equal(1);
    settled(c);
  });

  it(`FastFailover: after the leader dies a new one commits within a few election timeouts (${10 * TICK_MS} ms each)`, () => {
    const times: number[] = [];
    for (let seed = 20; seed < 30; seed++) {
      const c = running(seed, 1, 800);
      c.crash(c.node(c.leader()!));
      const t0 = c.q.now;
      const t = c.awaitLiveness(2000);
      expect(t).to.not.equal(null);
      times.push(t! - t0);
      noViolations(c);
    }
    // Detection takes one randomized election timeout [100, 150) ms, then a pre-vote and a vote round.
    expect(Math.max(...times)).to.be.below(4 * 10 * TICK_MS);
  });

  // ---------------------------------------------------------------- membership, transfer, reset, install

  const peers = (ids: string[]) => ids.map((id) => ({ id, address: `sim-${id}:1` }));
  /** Runs until cond() or the deadline; the scenario fails at the deadline. */
  const runUntilTrue = (c: SimCluster, cond: () => boolean, withinMs: number, what: string) => {
    const deadline = c.q.now + withinMs;
    while (!cond() && c.q.now < deadline && c.checker.violations.length === 0) c.runUntil(c.q.now + TICK_MS);
    noViolations(c);
    expect(cond(), `${what} within ${withinMs} ms`).to.equal(true);
  };
  const changePeers = (c: SimCluster, target: string[]) => {
    const out: { err?: QjmError | null } = {};
    c.node(c.leader()!).replica!.changePeers(peers(target), (err) => (out.err = err));
    return out;
  };
  /** Runs until the change answers (within withinMs), and requires that it succeeded. */
  const changeDone = (c: SimCluster, change: { err?: QjmError | null }, withinMs: number, what: string) => {
    runUntilTrue(c, () => change.err !== undefined, withinMs, what);
    expect(change.err, what).to.equal(null);
  };

  it('AddPeerBeforeItStarts: a learner that never acknowledged is not promoted, however short the log; it joins once it runs', () => {
    const c = running(31, 1, 300, 3, { replica: { catchupMargin: 1_000_000, changePeersTimeoutMs: 60_000 } });
    const n4 = c.createJoiner();
    const change = changePeers(c, ['n1', 'n2', 'n3', n4.id]);
    c.runUntil(c.q.now + 1000);
    const conf = c.node(c.leader()!).replica!.rawNode.conf();
    expect(conf.learners, 'added as a learner').to.deep.equal([n4.id]);
    expect(conf.voters, 'not promoted while it never answered').to.deep.equal(['n1', 'n2', 'n3']);
    expect(change.err).to.equal(undefined);
    c.boot(n4);
    changeDone(c, change, 2000, 'the change finishes');
    expect(c.checker.counts.promotions).to.equal(1);
    settled(c);
  });

  it('ReplaceEveryNode: n1..n3 replaced one by one by n4..n6, the leader included, while clients write', () => {
    const c = running(32, 2, 300);
    let voters = ['n1', 'n2', 'n3'];
    // Whoever leads is replaced in its turn: the leader drives its own removal and steps down.
    for (const old of ['n1', 'n2', 'n3']) {
      const fresh = c.createJoiner();
      c.boot(fresh);
      voters = [...voters.filter((v) => v !== old), fresh.id];
      const change = changePeers(c, voters);
      changeDone(c, change, 3000, `replacing ${old}`);
      c.runUntil(c.q.now + 50);
      c.destroy(c.node(old));
      runUntilTrue(c, () => c.leader() !== undefined, 1000, 'a leader');
    }
    const acked = c.checker.acked.size;
    c.runUntil(c.q.now + 500);
    expect(c.checker.acked.size, 'writes go on').to.be.greaterThan(acked);
    expect(c.node(c.leader()!).replica!.rawNode.conf().voters).to.deep.equal(['n4', 'n5', 'n6']);
    settled(c);
  });

  it('ChangeSurvivesPowerLoss: two voters replaced at once and stopped for good, then every node loses power: the cluster comes back in the new configuration', () => {
    const c = running(37, 2, 400);
    const [a, b] = [c.createJoiner(), c.createJoiner()];
    c.boot(a);
    c.boot(b);
    const lead = c.leader()!;
    const removed = ['n1', 'n2', 'n3'].filter((x) => x !== lead).slice(0, 2);
    const change = changePeers(c, [lead, a.id, b.id]);
    changeDone(c, change, 3000, 'the change finishes');
    // The operator stops the removed nodes; the old configuration has lost its majority for good.
    for (const id of removed) c.destroy(c.node(id));
    for (const n of c.nodes.values()) c.crash(n);
    c.runUntil(c.q.now + 20);
    for (const n of c.nodes.values()) c.restart(n);
    expect(c.awaitLiveness(3000), 'a leader commits again').to.not.equal(null);
    settled(c);
  });

  it('TransferUnderLoad: leadership moves to the named voter and writes resume under it', () => {
    const c = running(33, 2, 500, 5);
    for (let i = 0; i < 3; i++) {
      const from = c.leader()!;
      const to = ['n1', 'n2', 'n3', 'n4', 'n5'].find((x) => x !== from)!;
      let done: QjmError | null | undefined;
      c.node(from).replica!.transferLeader(to, (e) => (done = e));
      runUntilTrue(c, () => done !== undefined, 1000, `transfer ${from} -> ${to}`);
      expect(done).to.equal(null);
      expect(c.leader()).to.equal(to);
    }
    settled(c);
  });

  const resetSurvivor = (c: SimCluster, survivor: SimNode) => {
    let result: { err: QjmError | null; r?: ResetResult } | undefined;
    survivor.replica!.resetPeers(peers([survivor.id]), (err, r) => (result = r ? { err, r } : { err }));
    runUntilTrue(c, () => result !== undefined, 1000, 'the reset finishes');
    expect(result!.err).to.equal(null);
    return result!.r!;
  };

  it('ResetPeers: after two of three nodes are lost for good, the survivor keeps what it had committed, leads alone, and two fresh nodes join it', () => {
    const c = running(34, 2, 800);
    const lead = c.leader()!;
    const survivor = c.node(['n1', 'n2', 'n3'].find((x) => x !== lead)!);
    for (const id of ['n1', 'n2', 'n3']) if (id !== survivor.id) c.destroy(c.node(id));
    c.runUntil(c.q.now + 300);
    expect(c.leader(), 'no quorum: no leader').to.equal(undefined);
    const r = resetSurvivor(c, survivor);
    expect(r.committedBefore).to.be.greaterThan(50);
    runUntilTrue(c, () => c.leader() === survivor.id, 500, 'the survivor leads');
    const acked = c.checker.acked.size;
    c.runUntil(c.q.now + 300);
    expect(c.checker.acked.size, 'it commits alone').to.be.greaterThan(acked);
    const a = c.createJoiner();
    const b = c.createJoiner();
    c.boot(a);
    c.boot(b);
    const change = changePeers(c, [survivor.id, a.id, b.id]);
    changeDone(c, change, 3000, 'the fresh nodes join');
    expect(c.checker.counts.resets).to.equal(1);
    settled(c);
  });

  it('ResetPeersIsDurable: a survivor that crashes right after its reset comes back in the new configuration', () => {
    const c = running(35, 1, 600);
    const survivor = c.node('n3');
    c.destroy(c.node('n1'));
    c.destroy(c.node('n2'));
    resetSurvivor(c, survivor);
    c.crash(survivor);
    c.runUntil(c.q.now + 20);
    c.restart(survivor);
    expect(survivor.replica!.rawNode.conf().voters).to.deep.equal(['n3']);
    runUntilTrue(c, () => c.leader() === 'n3', 1000, 'it leads again');
    settled(c);
  });

  it('ChunkedInstallSurvivesCrashes: a follower that crashes in the middle of every snapshot install gets one once the crashes stop', () => {
    const c = running(36, 2, 200, 3, {
      mix: { ...MIXES.calm!, crashMidInstall: 1, restartMs: [5, 20] },
      faultMs: 2000,
      replica: { snapshotEntries: 20, keepEntriesAfterSnapshot: 0 },
    });
    const follower = c.node(['n1', 'n2', 'n3'].find((x) => x !== c.leader())!);
    c.crash(follower);
    c.runUntil(1200);
    c.restart(follower);
    const installsBefore = c.stats.installs;
    c.runUntil(2000);
    expect(c.stats.installs, 'no install completes while every one is cut short').to.equal(installsBefore);
    expect(c.stats.crashes, 'it crashed mid-install').to.be.greaterThan(3);
    // A crash mid-install sends the leader no answer: it tries again once its snapshot timeout (3 s) expires.
    c.runUntil(5500);
    expect(c.stats.installs, 'installed once the crashes stopped').to.be.greaterThan(installsBefore);
    settled(c);
  });

  // ---------------------------------------------------------------- a disk that fills and is freed

  for (const who of ['follower', 'leader'] as const) {
    it(`DiskFullResumes (${who}): its disk fills, the other two keep committing; freed, it rejoins by itself, no restart`, () => {
      const c = running(who === 'leader' ? 41 : 42, 2, 800);
      const lead = c.leader()!;
      const node = who === 'leader' ? c.node(lead) : [...c.nodes.values()].find((n) => n.id !== lead)!;
      const incarnation = node.incarnation;
      const crashes = c.stats.crashes;
      node.fs.faults.full = true;
      const full = () => node.replica?.status().diskFull ?? null;
      runUntilTrue(c, () => full() !== null, 2000, `${node.id} reports its disk full`);
      const acked = c.checker.acked.size;
      c.runUntil(c.q.now + 1500);
      expect(full(), 'still waiting for space').to.not.equal(null);
      expect(full()!.freeBytes).to.equal(0);
      expect(node.replica!.isLeader, 'a node whose disk is full does not lead').to.equal(false);
      expect(c.leader(), 'the other two elect a leader').to.be.a('string');
      expect(c.checker.acked.size - acked, 'the other two keep committing').to.be.greaterThan(10);
      node.fs.faults.full = false;
      const leaderCommit = () => c.node(c.leader() ?? lead).replica!.status().commitIndex;
      runUntilTrue(
        c,
        () => full() === null && node.replica!.appliedIndex >= leaderCommit() - 5,
        3000,
        `${node.id} resumes and catches up`,
      );
      expect(node.incarnation, 'no restart').to.equal(incarnation);
      expect(c.stats.crashes, 'no crash').to.equal(crashes);
      expect(c.stats.diskFull).to.be.greaterThan(0);
      settled(c);
    });
  }

  // ---------------------------------------------------------------- damage to the Raft log (protocol-aware recovery)

  it('RotOnACommitHolderWhileAnotherIsDown: the entry rots on a follower needed for its commit while the leader is down; the follower does not vote, nobody leads until the leader returns, nothing acknowledged is lost', () => {
    const c = running(41, 2, 800, 3, { settings: { snapshotLogBytes: 2 ** 30 } });
    const lead = c.node(c.leader()!);
    const [a, b] = [...c.nodes.values()].filter((n) => n !== lead);
    // b falls behind: what commits now is held by the leader and a alone.
    c.network.partition([b!.id], [lead.id, a!.id]);
    c.runUntil(c.q.now + 400);
    const k = b!.diskLog!.lastIndex() + 2;
    const committed = lead.replica!.rawNode.committedIndex();
    expect(committed, 'entries committed while b was cut off').to.be.greaterThan(k + 20);
    expect(a!.diskLog!.lastIndex()).to.be.greaterThan(k + 20);
    const at = a!.diskLog!.locate(k)!;
    c.crash(lead);
    a!.fs.rotAt(at.file, at.offsetBytes + 30, 'flip');
    c.crash(a!);
    c.restart(a!);
    expect(a!.running, 'a starts in spite of the damage').to.equal(true);
    expect(a!.storage!.logDamage.map((d) => [d.action, d.firstIndex])).to.deep.equal([['cut', k]]);
    expect(a!.replica!.status().identity.floor?.index).to.be.at.least(committed);
    c.healNetwork();
    // a may not vote for b (which lacks committed entries) nor campaign with a log it cut: nobody leads.
    for (let t = 0; t < 15; t++) {
      c.runUntil(c.q.now + 100);
      expect(c.leader(), 'no leader while the only full copy is down').to.equal(undefined);
    }
    noViolations(c);
    c.restart(lead);
    runUntilTrue(
      c,
      () => c.leader() !== undefined && a!.replica!.status().identity.floor === null,
      3000,
      'a leader, and a holds its floor again',
    );
    settled(c);
  });
});
