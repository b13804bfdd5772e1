// An in-memory LogStorage: the durable log of the simulator's nodes and of unit tests.
// Appends truncate on conflict exactly as the disk log does; compaction remembers the term it cut at.

import { assert } from '../assert.js';
import { takeWithinBytes } from './byte-limit.js';
import type { LogStorage } from './log.js';
import { cloneConf, emptyConf, entryBytes } from './types.js';
import type { ConfState, Entry, SnapshotMeta } from './types.js';

export class MemoryStorage implements LogStorage {
  private snap: SnapshotMeta;
  // Invariant: compactedIndex <= snap.index; ents[i].index === compactedIndex + 1 + i.
  private compactedIndex = 0;
  private compactedTerm = 0;
  private ents: Entry[] = [];

  constructor(conf: ConfState = emptyConf()) {
    this.snap = { index: 0, term: 0, conf: cloneConf(conf) };
  }

  snapshotMeta(): SnapshotMeta {
    return this.snap;
  }

  firstIndex(): number {
    return this.compactedIndex + 1;
  }

  lastIndex(): number {
    return this.compactedIndex + this.ents.length;
  }

  term(index: number): number | undefined {
    if (index === this.compactedIndex) return this.compactedTerm;
    if (index < this.compactedIndex || index > this.lastIndex()) return undefined;
    return this.ents[index - this.compactedIndex - 1]!.term;
  }

  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    assert(
      lo >= this.firstIndex() && hi <= this.lastIndex() + 1 && lo <= hi,
      () => `memory log: entries(${lo}, ${hi}) outside [${this.firstIndex()}, ${this.lastIndex() + 1}]`,
    );
    const base = lo - this.compactedIndex - 1;
    const fit = takeWithinBytes(hi - lo, (k) => entryBytes(this.ents[base + k]!), maxBytes);
    return this.ents.slice(base, base + fit.count);
  }

  /** Appends entries, first truncating any entries at or after the first new index. */
  append(ents: readonly Entry[]): void {
    if (ents.length === 0) return;
    const first = ents[0]!.index;
    assert(
      first > this.snap.index && first <= this.lastIndex() + 1,
      () => `memory log: append at ${first} outside (${this.snap.index}, ${this.lastIndex() + 1}]`,
    );
    this.ents.length = first - this.compactedIndex - 1;
    for (const e of ents) this.ents.push(e);
  }

  /** A snapshot of the state machine at meta.index (an applied, hence durable, index) now exists. */
  setSnapshot(meta: SnapshotMeta): void {
    assert(meta.index >= this.snap.index && meta.index <= this.lastIndex(), 'memory log: snapshot outside the log');
    assert(this.term(meta.index) === meta.term, 'memory log: snapshot term does not match the log');
    this.snap = { ...meta, conf: cloneConf(meta.conf) };
  }

  /** Drops entries up to index; the snapshot must cover them. */
  compact(index: number): void {
    assert(index <= this.snap.index, 'memory log: compacting past the snapshot');
    if (index <= this.compactedIndex) return;
    this.compactedTerm = this.term(index)!;
    this.ents = this.ents.slice(index - this.compactedIndex);
    this.compactedIndex = index;
  }

  /** Replaces everything with a snapshot installed from a peer. */
  applySnapshot(meta: SnapshotMeta): void {
    this.ents = [];
    this.snap = { ...meta, conf: cloneConf(meta.conf) };
    this.compactedIndex = meta.index;
    this.compactedTerm = meta.term;
  }

  allEntries(): readonly Entry[] {
    return this.ents;
  }
}
