// qjm status's second table: how long each node's disk and each follower's acknowledgements take lately,
// from the nodes' /status (`sync`, and the leader's `followers[id].ack`).

import type { LatencyJson, NodeStatusJson } from '../node-status.js';
import { renderTable } from '../text-table.js';

/**
 * Each node's log writes (with their fdatasync) over the last minute, and each follower's acknowledgements
 * as the leader sees them (an append leaving to its acknowledgement): p50 / p99 in ms; '-' when none lately.
 */
export function latencyTable(statuses: NodeStatusJson[], leader: NodeStatusJson | null): string {
  const pair = (l: LatencyJson | null | undefined) => (l ? `${l.p50Ms.toFixed(1)} / ${l.p99Ms.toFixed(1)}` : '-');
  const rows = statuses.map((s) => [
    s.id,
    pair(s.sync),
    leader && s.id !== leader.id ? pair(leader.followers[s.id]?.ack) : '-',
  ]);
  return renderTable(['ID', 'SYNC P50 / P99 (MS)', 'ACK P50 / P99 (MS)'], rows);
}
