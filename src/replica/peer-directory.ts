// The address book of the cluster: where each member of the current configuration is dialed (its advertised
// address), and so who may speak for the cluster at all. The replica keeps it in step with the configuration
// (entries applied, snapshots restored); the transport and the snapshot client read it. Built before either,
// so neither needs the other to exist. A node that joins starts with the members it learned when it joined.

import type { NodeId, Peer } from '../raft/types.js';

export class PeerDirectory {
  private readonly addresses = new Map<NodeId, string>();

  constructor(initial: readonly Peer[] = []) {
    this.reset(initial);
  }

  /** Where a member is dialed; undefined for anyone else. */
  addressOf(id: NodeId): string | undefined {
    return this.addresses.get(id);
  }

  isMember(id: NodeId): boolean {
    return this.addresses.has(id);
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
