// Per-second samples of this node's activity over the last minutes, in a fixed ring: transactions applied,
// log fdatasyncs and their latency percentiles within each second. The dashboard draws its charts from every
// node's ring. Bounded twice: the ring by samples, the latencies of one second by a reservoir.

import { assert } from '../../src/assert.js';
import { percentile } from '../../src/replica/latency-window.js';

/** Column arrays, oldest first; `t` is the sample's second (Unix time, this node's clock). */
export interface HistoryJson {
  t: number[];
  txns: number[];
  fsyncs: number[];
  /** null: no fdatasync in that second. */
  fsyncP50Ms: (number | null)[];
  fsyncP99Ms: (number | null)[];
}

interface Sample {
  t: number;
  txns: number;
  fsyncs: number;
  p50: number | null;
  p99: number | null;
}

export class History {
  private readonly ring: Sample[] = [];
  private txns = 0;
  private fsyncs = 0;
  /** A uniform sample of this second's fdatasync latencies (reservoir sampling past the bound). */
  private latenciesMs: number[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(
    readonly capacitySamples = 600,
    private readonly maxLatenciesPerSample = 4096,
  ) {
    assert(capacitySamples > 0 && maxLatenciesPerSample > 0, 'history: bounds must be positive');
  }

  txnsApplied(n: number): void {
    this.txns += n;
  }

  fsynced(ms: number): void {
    this.fsyncs++;
    if (this.latenciesMs.length < this.maxLatenciesPerSample) this.latenciesMs.push(ms);
    else {
      const k = Math.floor(Math.random() * this.fsyncs);
      if (k < this.maxLatenciesPerSample) this.latenciesMs[k] = ms;
    }
  }

  /** Closes the current second into a sample. */
  sample(nowMs: number): void {
    const sorted = this.latenciesMs.sort((a, b) => a - b);
    const has = sorted.length > 0;
    const round = (ms: number) => Math.round(ms * 1000) / 1000;
    this.ring.push({
      t: Math.round(nowMs / 1000),
      txns: this.txns,
      fsyncs: this.fsyncs,
      p50: has ? round(percentile(sorted, 0.5)) : null,
      p99: has ? round(percentile(sorted, 0.99)) : null,
    });
    if (this.ring.length > this.capacitySamples) this.ring.shift();
    this.txns = 0;
    this.fsyncs = 0;
    this.latenciesMs = [];
  }

  /** Samples once a second until stop(). */
  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.sample(Date.now()), 1000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** The newest `seconds` samples. */
  recent(seconds: number): HistoryJson {
    const s = this.ring.slice(Math.max(0, this.ring.length - seconds));
    return {
      t: s.map((x) => x.t),
      txns: s.map((x) => x.txns),
      fsyncs: s.map((x) => x.fsyncs),
      fsyncP50Ms: s.map((x) => x.p50),
      fsyncP99Ms: s.map((x) => x.p99),
    };
  }
}
