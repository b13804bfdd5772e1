// Whether this node's stream to one peer still reaches it: pings that expect an answer. A frame may carry a
// ping (a number); the peer answers with a pong carrying it in a frame on its own stream back. At most one
// ping is outstanding, and one leaves at most every pingIntervalMs (riding on a frame that goes anyway, or in
// a frame of its own when the stream is quiet: that frame is also what keeps the stream from idling out). A
// ping unanswered for pongTimeoutMs, while no byte of the stream moved either, means a dead link: the sender
// cuts it and redials. A peer that never answered a ping (an older version) is never held to one.
// Pure: time arrives as arguments.

export interface LivenessOptions {
  pingIntervalMs: number;
  pongTimeoutMs: number;
}

export type LivenessVerdict = 'dead' | 'ping' | 'fine';

export class LinkLiveness {
  /** The number of the last ping sent. */
  private seq = 0;
  /** When the outstanding ping was sent, or when the stream last moved since (0: no ping outstanding). */
  private waitingSinceMs = 0;
  private lastPingAtMs = Number.NEGATIVE_INFINITY;
  /** The peer answers pings (it pinged this node, or answered once): a missing pong means a dead link. */
  private answers = false;
  /** The newest ping from the peer not yet answered (0: none). */
  private due = 0;

  constructor(private readonly options: LivenessOptions) {}

  /** The pong the next frame to the peer must carry (0: none due). */
  get pongDue(): number {
    return this.due;
  }

  /** The ping a frame written now would carry (0: none): one outstanding at a time, one per interval. */
  pingFor(nowMs: number): number {
    if (this.waitingSinceMs > 0 || nowMs - this.lastPingAtMs < this.options.pingIntervalMs) return 0;
    return this.seq + 1;
  }

  /** A frame carrying `ping` and `pong` (as pingFor and pongDue gave them) was written. */
  sent(ping: number, pong: number, nowMs: number): void {
    if (ping > 0) {
      this.seq = ping;
      this.waitingSinceMs = Math.max(1, nowMs);
      this.lastPingAtMs = nowMs;
    }
    if (pong > 0 && pong === this.due) this.due = 0;
  }

  /** The peer pinged this node: the next frame to it answers. */
  heardPing(ping: number): void {
    if (ping <= 0) return;
    this.answers = true;
    this.due = ping;
  }

  /** The peer answered `pong`; true when it answers the outstanding ping (the link works). */
  heardPong(pong: number): boolean {
    if (pong <= 0 || this.waitingSinceMs === 0 || pong < this.seq) return false;
    this.answers = true;
    this.waitingSinceMs = 0;
    return true;
  }

  /** Bytes of the stream moved (a connection that pushed back drained): it is alive, however slow. */
  progressed(nowMs: number): void {
    if (this.waitingSinceMs > 0) this.waitingSinceMs = Math.max(1, nowMs);
  }

  /** A new stream replaces the old one: nothing is outstanding on it. */
  newStream(): void {
    this.waitingSinceMs = 0;
  }

  /** At each turn of the sender's timer: the link is dead, a ping is due in a frame of its own, or neither. */
  check(nowMs: number): LivenessVerdict {
    if (this.waitingSinceMs > 0 && nowMs - this.waitingSinceMs >= this.options.pongTimeoutMs) {
      if (this.answers) return 'dead';
      this.waitingSinceMs = 0; // a peer that does not answer pings: the ping only kept the stream alive
    }
    return this.pingFor(nowMs) > 0 ? 'ping' : 'fine';
  }
}
