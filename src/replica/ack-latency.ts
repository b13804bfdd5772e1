// A leader's view of how fast each follower acknowledges: from the moment an append carrying entries up to
// index i leaves this node until the follower acknowledges i (the network both ways and the follower's own
// write and fdatasync). Bounded: at most MAX_PENDING_APPENDS unacknowledged appends remembered per follower
// (the oldest forgotten), a window of recent samples each, and only the followers asked about are kept.

import { MessageType } from '../raft/types.js';
import type { Message, NodeId } from '../raft/types.js';
import { LatencyWindow } from './latency-window.js';
import type { LatencySummary } from './latency-window.js';

/** Appends remembered per follower while unacknowledged: a pipeline's worth, many times over. */
export const MAX_PENDING_APPENDS = 1024;

export class AckLatency {
  private readonly pending = new Map<NodeId, { index: number; atMs: number }[]>();
  private readonly windows = new Map<NodeId, LatencyWindow>();

  /** Messages this leader sends: its appends that carry entries start a wait. */
  sent(messages: readonly Message[], nowMs: number): void {
    for (const m of messages) {
      if (m.type !== MessageType.App || m.entries.length === 0) continue;
      const list = this.pending.get(m.to) ?? [];
      this.pending.set(m.to, list);
      list.push({ index: m.entries[m.entries.length - 1]!.index, atMs: nowMs });
      if (list.length > MAX_PENDING_APPENDS) list.shift();
    }
  }

  /** A message this leader received: an acknowledgement ends the waits of the appends it covers. */
  received(m: Message, nowMs: number): void {
    if (m.type !== MessageType.AppResp || m.reject) return;
    const list = this.pending.get(m.from);
    if (!list) return;
    let n = 0;
    while (n < list.length && list[n]!.index <= m.index) n++;
    if (n === 0) return;
    const w = this.windows.get(m.from) ?? new LatencyWindow(256);
    this.windows.set(m.from, w);
    for (const p of list.splice(0, n)) w.observe(nowMs, nowMs - p.atMs);
  }

  /** Leadership was lost or gained: nothing this node sent as leader is waited on anymore. */
  reset(): void {
    this.pending.clear();
  }

  /** p50 and p99 per follower among `ids` (the others are forgotten). */
  summaries(ids: readonly NodeId[], nowMs: number): Record<NodeId, LatencySummary | null> {
    for (const id of [...this.windows.keys()]) if (!ids.includes(id)) this.windows.delete(id);
    for (const id of [...this.pending.keys()]) if (!ids.includes(id)) this.pending.delete(id);
    return Object.fromEntries(ids.map((id) => [id, this.windows.get(id)?.summary(nowMs) ?? null]));
  }
}
