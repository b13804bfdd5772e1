// The ReadIndex queue a leader holds until a quorum confirms its leadership: bounded (the read past the bound
// is refused, and the leader answers it so), released in order by a confirmation of it or of any later read.

import { expect } from 'chai';
import { ReadOnlyQueue } from '../../../src/raft/read-only.js';
import type { PendingRead } from '../../../src/raft/read-only.js';
import { Harness } from '../../support/harness.js';

const conf = { voters: ['a', 'b', 'c'], votersOutgoing: [], learners: [] };
const ctx = (n: number) => new TextEncoder().encode(`read-${n}`);
const read = (n: number): PendingRead => ({ index: n, context: ctx(n), from: 'a' });
const indexes = (rs: PendingRead[]) => rs.map((r) => r.index);

describe('ReadIndex queue', () => {
  it('holds at most maxPending reads: the next is refused as full, a duplicate is not queued twice', () => {
    const q = new ReadOnlyQueue(3);
    expect([1, 2, 3].map((n) => q.add(read(n), 'a'))).to.deep.equal(['queued', 'queued', 'queued']);
    expect(q.add(read(1), 'a')).to.equal('duplicate');
    expect(q.add(read(4), 'a')).to.equal('full');
    expect(q.size).to.equal(3);
    // Released reads make room again.
    expect(indexes(q.ack('b', ctx(2), conf))).to.deep.equal([1, 2]);
    expect(q.add(read(4), 'a')).to.equal('queued');
  });

  it('a confirmation releases that read and every older one, oldest first; a second ack of it releases nothing', () => {
    const q = new ReadOnlyQueue(100);
    for (let n = 1; n <= 5; n++) q.add(read(n), 'a');
    expect(q.ack('b', ctx(5), { ...conf, voters: ['a', 'b', 'c', 'd', 'e'] }), 'no quorum yet').to.deep.equal([]);
    expect(indexes(q.ack('b', ctx(3), conf))).to.deep.equal([1, 2, 3]);
    expect(q.ack('c', ctx(3), conf)).to.deep.equal([]);
    expect(q.lastContext()).to.deep.equal(ctx(5));
    expect(indexes(q.drain())).to.deep.equal([4, 5]);
    expect(q.lastContext()).to.equal(undefined);
  });

  it('thousands of reads confirmed one at a time: each released once, in order (the array is compacted)', () => {
    const q = new ReadOnlyQueue(10);
    const released: number[] = [];
    for (let n = 1; n <= 5000; n++) {
      expect(q.add(read(n), 'a')).to.equal('queued');
      if (n % 3 === 0) released.push(...indexes(q.ack('b', ctx(n - 1), conf)));
    }
    released.push(...indexes(q.drain()));
    expect(released).to.deep.equal(Array.from({ length: 5000 }, (_, i) => i + 1));
  });

  it('a leader holding maxPendingReads unconfirmed reads refuses the next one (ok: false), and serves the rest', () => {
    const h = new Harness(['n1', 'n2', 'n3'], { maxPendingReads: 2 });
    h.elect('n1');
    h.heartbeat('n1');
    // Heartbeats are lost: nothing confirms the reads.
    h.isolate('n1');
    for (const c of ['r1', 'r2', 'r3']) h.readIndex('n1', c);
    const decode = (r: { context: Uint8Array; ok: boolean }) => `${new TextDecoder().decode(r.context)}:${r.ok}`;
    expect(h.node('n1').reads.map(decode)).to.deep.equal(['r3:false']);
    h.heal();
    h.heartbeat('n1');
    expect(h.node('n1').reads.map(decode)).to.deep.equal(['r3:false', 'r1:true', 'r2:true']);
  });
});
