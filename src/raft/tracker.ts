// The leader's view of its followers and a candidate's tally (etcd's tracker/): replication progress per
// member, votes received, and the quorum questions asked of them (what is committed, who is active, who
// won). The configuration is passed in; the core owns it.

import { Progress } from './progress.js';
import { committedIndex, isQuorum, voteResult } from './quorum.js';
import type { VoteResult } from './quorum.js';
import type { ConfState, NodeId } from './types.js';

export class ProgressTracker {
  readonly progress = new Map<NodeId, Progress>();
  private readonly votes = new Map<NodeId, boolean>();

  constructor(private readonly inflight: { maxInflightAppends: number; maxInflightBytes: number }) {}

  private newProgress(next: number): Progress {
    return new Progress(next, this.inflight.maxInflightAppends, this.inflight.maxInflightBytes);
  }

  /** Everyone starts over at `next` (a new term); `self` is counted only for `selfMatch`, what its disk holds. */
  reset(members: readonly NodeId[], next: number, self: NodeId, selfMatch: number): void {
    this.progress.clear();
    for (const id of members) {
      const pr = this.newProgress(next);
      if (id === self) pr.match = selfMatch;
      this.progress.set(id, pr);
    }
  }

  /** The configuration changed: new members start probing at `next`, removed ones are forgotten. */
  sync(members: readonly NodeId[], next: number): void {
    for (const id of members) {
      if (this.progress.has(id)) continue;
      const pr = this.newProgress(next);
      // A new member is treated as active, so check-quorum gives it one round.
      pr.recentActive = true;
      this.progress.set(id, pr);
    }
    const keep = new Set(members);
    for (const id of [...this.progress.keys()]) if (!keep.has(id)) this.progress.delete(id);
  }

  /** The highest index a quorum of the configuration holds. */
  committed(conf: ConfState): number {
    return committedIndex(conf, (id) => this.progress.get(id)?.match);
  }

  /** Check-quorum: was a quorum (self included) heard from since the last call? Resets the marks. */
  quorumActive(conf: ConfState, self: NodeId): boolean {
    const active = new Set<NodeId>();
    for (const [id, pr] of this.progress) {
      if (id === self || pr.recentActive) active.add(id);
      if (id !== self) pr.recentActive = false;
    }
    return isQuorum(conf, active);
  }

  resetVotes(): void {
    this.votes.clear();
  }

  /** Records a vote (the first answer of each voter counts) and returns the election's state. */
  recordVote(conf: ConfState, id: NodeId, granted: boolean): VoteResult {
    if (!this.votes.has(id)) this.votes.set(id, granted);
    return voteResult(conf, this.votes);
  }
}
