// CRC-32 (zlib's polynomial, the one edit records and segment files carry) of a byte range, without making
// a view of it. Short ranges are computed here, slice-by-8 over a table, because zlib.crc32 needs a buffer
// of its own per call and a view per 144-byte record is most of the cost; long ranges go to zlib.
// Measured on this project's machine, validating a 2 MB batch: 128-byte records 3.5 ms with zlib on views,
// 1.7 ms here; the two cross near 512 bytes.

import zlib from 'node:zlib';

/** Ranges at least this long go to zlib. */
const NATIVE_FROM_BYTES = 512;

const TABLE = new Int32Array(256 * 8);
for (let n = 0; n < 256; n++) {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  TABLE[n] = c;
}
for (let n = 0; n < 256; n++) {
  let c = TABLE[n]!;
  for (let k = 1; k < 8; k++) {
    c = TABLE[c & 0xff]! ^ (c >>> 8);
    TABLE[k * 256 + n] = c;
  }
}

/** The CRC-32 of buf[start, end), as zlib.crc32(buf.subarray(start, end)) computes it. */
export function crc32Range(buf: Uint8Array, start: number, end: number): number {
  if (end - start >= NATIVE_FROM_BYTES) return zlib.crc32(buf.subarray(start, end));
  const T = TABLE;
  let c = -1;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    c ^= buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24);
    c =
      T[1792 + (c & 0xff)]! ^
      T[1536 + ((c >>> 8) & 0xff)]! ^
      T[1280 + ((c >>> 16) & 0xff)]! ^
      T[1024 + (c >>> 24)]! ^
      T[768 + buf[i + 4]!]! ^
      T[512 + buf[i + 5]!]! ^
      T[256 + buf[i + 6]!]! ^
      T[buf[i + 7]!]!;
  }
  for (; i < end; i++) c = T[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ -1) >>> 0;
}
