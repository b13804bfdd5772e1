// Recent latencies and their percentiles: what /status shows of a node's own log writes and of each
// follower's acknowledgements. Bounded twice: a ring of the newest samples, and only those within the window
// count. Pure: time arrives as arguments.

import { assert } from '../assert.js';

/** The nearest-rank percentile of sorted values (p in (0, 1]). */
export function percentile(sorted: readonly number[], p: number): number {
  assert(sorted.length > 0 && p > 0 && p <= 1, 'percentile: values and p in (0, 1] expected');
  return sorted[Math.ceil(p * sorted.length) - 1]!;
}

export interface LatencySummary {
  p50Ms: number;
  p99Ms: number;
  /** Samples the percentiles are over (within the window, at most the ring's capacity). */
  samples: number;
}

export class LatencyWindow {
  private readonly atMs: number[] = [];
  private readonly valuesMs: number[] = [];
  /** Where the next sample goes once the ring is full. */
  private next = 0;

  constructor(
    readonly capacity = 1024,
    readonly windowMs = 60_000,
  ) {
    assert(capacity > 0 && windowMs > 0, 'latency window: bounds must be positive');
  }

  observe(nowMs: number, ms: number): void {
    if (this.atMs.length < this.capacity) {
      this.atMs.push(nowMs);
      this.valuesMs.push(ms);
      return;
    }
    this.atMs[this.next] = nowMs;
    this.valuesMs[this.next] = ms;
    this.next = (this.next + 1) % this.capacity;
  }

  /** p50 and p99 of the samples of the last windowMs; null when there is none. */
  summary(nowMs: number): LatencySummary | null {
    const recent = this.valuesMs.filter((_, i) => nowMs - this.atMs[i]! <= this.windowMs).sort((a, b) => a - b);
    if (recent.length === 0) return null;
    const round = (ms: number) => Math.round(ms * 1000) / 1000;
    return { p50Ms: round(percentile(recent, 0.5)), p99Ms: round(percentile(recent, 0.99)), samples: recent.length };
  }
}
