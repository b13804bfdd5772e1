// The real file system (node:fs) behind the storage's FileSystem interface. Its performance shape is the
// storage's: writes copy into the page cache on the caller's thread (the event loop), only the waits for the
// device (fdatasync, fsync) and the large background writes of preallocation go to libuv's thread pool.
// Everything it creates is private to the node's user (files 0600, directories 0700): a data directory holds
// the journal's edits and the node's identity.

import fs from 'node:fs';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '../file-modes.js';
import type { FileHandle, FileStat, FileSystem, OpenFlags } from './file-system.js';

class NodeFileHandle implements FileHandle {
  constructor(private readonly fd: number) {}

  sizeBytes(): number {
    return fs.fstatSync(this.fd).size;
  }
  read(buf: Uint8Array, bufOffset: number, length: number, position: number): number {
    return fs.readSync(this.fd, buf, bufOffset, length, position);
  }
  write(buf: Uint8Array, bufOffset: number, length: number, position: number): number {
    return fs.writeSync(this.fd, buf, bufOffset, length, position);
  }
  writev(buffers: readonly Uint8Array[], position: number): number {
    return fs.writevSync(this.fd, buffers as Uint8Array[], position);
  }
  writeAsync(
    buf: Uint8Array,
    bufOffset: number,
    length: number,
    position: number,
    done: (err: Error | null, written: number) => void,
  ): void {
    fs.write(this.fd, buf, bufOffset, length, position, (err, written) => done(err, written));
  }
  truncate(sizeBytes: number): void {
    fs.ftruncateSync(this.fd, sizeBytes);
  }
  datasync(done: (err: Error | null) => void): void {
    fs.fdatasync(this.fd, done);
  }
  datasyncSync(): void {
    fs.fdatasyncSync(this.fd);
  }
  sync(done: (err: Error | null) => void): void {
    fs.fsync(this.fd, done);
  }
  syncSync(): void {
    fs.fsyncSync(this.fd);
  }
  close(): void {
    fs.closeSync(this.fd);
  }
}

export const nodeFileSystem: FileSystem = {
  open(path: string, flags: OpenFlags): FileHandle {
    return new NodeFileHandle(fs.openSync(path, flags, PRIVATE_FILE_MODE));
  },
  readFile(path: string): Buffer {
    return fs.readFileSync(path);
  },
  stat(path: string): FileStat | null {
    let s: fs.Stats;
    try {
      s = fs.statSync(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
      throw e;
    }
    return { isDirectory: s.isDirectory(), sizeBytes: s.size, fileId: `${s.dev}:${s.ino}` };
  },
  readdir(path: string): string[] {
    return fs.readdirSync(path);
  },
  mkdirp(path: string): void {
    fs.mkdirSync(path, { recursive: true, mode: PRIVATE_DIR_MODE });
  },
  rename(from: string, to: string): void {
    fs.renameSync(from, to);
  },
  link(existing: string, newPath: string): void {
    fs.linkSync(existing, newPath);
  },
  unlink(path: string): void {
    fs.rmSync(path, { force: true });
  },
  removeTree(path: string): void {
    fs.rmSync(path, { recursive: true, force: true });
  },
  removeTreeAsync(path: string, done: (err: Error | null) => void): void {
    fs.rm(path, { recursive: true, force: true }, done);
  },
  fsyncPath(path: string, done: (err: Error | null) => void): void {
    fs.open(path, 'r', (err, fd) => {
      if (err) return done(err);
      fs.fsync(fd, (e) => fs.close(fd, () => done(e)));
    });
  },
  fsyncPathSync(path: string): void {
    const fd = fs.openSync(path, 'r');
    try {
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
  },
};
