import { expect } from 'chai';
import {
  decodeSegmentHeader,
  encodeRecords,
  encodeSegmentHeader,
  finalizedName,
  inProgressName,
  iterateRecords,
  parseSegmentName,
  validateBatch,
} from '../../src/edit-records.js';

const rec = (s: string) => new TextEncoder().encode(s);

describe('edit records', () => {
  it('round-trips frames', () => {
    const buf = encodeRecords(41, [rec('a'), rec(''), rec('ccc')]);
    const got = [...iterateRecords(buf)].map((r) => [r.txid, Buffer.from(r.data).toString()]);
    expect(got).to.deep.equal([
      [41, 'a'],
      [42, ''],
      [43, 'ccc'],
    ]);
  });

  describe('validateBatch refuses bad input', () => {
    const good = encodeRecords(10, [rec('x'), rec('yy')]);
    const table: [string, () => Uint8Array, number, number, RegExp | null, string?][] = [
      ['a good batch', () => good, 10, 2, null],
      [
        'a flipped data byte (CRC)',
        () => {
          const b = Buffer.from(good);
          b[b.length - 1]! ^= 1;
          return b;
        },
        10,
        2,
        /CRC mismatch/,
      ],
      ['a wrong first txid', () => good, 11, 2, /expected 11/],
      ['fewer records than declared', () => good, 10, 3, /runs past the end/],
      ['more bytes than declared records', () => good, 10, 1, /bytes after/],
      ['a truncated frame', () => good.subarray(0, good.length - 1), 10, 2, /past the end/],
      [
        'a record over the size limit',
        () => encodeRecords(10, [new Uint8Array(2000)]),
        10,
        1,
        /over the limit/,
        'TOO_LARGE',
      ],
    ];
    for (const [name, mk, first, count, want, code] of table) {
      it(name, () => {
        const p = validateBatch(mk(), first, count, { maxRecordBytes: 1024 });
        if (want === null) expect(p).to.equal(null);
        else {
          expect(p?.message).to.match(want);
          expect(p?.name).to.equal(code ?? 'INVALID_ARGUMENT');
        }
      });
    }
  });

  it('segment headers and names', () => {
    const h = encodeSegmentHeader(-63, 1234567);
    expect(decodeSegmentHeader(h)).to.deep.equal({ version: 1, layoutVersion: -63, firstTxId: 1234567 });
    const bad = Buffer.from(h);
    bad[20]! ^= 0xff;
    expect(decodeSegmentHeader(bad)).to.match(/CRC/);
    expect(inProgressName(5)).to.equal('edits_inprogress_0000000000000000005');
    expect(finalizedName(5, 9)).to.equal('edits_0000000000000000005-0000000000000000009');
    expect(parseSegmentName(finalizedName(5, 9))).to.deep.equal({ firstTxId: 5, lastTxId: 9 });
    expect(parseSegmentName('edits_inprogress_0000000000000000005')).to.deep.equal({ firstTxId: 5, lastTxId: null });
    expect(parseSegmentName('VERSION')).to.equal(null);
  });
});
