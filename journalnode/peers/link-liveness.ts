// Whether this node's stream to one peer still reaches it: pings that expect an answer. A frame may carry a
// ping (a number); the peer answers with a pong carrying it in a frame on its own stream back. At most one
// ping is outstanding, and one leaves at most every pingIntervalMs, riding on a frame that goes anyway. A
// stream quiet for pingIntervalMs gets a frame of its own (with a ping when none is outstanding): it keeps
// the stream from idling out, and it tells the peer this node is alive, which is how the peer tells a dead
// link of its own from a silent node (below).
// A link is dead (the sender cuts it and redials) when its ping went unanswered, while no byte of the stream
// moved either, and
//   - the peer kept talking meanwhile (its frames came back a pong timeout after the ping, without the
//     pong: it is alive, and it never heard the ping), after the pong timeout: pongTimeoutMs, or three times
//     the round trips the link has shown lately if longer (a pong that comes after its stream was cut still
//     teaches the link its round trip), never past maxPongTimeoutMs; or
//   - nothing came back at all for maxPongTimeoutMs (a peer that stalls, a GC pause, a loaded machine, is
//     given that long: a live link cut for being slow only loads it more).
// A peer that never answered a ping (an older version) is never held to one. Pure: time arrives as arguments.

export interface LivenessOptions {
  pingIntervalMs: number;
  /** The shortest pong timeout (a few heartbeat intervals). */
  pongTimeoutMs: number;
  /** The longest, however slow the link's round trips have been (the receiver's idle timeout). */
  maxPongTimeoutMs: number;
}

/** Pings remembered with their send time, so a late pong still measures a round trip. */
const PINGS_REMEMBERED = 4;
/** How much of the slowest recent round trip each new sample keeps: it decays over a few dozen pings. */
const RTT_DECAY = 0.9;

/** At a turn of the sender's timer: the link is dead, the quiet stream is due a frame, or neither. */
export type LivenessVerdict = 'dead' | 'frame' | 'fine';

export class LinkLiveness {
  /** The number of the last ping sent. */
  private seq = 0;
  /** When the outstanding ping was sent, or when the stream last moved since (0: no ping outstanding). */
  private waitingSinceMs = 0;
  private lastPingAtMs = Number.NEGATIVE_INFINITY;
  private lastFrameAtMs = Number.NEGATIVE_INFINITY;
  /** The peer answers pings (it pinged this node, or answered once): a missing pong means a dead link. */
  private answers = false;
  /** The newest ping from the peer not yet answered (0: none). */
  private due = 0;
  /** The newest pings sent, with when. */
  private readonly pings: { seq: number; atMs: number }[] = [];
  /** The slowest recent round trip, decaying (0: none measured). */
  private rttMs = 0;
  /** When a frame from the peer last arrived. */
  private heardAtMs = Number.NEGATIVE_INFINITY;

  constructor(private readonly options: LivenessOptions) {}

  /** How long a ping may go unanswered before the link is dead. */
  get pongTimeoutMs(): number {
    const o = this.options;
    return Math.min(o.maxPongTimeoutMs, Math.max(o.pongTimeoutMs, 3 * this.rttMs));
  }

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
    this.lastFrameAtMs = nowMs;
    if (ping > 0) {
      this.seq = ping;
      this.waitingSinceMs = Math.max(1, nowMs);
      this.lastPingAtMs = nowMs;
      this.pings.push({ seq: ping, atMs: nowMs });
      if (this.pings.length > PINGS_REMEMBERED) this.pings.shift();
    }
    if (pong > 0 && pong === this.due) this.due = 0;
  }

  /** A frame from the peer arrived (whatever it carried). */
  heard(nowMs: number): void {
    this.heardAtMs = nowMs;
  }

  /** The peer pinged this node: the next frame to it answers. */
  heardPing(ping: number): void {
    if (ping <= 0) return;
    this.answers = true;
    this.due = ping;
  }

  /** The peer answered `pong` (at nowMs); true when it answers the outstanding ping (the link works). */
  heardPong(pong: number, nowMs: number): boolean {
    const sent = this.pings.find((p) => p.seq === pong);
    if (sent) {
      // A round trip, even of a ping whose stream was cut since: the link is slow, not dead.
      this.rttMs = Math.max(nowMs - sent.atMs, RTT_DECAY * this.rttMs);
      this.pings.splice(0, this.pings.indexOf(sent) + 1);
    }
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

  /** At each turn of the sender's timer (a stream is open). */
  check(nowMs: number): LivenessVerdict {
    const waitedMs = this.waitingSinceMs > 0 ? nowMs - this.waitingSinceMs : 0;
    if (waitedMs >= this.pongTimeoutMs) {
      if (!this.answers)
        this.waitingSinceMs = 0; // a peer that does not answer pings: the ping kept the stream alive
      else if (this.heardAtMs - this.waitingSinceMs >= this.pongTimeoutMs)
        return 'dead'; // talking, not answering
      else if (waitedMs >= this.options.maxPongTimeoutMs) return 'dead'; // silent altogether
    }
    return nowMs - this.lastFrameAtMs >= this.options.pingIntervalMs ? 'frame' : 'fine';
  }
}
