// Small file primitives shared by the Raft log, the Raft metadata, segment files and snapshots, over the
// storage's FileSystem: positional reads that finish (or reach the end of the file), vectored writes that
// finish, whole files written in one go, a file replaced crash-atomically, the framing of a small checksummed
// record file.

import path from 'node:path';
import zlib from 'node:zlib';
import type { FileHandle, FileSystem } from './file-system.js';

/** Reads up to n bytes at offset; fewer only where the file ends first. */
export function preadSync(file: FileHandle, offset: number, n: number): Buffer {
  const buf = Buffer.allocUnsafe(Math.max(0, n));
  return buf.subarray(0, preadIntoSync(file, buf, offset, buf.byteLength));
}

/**
 * Fills buf[0, n) from offset, for loops that reuse one buffer; returns the bytes read (fewer than n only
 * where the file ends first).
 */
export function preadIntoSync(file: FileHandle, buf: Uint8Array, offset: number, n: number): number {
  let got = 0;
  while (got < n) {
    const r = file.read(buf, got, n - got, offset + got);
    if (r === 0) break;
    got += r;
  }
  return got;
}

/** Writes every buffer of iov at `position`, in order, whatever the partial writes and IOV_MAX. */
export function writevAllSync(file: FileHandle, iov: Uint8Array[], position: number): void {
  const IOV_BATCH = 512;
  let i = 0;
  let pos = position;
  while (i < iov.length) {
    const group = iov.slice(i, i + IOV_BATCH);
    let want = 0;
    for (const b of group) want += b.byteLength;
    const n = file.writev(group, pos);
    pos += n;
    if (n === want) {
      i += group.length;
      continue;
    }
    // A short write (rare on a regular file): write the rest of this group with plain writes.
    let skip = n;
    let g = 0;
    while (skip >= group[g]!.byteLength) skip -= group[g++]!.byteLength;
    const rest = Buffer.concat([group[g]!.subarray(skip), ...group.slice(g + 1)]);
    for (let done = 0; done < rest.byteLength; ) {
      const m = file.write(rest, done, rest.byteLength - done, pos);
      done += m;
      pos += m;
    }
    i += group.length;
  }
}

/** Writes all of buf at `position` (a short write continues; an error, ENOSPC included, throws). */
export function writeAllSync(file: FileHandle, buf: Uint8Array, position: number): void {
  writevAllSync(file, [buf], position);
}

/** Creates (or empties) `path` and writes `bytes` into it; not synced. */
export function writeFileSync(fileSystem: FileSystem, path: string, bytes: Uint8Array): void {
  const file = fileSystem.open(path, 'w+');
  try {
    writeAllSync(file, bytes, 0);
  } finally {
    file.close();
  }
}

/** Truncates the file at `path` to sizeBytes; not synced. */
export function truncatePathSync(fileSystem: FileSystem, path: string, sizeBytes: number): void {
  const file = fileSystem.open(path, 'r+');
  try {
    file.truncate(sizeBytes);
  } finally {
    file.close();
  }
}

/**
 * Creates `dir` if it is missing and makes its name durable (its parent directory synced, also when the
 * directory existed: it may have been created but not synced yet): a directory created at a first start must
 * survive a crash before anything written in it counts. Its parent must exist durably.
 */
export function mkdirDurableSync(fileSystem: FileSystem, dir: string): void {
  fileSystem.mkdirp(dir);
  fileSystem.fsyncPathSync(path.dirname(dir));
}

/**
 * Replaces `file` with `bytes` crash-atomically: a temporary file beside it, fsynced, renamed over it, and
 * the directory fsynced (so the rename lasts). A crash leaves the old file or the new one, and at worst the
 * temporary, which the reader removes.
 */
export function replaceFileSync(fileSystem: FileSystem, file: string, bytes: Uint8Array): void {
  const tmp = `${file}.tmp`;
  const handle = fileSystem.open(tmp, 'w+');
  try {
    writeAllSync(handle, bytes, 0);
    handle.syncSync();
  } finally {
    handle.close();
  }
  fileSystem.rename(tmp, file);
  fileSystem.fsyncPathSync(path.dirname(file));
}

/** A small record file's framing: 4 bytes of magic, u32 BE body length, u32 BE CRC-32 of the body, the body. */
export function frameRecord(magic: Buffer, body: Uint8Array): Buffer {
  const head = Buffer.alloc(12);
  magic.copy(head, 0, 0, 4);
  head.writeUInt32BE(body.byteLength, 4);
  head.writeUInt32BE(zlib.crc32(body), 8);
  return Buffer.concat([head, body]);
}

/** The body of a framed record, or why it is not one ('magic', 'length', 'crc'). */
export function unframeRecord(buf: Buffer, magic: Buffer): Buffer | 'magic' | 'length' | 'crc' {
  if (buf.byteLength < 12 || !buf.subarray(0, 4).equals(magic)) return 'magic';
  const body = buf.subarray(12);
  if (buf.readUInt32BE(4) !== body.byteLength) return 'length';
  if (zlib.crc32(body) !== buf.readUInt32BE(8)) return 'crc';
  return body;
}
