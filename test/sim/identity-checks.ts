// The simulator's checks of node identity, read off what the nodes send and admit and what the leaders commit,
// never off the identity rules' own state: a node whose disk was replaced has no vote and no acknowledgement
// counted (admitted from a voter of the receiver's configuration) before a committed configuration binds its
// id to its new storage (it was re-added); a node restored from an older copy, where a leader can see it (disk-faults.ts), records the floor
// that leader gives it — or holds what it lost again — within a bound, while the cluster is kept quiet.

import { decodeConfChange } from '../../src/transport/raft-codec.js';
import { ConfChangeOp, EntryType, MessageType } from '../../src/raft/types.js';
import type { Entry, Message } from '../../src/raft/types.js';
import type { BatchEnvelope } from '../../src/replica/replica.js';
import type { SimCluster } from './cluster.js';
import type { SimNode } from './sim-node.js';
import { durableIdentity, durablyHolds } from './sim-storage.js';

/** A restored node's debt: the last committed entry its disk held, which the copy may lack. */
interface Debt {
  node: SimNode;
  index: number;
  term: number;
  sinceMs: number;
  /** A leader sent it a snapshot meanwhile: installing it pays the debt, however long the fetch takes. */
  snapshotSent: boolean;
}

/** How long a restored node may take to record its floor (or hold what it lost again). */
const DEBT_BOUND_MS = 1000;

const GRANTS = new Set([MessageType.VoteResp, MessageType.PreVoteResp]);

export class IdentityChecks {
  readonly counts = { reAdded: 0, floors: 0, caughtUp: 0 };
  private debt: Debt | null = null;
  /** Configuration entries sent, by index: the storage bindings each makes. */
  private readonly bindings = new Map<number, { term: number; binds: { id: string; storageId: string }[] }>();

  constructor(private readonly c: SimCluster) {}

  /** A restored node owes its floor: the cluster is kept quiet meanwhile (no new faults, calm network). */
  get quiet(): boolean {
    return this.debt !== null;
  }

  /**
   * `to` admitted a batch from `env.from`: a vote or an acknowledgement from a replaced disk not yet re-added
   * must not be one that counts (its sender a voter of `to`'s configuration).
   */
  admitted(to: SimNode, m: Message, env: BatchEnvelope): void {
    const from = this.c.nodes.get(env.from);
    if (!from || from.replacedStorage === null || m.reject) return;
    if (!GRANTS.has(m.type) && m.type !== MessageType.AppResp) return;
    const conf = to.replica!.rawNode.conf();
    if (!conf.voters.includes(from.id) && !conf.votersOutgoing.includes(from.id)) return;
    this.c.checker.violate(
      `identity: ${to.id} admitted ${MessageType[m.type]} from voter ${from.id}, whose disk was replaced (storage ${from.replacedStorage}) and which no committed configuration re-added`,
    );
  }

  /** A message leaves a node: a snapshot for a node that owes its floor. */
  sent(m: Message): void {
    if (m.type === MessageType.Snap && this.debt?.node.id === m.to) this.debt.snapshotSent = true;
  }

  /** A configuration entry a leader sends: its bindings count once it is committed. */
  proposed(e: Entry): void {
    if (e.type !== EntryType.ConfChange || this.bindings.get(e.index)?.term === e.term) return;
    const binds: { id: string; storageId: string }[] = [];
    for (const ch of decodeConfChange(e.data).changes)
      if ((ch.op === ConfChangeOp.AddLearner || ch.op === ConfChangeOp.AddVoter) && ch.peer.storageId)
        binds.push({ id: ch.peer.id, storageId: ch.peer.storageId });
    if (binds.length > 0) this.bindings.set(e.index, { term: e.term, binds });
  }

  /**
   * A leader committed (lo, hi]: a configuration entry among them (as it was sent, and as the leader's log holds
   * it) that binds a replaced node to its new storage re-adds it.
   */
  committed(leader: SimNode, lo: number, hi: number): void {
    if (this.bindings.size === 0) return;
    const raw = leader.replica!.rawNode;
    for (const [index, b] of this.bindings) {
      if (index > hi) continue;
      this.bindings.delete(index);
      if (index <= lo || raw.termAt(index) !== b.term) continue;
      for (const { id, storageId } of b.binds) {
        const n = this.c.nodes.get(id);
        if (!n || n.replacedStorage !== storageId) continue;
        this.c.trace(`${n.id} re-added with its new storage ${storageId} (entry ${index})`);
        n.replacedStorage = null;
        this.counts.reAdded++;
      }
    }
  }

  /** `node` restarts on a restored copy: it owes (index, term), which `leader` can tell it it lost. */
  owe(node: SimNode, index: number, term: number): void {
    this.debt = { node, index, term, sinceMs: this.c.q.now, snapshotSent: false };
    this.c.q.schedule(1, () => this.checkDebt());
  }

  /** Its own durable log or snapshot holds the entry (not counting what it owed). */
  private holds(n: SimNode, d: Debt): boolean {
    const st = n.storage!;
    return st.stateMachine.snapshotMeta.index >= d.index || durablyHolds(n.fs, st.diskLog, d.index, d.term);
  }

  /** The debt is paid once the node's durable floor covers it, or its durable log (or snapshot) holds the entry. */
  private checkDebt(): void {
    const d = this.debt;
    if (!d) return;
    const n = d.node;
    const floor = durableIdentity(n.fs)?.floor ?? null;
    if (floor && floor.index >= d.index) this.counts.floors++;
    else if (n.running && this.holds(n, d)) this.counts.caughtUp++;
    else if (!n.serviceable) this.c.trace(`${n.id} owes no floor any more: it is gone`);
    else if (this.c.q.now - d.sinceMs > DEBT_BOUND_MS && !d.snapshotSent) {
      this.c.checker.violate(
        `identity: ${n.id}, restored from an older copy that lacks committed entry (${d.index}, t${d.term}), neither recorded a floor nor held the entry again within ${DEBT_BOUND_MS} ms`,
      );
    } else {
      this.c.q.schedule(5, () => this.checkDebt());
      return;
    }
    this.debt = null;
    this.c.trace(`${n.id} paid its debt of (${d.index}, t${d.term}): the cluster is no longer kept quiet`);
    this.c.quietEnded();
  }
}
