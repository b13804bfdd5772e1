// The file system the shipped storage runs on, as an interface: exactly the calls the Raft log, its metadata,
// the journal's segment files and snapshots make, and no more. The JournalNode passes the real one
// (node-file-system.ts); the simulator passes an in-memory one whose durability is modelled per file and per
// sector and whose faults are drawn from its seed, so the seeded simulation runs this very storage code.
//
// Durability, as the callers must assume it (and the simulator enforces it): what is written is visible at
// once but durable only once a sync of that file completes; a name (created, renamed, linked, removed) is
// durable only once a sync of its directory completes. A failed sync is never retried and trusted: after an
// error the data it covered may be lost whatever a later sync says (the kernel marks the pages clean).

/** What the storage asks of a path. */
export interface FileStat {
  isDirectory: boolean;
  sizeBytes: number;
  /** Equal for two names of the same file (hard links): the device and inode numbers. */
  fileId: string;
}

/**
 * 'r': read only; 'r+': read and write, the file must exist; 'w+': read and write, created or emptied.
 */
export type OpenFlags = 'r' | 'r+' | 'w+';

/** An open file. Synchronous calls block the caller; callbacks arrive later, never during the call. */
export interface FileHandle {
  /** The file's size now (fstat). */
  sizeBytes(): number;
  /** Reads up to `length` bytes at `position` into buf[bufOffset..]; returns how many (0 at the end). */
  read(buf: Uint8Array, bufOffset: number, length: number, position: number): number;
  /** Writes buf[bufOffset, bufOffset + length) at `position`; returns how many bytes (a short write is possible). */
  write(buf: Uint8Array, bufOffset: number, length: number, position: number): number;
  /** Writes the buffers in order from `position` (one system call); returns how many bytes. */
  writev(buffers: readonly Uint8Array[], position: number): number;
  /** write() off the caller's thread: for large background writes (preallocation) only. */
  writeAsync(
    buf: Uint8Array,
    bufOffset: number,
    length: number,
    position: number,
    done: (err: Error | null, written: number) => void,
  ): void;
  truncate(sizeBytes: number): void;
  /** fdatasync, off the caller's thread: the data written so far (and the size) is durable once done succeeds. */
  datasync(done: (err: Error | null) => void): void;
  datasyncSync(): void;
  /** fsync: as datasync, and the rest of the file's metadata. */
  sync(done: (err: Error | null) => void): void;
  syncSync(): void;
  close(): void;
}

export interface FileSystem {
  open(path: string, flags: OpenFlags): FileHandle;
  /** The whole file. */
  readFile(path: string): Buffer;
  /** Null when nothing is there. */
  stat(path: string): FileStat | null;
  readdir(path: string): string[];
  /** Creates the directory and its missing parents. */
  mkdirp(path: string): void;
  /** Replaces `to` if it exists (atomically, as rename(2)). */
  rename(from: string, to: string): void;
  /** A second name for an existing file (a hard link). */
  link(existing: string, newPath: string): void;
  /** Removes a file's name; nothing when there is none. */
  unlink(path: string): void;
  /** Removes a directory and everything under it (or a file); nothing when there is none. */
  removeTree(path: string): void;
  /**
   * removeTree off the caller's thread (freeing a large file's blocks takes time), for background clean-ups;
   * `done` may come before it returns (the simulator's does): callers depend on neither.
   */
  removeTreeAsync(path: string, done: (err: Error | null) => void): void;
  /** fsync of a file or a directory by path (a directory: so names created, renamed or removed in it last). */
  fsyncPath(path: string, done: (err: Error | null) => void): void;
  fsyncPathSync(path: string): void;
}
