// The journal's semantics (docs/PROTOCOL.md): every operation, its exact rejections, idempotent retries, and
// byte-identical files on replicas that apply the same commands.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { qjournal } from '../../../../src/gen/proto.js';
import { encodeRecords } from '../../../../src/edit-records.js';
import { Journal, journalStateProblem } from '../../../../journalnode/state/journal.js';
import { nodeFileSystem } from '../../../../src/storage/node-file-system.js';

const Code = qjournal.journal.ErrorCode;
const ns = { namespaceId: 7, clusterId: 'CID-1', blockPoolId: 'BP-1' };
const recs = (first: number, n: number) =>
  encodeRecords(
    first,
    Array.from({ length: n }, (_, i) => new TextEncoder().encode(`edit-${first + i}`)),
  );

const COMMANDS = new Set([
  'format',
  'newEpoch',
  'startSegment',
  'appendRecords',
  'finalizeSegment',
  'dropSegment',
  'purge',
]);

/** The journal, with every command followed by the check of all its invariants (a violation throws). */
function checked(j: Journal): Journal {
  return new Proxy(j, {
    get(target, name, receiver) {
      const value = Reflect.get(target, name, receiver);
      if (typeof value !== 'function' || !COMMANDS.has(String(name))) return value;
      return (...args: unknown[]) => {
        const result = value.apply(target, args);
        target.checkInvariants(true);
        return result;
      };
    },
  });
}

// Set by the hooks of the outer describe: a fresh directory per test.
let root: string;

function fresh(name = 'ns1'): Journal {
  const j = checked(new Journal(nodeFileSystem, name, path.join(root, name), 1 << 20));
  expect(j.format(ns, false).code).to.equal(Code.OK);
  return j;
}

/** A journal with one writer (epoch 1) that wrote txids 1..n in a segment left in progress. */
function writing(n: number): Journal {
  const j = fresh();
  expect(j.newEpoch(ns, 'nn1').epoch).to.equal(1);
  expect(j.startSegment(1, 1, -64).code).to.equal(Code.OK);
  if (n > 0) expect(j.appendRecords(1, 1, 1, n, recs(1, n)).code).to.equal(Code.OK);
  return j;
}

describe('journal', () => {
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-journal-'));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  describe('format and newEpoch', formatAndNewEpoch);
  describe('fencing: every operation with another epoch than the promised one is FENCED', fencing);
  describe('startLogSegment', startLogSegment);
  describe('appendRecords (the journal RPC)', appendRecords);
  describe('finalizeLogSegment', finalizeLogSegment);
  describe('segments on disk: purge, reads, replicas', segmentsOnDisk);
  describe('invariants', invariants);
});

function invariants(): void {
  const seg = (firstTxId: number, lastTxId: number, inProgress = false) => ({ firstTxId, lastTxId, inProgress });
  const ok = { promisedEpoch: 3, lastWriterEpoch: 2, lastTxId: 9, segments: [seg(1, 4), seg(5, 9), seg(10, 9, true)] };
  const table: [string, Parameters<typeof journalStateProblem>[0], RegExp][] = [
    ['a writer epoch beyond the promised one', { ...ok, lastWriterEpoch: 4 }, /beyond the promised epoch/],
    ['a gap between segments', { ...ok, segments: [seg(1, 3), seg(5, 9)] }, /does not follow/],
    ['overlapping segments', { ...ok, segments: [seg(1, 5), seg(5, 9)] }, /does not follow/],
    ['an open segment before the last', { ...ok, segments: [seg(1, 4, true), seg(5, 9)] }, /not the last/],
    ['a finalized segment without a txid', { ...ok, segments: [seg(1, 9), seg(10, 9)] }, /without a txid/],
    ['a last segment short of lastTxId', { ...ok, lastTxId: 12 }, /ends at 9, the journal at 12/],
    ['a segment ending before it starts', { ...ok, segments: [seg(1, 9), seg(11, 9, true)] }, /ends before it starts/],
  ];
  it('a sound journal passes', () => {
    expect(journalStateProblem(ok)).to.equal(null);
  });
  for (const [what, state, problem] of table) {
    it(`each broken invariant is caught: ${what}`, () => {
      expect(journalStateProblem(state)).to.match(problem);
    });
  }
}

