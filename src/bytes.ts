// Byte-level helpers shared by every codec (Raft log frames, edit records) and by the pure Raft core: no I/O
// here, so the core may import it. u64 fields are held as JS numbers: indexes, terms and txids are safe
// integers, checked where they enter.

const TWO_32 = 0x1_0000_0000;

/** Writes v (a safe integer >= 0) as a big-endian u64 at offset. */
export function writeU64(buf: Buffer, offset: number, v: number): void {
  buf.writeUInt32BE(Math.floor(v / TWO_32), offset);
  buf.writeUInt32BE(v % TWO_32, offset + 4);
}

/** Reads a big-endian u64 at offset as a number (exact up to 2^53). */
export function readU64(buf: Buffer, offset: number): number {
  return buf.readUInt32BE(offset) * TWO_32 + buf.readUInt32BE(offset + 4);
}

/** Lower-case hex of the bytes: a map key for opaque byte strings (read contexts). */
export function hex(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.byteLength; i++) s += bytes[i]!.toString(16).padStart(2, '0');
  return s;
}
