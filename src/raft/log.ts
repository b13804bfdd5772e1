// The Raft log as the core sees it: the durable part behind the LogStorage interface, plus the unstable
// tail of entries not yet durable (or not yet handed to storage). Owns commit and applied indexes.

import { assert } from '../assert.js';
import { takeWithinBytes } from './byte-limit.js';
import type { Entry, SnapshotMeta } from './types.js';
import { EntryType, entryBytes } from './types.js';

/**
 * Read-only, synchronous view of the durable log, implemented by the JournalNode's disk log and by the
 * simulator's memory log. The core never writes to it: the driver appends what a Ready hands it.
 */
export interface LogStorage {
  /**
   * The newest snapshot: the state machine image at its index, and what a follower that needs compacted
   * entries is sent. Index 0 / term 0 (with the initial configuration) before the first one.
   */
  snapshotMeta(): SnapshotMeta;
  /** The first entry still in the log; the log may keep entries below the snapshot index for followers. */
  firstIndex(): number;
  /** The last durable entry, or firstIndex() - 1 when the log is empty. */
  lastIndex(): number;
  /** Term of an entry in [firstIndex() - 1, lastIndex]; undefined outside (compacted or not there). */
  term(index: number): number | undefined;
  /** Entries [lo, hi) with lo >= firstIndex, hi <= lastIndex + 1; stops at maxBytes but returns at least one. */
  entries(lo: number, hi: number, maxBytes: number): Entry[];
}

/** Entries past the durable log. Entries before offsetInProgress are being written by the driver. */
export class Unstable {
  entries: Entry[] = [];
  // Invariant: entries[i].index === offset + i.
  offset: number;
  // Invariant: offset <= offsetInProgress <= offset + entries.length.
  offsetInProgress: number;

  constructor(offset: number) {
    this.offset = offset;
    this.offsetInProgress = offset;
  }

  lastIndex(): number | undefined {
    return this.entries.length > 0 ? this.offset + this.entries.length - 1 : undefined;
  }

  term(index: number): number | undefined {
    if (index < this.offset || index >= this.offset + this.entries.length) return undefined;
    return this.entries[index - this.offset]!.term;
  }

  /** Entries not yet handed to storage. */
  nextEntries(): Entry[] {
    const from = this.offsetInProgress - this.offset;
    return from >= this.entries.length ? [] : this.entries.slice(from);
  }

  acceptInProgress(): void {
    this.offsetInProgress = this.offset + this.entries.length;
  }

  /** Entries up to index (of term) are durable. Ignored if the entry there was replaced meanwhile. */
  stableTo(index: number, term: number): void {
    if (this.term(index) !== term) return;
    this.entries = this.entries.slice(index + 1 - this.offset);
    this.offset = index + 1;
    this.offsetInProgress = Math.max(this.offsetInProgress, this.offset);
    this.checkOffsets();
  }

  truncateAndAppend(ents: Entry[]): void {
    const first = ents[0]!.index;
    // Entries arrive in order (from the leader's proposal or an append checked at the boundary).
    for (let i = 1; i < ents.length; i++)
      assert(ents[i]!.index === first + i, () => `unstable: appending ${ents[i]!.index} at ${first + i}`);
    if (first === this.offset + this.entries.length) {
      for (const e of ents) this.entries.push(e);
    } else if (first <= this.offset) {
      // Replaces everything unstable and part of the durable log: the driver truncates storage from `first`.
      this.entries = [...ents];
      this.offset = first;
      this.offsetInProgress = first;
    } else {
      assert(first < this.offset + this.entries.length, () => `unstable: a gap before ${first}`);
      this.entries = this.entries.slice(0, first - this.offset).concat(ents);
      this.offsetInProgress = Math.min(this.offsetInProgress, first);
    }
    this.checkOffsets();
  }

  /** The invariant offset <= offsetInProgress <= offset + entries.length. */
  private checkOffsets(): void {
    assert(
      this.offset <= this.offsetInProgress && this.offsetInProgress <= this.offset + this.entries.length,
      () =>
        `unstable: in progress at ${this.offsetInProgress} outside [${this.offset}, ${this.offset + this.entries.length}]`,
    );
  }

  restore(snapshotIndex: number): void {
    this.entries = [];
    this.offset = snapshotIndex + 1;
    this.offsetInProgress = this.offset;
  }
}

/** The log as the core shows it outside: indexes and terms to read, nothing to change them with. */
export interface RaftLogView {
  readonly committed: number;
  readonly applied: number;
  readonly unstable: { readonly entries: readonly Entry[]; readonly offset: number };
  firstIndex(): number;
  lastIndex(): number;
  stableIndex(): number;
  term(index: number): number | undefined;
}

export class RaftLog implements RaftLogView {
  readonly unstable: Unstable;
  // Invariant: applied <= committed <= lastIndex().
  committed: number;
  /** The highest index handed to the application for applying. */
  applied: number;

  constructor(readonly storage: LogStorage) {
    this.unstable = new Unstable(storage.lastIndex() + 1);
    // The state machine restarts from the snapshot; entries after it are applied again once committed.
    this.committed = storage.snapshotMeta().index;
    this.applied = storage.snapshotMeta().index;
  }

  firstIndex(): number {
    return this.storage.firstIndex();
  }

