// The on-disk Raft log and metadata: round trips across restarts, truncation, rollover, compaction, torn
// tails (cut) versus corruption (refused, naming file and offset), resets, and a model test against the
// in-memory log.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import fc from 'fast-check';
import { CorruptLogError } from '../../../src/storage/log-recovery.js';
import { DiskLog } from '../../../src/storage/raft-log.js';
import { MetaStore, MetaFileError } from '../../../src/storage/raft-meta-store.js';
import { MemoryStorage } from '../../../src/raft/memory-storage.js';
import { EntryType } from '../../../src/raft/types.js';
import type { Entry, SnapshotMeta } from '../../../src/raft/types.js';
import { nodeFileSystem } from '../../../src/storage/node-file-system.js';

const conf = { voters: ['n1'], votersOutgoing: [], learners: [] };
const snap0: SnapshotMeta = { index: 0, term: 0, conf };
const ent = (index: number, term: number, data = `d${index}`): Entry => ({
  index,
  term,
  type: EntryType.Normal,
  data: Buffer.from(data),
});
const run = (from: number, terms: number[]) => terms.map((t, i) => ent(from + i, t));

function write(
  log: DiskLog,
  entries: Entry[],
  hs: { term: number; vote: string; commit: number } | null = null,
): Promise<void> {
  return new Promise((resolve, reject) => log.write(hs, entries, (e) => (e ? reject(e) : resolve())));
}

