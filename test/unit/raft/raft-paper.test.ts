// Tests that quote the Raft paper (Ongaro & Ousterhout, "In Search of an Understandable Consensus
// Algorithm", extended version), section by section, against the pure core.

import { expect } from 'chai';
import { Harness } from '../../support/harness.js';
import { EntryType, makeMessage, MessageType, StateType } from '../../../src/raft/types.js';
import type { Entry } from '../../../src/raft/types.js';
import { Prng } from '../../../src/prng.js';

const ent = (index: number, term: number, data = ''): Entry => ({
  index,
  term,
  type: EntryType.Normal,
  data: new TextEncoder().encode(data),
});

describe('raft paper', () => {
  describe('§5.1 terms', () => {
    it('"If one server\'s current term is smaller than the other\'s, then it updates its current term to the larger value"', () => {
      for (const setup of ['follower', 'candidate', 'leader'] as const) {
        const h = new Harness(['n1', 'n2', 'n3'], { preVote: setup !== 'candidate' });
        if (setup === 'leader') h.elect('n1');
        if (setup === 'candidate') {
          h.campaign('n1');
          h.dropQueued();
        }
        h.deliver(makeMessage({ type: MessageType.App, from: 'n2', to: 'n1', term: 5 }));
        const r = h.raft('n1');
        expect(r.term, setup).to.equal(5);
        expect(r.state, setup).to.equal(StateType.Follower);
        expect(r.lead, setup).to.equal('n2');
      }
    });

    it('"If a server receives a request with a stale term number, it rejects the request"', () => {
      // Without check-quorum there is no leader lease, so n2 can be elected while n1 leads.
      const h = new Harness(['n1', 'n2', 'n3'], { checkQuorum: false });
      h.elect('n1');
      h.elect('n2');
      const before = h.raft('n2').log.lastIndex();
      h.deliver(
        makeMessage({
          type: MessageType.App,
          from: 'n1',
          to: 'n2',
          term: 1,
          index: before,
          logTerm: 2,
          entries: [ent(before + 1, 1)],
        }),
      );
      expect(h.raft('n2').log.lastIndex()).to.equal(before);
      expect(h.raft('n2').state).to.equal(StateType.Leader);
    });
  });

  describe('§5.2 leader election', () => {
    it('"When servers start up, they begin as followers"', () => {
      const h = new Harness(['n1', 'n2', 'n3']);
      for (const id of ['n1', 'n2', 'n3']) expect(h.raft(id).state).to.equal(StateType.Follower);
    });

    it('"Leaders send periodic heartbeats to all followers"', () => {
      const h = new Harness(['n1', 'n2', 'n3']);
      h.elect('n1');
      h.tick('n1');
      const beats = h.dropQueued().filter((m) => m.type === MessageType.Heartbeat);
      expect(beats.map((m) => m.to).sort()).to.deep.equal(['n2', 'n3']);
    });

    it('"If a follower receives no communication over a period of time called the election timeout, it begins an election" (pre-vote first)', () => {
      const h = new Harness(['n1', 'n2', 'n3']);
      h.tick('n1', 20);
      expect(h.raft('n1').state).to.equal(StateType.PreCandidate);
      expect(h.raft('n1').term, 'pre-vote does not move the term').to.equal(0);
      const reqs = h.dropQueued();
      expect(reqs.map((m) => [m.type, m.to, m.term])).to.deep.equal([
        [MessageType.PreVote, 'n2', 1],
        [MessageType.PreVote, 'n3', 1],
      ]);
    });

    describe('"A candidate wins an election if it receives votes from a majority of the servers"', () => {
      const table: [number, Record<string, boolean>, StateType][] = [
        [1, {}, StateType.Leader],
        [3, { n2: true, n3: true }, StateType.Leader],
        [3, { n2: true }, StateType.Leader],
        [5, { n2: true, n3: true, n4: true, n5: true }, StateType.Leader],
        [5, { n2: true, n3: true }, StateType.Leader],
        [3, {}, StateType.Candidate],
        [5, { n2: true }, StateType.Candidate],
        [5, { n2: false, n3: false }, StateType.Candidate],
        [3, { n2: false, n3: false }, StateType.Follower],
      ];
      for (const [size, votes, want] of table) {
        it(`${size} servers, votes ${JSON.stringify(votes)} -> ${want}`, () => {
          const ids = Array.from({ length: size }, (_, i) => `n${i + 1}`);
          const h = new Harness(ids, { preVote: false });
          h.campaign('n1');
          h.dropQueued();
          for (const [id, granted] of Object.entries(votes)) {
            h.deliver(makeMessage({ type: MessageType.VoteResp, from: id, to: 'n1', term: 1, reject: !granted }));
          }
          expect(h.raft('n1').state).to.equal(want);
          expect(h.raft('n1').term).to.equal(1);
        });
      }
    });

    describe('"Each server will vote for at most one candidate in a given term, on a first-come-first-served basis"', () => {
      const table: [string, string, boolean][] = [
        ['', 'n2', true],
        ['', 'n3', true],
        ['n2', 'n2', true],
        ['n3', 'n3', true],
        ['n2', 'n3', false],
        ['n3', 'n2', false],
      ];
      for (const [voted, candidate, granted] of table) {
        it(`voted for ${voted || 'nobody'}, asked by ${candidate} -> ${granted ? 'grant' : 'reject'}`, () => {
          const h = new Harness(['n1', 'n2', 'n3'], { checkQuorum: false });
          h.restart('n1', { term: 1, vote: voted, commit: 0 }, { checkQuorum: false });
          const r = h.raft('n1');
          h.deliver(makeMessage({ type: MessageType.Vote, from: candidate, to: 'n1', term: 1 }));
          const resp = h.dropQueued().find((m) => m.type === MessageType.VoteResp)!;
          expect(resp.reject).to.equal(!granted);
          expect(r.vote).to.equal(voted || candidate);
        });
      }
    });

    it('"If the AppendEntries RPC is from a leader whose term is at least as large as the candidate\'s, the candidate returns to follower state"', () => {
      const h = new Harness(['n1', 'n2', 'n3'], { preVote: false });
      h.campaign('n1');
      h.dropQueued();
      h.deliver(makeMessage({ type: MessageType.App, from: 'n2', to: 'n1', term: 1 }));
      expect(h.raft('n1').state).to.equal(StateType.Follower);
      expect(h.raft('n1').lead).to.equal('n2');
    });

    it('"Raft uses randomized election timeouts": timeouts spread over [electionTimeout, 2 * electionTimeout)', () => {
      const seen = new Set<number>();
      for (let seed = 1; seed <= 60; seed++) {
        // Different ids give different PRNG streams; count ticks to the first campaign.
        const id = `n${(seed % 3) + 1}`;
        const rng = new Prng(seed);
        const h = new Harness(['n1', 'n2', 'n3'], {}, { [id]: { random: () => rng.next() } });
        let ticks = 0;
        while (h.raft(id).state === StateType.Follower) {
          h.tick(id);
          ticks++;
        }
        seen.add(ticks);
        expect(ticks).to.be.within(10, 19);
      }
      expect(seen.size, 'timeouts are spread out').to.be.greaterThan(5);
    });
  });

  describe('§5.3 log replication', () => {
    it('"The leader ... commits it once it has replicated it on a majority of the servers" and followers learn the commit index', () => {
      const h = new Harness(['n1', 'n2', 'n3']);
      h.elect('n1');
      h.cut.add('n1->n3');
      h.propose('n1', 'x');
      h.deliverAll();
      expect(h.raft('n1').log.committed).to.equal(2);
      // Followers learn the commit index with the next append or heartbeat.
      h.heartbeat('n1');
      expect(h.raft('n2').log.committed).to.equal(2);
      expect(h.appliedData('n1')).to.deep.equal(['x']);
      expect(h.appliedData('n2')).to.deep.equal(['x']);
      expect(h.appliedData('n3')).to.deep.equal([]);
    });

    it('"If the follower does not find an entry in its log with the same index and term, then it refuses the new entries"', () => {
      const table: [number, number, boolean][] = [
        [1, 1, false], // matches
        [1, 2, true], // term differs
        [5, 1, true], // beyond the log
      ];
      for (const [index, logTerm, rejected] of table) {
        const h = new Harness(['n1', 'n2', 'n3']);
        h.elect('n1');
        h.deliver(
          makeMessage({
            type: MessageType.App,
            from: 'n1',
            to: 'n2',
            term: 3,
            index,
            logTerm,
            entries: [ent(index + 1, 3, 'y')],
          }),
        );
        const resp = h.dropQueued().find((m) => m.type === MessageType.AppResp)!;
        expect(resp.reject, `prev (${index}, ${logTerm})`).to.equal(rejected);
      }
    });

    it('"If an existing entry conflicts with a new one ... delete the existing entry and all that follow it"', () => {
      const h = new Harness(['n1', 'n2', 'n3']);
      h.elect('n1');
      const r2 = h.raft('n2');
      // n2 holds [1:t1] committed; give it two uncommitted entries of term 1, then a leader at term 2 overrides.
      h.deliver(
        makeMessage({
          type: MessageType.App,
          from: 'n1',
          to: 'n2',
          term: 1,
          index: 1,
          logTerm: 1,
          entries: [ent(2, 1, 'a'), ent(3, 1, 'b')],
        }),
      );
      h.dropQueued();
      h.deliver(
        makeMessage({
          type: MessageType.App,
          from: 'n3',
          to: 'n2',
          term: 2,
          index: 1,
          logTerm: 1,
          entries: [ent(2, 2, 'c')],
        }),
      );
      expect(r2.log.lastIndex()).to.equal(2);
      expect(r2.log.term(2)).to.equal(2);
    });
  });

  describe('§5.4.1 election restriction', () => {
    // Voter's log: [t1, t2]. "If the logs have last entries with different terms, then the log with the later
    // term is more up-to-date. If the logs end with the same term, then whichever log is longer is more up-to-date."
    const table: [number, number, boolean][] = [
      [2, 1, false],
      [3, 1, false],
      [1, 2, false],
      [2, 2, true],
      [3, 2, true],
      [1, 3, true],
      [2, 3, true],
    ];
    for (const [lastIndex, lastTerm, granted] of table) {
      it(`candidate last (${lastIndex}, t${lastTerm}) vs voter (2, t2) -> ${granted ? 'grant' : 'reject'}`, () => {
        const h = new Harness(['n1', 'n2', 'n3'], { checkQuorum: false });
        h.node('n1').storage.append([ent(1, 1), ent(2, 2)]);
        h.restart('n1', { term: 2, vote: '', commit: 0 }, { checkQuorum: false });
        h.deliver(
          makeMessage({ type: MessageType.Vote, from: 'n2', to: 'n1', term: 3, index: lastIndex, logTerm: lastTerm }),
        );
        const resp = h.dropQueued().find((m) => m.type === MessageType.VoteResp)!;
        expect(resp.reject).to.equal(!granted);
      });
    }
  });

  describe('§5.4.2 committing entries from previous terms', () => {
    it('"Raft never commits log entries from previous terms by counting replicas"', () => {
      // One entry per append, so the old-term entry can reach a majority before the new term's no-op does.
      const h = new Harness(['n1', 'n2', 'n3'], { checkQuorum: false, maxEntriesPerAppend: 1 });
      h.elect('n1');
      h.cut.add('n1->n2');
      h.cut.add('n1->n3');
      h.propose('n1', 'old'); // index 2, term 1: only on n1
      h.deliverAll();
      h.heal();
      h.stepDown('n1'); // n1 loses leadership (as check-quorum would make it step down)
      // n1 is re-elected at term 2; its no-op is index 3. Let only index 2 through.
      h.filter = (m) => {
        if (m.type === MessageType.App) m.entries = m.entries.filter((e) => e.index < 3);
        return true;
      };
      h.elect('n1');
      expect(h.raft('n1').term).to.equal(2);
      h.tickAll();
      h.deliverAll();
      expect(h.raft('n1').progress.get('n2')!.match, 'index 2 is on a majority').to.equal(2);
      expect(h.raft('n1').log.committed, 'but it is not committed by counting').to.equal(1);
      h.heal();
      h.tickAll();
      h.deliverAll();
      expect(h.raft('n1').log.committed, 'committing the term-2 no-op commits index 2 too').to.equal(3);
      h.heartbeat('n1');
      expect(h.appliedData('n2')).to.deep.equal(['old']);
    });
  });
});