function formatAndNewEpoch(): void {
  it('format: refuses a journal holding data unless forced; epochs survive a forced format', () => {
    const j = writing(3);
    expect(j.format(ns, false).code).to.equal(Code.ALREADY_FORMATTED);
    expect(j.format({ ...ns, namespaceId: 8 }, true).code).to.equal(Code.OK);
    expect(j.lastTxId).to.equal(0);
    expect(j.segments).to.have.length(0);
    expect(j.newEpoch({ ...ns, namespaceId: 8 }, 'nn1').epoch, 'a fenced writer stays fenced').to.equal(2);
  });

  it('newEpoch: NOT_FORMATTED, NAMESPACE_MISMATCH, then +1 each time', () => {
    const j = checked(new Journal(nodeFileSystem, 'x', path.join(root, 'x'), 0));
    expect(j.newEpoch(ns, 'nn1').code).to.equal(Code.NOT_FORMATTED);
    j.format(ns, false);
    expect(j.newEpoch({ ...ns, clusterId: 'other' }, 'nn1').code).to.equal(Code.NAMESPACE_MISMATCH);
    expect(j.newEpoch(ns, 'nn1').epoch).to.equal(1);
    const r = j.newEpoch(ns, 'nn2');
    expect(r.epoch).to.equal(2);
    expect(r.state?.writerId).to.equal('nn2');
  });

  it('newEpoch retried with the same request id answers the same epoch; any other newEpoch moves on', () => {
    const j = checked(new Journal(nodeFileSystem, 'x', path.join(root, 'x'), 0));
    j.format(ns, false);
    expect(j.newEpoch(ns, 'nn1', 'req-a').epoch).to.equal(1);
    expect(j.newEpoch(ns, 'nn1', 'req-a').epoch, 'the retry of the same request').to.equal(1);
    expect(j.newEpoch(ns, 'nn2', 'req-b').epoch, 'another writer').to.equal(2);
    expect(
      j.newEpoch(ns, 'nn1', 'req-a').epoch,
      'a late retry after another writer took over fences that writer',
    ).to.equal(3);
    expect(j.newEpoch(ns, 'nn1').epoch, 'no request id: every call is a new epoch').to.equal(4);
    expect(j.newEpoch(ns, 'nn1').epoch).to.equal(5);
    expect(j.state().epochRequestId).to.equal('');
  });
}

function fencing(): void {
  const ops: [string, (j: Journal, e: number) => qjournal.journal.ICommandResult][] = [
    ['startLogSegment', (j, e) => j.startSegment(e, 4, -64)],
    ['appendRecords', (j, e) => j.appendRecords(e, 1, 4, 1, recs(4, 1))],
    ['finalizeLogSegment', (j, e) => j.finalizeSegment(e, 1, 3)],
    ['dropSegment', (j, e) => j.dropSegment(e, 1)],
    ['purgeLogs', (j, e) => j.purge(e, 2)],
  ];
  for (const [name, op] of ops) {
    it(name, () => {
      const j = writing(3);
      j.newEpoch(ns, 'nn2'); // promised epoch 2
      const before = JSON.stringify(j.state());
      for (const epoch of [1, 3]) {
        const r = op(j, epoch);
        expect(r.code, `epoch ${epoch}`).to.equal(Code.FENCED);
        expect(r.epoch).to.equal(2);
      }
      expect(JSON.stringify(j.state()), 'nothing changed').to.equal(before);
    });
  }
}

