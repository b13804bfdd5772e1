// The address book of the cluster: where each member of the current configuration is dialed (its advertised
// address). The replica keeps it in step with the configuration (entries applied, snapshots restored); the
// transport and the snapshot client read it. Built before either, so neither needs the other to exist.

import type { NodeId, Peer } from '../raft/types.js';

export class PeerDirectory {
  private readonly addresses = new Map<NodeId, string>();
  /**
   * Addresses peers announced themselves (in their Raft batches). The configuration is the authority; these
   * serve only for ids it does not name yet (a joining node hears from the leader before it knows the
   * configuration).
   */
  private readonly announced = new Map<NodeId, string>();

  constructor(initial: readonly Peer[] = []) {
    this.reset(initial);
  }

  /** The configured address of a member, else the one it announced, else undefined. */
  addressOf(id: NodeId): string | undefined {
    return this.addresses.get(id) ?? this.announced.get(id);
  }

  /** The address the configuration gives a member (never an announced one). */
  configuredAddressOf(id: NodeId): string | undefined {
    return this.addresses.get(id);
  }

  announce(id: NodeId, address: string): void {
    this.announced.set(id, address);
  }

  set(id: NodeId, address: string): void {
    this.addresses.set(id, address);
  }

  /** Replaces every entry (a snapshot restored the configuration). */
  reset(peers: readonly Peer[]): void {
    this.addresses.clear();
    for (const p of peers) this.addresses.set(p.id, p.address);
  }

  /** Drops every id that is not a member any more. */
  retain(members: readonly NodeId[]): void {
    const keep = new Set(members);
    for (const id of [...this.addresses.keys()]) if (!keep.has(id)) this.addresses.delete(id);
  }

  list(): Peer[] {
    return [...this.addresses].map(([id, address]) => ({ id, address }));
  }
}
