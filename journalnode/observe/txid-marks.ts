// Where each journal's txids sit in the Raft log, for the leader's lag figures: for every batch of records
// applied here, the Raft index that carried it and the journal's last txid before and after it. From a
// follower's match index the leader then tells how many txids of each journal that follower does not hold
// yet (Hadoop's CurrentLagTxns, seen from the leader, which alone knows both ends).
// Bounded per journal; once a follower is behind the oldest mark kept, its lag is a lower bound.

import { assert } from '../../src/assert.js';

interface Marks {
  /** Raft indexes, increasing. */
  index: number[];
  txidBefore: number[];
  txidAfter: number[];
}

export class TxidMarks {
  private readonly journals = new Map<string, Marks>();

  constructor(private readonly maxMarksPerJournal = 8192) {
    assert(maxMarksPerJournal > 0, 'txid marks: the bound must be positive');
  }

  /** A batch of `jid` applied at Raft index `index`, taking the journal from txidBefore to txidAfter. */
  applied(jid: string, index: number, txidBefore: number, txidAfter: number): void {
    let m = this.journals.get(jid);
    if (!m) {
      m = { index: [], txidBefore: [], txidAfter: [] };
      this.journals.set(jid, m);
    }
    // Marks only move forward; a node that restored an older state (a snapshot install) starts over.
    if (m.index.length > 0 && index <= m.index[m.index.length - 1]!)
      m.index.length = m.txidBefore.length = m.txidAfter.length = 0;
    m.index.push(index);
    m.txidBefore.push(txidBefore);
    m.txidAfter.push(txidAfter);
    if (m.index.length > this.maxMarksPerJournal) {
      // Drop the oldest half at once: amortized O(1) per mark.
      const drop = m.index.length >> 1;
      m.index.splice(0, drop);
      m.txidBefore.splice(0, drop);
      m.txidAfter.splice(0, drop);
    }
  }

  /** Txids of `jid` a node holding the log through `matchIndex` lacks, given the journal's last txid here. */
  lagTxns(jid: string, matchIndex: number, lastTxId: number): number {
    const m = this.journals.get(jid);
    if (!m || m.index.length === 0) return 0;
    // The newest mark at or below matchIndex: what the follower holds.
    let lo = 0;
    let hi = m.index.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (m.index[mid]! <= matchIndex) lo = mid + 1;
      else hi = mid;
    }
    const held = lo > 0 ? m.txidAfter[lo - 1]! : m.txidBefore[0]!;
    return Math.max(0, lastTxId - held);
  }
}
