// Scenarios named by the property they prove, on the synchronous harness (time = ticks, delivery explicit).
// Time-driven scenarios with crashes and slow disks live in test/sim/scenarios.test.ts.

import { expect } from 'chai';
import { Harness } from '../../support/harness.js';
import { ConfChangeOp, EntryType, makeMessage, MessageType, StateType } from '../../../src/raft/types.js';
import { confChangeCodec } from '../../../src/transport/raft-codec.js';
import type { Message } from '../../../src/raft/types.js';
import { MemoryStorage } from '../../../src/raft/memory-storage.js';

const ids3 = ['n1', 'n2', 'n3'];
const ids5 = ['n1', 'n2', 'n3', 'n4', 'n5'];

function oneLeader(h: Harness): string {
  const leaders = h.leaders();
  expect(leaders, 'exactly one leader').to.have.length(1);
  return leaders[0]!;
}

describe('raft scenarios', () => {
  for (const ids of [ids3, ids5]) {
    it(`InitialElection: ${ids.length} nodes elect exactly one leader that all follow`, () => {
      const h = new Harness(ids);
      h.run(100, () => h.leaders().length === 1 && ids.every((id) => h.raft(id).lead === h.leaders()[0]));
      const lead = oneLeader(h);
      const term = h.raft(lead).term;
      for (const id of ids) {
        expect(h.raft(id).term, id).to.equal(term);
        expect(h.raft(id).lead, id).to.equal(lead);
      }
    });
  }

  it('ReElectionAfterLeaderIsolated: the rest elect a new leader; the old one steps down and rejoins as follower', () => {
    const h = new Harness(ids3);
    h.elect('n1');
    h.propose('n1', 'a');
    h.deliverAll();
    h.isolate('n1');
    h.run(100, () => h.leaders().some((id) => id !== 'n1') && h.raft('n1').state !== StateType.Leader);
    const lead = h.leaders().find((id) => id !== 'n1')!;
    expect(h.raft(lead).term).to.be.greaterThan(1);
    h.propose(lead, 'b');
    h.deliverAll();
    h.heal();
    h.run(20, () => h.raft('n1').lead === lead && h.raft('n1').log.committed === h.raft(lead).log.committed);
    expect(h.appliedData('n1')).to.deep.equal(['a', 'b']);
  });

  it('NoLeaderWithoutQuorum: a node cut off from a majority never becomes leader', () => {
    const h = new Harness(ids3);
    h.isolate('n2');
    h.isolate('n3');
    h.run(200);
    expect(h.leaders()).to.deep.equal([]);
    expect(h.raft('n1').term, 'pre-vote keeps the term from climbing').to.equal(0);
  });

  it('RejoiningNodeDoesNotDepose: an isolated node rejoins without disturbing the leader (pre-vote)', () => {
    const h = new Harness(ids3);
    h.elect('n1');
    h.isolate('n3');
    h.run(100);
    expect(h.raft('n3').term, 'pre-vote failed, term unchanged').to.equal(1);
    h.heal();
    h.run(20);
    expect(h.leaders()).to.deep.equal(['n1']);
    expect(h.raft('n1').term).to.equal(1);
  });

  it('RejoiningNodeDoesNotDepose (control): without pre-vote the rejoining node does depose the leader', () => {
    const h = new Harness(ids3, { preVote: false });
    h.elect('n1');
    h.isolate('n3');
    h.run(100);
    expect(h.raft('n3').term).to.be.greaterThan(1);
    h.heal();
    h.run(40, () => h.raft('n1').term > 1);
    expect(h.raft('n1').term, 'the leader saw a higher term').to.be.greaterThan(1);
  });

  it('LeaderStepsDownWhenQuorumLost: an isolated leader steps down within an election timeout and commits nothing', () => {
    const h = new Harness(ids3);
    h.elect('n1');
    const committed = h.raft('n1').log.committed;
    h.isolate('n1');
    h.propose('n1', 'lost');
    let ticks = 0;
    while (h.raft('n1').state === StateType.Leader) {
      h.tick('n1');
      h.deliverAll();
      ticks++;
      expect(ticks).to.be.at.most(2 * h.raft('n1').config.electionTicks);
    }
    expect(h.raft('n1').state).to.equal(StateType.Follower);
    expect(h.raft('n1').log.committed).to.equal(committed);
  });

  it('PartialPartitionKeepsALeader: a follower cut off from the leader only cannot depose it (etcd issue 8129)', () => {
    const h = new Harness(ids3);
    h.elect('n1');
    h.cut.add('n1->n3');
    h.cut.add('n3->n1');
    h.run(200);
    expect(h.leaders()).to.deep.equal(['n1']);
    expect(h.raft('n1').term).to.equal(1);
    expect(h.raft('n2').term).to.equal(1);
    h.propose('n1', 'still-works');
    h.deliverAll();
    h.heartbeat('n1');
    expect(h.appliedData('n2')).to.deep.equal(['still-works']);
  });

  it('DuelingCandidates: two simultaneous campaigns end with exactly one leader per term', () => {
    for (const preVote of [true, false]) {
      const h = new Harness(ids3, { preVote });
      h.campaign('n1');
      h.campaign('n3');
      h.deliverAll();
      h.run(100, () => h.leaders().length === 1 && ids3.every((id) => h.raft(id).lead === h.leaders()[0]));
      const lead = oneLeader(h);
      expect(ids3.map((id) => h.raft(id).term)).to.deep.equal(ids3.map(() => h.raft(lead).term));
    }
  });

  it('CannotCommitWithoutNewTermEntry: entries of an old term commit only with an entry of the new term (Figure 8)', () => {
    const h = new Harness(ids5, { checkQuorum: false });
    h.elect('n1');
    for (const id of ['n3', 'n4', 'n5']) h.cut.add(`n1->${id}`);
    h.propose('n1', 'p1');
    h.propose('n1', 'p2');
    h.deliverAll();
    expect(h.raft('n1').log.committed).to.equal(1);
    h.heal();
    // n2 wins term 2 but its appends are lost: its no-op cannot commit, and neither can p1, p2.
    h.filter = (m) => m.type !== MessageType.App;
    h.elect('n2');
    expect(h.raft('n2').log.committed).to.equal(1);
    h.heal();
    h.tick('n2'); // a heartbeat round resumes the probes that were lost
    h.deliverAll();
    h.propose('n2', 'p3');
    h.deliverAll();
    h.heartbeat('n2');
    expect(h.raft('n2').log.committed).to.equal(5);
    expect(h.appliedData('n5')).to.deep.equal(['p1', 'p2', 'p3']);
  });

  it('BackupOverDivergentLog: a follower with 60 divergent entries is repaired in a handful of round trips', () => {
    const h = new Harness(ids3);
    h.elect('n1');
    for (let i = 0; i < 5; i++) h.propose('n1', `c${i}`);
    h.deliverAll();
    h.isolate('n1');
    for (let i = 0; i < 60; i++) h.propose('n1', `lost${i}`); // term 1, never committed
    h.dropQueued();
    h.run(100, () => h.leaders().includes('n2') || h.leaders().includes('n3'));
    const lead = h.leaders().find((id) => id !== 'n1')!;
    for (let i = 0; i < 10; i++) h.propose(lead, `new${i}`);
    h.deliverAll();
    const rejectsBefore = h.delivered.filter(
      (m) => m.type === MessageType.AppResp && m.reject && m.from === 'n1',
    ).length;
    const appsBefore = h.countDelivered(MessageType.App, 'n1');
    h.heal();
    h.run(
      20,
      () =>
        h.raft('n1').log.lastIndex() === h.raft(lead).log.lastIndex() &&
        h.raft('n1').log.committed === h.raft(lead).log.committed,
    );
    const rejects =
      h.delivered.filter((m) => m.type === MessageType.AppResp && m.reject && m.from === 'n1').length - rejectsBefore;
    const apps = h.countDelivered(MessageType.App, 'n1') - appsBefore;
    expect(rejects, 'rejections before the logs matched').to.be.at.most(2);
    expect(apps, 'appends sent to repair the follower').to.be.at.most(4);
    expect(h.appliedData('n1')).to.deep.equal(
      [...Array(5)].map((_, i) => `c${i}`).concat([...Array(10)].map((_, i) => `new${i}`)),
    );
  });

  it('FollowerThatLostDurableEntriesIsRepaired: a restarted follower missing acknowledged entries is re-replicated', () => {
    const h = new Harness(ids3);
    h.elect('n1');
    for (let i = 0; i < 5; i++) h.propose('n1', `e${i}`);
    h.deliverAll();
    expect(h.raft('n1').progress.get('n2')!.match).to.equal(6);
    // n2 restarts with its last two entries gone (a disk that lied about durability).
    const n2 = h.node('n2');
    const kept = new MemoryStorage({ voters: ids3, votersOutgoing: [], learners: [] });
    kept.append(n2.storage.allEntries().filter((e) => e.index <= 4));
    h.nodes.delete('n2');
    h.add('n2', kept, { ...n2.hard, commit: 4 });
    // The next append reveals the gap: n2 rejects, and its hint is below what it had acknowledged.
    h.propose('n1', 'e5');
    h.run(10, () => h.raft('n2').log.lastIndex() === 7 && h.raft('n2').log.committed === 7);
    expect(h.raft('n1').progress.get('n2')!.match).to.equal(7);
    expect(h.appliedData('n2').slice(-3)).to.deep.equal(['e3', 'e4', 'e5']);
  });

  it('RestoredFollowerCommitsOnlyWhatItVerified: a heartbeat never commits entries an older copy of the log holds', () => {
    const h = new Harness(ids3);
    h.elect('n1');
    for (let i = 0; i < 3; i++) h.propose('n1', `e${i}`);
    h.deliverAll();
    // A follower's data directory as a backup taken now would hold it (n2 and n3 hold the same log), plus two
    // entries of term 1 that n1 sent it and that were never committed (n1 lost its leadership before they were).
    const copy = new MemoryStorage({ voters: ids3, votersOutgoing: [], learners: [] });
    const stale = ['stale5', 'stale6'].map((data, i) => ({
      term: 1,
      index: 5 + i,
      type: EntryType.Normal,
      data: new TextEncoder().encode(data),
    }));
    copy.append([...h.node('n2').storage.allEntries(), ...stale]);
    // n1 is cut off; n2 or n3 leads term 2 and the other acknowledges its entries 5..7 (different ones).
    h.isolate('n1');
    h.run(100, () => h.leaders().some((id) => id !== 'n1'));
    const lead = h.leaders().find((id) => id !== 'n1')!;
    const f = lead === 'n2' ? 'n3' : 'n2';
    h.propose(lead, 'f6');
    h.propose(lead, 'f7');
    h.deliverAll();
    expect(h.raft(lead).log.lastIndex()).to.equal(7);
    expect(h.raft(lead).progress.get(f)!.match).to.equal(7);
    // f comes back from the older copy. The leader does not know: its next heartbeat says commit 7 (f's match).
    h.nodes.delete(f);
    h.add(f, copy, { term: 1, vote: 'n1', commit: 4 });
    h.heartbeat(lead);
    expect(h.appliedData(f), 'entries the leader never had are never applied').to.not.include('stale5');
    h.propose(lead, 'g8');
    h.run(20, () => h.raft(lead).log.committed === 8 && h.raft(f).log.committed === 8);
    expect(h.appliedData(f)).to.deep.equal(['e0', 'e1', 'e2', 'f6', 'f7', 'g8']);
  });

  it("RestoredFollowerCommitsOnlyWhatItMatched: a heartbeat never commits a follower past where its log was shown to match the leader's", () => {
    // n2 leads term 1 alone and appends entries nobody else has; a copy of its disk is kept (a backup).
    const h = new Harness(ids3);
    h.elect('n2');
    h.isolate('n2');
    for (let i = 0; i < 3; i++) h.propose('n2', `stale${i}`);
    h.dropQueued();
    const old = h.node('n2');
    const copy = new MemoryStorage({ voters: ids3, votersOutgoing: [], learners: [] });
    copy.append(old.storage.allEntries());
    const copyHard = { ...old.hard };
    // n1 or n3 leads a later term; n2 takes its log and acknowledges all of it.
    h.run(100, () => h.leaders().includes('n1') || h.leaders().includes('n3'));
    const lead = h.leaders().find((id) => id !== 'n2')!;
    h.heal();
    for (let i = 0; i < 5; i++) h.propose(lead, `new${i}`);
    h.run(30, () => h.raft(lead).progress.get('n2')!.match === h.raft(lead).log.lastIndex());
    // n2's data directory is restored from the copy: its log holds term-1 entries the cluster never committed,
    // where the leader's match index says it holds the leader's.
    h.nodes.delete('n2');
    h.add('n2', copy, copyHard);
    h.heartbeat(lead);
    h.run(20, () => h.raft('n2').log.committed === h.raft(lead).log.committed);
    expect(h.appliedData('n2'), 'never the stale entries').to.deep.equal([...Array(5)].map((_, i) => `new${i}`));
  });

  it("FollowerHandlesOutOfOrderAppends: reordered and duplicated appends converge to the leader's log", () => {
    const h = new Harness(ids3);
    h.elect('n1');
    h.cut.add('n1->n3');
    h.propose('n1', 'a');
    h.propose('n1', 'b');
    h.propose('n1', 'c');
    // Hold n1's appends to n2, then deliver them last-first, twice.
    const toN2 = h.queue.filter((m) => m.type === MessageType.App && m.to === 'n2');
    const rest = h.queue.filter((m) => !toN2.includes(m));
    h.queue.length = 0;
    expect(toN2.length).to.equal(3);
    const reordered: Message[] = [...toN2].reverse();
    for (const m of [...reordered, ...reordered]) h.deliver({ ...m, entries: [...m.entries] });
    for (const m of rest) h.deliver(m);
    h.deliverAll();
    h.run(5);
    expect(h.appliedData('n2')).to.deep.equal(['a', 'b', 'c']);
    expect(h.raft('n1').log.committed).to.equal(4);
  });

  it('StaleReadIndexAtNewLeaderRefused: a new leader refuses ReadIndex until it commits in its term (etcd issue 7331)', () => {
    const h = new Harness(ids3, { checkQuorum: false });
    h.elect('n1');
    h.propose('n1', 'x');
    h.deliverAll();
    // n2 is elected, but its no-op cannot commit (appends lost).
    h.filter = (m) => m.type !== MessageType.App;
    h.elect('n2');
    h.readIndex('n2', 'r1');
    h.deliverAll();
    expect(h.node('n2').reads.map((r) => r.ok)).to.deep.equal([false]);
    // A follower's read forwarded to the new leader is refused too.
    h.readIndex('n3', 'r1b');
    h.deliverAll();
    expect(h.node('n3').reads.map((r) => r.ok)).to.deep.equal([false]);
    h.heal();
    h.tickAll();
    h.deliverAll();
    const committed = h.raft('n2').log.committed;
    expect(h.raft('n2').log.term(committed)).to.equal(2);
    h.readIndex('n2', 'r2');
    h.readIndex('n3', 'r3');
    h.deliverAll();
    expect(
      h
        .node('n2')
        .reads.slice(1)
        .map((r) => [r.ok, r.index]),
    ).to.deep.equal([[true, committed]]);
    expect(
      h
        .node('n3')
        .reads.slice(1)
        .map((r) => [r.ok, r.index]),
    ).to.deep.equal([[true, committed]]);
  });

  it('ExpectedTermMismatchRejected: a proposal carrying an old term is refused and nothing is appended', () => {
    const h = new Harness(ids3, { checkQuorum: false });
    h.elect('n1');
    const ok = h.propose('n1', 'a', 1);
    expect(ok.ok).to.equal(true);
    h.deliverAll();
    h.elect('n2');
    h.elect('n1'); // n1 leads again, at term 3: the ABA case
    const last = h.raft('n1').log.lastIndex();
    const res = h.propose('n1', 'b', 1);
    expect(res).to.include({ ok: false, error: 'term-mismatch' });
    expect(h.raft('n1').log.lastIndex()).to.equal(last);
    expect(h.propose('n1', 'c', 3).ok).to.equal(true);
  });

  it('LeadershipTransfer: the transferee catches up and takes over with TimeoutNow', () => {
    const h = new Harness(ids3);
    h.elect('n1');
    h.cut.add('n1->n3');
    h.propose('n1', 'a');
    h.deliverAll();
    h.heal();
    expect(h.transferLeader('n1', 'n3').ok).to.equal(true);
    expect(h.propose('n1', 'refused').ok, 'no proposals while transferring').to.equal(false);
    h.deliverAll();
    h.run(5, () => h.raft('n3').state === StateType.Leader);
    expect(h.leaders()).to.deep.equal(['n3']);
    expect(h.raft('n3').term).to.equal(2);
  });

  it('MembershipJointConsensus: adding a voter goes through C_old,new and leaves it automatically', () => {
    const h = new Harness(ids3);
    h.elect('n1');
    // A new node starts empty: it learns the configuration from a snapshot of the leader.
    h.snapshotAndCompact('n1');
    h.add('n4', new MemoryStorage({ voters: [], votersOutgoing: [], learners: [] }), { term: 0, vote: '', commit: 0 });
    let res = h.proposeConfChange('n1', {
      changes: [{ op: ConfChangeOp.AddLearner, peer: { id: 'n4', address: 'x' } }],
      leaveJoint: false,
    });
    expect(res.ok).to.equal(true);
    h.deliverAll();
    h.run(5);
    expect(h.raft('n1').conf.learners).to.deep.equal(['n4']);
    expect(h.raft('n4').log.lastIndex(), 'the learner caught up').to.equal(h.raft('n1').log.lastIndex());
    res = h.proposeConfChange('n1', {
      changes: [
        { op: ConfChangeOp.AddVoter, peer: { id: 'n4', address: 'x' } },
        { op: ConfChangeOp.Remove, peer: { id: 'n1', address: 'y' } },
      ],
      leaveJoint: false,
    });
    expect(res.ok).to.equal(true);
    h.deliverAll();
    h.run(5);
    // Joint entered, then left; n1 removed and stepped down, telling the followers that held the
    // leave-joint entry that it committed; the others elect a leader, and everyone ends in C_new.
    const cNew = { voters: ['n2', 'n3', 'n4'], votersOutgoing: [], learners: [] };
    expect(h.raft('n1').state).to.not.equal(StateType.Leader);
    h.run(100, () => h.leaders().length === 1 && h.leaders()[0] !== 'n1');
    h.heartbeat(h.leaders()[0]!);
    for (const id of ['n2', 'n3', 'n4']) expect(h.raft(id).conf, id).to.deep.equal(cNew);
    // The leave was confirmed by an empty configuration entry before n1 stepped down: whoever holds it
    // knows the leave committed.
    const confEntries = h
      .node('n2')
      .applied.filter((e) => e.type === EntryType.ConfChange)
      .map((e) => confChangeCodec.decode(e.data));
    expect(confEntries.slice(-2)).to.deep.equal([
      { changes: [], leaveJoint: true },
      { changes: [], leaveJoint: false },
    ]);
  });

  it('ResetPeers: the survivor of a lost majority commits its whole log, then leads a one-node configuration alone', () => {
    const h = new Harness(ids3);
    h.elect('n1');
    h.propose('n1', 'a');
    h.deliverAll();
    h.heartbeat('n1');
    // 'b' reaches n2 but its acknowledgement is lost: n2 holds it uncommitted.
    h.filter = (m) => !(m.type === MessageType.AppResp && m.from === 'n2') && m.to !== 'n3';
    h.propose('n1', 'b');
    h.deliverAll();
    expect(h.raft('n2').log.committed).to.be.below(h.raft('n2').log.lastIndex());
    // n1 and n3 are lost for good.
    h.isolate('n1');
    h.isolate('n3');
    h.filter = null;
    const before = h.raft('n2').log.lastIndex();
    const term = h.raft('n2').term;
    h.resetPeers('n2', ['n2']);
    const r = h.raft('n2');
    expect(r.conf).to.deep.equal({ voters: ['n2'], votersOutgoing: [], learners: [] });
    expect(r.log.committed, 'the whole log and the no-op are committed').to.equal(before + 1);
    expect(r.term, 'the no-op is of a new term').to.equal(term + 1);
    expect(h.appliedData('n2')).to.deep.equal(['a', 'b']);
    h.campaign('n2');
    expect(h.leaders()).to.include('n2');
    h.propose('n2', 'c');
    expect(h.appliedData('n2')).to.deep.equal(['a', 'b', 'c']);
  });

  it('NoCampaignBeforeConfChangeApplied: a node that knows a configuration entry committed does not campaign until it applied it', () => {
    const h = new Harness(ids3);
    h.elect('n1');
    // n2's disk is slow: it receives entries and learns they are committed, but applies only durable ones.
    h.node('n2').holdPersist = true;
    const res = h.proposeConfChange('n1', {
      changes: [{ op: ConfChangeOp.AddLearner, peer: { id: 'n4', address: 'x' } }],
      leaveJoint: false,
    });
    expect(res.ok).to.equal(true);
    const confIndex = res.ok ? res.index : 0;
    h.deliverAll();
    h.propose('n1', 'after');
    h.deliverAll();
    expect(h.raft('n2').log.committed, 'n2 knows the change committed').to.be.at.least(confIndex);
    expect(h.raft('n2').log.applied, 'but has not applied it').to.be.below(confIndex);
    h.isolate('n2');
    const term = h.raft('n2').term;
    h.tick('n2', 5 * h.raft('n2').config.electionTicks);
    expect(h.raft('n2').state, 'no campaign').to.equal(StateType.Follower);
    expect(h.raft('n2').term).to.equal(term);
    h.flushPersist('n2');
    expect(h.raft('n2').log.applied).to.be.at.least(confIndex);
    h.tick('n2', 3 * h.raft('n2').config.electionTicks);
    expect(h.raft('n2').state, 'once applied it campaigns').to.not.equal(StateType.Follower);
  });

  it('LaggingNodeHearsUnknownLeader: a leader the configuration does not name yet is heard; its votes are not', () => {
    const h = new Harness(ids3);
    h.elect('n1');
    // n4 leads a later term in a configuration n3 has not applied yet (n3 missed the change that added n4).
    const app = { type: MessageType.App, to: 'n3', from: 'n4', term: 5, index: 0, logTerm: 0, commit: 0 };
    const vote = { type: MessageType.Vote, to: 'n3', from: 'n4', term: 6, index: 100, logTerm: 5 };
    const raw = h.node('n3').raw;
    expect(raw.step(makeMessage(vote)), 'a vote request from a non-member is dropped').to.equal(false);
    expect(h.raft('n3').term).to.equal(1);
    expect(raw.step(makeMessage(app)), 'an append from an unknown leader is stepped').to.equal(true);
    expect(h.raft('n3').term).to.equal(5);
    expect(h.raft('n3').lead).to.equal('n4');
  });
});
