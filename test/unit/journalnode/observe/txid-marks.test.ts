// The leader's txid lag of a follower (CurrentLagTxns): from the follower's match index and the marks of where
// each journal's batches sit in the Raft log.

import { expect } from 'chai';
import { TxidMarks } from '../../../../journalnode/observe/txid-marks.js';

describe('txid marks', () => {
  it('txids a follower lacks, by its match index', () => {
    const m = new TxidMarks();
    // ns1: index 10 carries txids 1..100, index 12 101..150, index 15 151..160; ns2 at index 11.
    m.applied('ns1', 10, 0, 100);
    m.applied('ns2', 11, 0, 7);
    m.applied('ns1', 12, 100, 150);
    m.applied('ns1', 15, 150, 160);
    const table: [number, number][] = [
      [0, 160],
      [9, 160],
      [10, 60],
      [11, 60],
      [12, 10],
      [14, 10],
      [15, 0],
      [99, 0],
    ];
    for (const [match, lag] of table) expect(m.lagTxns('ns1', match, 160), `match ${match}`).to.equal(lag);
    expect([m.lagTxns('ns2', 10, 7), m.lagTxns('ns2', 11, 7), m.lagTxns('unknown', 0, 0)]).to.deep.equal([7, 0, 0]);
  });

  it('bounded: past the oldest mark kept, the lag is a lower bound; an older index (a restored state) starts over', () => {
    const m = new TxidMarks(4);
    for (let i = 1; i <= 5; i++) m.applied('ns1', i, (i - 1) * 10, i * 10);
    // Marks 1-2 were dropped: a follower at index 0 lacks at least what came after mark 3's start.
    expect(m.lagTxns('ns1', 0, 50)).to.equal(30);
    expect(m.lagTxns('ns1', 4, 50)).to.equal(10);
    m.applied('ns1', 2, 10, 20);
    expect([m.lagTxns('ns1', 1, 20), m.lagTxns('ns1', 2, 20)]).to.deep.equal([10, 0]);
  });
});
