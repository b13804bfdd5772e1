// libqjm's route table: the cached leader (and the Raft term it was seen in), refreshed from NOT_LEADER
// redirects and dropped on failure; and the nodes it rotates over, which follow the cluster: the configured
// peers only seed it, then every answer's members list (the qjournal-members header) replaces them with the
// current members, taking the word of the node that applied the furthest. So a writer started against n1..n3
// keeps finding the cluster after every node was replaced. Reads may go to any node.

export class RouteTable {
  private leader: string | null = null;
  /** The highest Raft term seen in any answer. */
  term = 0;
  private next = 0;
  /** Where writes and reads rotate: the seeds, then the members as the furthest-applied node named them. */
  private peers: string[];
  /** The applied index of the members list in use (-1: still the seeds). */
  private membersIndex = -1;

  constructor(peers: readonly string[]) {
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
    const p = this.peers[this.next % this.peers.length]!;
    this.next++;
    return p;
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
