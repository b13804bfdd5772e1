// This node's disk as the replica sees it: how long its recent log writes took (each a write and its
// fdatasync, what a write waits for), a warning naming the node, the bytes and the time of a slow one, and
// whether a leader's write in flight has stalled past leaderSyncStallMs (then it hands leadership over:
// a leader whose disk stalls holds every write of the cluster with it).

import type { Logger } from '../logger.js';
import type { NodeId } from '../raft/types.js';
import { LatencyWindow } from './latency-window.js';
import type { LatencySummary } from './latency-window.js';
import type { SyncedWrite } from './persist-queue.js';

export interface SyncHealthOptions {
  slowSyncWarnMs: number;
  /** 0: a stalled leader keeps leading. */
  leaderSyncStallMs: number;
}

export class SyncHealth {
  private readonly window = new LatencyWindow();

  constructor(
    private readonly id: NodeId,
    private readonly options: SyncHealthOptions,
    private readonly logger: Logger,
  ) {}

  /** A write became durable. */
  synced(w: SyncedWrite, nowMs: number): void {
    this.window.observe(nowMs, w.ms);
    if (w.ms < this.options.slowSyncWarnMs) return;
    const range = w.entries === 0 ? 'the hard state' : `entries ${w.firstIndex}-${w.firstIndex + w.entries - 1}`;
    this.logger.warn(
      { node: this.id, ms: Math.round(w.ms), bytes: w.bytes, entries: w.entries, firstIndex: w.firstIndex },
      `slow disk: the log write of ${w.bytes} bytes (${range}) on ${this.id} took ${Math.round(w.ms)} ms (slowSyncWarnMs ${this.options.slowSyncWarnMs})`,
    );
  }

  /** p50 and p99 of the last minute's writes. */
  summary(nowMs: number): LatencySummary | null {
    return this.window.summary(nowMs);
  }

  /** Whether a write unfinished for `inFlightMs` is past the bound at which a leader hands leadership over. */
  stalled(inFlightMs: number): boolean {
    return this.options.leaderSyncStallMs > 0 && inFlightMs >= this.options.leaderSyncStallMs;
  }
}
