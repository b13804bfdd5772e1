// The per-second history: percentiles (nearest rank), one sample per second, the ring's bound and the bound
// on the latencies kept within one second.

import { expect } from 'chai';
import { History } from '../../../../journalnode/observe/history.js';
import { percentile } from '../../../../src/replica/latency-window.js';

describe('per-second history', () => {
  it('percentile: nearest rank', () => {
    const table: [number[], number, number][] = [
      [[5], 0.5, 5],
      [[5], 0.99, 5],
      [[1, 2, 3, 4], 0.5, 2],
      [[1, 2, 3, 4], 0.75, 3],
      [[1, 2, 3, 4], 1, 4],
      [Array.from({ length: 100 }, (_, i) => i + 1), 0.99, 99],
      [Array.from({ length: 1000 }, (_, i) => i + 1), 0.99, 990],
    ];
    for (const [values, p, want] of table) expect(percentile(values, p), `${p} of ${values.length}`).to.equal(want);
    expect(() => percentile([], 0.5)).to.throw();
  });

  it('one sample per second: txns applied, fdatasyncs and their p50 / p99; null when none', () => {
    const h = new History(600);
    h.txnsApplied(10);
    h.txnsApplied(5);
    for (const ms of [1, 2, 3, 4, 100]) h.fsynced(ms);
    h.sample(1_000_000);
    h.sample(1_001_000);
    expect(h.recent(10)).to.deep.equal({
      t: [1000, 1001],
      txns: [15, 0],
      fsyncs: [5, 0],
      fsyncP50Ms: [3, null],
      fsyncP99Ms: [100, null],
    });
    expect(h.recent(1).t).to.deep.equal([1001]);
  });

  it('bounded: the ring keeps the newest samples; one second keeps at most its reservoir of latencies', () => {
    const h = new History(3, 8);
    for (let s = 0; s < 5; s++) h.sample(s * 1000);
    expect(h.recent(10).t).to.deep.equal([2, 3, 4]);
    for (let i = 0; i < 10_000; i++) h.fsynced(i < 9_900 ? 1 : 50);
    h.sample(5000);
    const r = h.recent(1);
    expect(r.fsyncs).to.deep.equal([10_000]);
    expect(r.fsyncP50Ms[0]).to.be.oneOf([1, 50]);
    expect(h.recent(10).t).to.deep.equal([3, 4, 5]);
  });
});
