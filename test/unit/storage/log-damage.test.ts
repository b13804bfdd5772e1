// Protocol-aware recovery of a damaged Raft log, at start-up: the caller is told of the damage (and what the
// log may have held past it) before anything changes on disk; the sound part before the damage is kept and the
// rest cut, so appends go on from there; damage under the snapshot only deletes what the snapshot holds; a
// damaged end of the log is told as a bound, not a known entry. Without a taker, damage still refuses to start.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { CorruptLogError } from '../../../src/storage/log-recovery.js';
import type { LogDamage } from '../../../src/storage/log-recovery.js';
import { DiskLog } from '../../../src/storage/raft-log.js';
import { MetaStore } from '../../../src/storage/raft-meta-store.js';
import { EntryType } from '../../../src/raft/types.js';
import type { Entry, SnapshotMeta } from '../../../src/raft/types.js';
import { nodeFileSystem } from '../../../src/storage/node-file-system.js';

const conf = { voters: ['n1'], votersOutgoing: [], learners: [] };
const ent = (index: number, term: number): Entry => ({
  index,
  term,
  type: EntryType.Normal,
  data: Buffer.from(`entry ${index} `.padEnd(100, 'z')),
});

describe('damaged Raft log at start-up (protocol-aware recovery)', () => {
  let dir: string;
  let meta: MetaStore;
  const logDir = () => path.join(dir, 'log');
  const files = () => fs.readdirSync(logDir()).sort();
  const open = (snapshot: SnapshotMeta, onDamage?: (d: LogDamage) => void) =>
    DiskLog.open(logDir(), {
      fileSystem: nodeFileSystem,
      maxSegmentBytes: 1 << 16,
      maxCacheBytes: 0,
      sync: true,
      snapshot,
      meta,
      ...(onDamage ? { onDamage } : {}),
    });
  const write = (log: DiskLog, entries: Entry[]) =>
    new Promise<void>((res, rej) => log.write(null, entries, (e) => (e ? rej(e) : res())));
  const snap0: SnapshotMeta = { index: 0, term: 0, conf };

  /** 1,500 entries of ~125 bytes over three 64 KiB segments: terms 1 up to 600, 2 after. */
  async function filled(): Promise<void> {
    const log = open(snap0);
    for (let i = 1; i <= 1500; i += 50)
      await write(
        log,
        Array.from({ length: 50 }, (_, k) => ent(i + k, i + k <= 600 ? 1 : 2)),
      );
    log.close();
  }
  /** The frame of entry `index` (its offset in its file), read through a log opened without damage. */
  function frameOf(index: number): { file: string; offsetBytes: number; frameBytes: number } {
    const log = open(snap0);
    const at = log.locate(index)!;
    log.close();
    return at;
  }
  function flip(file: string, offset: number): void {
    const b = fs.readFileSync(file);
    b[offset] = b[offset]! ^ 0x04;
    fs.writeFileSync(file, b);
  }

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-logdamage-'));
    meta = MetaStore.create(nodeFileSystem, path.join(dir, 'raft'), {
      hardState: { term: 2, vote: '', commit: 1500 },
      storageId: 's',
      clusterId: 'c',
      nodeId: 'n1',
    });
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('a flipped byte in the middle of the in-progress segment: told first (the true end known), then cut before it', async () => {
    await filled();
    const at = frameOf(1300);
    const before = files();
    flip(at.file, at.offsetBytes + 40);
    const told: LogDamage[] = [];
    const log = open(snap0, (d) => {
      told.push(d);
      // Nothing has changed on disk when the caller is told.
      expect(files()).to.deep.equal(before);
    });
    expect(told).to.have.length(1);
    expect(told[0]).to.deep.include({
      file: at.file,
      offsetBytes: at.offsetBytes,
      firstIndex: 1300,
      action: 'cut',
      claimedLast: { index: 1500, term: 2 },
    });
    expect(log.lastIndex()).to.equal(1299);
    expect(log.entries(1290, 1300, 1 << 20).map((e) => e.index)).to.deep.equal([
      1290, 1291, 1292, 1293, 1294, 1295, 1296, 1297, 1298, 1299,
    ]);
    // Appends go on where the cut left the log, and a restart finds exactly that.
    await write(log, [ent(1300, 3), ent(1301, 3)]);
    log.close();
    const again = open(snap0, () => expect.fail('no damage is left'));
    expect([again.lastIndex(), again.term(1301)]).to.deep.equal([1301, 3]);
    again.close();
  });

  it('damage in a closed segment above the snapshot: the log is cut there, later segments go, appends continue', async () => {
    await filled();
    const at = frameOf(700);
    expect(path.basename(at.file)).to.match(/^log_\d+-\d+$/);
    flip(at.file, at.offsetBytes + 30);
    const told: LogDamage[] = [];
    const log = open(snap0, (d) => told.push(d));
    expect(told[0]).to.deep.include({ firstIndex: 700, action: 'cut', claimedLast: { index: 1500, term: 2 } });
    expect(log.lastIndex()).to.equal(699);
    expect(files().filter((n) => n.includes('inprogress'))).to.have.length(1);
    await write(log, [ent(700, 3)]);
    log.close();
    expect(open(snap0).lastIndex()).to.equal(700);
  });

  it('damage in a closed segment the snapshot covers: that segment and older ones deleted, nothing above the snapshot lost', async () => {
    await filled();
    const at = frameOf(100);
    const first = path.basename(at.file);
    flip(at.file, at.offsetBytes + 30);
    const snap: SnapshotMeta = { index: 1000, term: 2, conf };
    const told: LogDamage[] = [];
    const log = open(snap, (d) => told.push(d));
    expect(told[0]).to.deep.include({ firstIndex: 100, action: 'dropped' });
    expect(files()).to.not.include(first);
    expect(log.lastIndex()).to.equal(1500);
    expect(log.term(1000)).to.equal(2);
    log.close();
  });

  it('a damaged last entry: the end is not known, the caller is told an upper bound without a term', async () => {
    await filled();
    const at = frameOf(1500);
    flip(at.file, at.offsetBytes + 30);
    const told: LogDamage[] = [];
    const log = open(snap0, (d) => told.push(d));
    expect(told[0]!.firstIndex).to.equal(1500);
    expect(told[0]!.claimedLast.term).to.equal(null);
    expect(told[0]!.claimedLast.index).to.be.at.least(1500);
    expect(log.lastIndex()).to.equal(1499);
    log.close();
  });

  it('a damaged segment header: the segment is lost from its first entry', async () => {
    await filled();
    const inProgress = path.join(logDir(), files().find((n) => n.includes('inprogress'))!);
    const firstOfIt = Number(path.basename(inProgress).split('_').pop());
    flip(inProgress, 10);
    const told: LogDamage[] = [];
    const log = open(snap0, (d) => told.push(d));
    expect(told[0]).to.deep.include({ firstIndex: firstOfIt, action: 'cut', claimedLast: { index: 1500, term: 2 } });
    expect(log.lastIndex()).to.equal(firstOfIt - 1);
    log.close();
  });

  it('a frame that looks torn (a sector of it zeros) with sound frames after it: with a taker, damage cut with the true end, not a torn write', async () => {
    await filled();
    // The first frame from 1400 on that a sector boundary crosses: the end of that sector reads as zeros, as a
    // tear leaves it.
    let k = 1400;
    let at = frameOf(k);
    while (Math.floor((at.offsetBytes + at.frameBytes) / 512) === Math.floor(at.offsetBytes / 512)) at = frameOf(++k);
    const boundary = Math.floor((at.offsetBytes + at.frameBytes) / 512) * 512;
    const b = fs.readFileSync(at.file);
    b.fill(0, Math.max(at.offsetBytes + 26, boundary - 40), boundary);
    fs.writeFileSync(at.file, b);
    const told: LogDamage[] = [];
    const log = open(snap0, (d) => told.push(d));
    expect(told.map((d) => [d.firstIndex, d.action, d.claimedLast.index])).to.deep.equal([[k, 'cut', 1500]]);
    expect(log.lastIndex()).to.equal(k - 1);
    log.close();
  });

  it('without a taker, damage still refuses to start, naming the file and offset', async () => {
    await filled();
    const at = frameOf(1300);
    flip(at.file, at.offsetBytes + 40);
    expect(() => open(snap0)).to.throw(CorruptLogError, new RegExp(`offset ${at.offsetBytes}: entry CRC mismatch`));
  });
});
