// qjm dump: a segment file read as a stream of frames, whatever its size and wherever frames fall across
// chunks; anything but a regular file (a FIFO, a device, a directory) refused at once with a clear message.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { dumpSegment } from '../../../src/cli/dump.js';
import { encodeRecords, encodeSegmentHeader } from '../../../src/edit-records.js';

function run(file: string, format = 'len'): { code: number; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  const code = dumpSegment(file, format, { out: (l) => out.push(l), err: (l) => err.push(l) }, false);
  return { code, out, err };
}

describe('qjm dump', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-dump-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('refuses a FIFO at once (it never waits for a writer), a device and a directory, exit 2', function () {
    const fifo = path.join(dir, 'fifo');
    try {
      execFileSync('mkfifo', [fifo]);
    } catch {
      this.skip();
    }
    const t0 = Date.now();
    const r = run(fifo);
    expect(Date.now() - t0, 'answered without waiting for a writer').to.be.below(2000);
    expect(r.code).to.equal(2);
    expect(r.err.join('\n')).to.match(/a FIFO, not a regular file: give a segment file/);
    expect(run('/dev/zero').err.join('\n')).to.match(/a character device, not a regular file/);
    expect(run(dir).err.join('\n')).to.match(/a directory, not a regular file/);
    expect(run(path.join(dir, 'missing')).code).to.equal(2);
  });

  it('reads every record across chunk boundaries, records larger than a chunk included', () => {
    const records: Buffer[] = [];
    for (let i = 0; i < 3000; i++) records.push(Buffer.alloc(1 + ((i * 7919) % 4000), i % 251));
    records.splice(1000, 0, Buffer.alloc(3 << 20, 9)); // three chunks in one record
    const file = path.join(dir, 'edits_inprogress_0000000000000000005');
    fs.writeFileSync(file, Buffer.concat([encodeSegmentHeader(-64, 5), encodeRecords(5, records)]));
    const r = run(file);
    expect(r.code, r.err.join('\n')).to.equal(0);
    const lines = r.out.filter((l) => !l.startsWith('#'));
    expect(lines.length).to.equal(records.length);
    expect(lines[1000]).to.equal(`1005\t${3 << 20}\tcrc ok\t`);
    expect(r.out.at(-1)).to.match(/3001 records, txids 5\.\.3005, .* every CRC ok/);
  });

  it('a torn tail and a flipped bit: exit 5 naming the byte offset', () => {
    const good = Buffer.concat([encodeSegmentHeader(-64, 1), encodeRecords(1, [Buffer.from('a'), Buffer.from('bb')])]);
    const torn = path.join(dir, 'torn');
    fs.writeFileSync(torn, good.subarray(0, good.length - 1));
    const t = run(torn);
    expect(t.code).to.equal(5);
    expect(t.err.join('\n')).to.match(/torn frame at byte offset 49: record runs past the end/);
    const flipped = Buffer.from(good);
    flipped[flipped.length - 1]! ^= 1;
    const bad = path.join(dir, 'bad');
    fs.writeFileSync(bad, flipped);
    expect(run(bad).err.join('\n')).to.match(/corrupt frame at byte offset 49: CRC mismatch for txid 2/);
  });
});
