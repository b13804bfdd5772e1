// The address book of the cluster: where each member of the current configuration is dialed (its advertised
// address), and so who may speak for the cluster at all. The replica keeps it in step with the configuration
// (entries applied, snapshots restored); the transport and the snapshot client read it. Built before either,
// so neither needs the other to exist. A node that joins starts with the members it learned when it joined.
// Besides the members it holds the leaders this node hears on a member's word (journalnode/peers/peer-admission.ts):
// a vouch lasts until the members change, so a removed node is never heard on an older word.
// It also holds each member's storage binding (the storage id the configuration added it with): the replica's
// identity gate (identity.ts) drops a member's batches from any other storage.

import type { NodeId, Peer } from '../raft/types.js';

export class PeerDirectory {
  private readonly addresses = new Map<NodeId, string>();
  /** Each member's storage binding; a member without one is not bound (a learner until it is promoted). */
  private readonly bindings = new Map<NodeId, string>();
  /** Non-members heard on a member's word (a leader this configuration does not name yet), with their address. */
  private readonly vouched = new Map<NodeId, string>();
  /** The applied index the members reflect: a member that vouches for a leader must have applied at least this far. */
  private appliedAt = 0;

  constructor(initial: readonly Peer[] = []) {
    this.reset(initial, 0);
  }

  /** Where a member (or a vouched-for leader) is dialed; undefined for anyone else. */
  addressOf(id: NodeId): string | undefined {
    return this.addresses.get(id) ?? this.vouched.get(id);
  }

  /** The id dialed at `address` (a member's, else a vouched-for leader's): the id its certificate must name. */
  idAt(address: string): NodeId | undefined {
    for (const [id, a] of this.addresses) if (a === address) return id;
    for (const [id, a] of this.vouched) if (a === address) return id;
    return undefined;
  }

  /** The storage the configuration binds member `id` to; '' when it binds none (or `id` is no member). */
  storageOf(id: NodeId): string {
    return this.bindings.get(id) ?? '';
  }

  isMember(id: NodeId): boolean {
    return this.addresses.has(id);
  }

  isVouched(id: NodeId): boolean {
    return this.vouched.has(id);
  }

  get appliedIndex(): number {
    return this.appliedAt;
  }

  /**
   * A configuration entry names `id` at `address`. With `storageId` it also says what `id` is bound to from
   * now on ('' unbinds: a node added again as a learner is bound afresh when it is promoted).
   */
  set(id: NodeId, address: string, storageId?: string): void {
    if (!this.addresses.has(id)) this.vouched.clear();
    this.addresses.set(id, address);
    if (storageId) this.bindings.set(id, storageId);
    else if (storageId === '') this.bindings.delete(id);
  }

  /** A configuration entry removes `id`: whatever it is bound to no longer speaks for it. */
  unbind(id: NodeId): void {
    this.bindings.delete(id);
  }

  /** Replaces every entry (a snapshot restored the configuration, or reset-peers forced one). */
  reset(peers: readonly Peer[], appliedIndex: number): void {
    this.addresses.clear();
    this.bindings.clear();
    this.vouched.clear();
    for (const p of peers) {
      this.addresses.set(p.id, p.address);
      if (p.storageId) this.bindings.set(p.id, p.storageId);
    }
    this.appliedAt = appliedIndex;
  }

  /** Drops every id that is not a member any more; the members now reflect `appliedIndex`. */
  retain(members: readonly NodeId[], appliedIndex: number): void {
    const keep = new Set(members);
    for (const id of [...this.addresses.keys()]) {
      if (keep.has(id)) continue;
      this.addresses.delete(id);
      this.bindings.delete(id);
      this.vouched.clear();
    }
    this.appliedAt = appliedIndex;
  }

  /** A member that applied at least as far as this node names `id` at `address`: hear it as a leader. */
  vouch(id: NodeId, address: string): void {
    if (!this.addresses.has(id)) this.vouched.set(id, address);
  }

  /** The members (never the vouched-for), each with its storage binding when it has one. */
  list(): Peer[] {
    return [...this.addresses].map(([id, address]) => {
      const storageId = this.bindings.get(id);
      return storageId ? { id, address, storageId } : { id, address };
    });
  }
}
