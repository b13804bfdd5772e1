// Snapshot store: capture and finish publish a durable snapshot that newest() returns; prune keeps the
// newest N; chunks are served within the manifest's prefix of a file that kept growing; materialize makes
// the live journal directories exactly the snapshot's; a damaged manifest falls back to the older
// snapshot; and the manifest's framing (magic, length, CRC) refuses damage.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { encodeRecords } from '../../../../src/edit-records.js';
import type { QjmError } from '../../../../src/errors.js';
import { SegmentFile } from '../../../../journalnode/state/segment-file.js';
import {
  decodeManifest,
  encodeManifest,
  SnapshotError,
  SnapshotStore,
} from '../../../../journalnode/state/snapshot-store.js';
import type { ManifestData } from '../../../../journalnode/state/snapshot-store.js';
import type { JournalStateData } from '../../../../src/journal-state.js';
import { nodeFileSystem } from '../../../../src/storage/node-file-system.js';

const LAYOUT = -64;
const conf = { voters: ['n1', 'n2', 'n3'], votersOutgoing: [], learners: [] };
const recs = (first: number, n: number) =>
  encodeRecords(
    first,
    Array.from({ length: n }, (_, i) => Buffer.from(`edit-${first + i}`)),
  );

/** A manifest as plain data (decoding gives protobuf message objects for nested messages such as nsInfo). */
const plain = (d: ManifestData) => JSON.parse(JSON.stringify(d)) as ManifestData;

function manifest(index: number, journals: JournalStateData[] = []): ManifestData {
  return {
    meta: { index, term: 2, conf, peers: [{ id: 'n1', address: '127.0.0.1:1' }] },
    journals,
    createdMs: 1_700_000_000_000,
  };
}

function journalEntry(jid: string, segs: SegmentFile[]): JournalStateData {
  return {
    jid,
    formatted: true,
    nsInfo: { namespaceId: 7, clusterId: 'CID-1', blockPoolId: 'BP-1' },
    promisedEpoch: 3,
    epochRequestId: 'r-3',
    lastWriterEpoch: 3,
    writerId: 'nn1',
    lastTxId: segs.length > 0 ? segs[segs.length - 1]!.lastTxId : 0,
    segments: segs.map((s) => s.describe()),
  };
}