describe('disk Raft log', () => {
  let dir: string;
  let meta: MetaStore;
  const open = (o: Partial<Parameters<typeof DiskLog.open>[1]> = {}) =>
    DiskLog.open(path.join(dir, 'log'), {
      fileSystem: nodeFileSystem,
      maxSegmentBytes: 1 << 20,
      maxCacheBytes: 1 << 20,
      sync: true,
      snapshot: snap0,
      meta,
      ...o,
    });
  const segFiles = () => fs.readdirSync(path.join(dir, 'log')).sort();

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-log-'));
    meta = MetaStore.create(nodeFileSystem, path.join(dir, 'raft'), {
      hardState: { term: 0, vote: '', commit: 0 },
      storageId: 's',
      clusterId: 'c',
      nodeId: 'n1',
    });
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  describe('metadata', () => {
    it('round-trips and survives a leftover temporary file', async () => {
      await new Promise<void>((res, rej) =>
        meta.save({ ...meta.meta, hardState: { term: 5, vote: 'n2', commit: 3 } }, (e) => (e ? rej(e) : res())),
      );
      fs.writeFileSync(path.join(dir, 'raft', 'raft_meta.tmp'), 'half-written garbage');
      const again = MetaStore.open(nodeFileSystem, path.join(dir, 'raft'))!;
      expect(again.meta.hardState).to.deep.equal({ term: 5, vote: 'n2', commit: 3 });
      expect(again.meta.storageId).to.equal('s');
      expect(fs.existsSync(path.join(dir, 'raft', 'raft_meta.tmp'))).to.equal(false);
    });
    it('a damaged file is refused, never silently reset (that would forget a vote)', () => {
      const f = path.join(dir, 'raft', 'raft_meta');
      const b = fs.readFileSync(f);
      b[b.length - 1]! ^= 1;
      fs.writeFileSync(f, b);
      expect(() => MetaStore.open(nodeFileSystem, path.join(dir, 'raft'))).to.throw(MetaFileError, /CRC mismatch/);
    });
  });

  it('appends, reads back across a restart, and keeps the hard state', async () => {
    const log = open();
    await write(log, run(1, [1, 1, 2]), { term: 2, vote: 'n1', commit: 0 });
    expect(log.lastIndex()).to.equal(3);
    log.close();
    const again = open();
    expect([again.firstIndex(), again.lastIndex(), again.term(2), again.term(3)]).to.deep.equal([1, 3, 1, 2]);
    expect(again.entries(1, 4, 1 << 20).map((e) => Buffer.from(e.data).toString())).to.deep.equal(['d1', 'd2', 'd3']);
    expect(again.initialHardState()).to.deep.equal({ term: 2, vote: 'n1', commit: 0 });
    again.close();
  });

  it("bytesAfter: a follower's byte lag, across segment boundaries and a truncation; every fdatasync observed", async () => {
    const fsyncsMs: number[] = [];
    const log = open({ maxSegmentBytes: 100, onFsync: (ms) => fsyncsMs.push(ms) });
    for (let i = 1; i <= 12; i += 2)
      await write(
        log,
        run(i, [1, 1]).map((e) => ({ ...e, data: Buffer.from('x'.repeat(10)) })),
      );
    expect(segFiles().length).to.be.greaterThan(2);
    expect(fsyncsMs.length).to.equal(6);
    expect(fsyncsMs.every((ms) => ms >= 0)).to.equal(true);
    // Entries of equal size: each index below the end adds one frame, wherever the segment boundaries fall.
    const frame = log.bytesAfter(11);
    expect(frame).to.be.greaterThan(10);
    for (let i = 0; i <= 12; i++) expect(log.bytesAfter(i), `after ${i}`).to.equal((12 - i) * frame);
    expect(log.bytesAfter(20)).to.equal(0);
    await write(
      log,
      run(4, [2]).map((e) => ({ ...e, data: Buffer.from('x'.repeat(10)) })),
    );
    expect([log.bytesAfter(0), log.bytesAfter(3)]).to.deep.equal([4 * frame, frame]);
    log.close();
  });

  it('a byte that rots after start-up is refused when the entry is read back (never sent to a follower)', async () => {
    const log = open({ maxCacheBytes: 0 });
    await write(log, run(1, [1, 1, 1]));
    const f = path.join(dir, 'log', segFiles()[0]!);
    const b = fs.readFileSync(f);
    b[32 + 27 + 26]! ^= 0x04; // inside entry 2's data
    fs.writeFileSync(f, b);
    expect(Buffer.from(log.entries(1, 2, 1000)[0]!.data).toString()).to.equal('d1');
    expect(() => log.entries(1, 4, 1000)).to.throw(CorruptLogError, /offset 59: entry CRC mismatch/);
    log.close();
  });

  it('an empty entry whose data is a view of an empty ArrayBuffer is framed with its CRC (a restart reads it back)', async () => {
    const log = open();
    // zlib.crc32 answers 0 for such a view whatever the running CRC: the frame must not carry that 0.
    const empty = new Uint8Array(new ArrayBuffer(0));
    await write(log, [ent(1, 1), { index: 2, term: 1, type: EntryType.Normal, data: empty }, ent(3, 1)]);
    log.close();
    const again = open();
    expect(again.lastIndex()).to.equal(3);
    expect(again.entries(2, 3, 100)[0]!.data.byteLength).to.equal(0);
    again.close();
  });

  it('a batch larger than tornWriteBytes is written in parts, none larger (the torn-write rule relies on it)', async () => {
    const sizes: number[] = [];
    const log = open({ tornWriteBytes: 300, onFsync: () => sizes.push(log.stats().bytesWritten) });
    await write(
      log,
      run(1, [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]).map((e) => ({ ...e, data: Buffer.alloc(90, 1) })),
    );
    sizes.push(log.stats().bytesWritten); // each observation precedes its part's count: the differences are the parts
    const parts = sizes.slice(1).map((s, i) => s - sizes[i]!);
    expect(parts.length, 'several writes, each synced').to.be.greaterThan(1);
    for (const p of parts) expect(p).to.be.at.most(300);
    expect(log.lastIndex()).to.equal(10);
    log.close();
  });

  it('truncates a conflicting suffix, also across a segment boundary, then restarts', async () => {
    const log = open({ maxSegmentBytes: 100 });
    for (let i = 1; i <= 12; i += 2) await write(log, run(i, [1, 1]));
    expect(segFiles().length).to.be.greaterThan(2);
    await write(log, run(4, [2, 2]));
    expect([log.lastIndex(), log.term(3), log.term(4), log.term(5)]).to.deep.equal([5, 1, 2, 2]);
    log.close();
    const again = open({ maxSegmentBytes: 100 });
    expect([again.lastIndex(), again.term(4), again.term(6)]).to.deep.equal([5, 2, undefined]);
    expect(again.entries(1, 6, 1 << 20).map((e) => e.index)).to.deep.equal([1, 2, 3, 4, 5]);
    again.close();
  });

  it('compaction drops whole old segments but still knows the term at the cut', async () => {
    const log = open({ maxSegmentBytes: 100 });
    const termOf = (i: number) => Math.floor((i - 1) / 4) + 1;
    for (let i = 1; i <= 20; i += 2) await write(log, [ent(i, termOf(i)), ent(i + 1, termOf(i + 1))]);
    const before = segFiles().length;
    log.snapshotSaved({ index: 15, term: termOf(15), conf }, 12);
    await new Promise<void>((r) => log.flush(r)); // the compacted segments are deleted in the background
    expect(segFiles().length).to.be.lessThan(before);
    expect([log.firstIndex(), log.term(12), log.term(11)]).to.deep.equal([13, termOf(12), undefined]);
    expect(log.snapshotMeta().index).to.equal(15);
    log.close();
    const again = open({ maxSegmentBytes: 100, snapshot: { index: 15, term: termOf(15), conf } });
    expect(again.firstIndex()).to.be.at.most(13);
    expect(again.term(15)).to.equal(termOf(15));
    again.close();
  });

  describe('start-up checks', () => {
    async function threeEntries(): Promise<string> {
      const log = open();
      await write(log, run(1, [1, 1, 1]));
      log.close();
      return path.join(dir, 'log', segFiles()[0]!);
    }

    it('a truncated last frame is a torn tail: cut, and the good prefix survives', async () => {
      const f = await threeEntries();
      fs.truncateSync(f, fs.statSync(f).size - 3);
      const log = open();
      expect(log.lastIndex()).to.equal(2);
      await write(log, [ent(3, 1, 'again')]);
      expect(Buffer.from(log.entries(3, 4, 100)[0]!.data).toString()).to.equal('again');
      log.close();
    });

    it('a last in-progress segment of zeros only (its header never reached the disk, its size did) is a torn creation: removed', async () => {
      const log = open();
      await write(log, run(1, [1, 1]));
      log.close();
      fs.writeFileSync(path.join(dir, 'log', 'log_inprogress_00000000000000000003'), Buffer.alloc(600));
      const again = open();
      expect(again.lastIndex()).to.equal(2);
      await write(again, [ent(3, 1)]);
      again.close();
      expect(open().lastIndex()).to.equal(3);
    });

    it('zeros after the last frame (a preallocated or torn region) are a torn tail', async () => {
      const f = await threeEntries();
      fs.appendFileSync(f, Buffer.alloc(100));
      const log = open();
      expect(log.lastIndex()).to.equal(3);
      log.close();
    });

    it('a flipped byte in the middle of the log refuses to start, naming the file and offset', async () => {
      const log = open();
      for (let i = 1; i <= 3; i++) await write(log, [ent(i, 1)]);
      log.close();
      const f = path.join(dir, 'log', segFiles()[0]!);
      const b = fs.readFileSync(f);
      b[32 + 26]! ^= 0xff; // inside the first entry's data
      fs.writeFileSync(f, b);
      // Every sector is present and the frame is complete: bytes changed after they were written.
      expect(() => open()).to.throw(CorruptLogError, new RegExp(`${path.basename(f)} offset 32: entry CRC mismatch`));
      // And with a limit on the last write that the damage is beyond, for the same reason.
      expect(() => open({ tornWriteBytes: 27 })).to.throw(CorruptLogError, /offset 32/);
    });

    it('a flipped byte in the last write is refused too: a complete frame that is wrong is not a torn write', async () => {
      const log = open({ preallocateBytes: 4096 });
      for (let i = 1; i <= 3; i++) await write(log, [ent(i, 1)]);
      await new Promise<void>((r) => log.flush(r));
      log.close();
      const f = path.join(dir, 'log', segFiles()[0]!);
      const b = fs.readFileSync(f);
      const last = 32 + 2 * 27;
      b[last + 26]! ^= 0x01;
      fs.writeFileSync(f, b);
      expect(() => open()).to.throw(CorruptLogError, new RegExp(`offset ${last}: entry CRC mismatch`));
    });

    it('a write torn in the middle (a later page reached the disk, an earlier one not) is cut where it breaks', async () => {
      const log = open({ preallocateBytes: 4096 });
      await write(log, [ent(1, 1)]);
      await write(log, [ent(2, 1), ent(3, 1, 'x'.repeat(1200)), ent(4, 1)]);
      await new Promise<void>((r) => log.flush(r));
      log.close();
      const f = path.join(dir, 'log', segFiles()[0]!);
      const b = fs.readFileSync(f);
      const third = 32 + 27 + 27;
      expect(b.byteLength, 'zero-filled space follows the entries').to.be.greaterThan(third + 25 + 1200 + 27);
      b.fill(0, 512, 1024); // a sector inside entry 3 never reached the disk; the ones after it did
      fs.writeFileSync(f, b);
      const again = open({ tornWriteBytes: 2000 });
      expect(again.lastIndex()).to.equal(2);
      await write(again, [ent(3, 2, 'new')]);
      again.close();
      expect(
        open()
          .entries(1, 4, 1000)
          .map((e) => Buffer.from(e.data).toString()),
      ).to.deep.equal(['d1', 'd2', 'new']);
    });

    it('a sector torn within itself (the start of its new bytes reached the disk, zeros after) is cut where it breaks', async () => {
      const log = open({ preallocateBytes: 4096 });
      await write(log, [ent(1, 1)]);
      await write(log, [ent(2, 1, 'y'.repeat(700)), ent(3, 1)]);
      await new Promise<void>((r) => log.flush(r));
      log.close();
      const f = path.join(dir, 'log', segFiles()[0]!);
      const b = fs.readFileSync(f);
      // Entry 2 spans sectors 0 and 1; sector 0's write stopped 40 bytes short, sector 1's reached the disk.
      b.fill(0, 512 - 40, 512);
      fs.writeFileSync(f, b);
      const again = open({ tornWriteBytes: 2000 });
      expect(again.lastIndex()).to.equal(1);
      again.close();
    });

    it('preallocated space: appends go into it, a restart keeps it silently, and closed segments are trimmed', async () => {
      const warnings: string[] = [];
      const logger = { info() {}, debug() {}, error() {}, warn: (_o: object, m: string) => warnings.push(m) };
      const log = open({ preallocateBytes: 8192, maxSegmentBytes: 4096, logger });
      await write(log, [ent(1, 1)]);
      await new Promise<void>((r) => log.flush(r));
      expect(log.stats().preallocatedBytes).to.be.greaterThan(0);
      const f = path.join(dir, 'log', segFiles()[0]!);
      expect(fs.statSync(f).size, 'zeros up to the segment limit').to.equal(4096);
      log.close();
      const again = open({ preallocateBytes: 8192, maxSegmentBytes: 4096, logger });
      expect(again.lastIndex()).to.equal(1);
      expect(again.stats().preallocatedBytes).to.equal(4096 - 32 - 27);
      // Fill the segment past its limit: it is closed, trimmed to its last entry, and a new one starts.
      for (let i = 2; i <= 160; i++) await write(again, [ent(i, 1, 'x'.repeat(30))]);
      await new Promise<void>((r) => again.flush(r));
      const closed = segFiles().filter((n) => !n.includes('inprogress'));
      expect(closed.length).to.be.greaterThan(0);
      for (const n of closed) {
        const buf = fs.readFileSync(path.join(dir, 'log', n));
        expect(buf[buf.length - 1], `${n} ends with entry data, not zeros`).to.equal('x'.charCodeAt(0));
      }
      again.close();
      const third = open({ preallocateBytes: 8192, maxSegmentBytes: 4096, logger });
      expect(third.lastIndex()).to.equal(160);
      expect(third.entries(150, 161, 1 << 20).length).to.equal(11);
      third.close();
      expect(warnings).to.deep.equal([]);
    });

    it('corruption in an older (closed) segment is refused too', async () => {
      const log = open({ maxSegmentBytes: 60 });
      for (let i = 1; i <= 6; i++) await write(log, [ent(i, 1)]);
      log.close();
      const closed = segFiles().find((n) => !n.includes('inprogress'))!;
      const f = path.join(dir, 'log', closed);
      const b = fs.readFileSync(f);
      b[b.length - 1]! ^= 0xff;
      fs.writeFileSync(f, b);
      expect(() => open({ maxSegmentBytes: 60 })).to.throw(CorruptLogError, new RegExp(closed));
    });
  });

  it('reset: the view switches at once, the old files go at commit; a restart before commit discards a log that lacks the snapshot', async () => {
    const log = open();
    await write(log, run(1, [1, 1, 1]));
    const meta5: SnapshotMeta = { index: 50, term: 3, conf };
    log.beginReset(meta5);
    expect([log.firstIndex(), log.lastIndex(), log.term(50)]).to.deep.equal([51, 50, 3]);
    log.close();
    // Crash before commitReset: the old entries are still on disk, the snapshot (at 50) is durable.
    const crashed = open({ snapshot: meta5 });
    expect([crashed.firstIndex(), crashed.lastIndex(), crashed.term(50)]).to.deep.equal([51, 50, 3]);
    await write(crashed, run(51, [3]));
    await new Promise<void>((res, rej) => crashed.commitReset(meta5, (e) => (e ? rej(e) : res())));
    expect(crashed.lastIndex()).to.equal(50);
    crashed.close();
  });

  it('model: random appends (with conflicting overlaps), compactions and restarts agree with the in-memory log', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.record({
              kind: fc.constant('append' as const),
              back: fc.nat({ max: 4 }),
              n: fc.integer({ min: 1, max: 5 }),
              bump: fc.boolean(),
            }),
            fc.record({ kind: fc.constant('compact' as const), keep: fc.nat({ max: 6 }) }),
            fc.record({ kind: fc.constant('restart' as const) }),
          ),
          { minLength: 1, maxLength: 25 },
        ),
        async (ops) => {
          fs.rmSync(path.join(dir, 'log'), { recursive: true, force: true });
          const model = new MemoryStorage(conf);
          let snapshot = snap0;
          let log = open({ maxSegmentBytes: 120 });
          let term = 1;
          let committed = 0;
          for (const op of ops) {
            if (op.kind === 'append') {
              if (op.bump) term++;
              const first = Math.max(committed + 1, model.lastIndex() + 1 - op.back);
              const ents = run(first, Array(op.n).fill(term));
              model.append(ents);
              await write(log, ents);
            } else if (op.kind === 'compact') {
              const idx = model.lastIndex() - op.keep;
              if (idx > model.firstIndex()) {
                committed = Math.max(committed, idx);
                snapshot = { index: idx, term: model.term(idx)!, conf };
                model.setSnapshot(snapshot);
                model.compact(idx - 1);
                log.snapshotSaved(snapshot, idx - 1);
              }
            } else {
              log.close();
              log = open({ maxSegmentBytes: 120, snapshot });
            }
            const lo = Math.max(model.firstIndex(), log.firstIndex());
            expect(log.lastIndex()).to.equal(model.lastIndex());
            expect(log.firstIndex()).to.be.at.most(model.firstIndex());
            for (let i = lo - 1; i <= model.lastIndex(); i++) expect(log.term(i), `term(${i})`).to.equal(model.term(i));
            if (lo <= model.lastIndex()) {
              const a = log
                .entries(lo, model.lastIndex() + 1, Infinity)
                .map((e) => [e.index, e.term, Buffer.from(e.data).toString()]);
              const b = model
                .entries(lo, model.lastIndex() + 1, Infinity)
                .map((e) => [e.index, e.term, Buffer.from(e.data).toString()]);
              expect(a).to.deep.equal(b);
            }
          }
          log.close();
        },
      ),
      { numRuns: 60, seed: 7 },
    );
  });
});
