// Pure majority and joint-majority math: the committed index of a configuration and the result of a vote.
// No state: every function takes the configuration and a lookup, so tables test it exhaustively.

import type { ConfState, NodeId } from './types.js';

export enum VoteResult {
  Pending = 'pending',
  Won = 'won',
  Lost = 'lost',
}

/**
 * The highest index acknowledged by a majority of `voters`, given each voter's acknowledged index
 * (undefined counts as 0). An empty voter set imposes no constraint (Infinity), which makes the
 * joint rule below collapse to the simple one when there is no outgoing half.
 */
export function majorityCommitted(voters: readonly NodeId[], acked: (id: NodeId) => number | undefined): number {
  const n = voters.length;
  if (n === 0) return Infinity;
  const idx = voters.map((id) => acked(id) ?? 0).sort((a, b) => b - a);
  // With idx sorted high to low, the entry at position floor(n/2) is held by a majority (n/2+1 voters).
  return idx[Math.floor(n / 2)]!;
}

/** Joint consensus: an index is committed only if it is committed in both halves. */
export function committedIndex(conf: ConfState, acked: (id: NodeId) => number | undefined): number {
  const incoming = majorityCommitted(conf.voters, acked);
  const outgoing = majorityCommitted(conf.votersOutgoing, acked);
  const c = Math.min(incoming, outgoing);
  // Both halves empty cannot happen in a live configuration; report nothing committed.
  return c === Infinity ? 0 : c;
}

/** The result of a vote in one majority configuration; votes maps voter to granted (absent = no answer). */
export function majorityVoteResult(voters: readonly NodeId[], votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  if (voters.length === 0) return VoteResult.Won;
  let granted = 0;
  let missing = 0;
  for (const id of voters) {
    const v = votes.get(id);
    if (v === undefined) missing++;
    else if (v) granted++;
  }
  const q = Math.floor(voters.length / 2) + 1;
  if (granted >= q) return VoteResult.Won;
  if (granted + missing >= q) return VoteResult.Pending;
  return VoteResult.Lost;
}

/** Joint vote: won only if both halves are won, lost as soon as either half is lost. */
export function voteResult(conf: ConfState, votes: ReadonlyMap<NodeId, boolean>): VoteResult {
  const a = majorityVoteResult(conf.voters, votes);
  const b = majorityVoteResult(conf.votersOutgoing, votes);
  if (a === VoteResult.Won && b === VoteResult.Won) return VoteResult.Won;
  if (a === VoteResult.Lost || b === VoteResult.Lost) return VoteResult.Lost;
  return VoteResult.Pending;
}

/** True when the given set of nodes forms a quorum of the (possibly joint) configuration. */
export function isQuorum(conf: ConfState, members: ReadonlySet<NodeId>): boolean {
  const votes = new Map<NodeId, boolean>();
  for (const id of [...conf.voters, ...conf.votersOutgoing]) votes.set(id, members.has(id));
  return voteResult(conf, votes) === VoteResult.Won;
}
