// Membership changes: validating a ConfChange against the current configuration and computing the next
// one. Every change of voters goes through a joint configuration (C_old,new), left by a second entry and
// confirmed by a third, empty one (which only the core proposes: see Raft.maybeAutoConfChange).

import { cloneConf, ConfChangeOp, isJoint } from './types.js';
import type { ConfChange, ConfChangeCodec, ConfState, NodeId } from './types.js';

/** Why the change cannot be applied to `conf`, or null if it can. */
export function validateConfChange(conf: ConfState, cc: ConfChange): string | null {
  if (cc.leaveJoint) {
    if (cc.changes.length > 0) return 'leave-joint carries no changes';
    if (!isJoint(conf)) return 'not in a joint configuration';
    return null;
  }
  if (isJoint(conf)) return 'a joint configuration must be left before the next change';
  // No changes: the confirmation of a leave-joint, which changes nothing (only the core proposes one).
  if (cc.changes.length === 0) return null;
  const seen = new Set<NodeId>();
  for (const c of cc.changes) {
    const id = c.peer.id;
    if (id === '') return 'a change names no peer';
    if (seen.has(id)) return `peer ${id} named twice`;
    seen.add(id);
    const voter = conf.voters.includes(id);
    const learner = conf.learners.includes(id);
    switch (c.op) {
      case ConfChangeOp.AddVoter:
        if (voter) return `${id} is already a voter`;
        break;
      case ConfChangeOp.AddLearner:
        if (voter) return `${id} is a voter: remove it instead of demoting it`;
        if (learner) return `${id} is already a learner`;
        break;
      case ConfChangeOp.Remove:
        if (!voter && !learner) return `${id} is not a member`;
        break;
      default:
        return `unknown change op ${String(c.op)}`;
    }
  }
  const next = applyConfChange(conf, cc);
  if (next.voters.length === 0) return 'the change would leave no voters';
  return null;
}

/** The configuration after `cc` (assumed valid). */
export function applyConfChange(conf: ConfState, cc: ConfChange): ConfState {
  if (cc.leaveJoint) {
    return { voters: [...conf.voters], votersOutgoing: [], learners: [...conf.learners] };
  }
  const voters = new Set(conf.voters);
  const learners = new Set(conf.learners);
  let votersChanged = false;
  for (const c of cc.changes) {
    const id = c.peer.id;
    switch (c.op) {
      case ConfChangeOp.AddVoter:
        learners.delete(id);
        voters.add(id);
        votersChanged = true;
        break;
      case ConfChangeOp.AddLearner:
        learners.add(id);
        break;
      case ConfChangeOp.Remove:
        if (voters.delete(id)) votersChanged = true;
        learners.delete(id);
        break;
    }
  }
  const next = cloneConf(conf);
  next.voters = [...voters].sort();
  next.learners = [...learners].sort();
  if (votersChanged) next.votersOutgoing = [...conf.voters].sort();
  return next;
}

/**
 * What a committed configuration entry does to `conf`: its change and the configuration that follows, or why
 * it changes nothing. One that does not decode, or does not fit the configuration it applies to (only a buggy
 * or forged proposer writes one: proposals are validated), is skipped; every replica applies it to the same
 * configuration, so every replica skips it alike.
 */
export function committedConfChange(
  conf: ConfState,
  data: Uint8Array,
  codec: ConfChangeCodec,
): { cc: ConfChange; next: ConfState } | { ignored: string } {
  let cc: ConfChange;
  try {
    cc = codec.decode(data);
  } catch (err) {
    return { ignored: `it does not decode: ${(err as Error).message}` };
  }
  const problem = validateConfChange(conf, cc);
  if (problem !== null) return { ignored: `it does not apply to the configuration: ${problem}` };
  return { cc, next: applyConfChange(conf, cc) };
}

/**
 * The change a leader proposes on its own once its last configuration entry is applied: leaving a joint
 * configuration, then confirming the leave with an empty change (see Raft.maybeAutoConfChange). Null when
 * none is due.
 */
export function autoConfChange(conf: ConfState, leaveToConfirm: boolean): ConfChange | null {
  if (isJoint(conf)) return { changes: [], leaveJoint: true };
  if (leaveToConfirm) return { changes: [], leaveJoint: false };
  return null;
}
