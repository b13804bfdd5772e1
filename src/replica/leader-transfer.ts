// Leadership transfer as a client waits for it (the core does the TimeoutNow dance): done when the target
// is seen leading, failed at its deadline. Also the choice of a target when none is named.

import type { NodeId } from '../raft/types.js';
import type { RaftStatus } from '../raft/raw-node.js';
import { qjmError } from './client-waits.js';
import type { Callback } from './client-waits.js';

export class LeaderTransfer {
  constructor(
    readonly to: NodeId,
    private readonly deadlineMs: number,
    private readonly cb: Callback<void>,
  ) {}

  /** The leader changed: true (and the waiter told) once it is the target. */
  observeLeader(lead: NodeId): boolean {
    if (lead !== this.to) return false;
    this.cb(null);
    return true;
  }

  /** True (and the waiter told) once the deadline passed. */
  expire(nowMs: number): boolean {
    if (this.deadlineMs > nowMs) return false;
    this.cb(qjmError('TIMEOUT', `leadership did not move to ${this.to} in time`));
    return true;
  }

  fail(e: Parameters<Callback<void>>[0]): void {
    this.cb(e);
  }
}

/**
 * The voter to hand leadership to: the most caught-up other voter; with `caughtUpOnly`, only one holding the
 * leader's whole log (a drain must not wait for the target to catch up). Undefined when there is none.
 */
export function transferTarget(s: RaftStatus, caughtUpOnly: boolean): NodeId | undefined {
  const best = Object.entries(s.progress)
    .filter(([id, p]) => s.conf.voters.includes(id) && (!caughtUpOnly || p.match === s.lastIndex))
    .sort((a, b) => b[1].match - a[1].match)[0];
  return best?.[0];
}
