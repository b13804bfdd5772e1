// The simulator's disk keeps the promises its model makes (sim-file-system.ts), and no more: what is written
// is visible at once, durable only once its file is synced; a name is durable only once its directory is;
// a crash keeps exactly what was synced when it loses everything else; a failed sync marks what it covered
// clean without making it durable, and every handle open on the file hears of it once.

import { expect } from 'chai';
import { Prng } from '../../src/prng.js';
import { SimFsError } from './sim-file-system.js';
import type { SimFileSystem } from './sim-file-system.js';
import type { CrashDraw } from './sim-file-system.js';
import { attachImmediate, immediateDisk } from '../support/immediate-disk.js';

const LOSE_ALL: CrashDraw = { keep: 0, tear: 0 };
const KEEP_ALL: CrashDraw = { keep: 1, tear: 0 };

const sync = (fn: (cb: (e: Error | null) => void) => void) =>
  new Promise<void>((resolve, reject) => fn((e) => (e ? reject(e) : resolve())));

function write(fs: SimFileSystem, p: string, text: string): void {
  const h = fs.open(p, 'w+');
  h.write(Buffer.from(text), 0, text.length, 0);
  h.close();
}

describe('the simulated disk (its durability model)', () => {
  it('a write is visible at once and lost at a crash until its file and its name are synced', async () => {
    const fs = immediateDisk();
    write(fs, '/data/a', 'hello');
    expect(fs.readFile('/data/a').toString()).to.equal('hello');
    fs.crash(new Prng(1), LOSE_ALL);
    expect(fs.stat('/data/a'), 'the name was never synced').to.equal(null);
    attachImmediate(fs);
    write(fs, '/data/a', 'hello');
    fs.fsyncPathSync('/data'); // the name, not the bytes
    fs.crash(new Prng(1), LOSE_ALL);
    expect(fs.readFile('/data/a').byteLength, 'the name survived, the bytes did not').to.equal(0);
    attachImmediate(fs);
    write(fs, '/data/a', 'hello');
    await sync((cb) => fs.fsyncPath('/data/a', cb));
    fs.crash(new Prng(1), LOSE_ALL);
    expect(fs.readFile('/data/a').toString()).to.equal('hello');
  });

  it('a rename is one operation of its directory: after a crash, the old name or the new one, never both', () => {
    for (let seed = 1; seed <= 20; seed++) {
      const fs = immediateDisk();
      write(fs, '/data/tmp', 'x');
      fs.fsyncPathSync('/data/tmp');
      fs.fsyncPathSync('/data');
      fs.rename('/data/tmp', '/data/real');
      fs.crash(new Prng(seed), LOSE_ALL);
      const names = fs.readdir('/data');
      expect(names.length, names.join(',')).to.equal(1);
    }
  });

  it('a crash keeps a prefix of a directory operations, in order (a later one never without an earlier one)', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const fs = immediateDisk();
      for (const n of ['a', 'b', 'c', 'd']) write(fs, `/data/${n}`, n);
      fs.crash(new Prng(seed), LOSE_ALL);
      const names = fs.readdir('/data');
      expect(['a', 'b', 'c', 'd'].slice(0, names.length)).to.deep.equal(names);
    }
  });

  it('unsynced sectors are drawn per sector: all kept, all lost, or torn (a prefix of the new bytes)', () => {
    const fs = immediateDisk();
    write(fs, '/data/f', '');
    fs.fsyncPathSync('/data/f');
    fs.fsyncPathSync('/data');
    const h = fs.open('/data/f', 'r+');
    h.write(Buffer.alloc(2048, 7), 0, 2048, 0);
    fs.crash(new Prng(3), { keep: 0, tear: 1 });
    attachImmediate(fs);
    const b = fs.readFile('/data/f');
    // Every sector: some of its new bytes, then zeros (the old bytes past the durable end).
    for (let s = 0; s * 512 < b.byteLength; s++) {
      const sector = b.subarray(s * 512, (s + 1) * 512);
      const cut = sector.indexOf(0);
      expect(cut, `sector ${s} is torn`).to.be.greaterThan(0);
      expect(sector.subarray(cut).every((x) => x === 0)).to.equal(true);
    }
  });

  it('a sync that fails marks what it covered clean without making it durable; every open handle hears of it once', async () => {
    const fs = immediateDisk();
    write(fs, '/data/f', '');
    fs.fsyncPathSync('/data/f');
    fs.fsyncPathSync('/data');
    const a = fs.open('/data/f', 'r+');
    const b = fs.open('/data/f', 'r+');
    a.write(Buffer.from('new'), 0, 3, 0);
    fs.faults.syncEio = 1;
    let err: unknown = null;
    try {
      await sync((cb) => a.datasync(cb));
    } catch (e) {
      err = e;
    }
    expect(err).to.be.instanceOf(SimFsError);
    fs.faults.syncEio = 0;
    // Retried and trusted: the retry succeeds, yet the bytes are not durable (the fsync-gate lesson).
    await sync((cb) => a.datasync(cb));
    let seenByB: unknown = null;
    try {
      await sync((cb) => b.datasync(cb));
    } catch (e) {
      seenByB = e;
    }
    expect(seenByB, 'the other handle reports the earlier failure').to.be.instanceOf(SimFsError);
    await sync((cb) => b.datasync(cb));
    const zeros = (b: Buffer) => b.every((x) => x === 0);
    expect(zeros(fs.durableBytes('/data/f')!), 'nothing of the failed write is durable').to.equal(true);
    fs.crash(new Prng(1), KEEP_ALL);
    expect(zeros(fs.readFile('/data/f')), 'a crash brings back what the disk holds').to.equal(true);
  });

  it('a full disk refuses writes that need new space; rewriting space already there works', () => {
    const fs = immediateDisk();
    write(fs, '/data/f', 'x'.repeat(100));
    fs.faults.full = true;
    const h = fs.open('/data/f', 'r+');
    expect(h.write(Buffer.from('y'.repeat(10)), 0, 10, 0)).to.equal(10);
    // The last sector's slack is allocated: a write past it is cut short, then refused.
    expect(h.write(Buffer.alloc(1000), 0, 1000, 100)).to.equal(412);
    expect(() => h.write(Buffer.alloc(10), 0, 10, 512)).to.throw(SimFsError, /ENOSPC/);
  });

  it('rot: a durable sector reads back flipped or fails; the pristine durable bytes are unchanged; a write heals it', () => {
    const fs = immediateDisk();
    write(fs, '/data/f', 'z'.repeat(600));
    fs.fsyncPathSync('/data/f');
    fs.fsyncPathSync('/data');
    const rng = new Prng(5);
    let damaged = 0;
    for (let i = 0; i < 10; i++) {
      if (!fs.rotSector(rng, () => '/data/f')) continue;
      let bytes: Buffer | null = null;
      try {
        bytes = fs.readFile('/data/f');
      } catch (e) {
        expect((e as SimFsError).code).to.equal('EIO');
      }
      if (bytes) expect(bytes.equals(Buffer.from('z'.repeat(600)))).to.equal(false);
      damaged++;
      expect(fs.durableBytes('/data/f')!.toString()).to.equal('z'.repeat(600));
      const h = fs.open('/data/f', 'r+');
      h.write(Buffer.from('z'.repeat(600)), 0, 600, 0);
      h.close();
      expect(fs.readFile('/data/f').toString()).to.equal('z'.repeat(600));
    }
    expect(damaged).to.be.greaterThan(0);
  });
});
