// crc32Range agrees with zlib.crc32 on a view of the same range, for every length either side of the point
// where it hands over to zlib, at every alignment.

import zlib from 'node:zlib';
import { expect } from 'chai';
import { crc32Range } from '../../src/crc32.js';

describe('crc32Range', () => {
  it('equals zlib.crc32 of the same range: lengths 0..1100, offsets 0..8', () => {
    const buf = Buffer.alloc(1200);
    for (let i = 0; i < buf.length; i++) buf[i] = (i * 131 + 7) & 0xff;
    for (let start = 0; start <= 8; start++) {
      for (let len = 0; len <= 1100; len++) {
        expect(crc32Range(buf, start, start + len), `[${start}, ${start + len})`).to.equal(
          zlib.crc32(buf.subarray(start, start + len)),
        );
      }
    }
  });

  it('works on a Uint8Array view into a larger buffer', () => {
    const big = new Uint8Array(64).map((_, i) => i);
    const view = big.subarray(5, 60);
    expect(crc32Range(view, 3, 40)).to.equal(zlib.crc32(Buffer.from(big.subarray(8, 45))));
  });
});
