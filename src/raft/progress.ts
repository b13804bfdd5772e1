// The leader's view of each follower: how much of the log it holds (match), what to send next (next),
// and the flow control that bounds what is in flight to it (probe / replicate / snapshot states).

import { assert } from '../assert.js';

export enum ProgressState {
  /** Unknown follower log: one append at a time, backtracking on rejection. */
  Probe = 'probe',
  /** Follower matches: appends are pipelined optimistically, bounded by the in-flight window. */
  Replicate = 'replicate',
  /** Follower is installing a snapshot: nothing else is sent until it reports. */
  Snapshot = 'snapshot',
}

/** The appends in flight to one follower, oldest first; bounded by message count and bytes. */
export class Inflights {
  private lastIndexes: number[] = [];
  private sizes: number[] = [];
  private head = 0;
  private bytes = 0;

  constructor(
    readonly maxCount: number,
    readonly maxBytes: number,
  ) {
    assert(maxCount > 0, 'inflights: maxCount must be positive');
  }

  get count(): number {
    return this.lastIndexes.length - this.head;
  }

  get totalBytes(): number {
    return this.bytes;
  }

  add(lastIndex: number, sizeBytes: number): void {
    assert(!this.full(), 'inflights: add when full');
    const n = this.lastIndexes.length;
    assert(n === this.head || this.lastIndexes[n - 1]! < lastIndex, 'inflights: indexes must increase');
    this.lastIndexes.push(lastIndex);
    this.sizes.push(sizeBytes);
    this.bytes += sizeBytes;
  }

  /** Frees every in-flight append whose last index is <= index (they are acknowledged). */
  freeLE(index: number): void {
    while (this.head < this.lastIndexes.length && this.lastIndexes[this.head]! <= index) {
      this.bytes -= this.sizes[this.head]!;
      this.head++;
    }
    assert(this.bytes >= 0 && (this.count > 0 || this.bytes === 0), 'inflights: bytes out of step with appends');
    if (this.head > 64 && this.head * 2 > this.lastIndexes.length) {
      this.lastIndexes = this.lastIndexes.slice(this.head);
      this.sizes = this.sizes.slice(this.head);
      this.head = 0;
    }
  }

  full(): boolean {
    return this.count >= this.maxCount || (this.maxBytes > 0 && this.bytes >= this.maxBytes);
  }

  reset(): void {
    this.lastIndexes = [];
    this.sizes = [];
    this.head = 0;
    this.bytes = 0;
  }
}

export class Progress {
  // Invariant: match < next.
  match = 0;
  next: number;
  state = ProgressState.Probe;
  /** In Probe: an append is outstanding; nothing more is sent until it is answered or a heartbeat is. */
  probeSent = false;
  /** In Snapshot: the index of the snapshot the follower is installing. */
  pendingSnapshot = 0;
  /** Ticks spent in Snapshot state without an answer; the leader falls back to Probe after a bound. */
  snapshotElapsedTicks = 0;
  /** Heard from since the last check-quorum round. */
  recentActive = false;
  readonly inflights: Inflights;

  constructor(next: number, maxInflightMsgs: number, maxInflightBytes: number) {
    this.next = next;
    this.inflights = new Inflights(maxInflightMsgs, maxInflightBytes);
  }

  becomeProbe(): void {
    // After a snapshot the follower holds at least the snapshot: resume probing right after it.
    this.next =
      this.state === ProgressState.Snapshot ? Math.max(this.match + 1, this.pendingSnapshot + 1) : this.match + 1;
    this.state = ProgressState.Probe;
    this.pendingSnapshot = 0;
    this.snapshotElapsedTicks = 0;
    this.probeSent = false;
    this.inflights.reset();
    this.checkMatchBeforeNext();
  }

  becomeReplicate(): void {
    this.state = ProgressState.Replicate;
    this.next = this.match + 1;
    this.pendingSnapshot = 0;
    this.probeSent = false;
    this.inflights.reset();
  }

  becomeSnapshot(snapshotIndex: number): void {
    this.state = ProgressState.Snapshot;
    this.pendingSnapshot = snapshotIndex;
    this.snapshotElapsedTicks = 0;
    this.probeSent = false;
    this.inflights.reset();
  }

  /** An acknowledgement up to n. Returns true when match moved. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      this.probeSent = false;
      updated = true;
    }
    this.next = Math.max(this.next, n + 1);
    this.checkMatchBeforeNext();
    return updated;
  }

  /** Records an append just sent, ending at lastIndex (entries non-empty). */
  sentEntries(lastIndex: number, sizeBytes: number): void {
    switch (this.state) {
      case ProgressState.Replicate:
        assert(lastIndex >= this.next, () => `progress: sent up to ${lastIndex}, below next ${this.next}`);
        this.next = lastIndex + 1;
        this.inflights.add(lastIndex, sizeBytes);
        break;
      case ProgressState.Probe:
        this.probeSent = true;
        break;
      case ProgressState.Snapshot:
        assert(false, 'progress: sending entries in snapshot state');
    }
  }

  /**
   * A rejection of the append whose previous index was `rejected`; `matchHint` is the highest index the
   * follower may match. Returns false when the rejection is stale (an answer to an older append).
   */
  maybeDecrTo(rejected: number, matchHint: number): boolean {
    if (this.state === ProgressState.Replicate) {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, matchHint + 1), this.match + 1);
    this.probeSent = false;
    this.checkMatchBeforeNext();
    return true;
  }

  /** The invariant match < next: what is sent next is never what the follower already holds. */
  private checkMatchBeforeNext(): void {
    assert(this.match < this.next, () => `progress: match ${this.match} not below next ${this.next}`);
  }

  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
        return this.probeSent;
      case ProgressState.Replicate:
        return this.inflights.full();
      case ProgressState.Snapshot:
        return true;
    }
  }
}