/** Polls `cond` until it holds or `deadlineMs` passes (for work the store finishes in the background). */
async function eventually(cond: () => boolean, what: string, deadlineMs = 5000): Promise<void> {
  const until = Date.now() + deadlineMs;
  while (!cond()) {
    if (Date.now() > until) throw new Error(`timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

// Set by the hooks of the outer describe: a fresh root per test, its live journals and its store.
let root: string;
let live: string;
let store: SnapshotStore;

/** Journal ns1 in the live directory: a finalized segment 1-5 and an in-progress one from 6 holding 6-8. */
function liveJournal(): { done: SegmentFile; open: SegmentFile } {
  const jdir = path.join(live, 'ns1');
  fs.mkdirSync(jdir, { recursive: true });
  const done = SegmentFile.create(nodeFileSystem, jdir, 1, LAYOUT);
  done.append(recs(1, 5), 5);
  done.finalize();
  const open = SegmentFile.create(nodeFileSystem, jdir, 6, LAYOUT);
  open.append(recs(6, 3), 3);
  return { done, open };
}

/** Captures the live journal at `index` and finishes the snapshot. */
async function snapshot(index: number, segs: SegmentFile[], keep = 3): Promise<ManifestData> {
  const m = manifest(index, [journalEntry('ns1', segs)]);
  const pending = store.capture(
    m,
    segs.map((s) => ({ jid: 'ns1', file: s.name, fromPath: s.path, dirty: s.dirty })),
  );
  await new Promise<void>((res, rej) => store.finish(pending, keep, (e) => (e ? rej(e) : res())));
  return m;
}

describe('snapshot store', () => {
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-snap-'));
    live = path.join(root, 'journals');
    store = new SnapshotStore(nodeFileSystem, path.join(root, 'snapshots'));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  describe('publishing, pruning and falling back', publishing);
  describe('serving chunks and materializing', servingAndMaterializing);
  describe('manifest encoding', manifestEncoding);
});

function publishing(): void {
  it('capture + finish: a durable snapshot of hard links that newest() returns, no temporary left', async () => {
    const { done, open } = liveJournal();
    expect(store.newest()).to.equal(null);
    const m = await snapshot(10, [done, open]);
    const got = store.newest()!;
    expect(got.index).to.equal(10);
    expect(plain(got.manifest)).to.deep.equal(m);
    for (const s of [done, open]) {
      const link = path.join(got.dir, 'journals', 'ns1', s.name);
      expect(fs.statSync(link).ino, `${s.name} is a hard link, not a copy`).to.equal(fs.statSync(s.path).ino);
    }
    expect(fs.readdirSync(store.root)).to.deep.equal([SnapshotStore.dirName(10)]);
    open.close();
  });

  it('prune keeps the newest N (and always one)', async () => {
    for (const index of [5, 10, 15, 20]) store.createInitial(manifest(index));
    store.prune(2);
    await eventually(() => store.list().length === 2, 'two snapshots remain');
    expect(store.list()).to.deep.equal([20, 15]);
    store.prune(0);
    await eventually(() => store.list().length === 1, 'one snapshot remains');
    expect(store.list()).to.deep.equal([20]);
  });

  it('finish prunes to `keep` once the new snapshot is published', async () => {
    const { done, open } = liveJournal();
    for (const index of [5, 10]) store.createInitial(manifest(index));
    await snapshot(15, [done, open], 2);
    await eventually(() => store.list().length === 2, 'two snapshots remain');
    expect(store.list()).to.deep.equal([15, 10]);
    open.close();
  });

  it('a damaged manifest falls back to the older snapshot', async () => {
    store.createInitial(manifest(5));
    store.createInitial(manifest(10));
    const file = path.join(store.dirOf(10), 'manifest.pb');
    const b = fs.readFileSync(file);
    b[b.byteLength - 1]! ^= 0x01;
    fs.writeFileSync(file, b);
    expect(store.newest()!.index).to.equal(5);
    expect(store.list(), 'the damaged one is left for an operator').to.deep.equal([10, 5]);
  });
}

function servingAndMaterializing(): void {
  it('readChunk serves a growing in-progress file only up to the manifest size', async () => {
    const { done, open } = liveJournal();
    const m = await snapshot(10, [done, open]);
    const size = m.journals[0]!.segments[1]!.sizeBytes;
    const before = fs.readFileSync(open.path);
    open.append(recs(9, 4), 4); // the live file (the same inode as the snapshot's link) keeps growing
    expect(fs.statSync(path.join(store.dirOf(10), 'journals', 'ns1', open.name)).size).to.be.greaterThan(size);
    expect(store.readChunk(10, 'ns1', open.name, 0, 1 << 20)).to.deep.equal(before);
    expect(store.readChunk(10, 'ns1', open.name, size - 10, 100)).to.deep.equal(before.subarray(size - 10));
    expect(store.readChunk(10, 'ns1', open.name, size, 100).byteLength).to.equal(0);
    // What no follower of this snapshot asks (a file it does not hold, past its prefix): INVALID_ARGUMENT.
    const code = (f: () => unknown) => {
      try {
        f();
        return 'served';
      } catch (e) {
        return `${(e as QjmError).code}: ${(e as Error).message}`;
      }
    };
    expect(code(() => store.readChunk(10, 'ns1', 'edits_0000000000000000099-0000000000000000100', 0, 10))).to.match(
      /^QJM_ERR_INVALID_ARGUMENT: .*has no file/,
    );
    expect(code(() => store.readChunk(10, 'ns1', open.name, size + 1, 10))).to.match(
      /^QJM_ERR_INVALID_ARGUMENT: .*past/,
    );
    // A snapshot not held (never taken, or replaced while a follower fetched it): PURGED, fetch the manifest again.
    expect(code(() => store.readChunk(11, 'ns1', open.name, 0, 10))).to.match(
      /^QJM_ERR_PURGED: snapshot 11 is not held/,
    );
    open.close();
  });

  it('materialize: stray journals and files go, files become links to the snapshot, in-progress files are cut', async () => {
    const { done, open } = liveJournal();
    const m = await snapshot(10, [done, open]);
    const size = m.journals[0]!.segments[1]!.sizeBytes;
    open.append(recs(9, 4), 4); // applied after the snapshot: to be cut away
    open.close();
    // The live directory drifted: a stray journal, a stray file, and a finalized segment that is a copy.
    fs.mkdirSync(path.join(live, 'stray'));
    fs.writeFileSync(path.join(live, 'stray', 'x'), 'x');
    fs.writeFileSync(path.join(live, 'ns1', 'edits_inprogress_0000000000000000099'), 'stray');
    const copy = fs.readFileSync(done.path);
    fs.rmSync(done.path);
    fs.writeFileSync(done.path, copy);

    const got = store.materialize(10, live);
    expect(plain(got)).to.deep.equal(m);
    expect(fs.readdirSync(live)).to.deep.equal(['ns1']);
    expect(fs.readdirSync(path.join(live, 'ns1')).sort()).to.deep.equal([done.name, open.name].sort());
    for (const s of [done, open]) {
      expect(fs.statSync(s.path).ino, `${s.name} links to the snapshot's file`).to.equal(
        fs.statSync(path.join(store.dirOf(10), 'journals', 'ns1', s.name)).ino,
      );
    }
    expect(fs.statSync(open.path).size, 'the in-progress file is cut to the snapshot prefix').to.equal(size);
    const reloaded = SegmentFile.load(nodeFileSystem, path.join(live, 'ns1'), open.name, { inProgress: true });
    expect(reloaded.lastTxId).to.equal(8);
    reloaded.close();
  });

  it('materialize refuses a snapshot file shorter than its manifest says', async () => {
    const { done, open } = liveJournal();
    await snapshot(10, [done, open]);
    open.close();
    fs.truncateSync(path.join(store.dirOf(10), 'journals', 'ns1', done.name), 40);
    expect(() => store.materialize(10, live)).to.throw(SnapshotError, `${done.name} has 40 bytes`);
  });
}

