// Who may send Raft messages to this node. The members of its configuration, always. Anyone else only as a
// leader (appends, heartbeats, snapshots: what the core hears from a leader its configuration does not name)
// and only on the word of a node this node trusts: a member of its configuration — or, while it is not a
// member of its own configuration yet (joining), a member it learned when it joined — that has applied at
// least as far as this node and names the sender as a member of its own configuration.
//
// Why: a node whose configuration lags behind the change that added the current leader (it was down, or it
// joined from a snapshot older than that change) must hear that leader, or it never learns the change. A
// certificate alone proves an identity, not membership: a stranger (a node certificate of this CA for an id
// the cluster never added) is named by no member, and a removed node is named by no member that applied its
// removal — asking only members that applied at least as far as this node is what keeps a removed node's
// certificate from speaking for it again. A vouch lasts until this node's members change (PeerDirectory).
//
// Bounds: one check in flight per sender, MAX_CHECKS in all, each within checkTimeoutMs; a sender no one
// vouched for is refused without asking again for refusedForMs (at most MAX_REFUSED remembered).

import type { Logger } from '../../src/logger.js';
import type { NodeStatusJson } from '../../src/node-status.js';
import type { PeerDirectory } from '../../src/replica/peer-directory.js';
import { isLeaderMessage } from '../../src/raft/types.js';
import type { Message, NodeId, Peer } from '../../src/raft/types.js';

/** Vouch checks in flight at once: a lagging node needs one (its leader's); a flood of strangers gets none. */
const MAX_CHECKS = 4;
/** Senders remembered as refused. */
const MAX_REFUSED = 256;

export interface PeerAdmissionOptions {
  selfId: NodeId;
  clusterId: string;
  /** The members (and the leaders already vouched for); it records new vouches. */
  directory: PeerDirectory;
  /** The members this node learned when it joined (empty for a node bootstrapped from --peers). */
  joinedFrom: readonly Peer[];
  /** GET /status of a peer, dialed with this node's peer client (its certificate must name the id dialed). */
  fetchStatus(address: string, timeoutMs: number): Promise<NodeStatusJson>;
  checkTimeoutMs: number;
  refusedForMs: number;
  logger: Logger;
  nowMs?: () => number;
}

const REFUSED: Promise<boolean> = Promise.resolve(false);

export class PeerAdmission {
  private readonly pending = new Map<NodeId, Promise<boolean>>();
  private readonly refusedUntilMs = new Map<NodeId, number>();
  private readonly nowMs: () => number;

  constructor(private readonly options: PeerAdmissionOptions) {
    this.nowMs = options.nowMs ?? Date.now;
  }

  /**
   * Whether a batch from `from` is heard: true at once for a member or a leader already vouched for, else a
   * promise of the verdict (false at once for what no vouch could admit).
   */
  admits(from: NodeId, messages: readonly Message[]): true | Promise<boolean> {
    const d = this.options.directory;
    if (d.isMember(from)) return true;
    if (messages.length === 0 || !messages.every((m) => isLeaderMessage(m.type))) return REFUSED;
    if (d.isVouched(from)) return true;
    return this.check(from);
  }

  private check(from: NodeId): Promise<boolean> {
    const untilMs = this.refusedUntilMs.get(from);
    if (untilMs !== undefined && this.nowMs() < untilMs) return REFUSED;
    const pending = this.pending.get(from);
    if (pending) return pending;
    if (this.pending.size >= MAX_CHECKS) return REFUSED;
    const verdict = this.askVouchers(from).then((vouch) => {
      this.pending.delete(from);
      if (!vouch) {
        this.refuse(from);
        this.options.logger.debug(
          { from },
          'refusing Raft traffic: no member this node trusts names the sender as a member',
        );
        return false;
      }
      this.refusedUntilMs.delete(from);
      this.options.directory.vouch(from, vouch.address);
      this.options.logger.info(
        { from, address: vouch.address, voucher: vouch.voucher },
        "hearing a leader this node's configuration does not name yet, on a member's word",
      );
      return true;
    });
    this.pending.set(from, verdict);
    return verdict;
  }

  private refuse(from: NodeId): void {
    this.refusedUntilMs.delete(from);
    if (this.refusedUntilMs.size >= MAX_REFUSED) this.refusedUntilMs.delete(this.refusedUntilMs.keys().next().value!);
    this.refusedUntilMs.set(from, this.nowMs() + this.options.refusedForMs);
  }

  /** The nodes whose word counts: the members, and while this node is not one of them, whom it joined from. */
  private vouchers(from: NodeId): Peer[] {
    const d = this.options.directory;
    const byId = new Map<NodeId, Peer>();
    for (const p of d.list()) byId.set(p.id, p);
    if (!d.isMember(this.options.selfId))
      for (const p of this.options.joinedFrom) if (!byId.has(p.id)) byId.set(p.id, p);
    byId.delete(this.options.selfId);
    byId.delete(from);
    return [...byId.values()].filter((p) => p.address !== '');
  }

  /** The first voucher's word for `from` (its address as that voucher has it), or null when none gives it. */
  private askVouchers(from: NodeId): Promise<{ address: string; voucher: NodeId } | null> {
    const vouchers = this.vouchers(from);
    if (vouchers.length === 0) return Promise.resolve(null);
    return new Promise((resolve) => {
      let left = vouchers.length;
      const settle = () => {
        if (--left === 0) resolve(null);
      };
      for (const v of vouchers) {
        this.options.fetchStatus(v.address, this.options.checkTimeoutMs).then((st) => {
          // Read at the answer: a member that has not applied as far as this node may still name a node
          // this node saw removed.
          const named =
            st.id === v.id &&
            st.clusterId === this.options.clusterId &&
            st.appliedIndex >= this.options.directory.appliedIndex
              ? st.peers.find((p) => p.id === from && p.address !== '')
              : undefined;
          if (named) resolve({ address: named.address, voucher: v.id });
          settle();
        }, settle);
      }
    });
  }
}
