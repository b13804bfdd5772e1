// A second model test of the on-disk Raft log against the in-memory log: random appends with conflicting
// overlaps and hard states, compactions, restarts, and snapshot resets with and without a crash before
// commitReset, under random segment, cache and preallocation sizes and with sync on or off.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import fc from 'fast-check';
import { MemoryStorage } from '../../../src/raft/memory-storage.js';
import { EntryType } from '../../../src/raft/types.js';
import type { Entry, HardState, SnapshotMeta } from '../../../src/raft/types.js';
import { DiskLog } from '../../../src/storage/raft-log.js';
import type { DiskLogOptions } from '../../../src/storage/raft-log.js';
import { MetaStore } from '../../../src/storage/raft-meta-store.js';
import { nodeFileSystem } from '../../../src/storage/node-file-system.js';

const conf = { voters: ['n1'], votersOutgoing: [], learners: [] };
const snapAt = (index: number, term: number): SnapshotMeta => ({ index, term, conf });
const write = (log: DiskLog, entries: Entry[], hs: HardState | null) =>
  new Promise<void>((resolve, reject) => log.write(hs, entries, (e) => (e ? reject(e) : resolve())));
const commitReset = (log: DiskLog, meta: SnapshotMeta) =>
  new Promise<void>((resolve, reject) => log.commitReset(meta, (e) => (e ? reject(e) : resolve())));
const flush = (log: DiskLog) => new Promise<void>((resolve) => log.flush(resolve));
const shapeOf = (e: Entry) => `${e.index}/${e.term}/${e.type}/${Buffer.from(e.data).toString('hex')}`;
const quiet = { info() {}, warn() {}, error() {}, debug() {} };