function manifestEncoding(): void {
  const m = manifest(42, [
    {
      ...journalEntry('ns1', []),
      lastTxId: 9,
      segments: [
        {
          firstTxId: 1,
          lastTxId: 9,
          inProgress: false,
          file: 'edits_0000000000000000001-0000000000000000009',
          sizeBytes: 1234,
          crc32: 0xdeadbeef,
          layoutVersion: LAYOUT,
        },
      ],
    },
  ]);

  it('round-trips every field', () => {
    expect(plain(decodeManifest(encodeManifest(m), 'm'))).to.deep.equal(m);
  });

  // A manifest from a peer names paths: every name and number is checked before anything is written.
  const seg = m.journals[0]!.segments[0]!;
  const hostile: [string, ManifestData, string][] = [
    ['a journal id with a path in it', { ...m, journals: [{ ...m.journals[0]!, jid: '../../etc' }] }, 'bad journal id'],
    ['a journal id of dots', { ...m, journals: [{ ...m.journals[0]!, jid: '..' }] }, 'bad journal id'],
    [
      'a file name with a path in it',
      { ...m, journals: [{ ...m.journals[0]!, segments: [{ ...seg, file: '../../x' }] }] },
      'does not match its txids',
    ],
    [
      'a file name that is not its txids',
      {
        ...m,
        journals: [
          { ...m.journals[0]!, segments: [{ ...seg, file: 'edits_0000000000000000002-0000000000000000009' }] },
        ],
      },
      'does not match its txids',
    ],
    [
      'an in-progress segment before another',
      {
        ...m,
        journals: [
          {
            ...m.journals[0]!,
            lastTxId: 12,
            segments: [
              { ...seg, inProgress: true, file: 'edits_inprogress_0000000000000000001' },
              { ...seg, firstTxId: 10, lastTxId: 12, file: 'edits_0000000000000000010-0000000000000000012' },
            ],
          },
        ],
      },
      'in progress but not the last',
    ],
    [
      'overlapping segments',
      {
        ...m,
        journals: [
          {
            ...m.journals[0]!,
            lastTxId: 12,
            segments: [
              seg,
              { ...seg, firstTxId: 5, lastTxId: 12, file: 'edits_0000000000000000005-0000000000000000012' },
            ],
          },
        ],
      },
      'does not follow segment 1',
    ],
    [
      'a gap between segments',
      {
        ...m,
        journals: [
          {
            ...m.journals[0]!,
            lastTxId: 12,
            segments: [
              seg,
              { ...seg, firstTxId: 11, lastTxId: 12, file: 'edits_0000000000000000011-0000000000000000012' },
            ],
          },
        ],
      },
      'does not follow segment 1',
    ],
    [
      "a journal whose last txid is not its last segment's",
      { ...m, journals: [{ ...m.journals[0]!, lastTxId: 7 }] },
      'the last segment ends at 9, the journal at 7',
    ],
    [
      'a writer epoch beyond the promised epoch',
      { ...m, journals: [{ ...m.journals[0]!, promisedEpoch: 1, lastWriterEpoch: 2 }] },
      'beyond the promised epoch',
    ],
    [
      'a size below the header',
      { ...m, journals: [{ ...m.journals[0]!, segments: [{ ...seg, sizeBytes: 3 }] }] },
      'size or CRC',
    ],
    ['a journal listed twice', { ...m, journals: [m.journals[0]!, m.journals[0]!] }, 'listed twice'],
    ['a bad node id', { ...m, meta: { ...m.meta, conf: { ...m.meta.conf, voters: ['n1', 'a/b'] } } }, 'bad node id'],
    [
      'a bad peer address',
      { ...m, meta: { ...m.meta, peers: [{ id: 'n1', address: 'http://evil/' }] } },
      'bad address',
    ],
    [
      'a storage binding that is no storage id',
      { ...m, meta: { ...m.meta, peers: [{ id: 'n1', address: '127.0.0.1:1', storageId: '../x' }] } },
      'bad storage id',
    ],
    ['a generation out of range', { ...m, meta: { ...m.meta, generation: 2 ** 60 } }, 'out of range'],
  ];
  for (const [what, bad, message] of hostile) {
    it(`refuses ${what}`, () => {
      expect(() => decodeManifest(encodeManifest(bad), 'm')).to.throw(SnapshotError, message);
    });
  }

  const damage: [string, (b: Buffer) => Buffer, RegExp][] = [
    ['bad magic', (b) => Buffer.concat([Buffer.from('XJSM'), b.subarray(4)]), /^where: not a snapshot manifest$/],
    ['shorter than the framing', (b) => b.subarray(0, 11), /^where: not a snapshot manifest$/],
    [
      'a byte more than the length says',
      (b) => Buffer.concat([b, Buffer.from([0])]),
      /^where: manifest length \d+ does not match the file$/,
    ],
    ['cut short', (b) => b.subarray(0, b.byteLength - 1), /^where: manifest length \d+ does not match the file$/],
    [
      'a flipped body byte',
      (b) => {
        const c = Buffer.from(b);
        c[c.byteLength - 3]! ^= 0x40;
        return c;
      },
      /^where: manifest CRC mismatch$/,
    ],
  ];
  for (const [name, mutate, message] of damage) {
    it(`refuses ${name}`, () => {
      expect(() => decodeManifest(mutate(encodeManifest(m)), 'where')).to.throw(SnapshotError, message);
    });
  }
}
