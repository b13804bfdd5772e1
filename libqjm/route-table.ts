// libqjm's route table: the cached leader (and the Raft term it was seen in), refreshed from NOT_LEADER
// redirects and dropped on failure; and the nodes it rotates over, which follow the cluster: the configured
// peers only seed it, then every answer's members list (the qjournal-members header) replaces them with the
// current members, taking the word of the node that applied the furthest. So a writer started against n1..n3
// keeps finding the cluster after every node was replaced. Reads may go to any node. A node that answered it
// stood down (it left its cluster for good: reset away, or its storage replaced) is passed over for a while.

/**
 * How long a node that answered STOOD_DOWN is passed over. Not for ever: the address may be given to a node
 * re-added there (wiped, joined afresh); a stood-down node answers again at once, so a retry costs one request.
 */
export const STOOD_DOWN_SKIP_MS = 60_000;

export class RouteTable {
  private leader: string | null = null;
  /** The highest Raft term seen in any answer. */
  term = 0;
  private next = 0;
  /** Where writes and reads rotate: the seeds, then the members as the furthest-applied node named them. */
  private peers: string[];
  /** The applied index of the members list in use (-1: still the seeds). */
  private membersIndex = -1;

  /** Nodes that answered they stood down, with when: passed over by the rotation while another node is left. */
  private readonly stoodDownAtMs = new Map<string, number>();

  constructor(
    peers: readonly string[],
    private readonly nowMs: () => number = Date.now,
  ) {
    if (peers.length === 0) throw new Error('route table: no peers');
    this.peers = [...peers];
  }

  get knownLeader(): string | null {
    return this.leader;
  }

  /** Where to send a write: the cached leader, else the next peer in turn. */
  leaderTarget(): string {
    return this.leader ?? this.rotate();
  }

  /** Where to send a read: the next peer in turn. */
  anyTarget(): string {
    return this.rotate();
  }

  private rotate(): string {
    // One turn round the peers at most: a node that stood down is passed over unless all of them did.
    for (let i = 0; i < this.peers.length; i++) {
      const p = this.peers[this.next % this.peers.length]!;
      this.next++;
      if (!this.isStoodDown(p)) return p;
    }
    return this.peers[this.next++ % this.peers.length]!;
  }

  /** `address` answered STOOD_DOWN: it is out of the rotation for STOOD_DOWN_SKIP_MS, and no longer the leader. */
  stoodDown(address: string): void {
    this.stoodDownAtMs.set(address, this.nowMs());
    if (this.leader === address) this.leader = null;
  }

  /** Whether every node the table rotates over answered STOOD_DOWN recently: then no other is left to try. */
  allStoodDown(): boolean {
    return this.peers.every((p) => this.isStoodDown(p));
  }

  private isStoodDown(address: string): boolean {
    const at = this.stoodDownAtMs.get(address);
    if (at === undefined) return false;
    if (this.nowMs() - at < STOOD_DOWN_SKIP_MS) return true;
    this.stoodDownAtMs.delete(address);
    return false;
  }

  /** A node named the leader (its address, as peers dial it). */
  redirect(address: string | undefined, term: number): void {
    this.observeTerm(term);
    if (address) {
      this.leader = address;
      if (!this.peers.includes(address)) this.peers.push(address); // a member added since the last members list
    } else this.leader = null;
  }

  /** A successful write answered by `address` in `term`. */
  confirm(address: string, term: number): void {
    this.observeTerm(term);
    this.leader = address;
  }

  /** `address` failed: forget it as leader. */
  failed(address: string): void {
    if (this.leader === address) this.leader = null;
  }

  observeTerm(term: number): void {
    if (term > this.term) this.term = term;
  }

  /**
   * A node that applied up to `appliedIndex` names the members at `addresses`. Taken when no node that applied
   * further was heard (a lagging or removed node's older word changes nothing); a cached leader it does not
   * name is forgotten.
   */
  learnMembers(addresses: readonly string[], appliedIndex: number): void {
    if (addresses.length === 0 || appliedIndex < this.membersIndex) return;
    this.membersIndex = appliedIndex;
    if (addresses.length === this.peers.length && addresses.every((a) => this.peers.includes(a))) return;
    this.peers = [...addresses];
    if (this.leader !== null && !this.peers.includes(this.leader)) this.leader = null;
  }

  all(): readonly string[] {
    return this.peers;
  }
}
