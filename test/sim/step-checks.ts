// The checks read off every step of the simulation (after each event): a node that started campaigning or
// leading must be a voter; a new leader's votes must be durable on a quorum (and its log complete); each step
// of a leader's commit index must be durable on a quorum of the configuration in force, and what it commits
// may re-add a replaced disk (identity-checks.ts).

import { StateType } from '../../src/raft/types.js';
import type { ConfState, NodeId } from '../../src/raft/types.js';
import type { SimCluster } from './cluster.js';

/** What the observer remembers of a node that is campaigning or leading. */
interface Watch {
  incarnation: number;
  term: number;
  state: StateType;
  commit: number;
  conf: ConfState;
}

export class StepChecks {
  private readonly watches = new Map<NodeId, Watch>();

  constructor(private readonly c: SimCluster) {}

  /** The node went down: its next campaign or leadership is new. */
  forget(id: NodeId): void {
    this.watches.delete(id);
  }

  /**
   * After every event: a node that started campaigning or leading must be a voter; a new leader's votes must
   * be durable on a quorum; each step of a leader's commit index must be durable on a quorum of the
   * configuration in force.
   */
  observe(): void {
    const c = this.c;
    const direct = c.opts.checks !== 'outcomes';
    for (const n of c.nodes.values()) {
      if (!n.running) continue;
      const raw = n.replica!.rawNode;
      const r = raw.raft;
      if (r.state === StateType.Follower) {
        if (this.watches.size > 0) this.watches.delete(n.id);
        continue;
      }
      const w = this.watches.get(n.id);
      if (!w || w.term !== r.term || w.state !== r.state || w.incarnation !== n.incarnation) {
        c.checker.onCampaign(n.id, r.state, r.conf);
        if (r.state === StateType.Leader) {
          c.stats.elections++;
          c.checker.onLeader(
            n.id,
            r.term,
            r.conf,
            n.diskLog!.firstIndex(),
            raw.lastIndex(),
            (i) => raw.termAt(i),
            c.durable,
            direct,
          );
        }
        this.watches.set(n.id, {
          incarnation: n.incarnation,
          term: r.term,
          state: r.state,
          commit: raw.committedIndex(),
          conf: r.conf,
        });
        continue;
      }
      if (r.state !== StateType.Leader) continue;
      const commit = raw.committedIndex();
      if (commit > w.commit) {
        if (direct) c.checker.onCommit(n.id, r.term, commit, raw.termAt(commit)!, [w.conf, r.conf], c.durable);
        c.identityChecks.committed(n, w.commit, commit);
        w.commit = commit;
      }
      w.conf = r.conf;
    }
  }
}
