// The Raft log view (src/raft/log.ts): the unstable tail, the conflict search behind appends and their
// backtracking hint, maybeAppend, what may be committed and applied, and the in-memory storage under it.

import { expect } from 'chai';
import { RaftLog, Unstable } from '../../../src/raft/log.js';
import { MemoryStorage } from '../../../src/raft/memory-storage.js';
import { EntryType } from '../../../src/raft/types.js';
import type { Entry } from '../../../src/raft/types.js';

const ent = (index: number, term: number): Entry => ({ index, term, type: EntryType.Normal, data: new Uint8Array(0) });
const ents = (from: number, terms: number[]): Entry[] => terms.map((t, i) => ent(from + i, t));
const voters = { voters: ['a'], votersOutgoing: [], learners: [] };

function logWith(stored: number[], unstable: number[] = []): RaftLog {
  const s = new MemoryStorage(voters);
  s.append(ents(1, stored));
  const l = new RaftLog(s);
  if (unstable.length) l.append(ents(stored.length + 1, unstable));
  return l;
}

describe('raft log', () => {
  describe('unstable', unstableTail);
  describe('findConflict', findConflictTable);
  describe('findConflictByTerm (the backtracking hint)', findConflictByTermTable);
  describe('maybeAppend', maybeAppendTable);
  describe('commit and apply', commitAndApply);
  describe('memory storage', memoryStorage);
});

function unstableTail(): void {
  it('truncateAndAppend: append, replace all, replace suffix', () => {
    const u = new Unstable(5);
    u.truncateAndAppend(ents(5, [1, 1, 1]));
    expect(u.lastIndex()).to.equal(7);
    u.acceptInProgress();
    u.truncateAndAppend(ents(6, [2, 2]));
    expect(u.entries.map((e) => e.term)).to.deep.equal([1, 2, 2]);
    expect(u.offsetInProgress, 'the replaced suffix is handed out again').to.equal(6);
    u.truncateAndAppend(ents(3, [3]));
    expect(u.offset).to.equal(3);
    expect(u.entries.length).to.equal(1);
  });
  it('stableTo ignores an entry replaced since it was written', () => {
    const u = new Unstable(1);
    u.truncateAndAppend(ents(1, [1, 1, 1]));
    u.acceptInProgress();
    u.truncateAndAppend(ents(3, [2]));
    u.stableTo(3, 1);
    expect(u.offset).to.equal(1);
    u.stableTo(2, 1);
    expect(u.offset).to.equal(3);
    expect(u.entries.map((e) => e.term)).to.deep.equal([2]);
  });
}

function findConflictTable(): void {
  const l = logWith([1, 2, 3]);
  const table: [Entry[], number][] = [
    [[], 0],
    [ents(1, [1, 2, 3]), 0],
    [ents(2, [2, 3]), 0],
    [ents(2, [2, 3, 4, 4]), 4],
    [ents(4, [4, 4]), 4],
    [ents(1, [4, 4]), 1],
    [ents(3, [4, 4, 4]), 3],
  ];
  for (const [es, want] of table) {
    it(`${JSON.stringify(es.map((e) => [e.index, e.term]))} -> ${want}`, () =>
      expect(l.findConflict(es)).to.equal(want));
  }
}

function findConflictByTermTable(): void {
  // log terms at 1..10: 1 1 1 4 4 5 5 6 6 6
  const l = logWith([1, 1, 1, 4, 4, 5, 5, 6, 6, 6]);
  const table: [number, number, number][] = [
    [10, 6, 10],
    [10, 5, 7],
    [10, 4, 5],
    [10, 3, 3],
    [10, 0, 0],
    [5, 3, 3],
    [3, 1, 3],
  ];
  for (const [index, term, want] of table) {
    it(`(${index}, ${term}) -> ${want}`, () => expect(l.findConflictByTerm(index, term).index).to.equal(want));
  }
}

function maybeAppendTable(): void {
  const table: {
    prev: [number, number];
    commit: number;
    es: Entry[];
    want: number | undefined;
    wantCommit: number;
    wantLast: number;
  }[] = [
    { prev: [3, 2], commit: 3, es: [], want: undefined, wantCommit: 0, wantLast: 3 }, // term mismatch
    { prev: [4, 3], commit: 3, es: [], want: undefined, wantCommit: 0, wantLast: 3 }, // past the end
    { prev: [3, 3], commit: 3, es: [], want: 3, wantCommit: 3, wantLast: 3 },
    { prev: [3, 3], commit: 4, es: [], want: 3, wantCommit: 3, wantLast: 3 }, // commit capped at last new
    { prev: [3, 3], commit: 5, es: ents(4, [4, 4]), want: 5, wantCommit: 5, wantLast: 5 },
    { prev: [1, 1], commit: 2, es: ents(2, [4]), want: 2, wantCommit: 2, wantLast: 2 }, // conflict truncates
    { prev: [2, 2], commit: 3, es: ents(3, [3]), want: 3, wantCommit: 3, wantLast: 3 }, // duplicate, no change
  ];
  for (const t of table) {
    it(`prev=${t.prev} commit=${t.commit} n=${t.es.length} -> ${t.want}`, () => {
      const l = logWith([1, 2, 3]);
      expect(l.maybeAppend(t.prev[0], t.prev[1], t.commit, t.es)).to.equal(t.want);
      expect(l.committed).to.equal(t.wantCommit);
      expect(l.lastIndex()).to.equal(t.wantLast);
    });
  }
  it('refuses to overwrite a committed entry (assertion)', () => {
    const l = logWith([1, 2, 3]);
    l.commitTo(3);
    expect(() => l.maybeAppend(1, 1, 3, ents(2, [9]))).to.throw(/overwrites committed|conflict/);
  });
}

function commitAndApply(): void {
  it('maybeCommit only commits entries of the given term (Figure 8)', () => {
    const l = logWith([1, 1, 2]);
    expect(l.maybeCommit(3, 3)).to.equal(false);
    expect(l.maybeCommit(3, 2)).to.equal(true);
    expect(l.committed).to.equal(3);
  });
  it('hands out only committed entries that are durable', () => {
    const l = logWith([1, 1], [1, 1]);
    l.commitTo(4);
    expect(l.nextCommittedEntries(1 << 20).map((e) => e.index)).to.deep.equal([1, 2]);
    l.unstable.acceptInProgress();
    (l.storage as MemoryStorage).append(ents(3, [1, 1]));
    l.unstable.stableTo(4, 1);
    expect(l.nextCommittedEntries(1 << 20).map((e) => e.index)).to.deep.equal([1, 2, 3, 4]);
  });
  it('entries spans storage and unstable and respects the byte bound', () => {
    const l = logWith([1, 1, 1], [2, 2]);
    expect(l.entries(2, 6, 1 << 20).map((e) => e.index)).to.deep.equal([2, 3, 4, 5]);
    expect(l.entries(2, 6, 1).length, 'at least one entry').to.equal(1);
  });
}

function memoryStorage(): void {
  it('compaction keeps the term at the cut and serves entries after it', () => {
    const s = new MemoryStorage(voters);
    s.append(ents(1, [1, 1, 2, 2, 3]));
    s.setSnapshot({ index: 4, term: 2, conf: voters });
    s.compact(3);
    expect(s.firstIndex()).to.equal(4);
    expect(s.term(3)).to.equal(2);
    expect(s.term(2)).to.equal(undefined);
    expect(s.entries(4, 6, 1 << 20).map((e) => e.index)).to.deep.equal([4, 5]);
    expect(() => s.compact(5)).to.throw(/past the snapshot/);
  });
}
