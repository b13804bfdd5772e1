// LogCabin-style invariant checks of one node's Raft state, run by tests after every step: basic
// invariants of a single state, and delta invariants between the state before a step and after it.

import type { Raft } from './raft.js';
import { NONE, StateType } from './types.js';
import type { NodeId } from './types.js';

export interface CapturedState {
  id: NodeId;
  term: number;
  vote: NodeId;
  lead: NodeId;
  state: StateType;
  committed: number;
  applied: number;
  lastIndex: number;
  /** Term of the entry at `committed`, if the log still holds it. */
  termAtCommit: number | undefined;
}

export function captureState(r: Raft): CapturedState {
  return {
    id: r.id,
    term: r.term,
    vote: r.vote,
    lead: r.lead,
    state: r.state,
    committed: r.log.committed,
    applied: r.log.applied,
    lastIndex: r.log.lastIndex(),
    termAtCommit: r.log.term(r.log.committed),
  };
}

/** Returns every violated invariant (empty when all hold). `prev` is the state captured before the step. */
export function checkInvariants(prev: CapturedState | null, r: Raft): string[] {
  const v: string[] = [];
  const log = r.log;
  const committed = log.committed;
  const lastIndex = log.lastIndex();
  // --- basic
  if (!(log.applied <= committed)) v.push(`applied ${log.applied} > committed ${committed}`);
  if (!(committed <= lastIndex)) v.push(`committed ${committed} > lastIndex ${lastIndex}`);
  if (!(log.stableIndex() <= lastIndex)) v.push(`stable ${log.stableIndex()} > lastIndex ${lastIndex}`);
  if (!(log.firstIndex() - 1 <= Math.max(log.applied, log.stableIndex())))
    v.push(`log compacted past applied and durable state`);
  const lastTerm = log.term(lastIndex);
  if (lastTerm === undefined) v.push(`term of last index ${lastIndex} unknown`);
  else if (lastTerm > r.term) v.push(`last entry term ${lastTerm} > current term ${r.term}`);
  const u = log.unstable;
  for (let i = 1; i < u.entries.length; i++) {
    if (u.entries[i]!.term < u.entries[i - 1]!.term) v.push(`unstable terms decrease at ${u.offset + i}`);
    if (u.entries[i]!.index !== u.offset + i) v.push(`unstable index gap at ${u.offset + i}`);
  }
  switch (r.state) {
    case StateType.Leader: {
      if (r.lead !== r.id) v.push(`leader's lead is ${r.lead}`);
      if (r.vote !== r.id) v.push(`leader voted for ${r.vote}`);
      for (const [id, pr] of r.progress) {
        if (!(pr.match < pr.next)) v.push(`progress ${id}: match ${pr.match} >= next ${pr.next}`);
        if (!(pr.match <= lastIndex)) v.push(`progress ${id}: match ${pr.match} > lastIndex ${lastIndex}`);
        if (id === r.id && pr.match > log.stableIndex()) v.push(`leader counts itself past its durable index`);
      }
      break;
    }
    case StateType.Candidate:
      if (r.vote !== r.id) v.push(`candidate voted for ${r.vote}`);
      if (r.lead !== NONE) v.push(`candidate has a leader`);
      break;
    case StateType.PreCandidate:
      if (r.lead !== NONE) v.push(`pre-candidate has a leader`);
      break;
    case StateType.Follower:
      if (r.lead === r.id) v.push(`follower thinks it leads`);
      break;
  }
  if (!prev) return v;
  // --- delta
  if (r.term < prev.term) v.push(`term went back ${prev.term} -> ${r.term}`);
  if (r.term === prev.term) {
    if (prev.vote !== NONE && r.vote !== prev.vote)
      v.push(`vote changed within term ${r.term}: ${prev.vote} -> ${r.vote}`);
    if (prev.lead !== NONE && r.lead !== NONE && r.lead !== prev.lead)
      v.push(`two leaders seen in term ${r.term}: ${prev.lead}, ${r.lead}`);
    if (prev.state === StateType.Leader && r.state === StateType.Leader && lastIndex < prev.lastIndex) {
      v.push(`leader log shrank ${prev.lastIndex} -> ${lastIndex}`);
    }
    if (prev.state === StateType.Leader && (r.state === StateType.Candidate || r.state === StateType.PreCandidate)) {
      v.push(`leader became ${r.state} without a new term`);
    }
  }
  if (committed < prev.committed) v.push(`commit went back ${prev.committed} -> ${committed}`);
  if (log.applied < prev.applied) v.push(`applied went back ${prev.applied} -> ${log.applied}`);
  if (prev.termAtCommit !== undefined && prev.committed >= log.firstIndex() - 1) {
    const t = log.term(prev.committed);
    if (t !== undefined && t !== prev.termAtCommit)
      v.push(`committed entry ${prev.committed} changed term ${prev.termAtCommit} -> ${t}`);
  }
  return v;
}