describe('disk Raft log (model with resets and crashes)', () => {
  let dir: string;
  let logDir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-logmodel-'));
    logDir = path.join(dir, 'log');
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  describe('model: random appends, truncations, compactions, resets and restarts agree with the memory log', () => {
    type Cmd =
      | { kind: 'append'; count: number; back: number; bump: boolean; size: number; vote: boolean }
      | { kind: 'snapshot'; at: number; keep: number }
      | { kind: 'reopen' }
      | { kind: 'reset'; ahead: number; crash: boolean };
    const cmd: fc.Arbitrary<Cmd> = fc.oneof(
      {
        weight: 6,
        arbitrary: fc.record({
          kind: fc.constant('append' as const),
          count: fc.integer({ min: 1, max: 6 }),
          back: fc.integer({ min: 0, max: 5 }),
          bump: fc.boolean(),
          size: fc.integer({ min: 0, max: 60 }),
          vote: fc.boolean(),
        }),
      },
      {
        weight: 2,
        arbitrary: fc.record({
          kind: fc.constant('snapshot' as const),
          at: fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
          keep: fc.integer({ min: 0, max: 6 }),
        }),
      },
      { weight: 2, arbitrary: fc.constant({ kind: 'reopen' as const }) },
      {
        weight: 1,
        arbitrary: fc.record({
          kind: fc.constant('reset' as const),
          ahead: fc.integer({ min: -3, max: 3 }),
          crash: fc.boolean(),
        }),
      },
    );

    function check(disk: DiskLog, model: MemoryStorage, where: string): void {
      const first = model.firstIndex();
      const last = model.lastIndex();
      expect([disk.firstIndex(), disk.lastIndex()], `${where}: first/last`).to.deep.equal([first, last]);
      expect([disk.snapshotMeta().index, disk.snapshotMeta().term], `${where}: snapshot`).to.deep.equal([
        model.snapshotMeta().index,
        model.snapshotMeta().term,
      ]);
      for (let i = Math.max(0, first - 3); i <= last + 2; i++)
        expect(disk.term(i), `${where}: term(${i})`).to.equal(model.term(i));
      const shape = (es: Entry[]) =>
        es.map((e) => `${e.index}/${e.term}/${e.type}/${Buffer.from(e.data).toString('hex')}`);
      expect(shape(disk.entries(first, last + 1, Number.MAX_SAFE_INTEGER)), `${where}: all entries`).to.deep.equal(
        shape(model.entries(first, last + 1, Number.MAX_SAFE_INTEGER)),
      );
      const mid = Math.min(last + 1, first + ((last - first + 1) >> 1));
      for (const maxBytes of [0, 40, 150]) {
        for (const lo of [first, mid]) {
          expect(
            disk.entries(lo, last + 1, maxBytes).map((e) => e.index),
            `${where}: entries(${lo}, ${last + 1}, ${maxBytes})`,
          ).to.deep.equal(model.entries(lo, last + 1, maxBytes).map((e) => e.index));
        }
      }
    }

    it('holds for random command sequences', async function () {
      this.timeout(120_000);
      await fc.assert(
        fc.asyncProperty(
          fc.array(cmd, { minLength: 1, maxLength: 40 }),
          fc.constantFrom(0, 150, 1 << 20),
          fc.integer({ min: 40, max: 400 }),
          fc.boolean(),
          fc.constantFrom(0, 64, 300, 4096),
          async (cmds, maxCacheBytes, maxSegmentBytes, sync, preallocateBytes) => {
            fs.rmSync(logDir, { recursive: true, force: true });
            const metaDir = path.join(dir, `raft-${Math.random().toString(36).slice(2)}`);
            const ms = MetaStore.create(nodeFileSystem, metaDir, {
              hardState: { term: 0, vote: '', commit: 0 },
              storageId: 'st',
              clusterId: 'cl',
              nodeId: 'n1',
            });
            const opts = (snapshot: SnapshotMeta): DiskLogOptions => ({
              fileSystem: nodeFileSystem,
              maxCacheBytes,
              maxSegmentBytes,
              sync,
              preallocateBytes,
              snapshot,
              meta: ms,
              logger: quiet,
            });
            let disk = DiskLog.open(logDir, opts(snapAt(0, 0)));
            let model = new MemoryStorage(conf);
            let term = 1;
            let hard: HardState = { term: 0, vote: '', commit: 0 };
            const history = new Map<number, Entry>();
            try {
              for (let step = 0; step < cmds.length; step++) {
                const c = cmds[step]!;
                const where = `step ${step} ${JSON.stringify(c)}`;
                if (c.kind === 'append') {
                  const last = model.lastIndex();
                  const from = Math.max(model.snapshotMeta().index + 1, last + 1 - c.back);
                  // A conflicting suffix comes from a newer leader: a higher term.
                  term = Math.max(term, model.term(from - 1)!) + (c.bump || from <= last ? 1 : 0);
                  const es: Entry[] = [];
                  for (let k = 0; k < c.count; k++) {
                    const index = from + k;
                    es.push({
                      index,
                      term,
                      type: index % 7 === 0 ? EntryType.ConfChange : EntryType.Normal,
                      data: Buffer.alloc((c.size + index) % 61, (index * 31 + term) & 0xff),
                    });
                  }
                  const hs = c.vote ? { term, vote: 'n1', commit: Math.max(0, from - 1) } : null;
                  await write(disk, es, hs);
                  if (hs) hard = hs;
                  model.append(es);
                  for (const e of es) history.set(e.index, e);
                } else if (c.kind === 'snapshot') {
                  const s = model.snapshotMeta().index;
                  const last = model.lastIndex();
                  if (last <= s) continue;
                  const index = s + 1 + Math.floor(c.at * (last - s));
                  const m = snapAt(index, model.term(index)!);
                  const compactTo = Math.max(0, index - c.keep);
                  disk.snapshotSaved(m, compactTo);
                  model.setSnapshot(m);
                  model.compact(compactTo);
                } else if (c.kind === 'reopen') {
                  await flush(disk);
                  disk.close();
                  disk = DiskLog.open(logDir, opts(model.snapshotMeta()));
                  // Compaction deletes whole segments only, so a restarted log may start earlier than the model (never
                  // later); whatever extra it shows must be the entries written there.
                  expect(disk.firstIndex(), `${where}: restarted log starts no later than the model`).to.be.at.most(
                    model.firstIndex(),
                  );
                  for (let i = disk.firstIndex(); i < model.firstIndex(); i++) {
                    const e = disk.entries(i, i + 1, Number.MAX_SAFE_INTEGER)[0]!;
                    expect(shapeOf(e), `${where}: kept entry ${i}`).to.equal(shapeOf(history.get(i)!));
                  }
                  disk.snapshotSaved(model.snapshotMeta(), model.firstIndex() - 1);
                  expect(disk.initialHardState(), `${where}: hard state`).to.deep.equal(hard);
                } else {
                  const index = Math.max(model.snapshotMeta().index + 1, model.lastIndex() + c.ahead);
                  term++;
                  const m = snapAt(index, term);
                  disk.beginReset(m);
                  expect([disk.firstIndex(), disk.lastIndex(), disk.term(index)], `${where}: reset view`).to.deep.equal(
                    [index + 1, index, term],
                  );
                  if (c.crash) {
                    // The image is installed, then the node dies before commitReset.
                    await flush(disk);
                    disk.close();
                    disk = DiskLog.open(logDir, opts(m));
                  } else {
                    await commitReset(disk, m);
                  }
                  model = new MemoryStorage(conf);
                  model.applySnapshot(m);
                  history.clear();
                }
                check(disk, model, where);
              }
              await flush(disk);
            } finally {
              disk.close();
              fs.rmSync(metaDir, { recursive: true, force: true });
            }
          },
        ),
        { numRuns: 100 },
      );
    });
  });
});
