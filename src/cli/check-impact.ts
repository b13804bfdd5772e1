// `qjm check-impact --node ID`: would the cluster keep a quorum of caught-up voters without that node?
// Read off the leader's /status (its view of every follower: reachable recently, how far behind), as etcd's
// strict reconfiguration check and LogDevice's safety checker do before maintenance. Stopping a node keeps
// the configuration (its quorum counts the stopped node as missing); removing one shrinks it.

import type { NodeStatusJson } from '../node-status.js';

export type ImpactAction = 'stop' | 'remove';

export interface Impact {
  safe: boolean;
  /** What the verdict rests on, one line per voter, then the verdict. */
  lines: string[];
}

interface VoterHealth {
  id: string;
  ok: boolean;
  why: string;
}

/** Each voter's health as the leader sees it: caught up means heard from lately and within maxLag entries. */
function voterHealth(leader: NodeStatusJson, voters: string[], maxLag: number): VoterHealth[] {
  return voters.map((id) => {
    if (id === leader.id) return { id, ok: true, why: 'the leader' };
    const f = leader.followers[id];
    if (!f) return { id, ok: false, why: 'the leader has no progress for it' };
    if (!f.recentActive) return { id, ok: false, why: 'not heard from within an election timeout' };
    if (f.lagEntries > maxLag) return { id, ok: false, why: `${f.lagEntries} entries behind (more than ${maxLag})` };
    return { id, ok: true, why: `caught up (${f.lagEntries} behind)` };
  });
}

/**
 * The verdict for `action` on `node`, from the leader's status. A joint configuration (a change under way)
 * is never judged safe: its two majorities are about to become one.
 */
export function assessImpact(leader: NodeStatusJson, node: string, action: ImpactAction, maxLag: number): Impact {
  const voters = leader.peers.filter((p) => p.role === 'voter' || p.role === 'outgoing-voter').map((p) => p.id);
  if (!voters.includes(node)) {
    return { safe: true, lines: [`${node} is not a voter (voters: ${voters.join(', ')}): no quorum depends on it`] };
  }
  if (leader.joint) {
    return { safe: false, lines: ['a membership change is in progress (joint configuration): wait for it to end'] };
  }
  const health = voterHealth(leader, voters, maxLag);
  const lines = health.map((h) => `${h.id}: ${h.id === node ? `${h.why} — the node to ${action}` : h.why}`);
  const remaining = health.filter((h) => h.id !== node);
  const healthy = remaining.filter((h) => h.ok).length;
  // Stopping keeps the configuration (quorum of all voters); removing shrinks it (quorum of the rest).
  const size = action === 'stop' ? voters.length : voters.length - 1;
  const quorum = Math.floor(size / 2) + 1;
  const safe = size > 0 && healthy >= quorum;
  const verdict = safe
    ? `SAFE: without ${node}, ${healthy} caught-up voter(s) of ${size} remain; a quorum is ${quorum}` +
      (healthy === quorum ? ' (no failure can be tolerated until it returns)' : '')
    : `UNSAFE: without ${node}, only ${healthy} caught-up voter(s) of ${size} remain; a quorum is ${quorum}: writes would stop`;
  return { safe, lines: [...lines, verdict] };
}
