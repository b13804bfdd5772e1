// Small file-system primitives shared by the Raft log, the Raft metadata, segment files and snapshots.

import fs from 'node:fs';

/** fsyncs a file or directory by path (a directory: so entries created, renamed or removed in it last). */
export function fsyncPath(p: string, done: (err: Error | null) => void): void {
  fs.open(p, 'r', (err, fd) => {
    if (err) return done(err);
    fs.fsync(fd, (e) => fs.close(fd, () => done(e)));
  });
}

export function fsyncPathSync(p: string): void {
  const fd = fs.openSync(p, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Reads up to n bytes at offset from fd; fewer only where the file ends first. */
export function preadSync(fd: number, offset: number, n: number): Buffer {
  const buf = Buffer.allocUnsafe(Math.max(0, n));
  let got = 0;
  while (got < buf.byteLength) {
    const r = fs.readSync(fd, buf, got, buf.byteLength - got, offset + got);
    if (r === 0) break;
    got += r;
  }
  return buf.subarray(0, got);
}
