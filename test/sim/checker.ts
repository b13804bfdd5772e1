// The simulator's safety checkers. They watch every apply, install, election and acknowledgement and record
// violations of: election safety, state machine safety, leader completeness, log matching, and the
// durability of acknowledged writes. A checker that can never fire is a defect: see outside-model.test.ts.

import type { Entry, NodeId } from '../../src/raft/types.js';
import type { MemoryStorage } from '../../src/raft/memory-storage.js';

interface Committed {
  term: number;
  data: string;
  hash: number;
  by: NodeId;
}

function dataKey(d: Uint8Array): string {
  return Buffer.from(d.buffer, d.byteOffset, d.byteLength).toString('latin1');
}

export class Checker {
  readonly violations: string[] = [];
  /** Every command entry applied anywhere: index -> what was applied (all nodes must agree). */
  private readonly committed = new Map<number, Committed>();
  private readonly leaders = new Map<number, NodeId>();
  /** Writes acknowledged to a client: index -> data. */
  readonly acked = new Map<number, { term: number; data: string }>();
  maxCommittedIndex = 0;

  constructor(private readonly now: () => number) {}

  private violate(msg: string): void {
    if (this.violations.length < 50) this.violations.push(`t=${this.now().toFixed(1)}ms ${msg}`);
  }

  onApply(node: NodeId, e: Entry, hashAfter: number): void {
    const data = dataKey(e.data);
    const prev = this.committed.get(e.index);
    if (!prev) {
      this.committed.set(e.index, { term: e.term, data, hash: hashAfter, by: node });
      if (e.index > this.maxCommittedIndex) this.maxCommittedIndex = e.index;
    } else {
      if (prev.term !== e.term || prev.data !== data) {
        this.violate(`state machine safety: ${node} applied (${e.index}, t${e.term}, ${JSON.stringify(data)}) but ${prev.by} applied (t${prev.term}, ${JSON.stringify(prev.data)})`);
      } else if (prev.hash !== hashAfter) {
        this.violate(`state divergence: ${node}'s state after ${e.index} differs from ${prev.by}'s`);
      }
    }
    const ack = this.acked.get(e.index);
    if (ack && (ack.term !== e.term || ack.data !== data)) {
      this.violate(`acknowledged write lost: index ${e.index} was acked as ${JSON.stringify(ack.data)} but ${node} applied ${JSON.stringify(data)}`);
    }
  }

  onLeader(node: NodeId, term: number, log: MemoryStorage, unstableLast: number, termAt: (i: number) => number | undefined): void {
    const prev = this.leaders.get(term);
    if (prev !== undefined && prev !== node) this.violate(`election safety: ${prev} and ${node} both leaders in term ${term}`);
    this.leaders.set(term, node);
    // Leader completeness: every committed entry is in the new leader's log (or under its snapshot).
    const first = log.firstIndex();
    for (const [index, c] of this.committed) {
      if (index < first) continue;
      if (index > unstableLast) {
        this.violate(`leader completeness: ${node} (term ${term}) lacks committed index ${index} (last ${unstableLast})`);
        break;
      }
      const t = termAt(index);
      if (t !== c.term) {
        this.violate(`leader completeness: ${node} (term ${term}) has t${t} at committed index ${index}, committed t${c.term}`);
        break;
      }
    }
  }

  onAck(index: number, term: number, data: Uint8Array): void {
    const d = dataKey(data);
    const prev = this.acked.get(index);
    if (prev && (prev.term !== term || prev.data !== d)) this.violate(`two different writes acknowledged at index ${index}`);
    this.acked.set(index, { term, data: d });
    const c = this.committed.get(index);
    if (c && (c.term !== term || c.data !== d)) this.violate(`acknowledged write at ${index} differs from the committed entry`);
  }

  /** Log matching: where two durable logs hold the same (index, term), they are identical up to there. */
  checkLogMatching(logs: { id: NodeId; log: MemoryStorage }[]): void {
    for (let a = 0; a < logs.length; a++) {
      for (let b = a + 1; b < logs.length; b++) {
        const la = logs[a]!;
        const lb = logs[b]!;
        const lo = Math.max(la.log.firstIndex(), lb.log.firstIndex());
        const hi = Math.min(la.log.lastIndex(), lb.log.lastIndex());
        if (lo > hi) continue;
        let matched = false;
        for (let i = hi; i >= lo; i--) {
          const ta = la.log.term(i);
          const tb = lb.log.term(i);
          if (!matched) {
            if (ta === tb) matched = true;
            else continue;
          }
          if (ta !== tb) {
            this.violate(`log matching: ${la.id} and ${lb.id} agree at a later index but differ at ${i} (t${ta} vs t${tb})`);
            break;
          }
          const ea = la.log.entries(i, i + 1, Infinity)[0]!;
          const eb = lb.log.entries(i, i + 1, Infinity)[0]!;
          if (dataKey(ea.data) !== dataKey(eb.data) || ea.type !== eb.type) {
            this.violate(`log matching: ${la.id} and ${lb.id} hold different entries at (${i}, t${ta})`);
            break;
          }
        }
      }
    }
  }

  /** At the end: every acknowledged write is committed as acknowledged. */
  checkAcked(appliedBy: (index: number) => boolean): void {
    for (const [index, a] of this.acked) {
      const c = this.committed.get(index);
      if (!c) {
        if (appliedBy(index)) continue;
        this.violate(`acknowledged write at ${index} (${JSON.stringify(a.data)}) was never applied anywhere`);
      } else if (c.term !== a.term || c.data !== a.data) {
        this.violate(`acknowledged write at ${index} lost: committed ${JSON.stringify(c.data)}`);
      }
    }
  }
}
