// A membership change driven by the leader (braft's change_peers): new peers first join as learners and catch
// up (they acknowledged something, and are within catchupMargin entries), then one joint-consensus change
// swaps the voters, binding each new voter to the storage it caught up on; the core leaves the joint
// configuration by itself. It uses only RawNode's API.

import type { RawNode } from '../raft/raw-node.js';
import type { ProposeResult } from '../raft/raft.js';
import { ConfChangeOp, isJoint } from '../raft/types.js';
import type { ConfChange, NodeId, Peer } from '../raft/types.js';
import type { QjmError } from '../errors.js';
import { qjmError } from './client-waits.js';
import type { Callback } from './client-waits.js';

type RefusedProposal = Extract<ProposeResult, { ok: false }>;

export interface ChangeContext {
  raw: RawNode;
  nowMs: number;
  catchupMargin: number;
  addressOf(id: NodeId): string | undefined;
  /** The storage a learner being promoted is bound to ('' when unknown): a voter never counts from another. */
  bindingOf(id: NodeId): string;
  /** The typed error for a refused proposal. */
  refused(res: RefusedProposal): QjmError;
}

/**
 * Whether a learner may be promoted: it has acknowledged something since this leader tracks it (match > 0,
 * so it really replicates: a node that never answered is not "within the margin" of a short log), and it is
 * within catchupMargin entries of the leader's last index.
 */
export function caughtUp(match: number | undefined, lastIndex: number, catchupMargin: number): boolean {
  return match !== undefined && match > 0 && match + catchupMargin >= lastIndex;
}

export class MembershipChange {
  private phase: 'catch-up' | 'joint' = 'catch-up';
  private finished = false;

  constructor(
    readonly target: readonly Peer[],
    private readonly deadlineMs: number,
    private readonly timeoutMs: number,
    private readonly cb: Callback<void>,
  ) {}

  get done(): boolean {
    return this.finished;
  }

  fail(e: QjmError): void {
    this.finish(e);
  }

  private finish(e: QjmError | null): void {
    if (this.finished) return;
    this.finished = true;
    this.cb(e);
  }

  /** Moves the change forward as far as the configuration allows (called by the leader after each apply and tick). */
  advance(c: ChangeContext): void {
    if (this.finished) return;
    if (c.nowMs > this.deadlineMs)
      return this.finish(qjmError('TIMEOUT', `membership change did not finish within ${this.timeoutMs} ms`));
    if (c.raw.confChangePending()) return; // the previous step is not applied yet
    const conf = c.raw.conf();
    if (isJoint(conf)) return; // the core leaves the joint configuration by itself
    const target = new Set(this.target.map((p) => p.id));
    const voters = new Set(conf.voters);
    if (voters.size === target.size && [...target].every((id) => voters.has(id))) return this.finish(null);
    if (this.phase === 'joint') return;
    const newcomers = this.target.filter((p) => !voters.has(p.id));
    const notLearners = newcomers.filter((p) => !conf.learners.includes(p.id));
    if (notLearners.length > 0) {
      this.propose(c, {
        changes: notLearners.map((peer) => ({ op: ConfChangeOp.AddLearner, peer })),
        leaveJoint: false,
      });
      return;
    }
    const last = c.raw.lastIndex();
    const lagging = newcomers.filter((p) => !caughtUp(c.raw.followerProgress(p.id)?.match, last, c.catchupMargin));
    if (lagging.length > 0) return; // still catching up
    this.phase = 'joint';
    this.propose(c, {
      changes: [
        // Each newcomer is bound to the storage it caught up on: its votes and acknowledgements count from it alone.
        ...newcomers.map((peer) => ({ op: ConfChangeOp.AddVoter, peer: { ...peer, storageId: c.bindingOf(peer.id) } })),
        ...conf.voters
          .filter((id) => !target.has(id))
          .map((id) => ({ op: ConfChangeOp.Remove, peer: { id, address: c.addressOf(id) ?? '' } })),
      ],
      leaveJoint: false,
    });
  }

  private propose(c: ChangeContext, cc: ConfChange): void {
    const res = c.raw.proposeConfChange(cc);
    if (!res.ok) this.finish(c.refused(res));
  }
}