  lastIndex(): number {
    return this.unstable.lastIndex() ?? this.unstable.offset - 1;
  }

  /** The last index whose entry is durable here (entries past it are still in unstable). */
  stableIndex(): number {
    return this.unstable.offset - 1;
  }

  term(index: number): number | undefined {
    const t = this.unstable.term(index);
    if (t !== undefined) return t;
    if (index >= this.unstable.offset) return undefined;
    return this.storage.term(index);
  }

  lastTerm(): number {
    const t = this.term(this.lastIndex());
    assert(t !== undefined, 'log: last term unknown');
    return t;
  }

  matchTerm(index: number, term: number): boolean {
    return this.term(index) === term;
  }

  /** Election restriction: is a log ending at (lastIndex, lastTerm) at least as up to date as ours? */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /** The index of the first entry that conflicts with ours or is new; 0 when all are present. */
  findConflict(ents: Entry[]): number {
    for (const e of ents) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * The conflict hint: walking down from index, the last entry whose term is <= term. Every entry in
   * (result, index] has a term above `term`, so none of them can match an entry of that term: a whole
   * divergent term is skipped per round trip.
   */
  findConflictByTerm(index: number, term: number): { index: number; term: number } {
    for (let i = index; i > 0; i--) {
      const t = this.term(i);
      if (t === undefined) return { index: i, term: 0 };
      if (t <= term) return { index: i, term: t };
    }
    return { index: 0, term: 0 };
  }

  /** Appends from a leader. Returns the last new index, or undefined if the previous entry does not match. */
  maybeAppend(prevIndex: number, prevTerm: number, leaderCommit: number, ents: Entry[]): number | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNew = prevIndex + ents.length;
    const ci = this.findConflict(ents);
    if (ci !== 0) {
      assert(ci > this.committed, () => `log: conflict at ${ci} <= committed ${this.committed}`);
      this.append(ents.slice(ci - (prevIndex + 1)));
    }
    this.commitTo(Math.min(leaderCommit, lastNew));
    return lastNew;
  }

  append(ents: Entry[]): number {
    if (ents.length === 0) return this.lastIndex();
    assert(
      ents[0]!.index > this.committed,
      () => `log: append at ${ents[0]!.index} overwrites committed ${this.committed}`,
    );
    this.unstable.truncateAndAppend(ents);
    return this.lastIndex();
  }

  /** Entries [lo, hi), from storage and then unstable, stopping at maxBytes (at least one entry). */
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    assert(lo >= this.firstIndex(), () => `log: entries(${lo}) below first index ${this.firstIndex()}`);
    assert(hi <= this.lastIndex() + 1, () => `log: entries(.., ${hi}) past last index ${this.lastIndex()}`);
    if (lo >= hi) return [];
    let out: Entry[] = [];
    let bytes = 0;
    const off = this.unstable.offset;
    if (lo < off) {
      const stableHi = Math.min(hi, off);
      out = this.storage.entries(lo, stableHi, maxBytes);
      if (out.length < stableHi - lo) return out;
      for (const e of out) bytes += entryBytes(e);
    }
    const start = Math.max(lo, off);
    const ents = this.unstable.entries;
    const fit = takeWithinBytes(hi - start, (k) => entryBytes(ents[start - off + k]!), maxBytes, {
      count: out.length,
      bytes,
    });
    for (let k = 0; k < fit.count; k++) out.push(ents[start - off + k]!);
    return out;
  }

  /** A configuration entry is committed and not yet applied (read in pages of at most maxBytes). */
  hasUnappliedConfChange(maxBytes: number): boolean {
    const hi = this.committed + 1;
    for (let lo = this.applied + 1; lo < hi; ) {
      const page = this.entries(lo, hi, maxBytes);
      if (page.some((e) => e.type === EntryType.ConfChange)) return true;
      lo += page.length;
    }
    return false;
  }

  /** Committed entries not yet handed out, limited to what is durable here. */
  hasNextCommittedEntries(): boolean {
    return Math.min(this.committed, this.stableIndex()) > this.applied;
  }

  nextCommittedEntries(maxBytes: number, maxCount = Number.MAX_SAFE_INTEGER): Entry[] {
    const hi = Math.min(this.committed, this.stableIndex(), this.applied + maxCount) + 1;
    const lo = this.applied + 1;
    if (lo >= hi) return [];
    return this.entries(lo, hi, maxBytes);
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    assert(index <= this.lastIndex(), () => `log: commit ${index} past last index ${this.lastIndex()}`);
    this.committed = index;
  }

  /** Commits maxIndex if its entry is of `term` (entries of earlier terms commit only indirectly: Figure 8). */
  maybeCommit(maxIndex: number, term: number): boolean {
    if (maxIndex > this.committed && this.term(maxIndex) === term) {
      this.commitTo(maxIndex);
      return true;
    }
    return false;
  }

  appliedTo(index: number): void {
    assert(
      index >= this.applied && index <= this.committed,
      () => `log: applied ${index} outside [${this.applied}, ${this.committed}]`,
    );
    this.applied = index;
  }

  /** The storage now starts after the snapshot: everything up to its index is committed and applied. */
  restore(meta: SnapshotMeta): void {
    assert(meta.index > this.committed, 'log: restoring an old snapshot');
    this.committed = meta.index;
    this.applied = meta.index;
    this.unstable.restore(meta.index);
  }
}