function startLogSegment(): void {
  it('refuses a txid that is not last + 1', () => {
    const j = fresh();
    j.newEpoch(ns, 'nn1');
    expect(j.startSegment(1, 2, -64).code).to.equal(Code.OUT_OF_SYNC);
  });
  it('refuses while a non-empty segment is open', () => {
    const j = writing(3);
    expect(j.startSegment(1, 4, -64).code).to.equal(Code.OUT_OF_SYNC);
  });
  it('replaces an empty open segment at the same txid (a retry)', () => {
    const j = writing(0);
    expect(j.startSegment(1, 1, -65).code).to.equal(Code.OK);
    expect(j.segments).to.have.length(1);
    expect(j.segments[0]!.layoutVersion).to.equal(-65);
    expect(j.startSegment(1, 2, -65).code, 'not at another txid').to.equal(Code.OUT_OF_SYNC);
  });
}

function appendRecords(): void {
  it('appends and reads back', () => {
    const j = writing(5);
    expect(j.appendRecords(1, 1, 6, 2, recs(6, 2)).lastTxid).to.equal(7);
    const got = j.readEdits(3, 100, 1 << 20, true);
    expect([got.firstTxId, got.count]).to.deep.equal([3, 5]);
  });
  const table: [string, (j: Journal) => qjournal.journal.ICommandResult][] = [
    ['a gap', (j) => j.appendRecords(1, 1, 5, 1, recs(5, 1))],
    [
      'an overlap with different contents',
      (j) => j.appendRecords(1, 1, 2, 2, encodeRecords(2, [new Uint8Array([1]), new Uint8Array([2])])),
    ],
    ['an unknown segment', (j) => j.appendRecords(1, 2, 4, 1, recs(4, 1))],
  ];
  for (const [name, op] of table) {
    it(`OUT_OF_SYNC on ${name}, nothing applied`, () => {
      const j = writing(3);
      expect(op(j).code).to.equal(Code.OUT_OF_SYNC);
      expect(j.lastTxId).to.equal(3);
    });
  }
  it('a retried batch already applied under the same epoch answers success and changes nothing', () => {
    const j = writing(3);
    const size = j.segments[0]!.sizeBytes;
    expect(j.appendRecords(1, 1, 2, 2, recs(2, 2)).code).to.equal(Code.OK);
    expect(j.appendRecords(1, 1, 1, 3, recs(1, 3)).code).to.equal(Code.OK);
    expect(j.segments[0]!.sizeBytes).to.equal(size);
    expect(j.lastTxId).to.equal(3);
  });
  it('a retry after the segment was finalized still answers success', () => {
    const j = writing(3);
    j.finalizeSegment(1, 1, 3);
    expect(j.appendRecords(1, 1, 3, 1, recs(3, 1)).code).to.equal(Code.OK);
    expect(j.appendRecords(1, 1, 4, 1, recs(4, 1)).code, 'but no new txid into a finalized segment').to.equal(
      Code.OUT_OF_SYNC,
    );
  });
}

function finalizeLogSegment(): void {
  it("closes the segment under Hadoop's name; a retry succeeds; other bounds are OUT_OF_SYNC", () => {
    const j = writing(3);
    expect(j.finalizeSegment(1, 1, 2).code).to.equal(Code.OUT_OF_SYNC);
    expect(j.finalizeSegment(1, 1, 3).code).to.equal(Code.OK);
    expect(fs.readdirSync(j.dir)).to.deep.equal(['edits_0000000000000000001-0000000000000000003']);
    expect(j.finalizeSegment(1, 1, 3).code).to.equal(Code.OK);
    expect(j.finalizeSegment(1, 1, 4).code).to.equal(Code.OUT_OF_SYNC);
  });
  it('an empty segment is dropped, not finalized', () => {
    const j = writing(0);
    expect(j.finalizeSegment(1, 1, 1).code).to.equal(Code.OUT_OF_SYNC);
    expect(j.dropSegment(1, 1).code).to.equal(Code.OK);
    expect(j.segments).to.have.length(0);
    expect(j.dropSegment(1, 1).code, 'a retried drop').to.equal(Code.OK);
    expect(j.startSegment(1, 1, -64).code, 'the same txid restarts').to.equal(Code.OK);
  });
  it('a segment holding txids cannot be dropped', () => {
    const j = writing(2);
    expect(j.dropSegment(1, 1).code).to.equal(Code.OUT_OF_SYNC);
  });
}

