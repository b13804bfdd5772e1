import { expect } from 'chai';
import {
  committedIndex,
  isQuorum,
  majorityCommitted,
  majorityVoteResult,
  voteResult,
  VoteResult,
} from '../../../src/raft/quorum.js';
import type { ConfState } from '../../../src/raft/types.js';

const conf = (voters: string[], outgoing: string[] = []): ConfState => ({
  voters,
  votersOutgoing: outgoing,
  learners: [],
});

describe('quorum', () => {
  describe('majorityCommitted', () => {
    const table: [string[], Record<string, number>, number][] = [
      [['a'], { a: 5 }, 5],
      [['a', 'b'], { a: 5, b: 3 }, 3],
      [['a', 'b', 'c'], { a: 5, b: 3, c: 1 }, 3],
      [['a', 'b', 'c'], { a: 5 }, 0],
      [['a', 'b', 'c'], { a: 5, b: 5 }, 5],
      [['a', 'b', 'c', 'd'], { a: 9, b: 8, c: 7, d: 1 }, 7],
      [['a', 'b', 'c', 'd', 'e'], { a: 9, b: 8, c: 7, d: 1, e: 0 }, 7],
      [['a', 'b', 'c', 'd', 'e'], { a: 9, b: 8 }, 0],
    ];
    for (const [voters, acked, want] of table) {
      it(`${voters.join(',')} with ${JSON.stringify(acked)} commits ${want}`, () => {
        expect(majorityCommitted(voters, (id) => acked[id])).to.equal(want);
      });
    }
    it('an empty configuration imposes no constraint', () => {
      expect(majorityCommitted([], () => 0)).to.equal(Infinity);
    });
  });

  describe('committedIndex (joint)', () => {
    it('is the minimum of both halves', () => {
      const acked: Record<string, number> = { a: 10, b: 10, c: 2, d: 3, e: 3 };
      // incoming {a,b,c} commits 10; outgoing {c,d,e} commits 3.
      expect(committedIndex(conf(['a', 'b', 'c'], ['c', 'd', 'e']), (id) => acked[id])).to.equal(3);
      expect(committedIndex(conf(['a', 'b', 'c']), (id) => acked[id])).to.equal(10);
    });
  });

  describe('vote results', () => {
    const table: [string[], Record<string, boolean>, VoteResult][] = [
      [['a'], {}, VoteResult.Pending],
      [['a'], { a: true }, VoteResult.Won],
      [['a'], { a: false }, VoteResult.Lost],
      [['a', 'b', 'c'], { a: true }, VoteResult.Pending],
      [['a', 'b', 'c'], { a: true, b: true }, VoteResult.Won],
      [['a', 'b', 'c'], { a: true, b: false }, VoteResult.Pending],
      [['a', 'b', 'c'], { a: false, b: false }, VoteResult.Lost],
      [['a', 'b', 'c', 'd'], { a: true, b: true }, VoteResult.Pending],
      [['a', 'b', 'c', 'd'], { a: true, b: true, c: false, d: false }, VoteResult.Lost],
    ];
    for (const [voters, votes, want] of table) {
      it(`${voters.join(',')} with ${JSON.stringify(votes)} is ${want}`, () => {
        expect(majorityVoteResult(voters, new Map(Object.entries(votes)))).to.equal(want);
      });
    }
    it('joint: needs both halves, loses if either is lost', () => {
      const c = conf(['a', 'b', 'c'], ['c', 'd', 'e']);
      expect(voteResult(c, new Map(Object.entries({ a: true, b: true, c: true })))).to.equal(VoteResult.Pending);
      expect(voteResult(c, new Map(Object.entries({ a: true, b: true, c: true, d: true })))).to.equal(VoteResult.Won);
      expect(voteResult(c, new Map(Object.entries({ a: true, b: true, d: false, e: false })))).to.equal(
        VoteResult.Lost,
      );
    });
    it('isQuorum over a joint configuration', () => {
      const c = conf(['a', 'b', 'c'], ['c', 'd', 'e']);
      expect(isQuorum(c, new Set(['a', 'b']))).to.equal(false);
      expect(isQuorum(c, new Set(['a', 'c', 'd']))).to.equal(true);
    });
  });
});
