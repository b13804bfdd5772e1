// Byte helpers the core, its driver and the codecs (Raft log frames, edit records) share. Pure, no I/O, so
// the core may use them. u64 fields are held as JS numbers: indexes, terms and txids are safe integers,
// checked where they enter.

const TWO_32 = 0x1_0000_0000;

export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.byteLength !== b.byteLength) return false;
  for (let i = 0; i < a.byteLength; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Lower-case hex of the bytes: a map key for small binary values (read contexts). */
export function bytesToHex(b: Uint8Array): string {
  let s = '';
  for (let i = 0; i < b.byteLength; i++) s += b[i]!.toString(16).padStart(2, '0');
  return s;
}

/** Writes v (a safe integer >= 0) as a big-endian u64 at offset. */
export function writeU64(buf: Buffer, offset: number, v: number): void {
  buf.writeUInt32BE(Math.floor(v / TWO_32), offset);
  buf.writeUInt32BE(v % TWO_32, offset + 4);
}

/** Reads a big-endian u64 at offset as a number (exact up to 2^53). */
export function readU64(buf: Buffer, offset: number): number {
  return buf.readUInt32BE(offset) * TWO_32 + buf.readUInt32BE(offset + 4);
}

/** Bytes of v (a safe integer >= 0) as a protobuf varint. */
export function varintBytes(v: number): number {
  let n = 1;
  while (v >= 128) {
    v = Math.floor(v / 128);
    n++;
  }
  return n;
}

/** Writes v (a safe integer >= 0) as a protobuf varint at `at`; returns the offset after it. */
export function putVarint(b: Uint8Array, at: number, v: number): number {
  while (v >= 128) {
    b[at++] = (v % 128) | 128;
    v = Math.floor(v / 128);
  }
  b[at++] = v;
  return at;
}