function segmentsOnDisk(): void {
  it('purgeLogs deletes finalized segments that end below the bound, never the open one', () => {
    const j = writing(3);
    j.finalizeSegment(1, 1, 3);
    j.startSegment(1, 4, -64);
    j.appendRecords(1, 4, 4, 3, recs(4, 3));
    j.finalizeSegment(1, 4, 6);
    j.startSegment(1, 7, -64);
    j.appendRecords(1, 7, 7, 1, recs(7, 1));
    expect(j.purge(1, 5).code).to.equal(Code.OK);
    expect(j.segments.map((s) => s.firstTxId)).to.deep.equal([4, 7]);
    expect(j.purge(1, 100).code).to.equal(Code.OK);
    expect(j.segments.map((s) => s.firstTxId)).to.deep.equal([7]);
  });

  it('purgeLogs with a retention floor keeps every segment ending at or after it, whatever the bound asks', () => {
    const j = writing(3);
    j.finalizeSegment(1, 1, 3);
    j.startSegment(1, 4, -64);
    j.appendRecords(1, 4, 4, 3, recs(4, 3));
    j.finalizeSegment(1, 4, 6);
    j.startSegment(1, 7, -64);
    j.appendRecords(1, 7, 7, 1, recs(7, 1));
    const r = j.purge(1, 100, 4);
    expect([r.code, Number(r.purgedBelowTxid)]).to.deep.equal([Code.OK, 4]);
    expect(
      j.segments.map((s) => s.firstTxId),
      'segment 4-6 ends after the floor',
    ).to.deep.equal([4, 7]);
    expect(Number(j.purge(1, 2, 4).purgedBelowTxid), 'the lower of the two').to.equal(2);
  });

  it('reads across segments, from memory and from disk alike, and respects inProgressOk', () => {
    const j = writing(4);
    j.finalizeSegment(1, 1, 4);
    j.startSegment(1, 5, -64);
    j.appendRecords(1, 5, 5, 4, recs(5, 4));
    const all = j.readEdits(2, 100, 1 << 20, true);
    expect([all.firstTxId, all.count]).to.deep.equal([2, 7]);
    const finalizedOnly = j.readEdits(2, 100, 1 << 20, false);
    expect([finalizedOnly.firstTxId, finalizedOnly.count]).to.deep.equal([2, 3]);
    const limited = j.readEdits(2, 3, 1 << 20, true);
    expect(limited.count).to.equal(3);
    j.clearCache();
    const fromDisk = j.readEdits(2, 100, 1 << 20, true);
    expect(Buffer.compare(fromDisk.frames, all.frames)).to.equal(0);
  });

  it('replicas applying the same commands hold byte-identical files', () => {
    const run = (name: string) => {
      const j = checked(new Journal(nodeFileSystem, name, path.join(root, name), 1 << 20));
      j.format(ns, false);
      j.newEpoch(ns, 'nn1');
      j.startSegment(1, 1, -64);
      j.appendRecords(1, 1, 1, 10, recs(1, 10));
      j.finalizeSegment(1, 1, 10);
      j.startSegment(1, 11, -64);
      j.appendRecords(1, 11, 11, 5, recs(11, 5));
      return j;
    };
    const a = run('a');
    const b = run('b');
    for (const name of fs.readdirSync(a.dir)) {
      expect(fs.readFileSync(path.join(a.dir, name)).equals(fs.readFileSync(path.join(b.dir, name))), name).to.equal(
        true,
      );
    }
  });
}
