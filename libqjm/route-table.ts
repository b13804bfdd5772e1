// libqjm's route table: the cached leader (and the Raft term it was seen in), refreshed from NOT_LEADER
// redirects and dropped on failure, with the configured peers as the seed. Reads may go to any node.

export class RouteTable {
  private leader: string | null = null;
  /** The highest Raft term seen in any answer. */
  term = 0;
  private next = 0;
  private readonly peers: string[];

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
      if (!this.peers.includes(address)) this.peers.push(address); // a member added since start
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

  all(): readonly string[] {
    return this.peers;
  }
}
