// The simulator's disk: an in-memory FileSystem (src/storage/file-system.ts) under the storage that ships,
// with durability modelled per file, per 512-byte sector and per directory entry, and faults drawn from the
// run's seed.
//
// What is written is visible at once and durable only once a sync of that file completes; a name created,
// renamed, linked or removed is durable only once a sync of its directory completes. A sync captures what it
// covers when it is called and makes it durable when it completes (after the node's disk latency, on the
// simulator's event queue). A crash keeps, per directory, a prefix of the operations not yet synced (the
// journal commits them in order) and, per file, draws each unsynced sector: it survives, it is lost (the
// durable bytes stay: zeros past the durable end), or it is torn (a prefix of the new bytes reached the disk,
// the rest is the old). Faults a run may switch on: a sync that fails with EIO (the covered sectors are marked
// clean without reaching the disk, as Linux does, and every handle open on the file reports the error once),
// ENOSPC on writes that need new space, and latent sector errors ("rot": bytes that were durable read back
// flipped, or fail with EIO). The checkers read the pristine durable state (rot not applied) and never
// trigger a fault.

import path from 'node:path';
import type { FileHandle, FileStat, FileSystem, OpenFlags } from '../../src/storage/file-system.js';
import type { Prng } from '../../src/prng.js';

export const SECTOR_BYTES = 512;
const ZERO_SECTOR = Buffer.alloc(SECTOR_BYTES);

export type SimFsCode = 'ENOENT' | 'EEXIST' | 'ENOTDIR' | 'EISDIR' | 'EIO' | 'ENOSPC' | 'EBADF';

export class SimFsError extends Error {
  override name = 'SimFsError';
  constructor(
    readonly code: SimFsCode,
    message: string,
    /** Injected by the fault model (EIO, ENOSPC, rot), not a misuse of the file system by the code. */
    readonly injected = false,
  ) {
    super(`${code}: ${message}`);
  }
}

/**
 * An unsynced sector: its durable bytes (what a crash that loses it leaves), the newest write they reflect,
 * and the write that dirtied it last.
 */
interface DirtySector {
  writeSeq: number;
  durable: Buffer;
  durableSeq: number;
  /** A sync in flight covers this write: its bytes are saved before a later write replaces them. */
  pinned: number;
  saved: Map<number, Buffer> | null;
  /** A failed sync marked it clean without writing it: no later sync writes it; a crash reverts it. */
  lost: boolean;
}

/** A latent sector error: reads of the sector fail, or return one byte flipped. */
interface Rot {
  kind: 'eio' | 'flip';
  offset: number;
  mask: number;
}

class SimFile {
  readonly kind = 'file';
  data: Buffer = Buffer.alloc(0);
  size = 0;
  durableSize = 0;
  sizeSeq = 0;
  durableSizeSeq = 0;
  readonly dirty = new Map<number, DirtySector>();
  /** Bumped by each failed sync: handles opened before it report EIO once (Linux's errseq). */
  errSeq = 0;
  readonly rot = new Map<number, Rot>();

  constructor(readonly id: number) {}

  get isDirty(): boolean {
    return this.dirty.size > 0 || this.size !== this.durableSize || this.sizeSeq > this.durableSizeSeq;
  }

  private ensureCapacity(n: number): void {
    if (n <= this.data.byteLength) return;
    // Bytes past `size` are never read (writes and truncations zero what they expose): no need to clear them.
    const grown = Buffer.allocUnsafe(Math.max(n, this.data.byteLength * 2, SECTOR_BYTES));
    this.data.copy(grown, 0, 0, this.size);
    this.data = grown;
  }

  /** The sector's bytes now (zeros past the end). */
  private sectorNow(s: number): Buffer {
    const out = Buffer.allocUnsafe(SECTOR_BYTES);
    const from = s * SECTOR_BYTES;
    const n = from < this.size ? this.data.copy(out, 0, from, Math.min(this.size, from + SECTOR_BYTES)) : 0;
    if (n < SECTOR_BYTES) out.fill(0, n);
    return out;
  }

  /** Sectors [first, last] are about to change: clean ones remember their durable bytes (which are current). */
  touch(first: number, last: number, seq: number): void {
    for (let s = first; s <= last; s++) {
      let d = this.dirty.get(s);
      if (!d) {
        // Clean: every earlier write of it is durable (a sync of an older capture completing later is stale).
        const durable = s * SECTOR_BYTES >= this.durableSize ? ZERO_SECTOR : this.sectorNow(s);
        d = { writeSeq: seq, durable, durableSeq: seq - 1, lost: false, pinned: -1, saved: null };
        this.dirty.set(s, d);
      } else if (d.pinned === d.writeSeq) {
        d.saved ??= new Map();
        d.saved.set(d.writeSeq, this.sectorNow(s));
      }
      d.writeSeq = seq;
      d.lost = false;
      this.rot.delete(s); // a write replaces the sector (a drive remaps a bad one)
    }
  }

  write(src: Uint8Array, position: number, seq: number): void {
    if (src.byteLength === 0) return;
    const end = position + src.byteLength;
    this.touch(Math.floor(position / SECTOR_BYTES), Math.floor((end - 1) / SECTOR_BYTES), seq);
    this.ensureCapacity(end);
    if (position > this.size) this.data.fill(0, this.size, position);
    this.data.set(src, position);
    if (end > this.size) {
      this.size = end;
      this.sizeSeq = seq;
    }
  }

  truncate(n: number, seq: number): void {
    if (n < this.size) {
      this.touch(Math.floor(n / SECTOR_BYTES), Math.floor((this.size - 1) / SECTOR_BYTES), seq);
      this.data.fill(0, n, this.size);
    } else if (n > this.size) {
      this.ensureCapacity(n);
      this.data.fill(0, this.size, n);
    }
    if (n !== this.size) {
      this.size = n;
      this.sizeSeq = seq;
    }
  }

  /** What a sync covers, captured when it is called. */
  capture(): SyncCapture {
    const sectors: CapturedSector[] = [];
    for (const [s, d] of this.dirty) {
      if (d.lost) continue;
      d.pinned = d.writeSeq;
      sectors.push({ sector: s, seq: d.writeSeq });
    }
    return { sectors, size: this.size, sizeSeq: this.sizeSeq };
  }

  /** A sync completed: what it captured is durable (unless something newer already is). */
  commit(c: SyncCapture): void {
    for (const cs of c.sectors) {
      const d = this.dirty.get(cs.sector);
      if (!d || cs.seq <= d.durableSeq) continue;
      if (d.writeSeq === cs.seq) {
        this.dirty.delete(cs.sector); // what it holds now is what was captured: clean
        continue;
      }
      d.durable = d.saved!.get(cs.seq)!;
      d.durableSeq = cs.seq;
      for (const k of d.saved!.keys()) if (k <= cs.seq) d.saved!.delete(k);
    }
    if (c.sizeSeq >= this.durableSizeSeq) {
      this.durableSize = c.size;
      this.durableSizeSeq = c.sizeSeq;
    }
  }

  /** A sync failed: what it captured is marked clean but never reached the disk. */
  fail(c: SyncCapture): void {
    for (const cs of c.sectors) {
      const d = this.dirty.get(cs.sector);
      if (d && d.writeSeq === cs.seq) d.lost = true;
    }
    this.errSeq++;
  }

  /** The pristine durable bytes (no rot): what a crash that loses everything unsynced leaves. */
  durableBytes(): Buffer {
    return this.durableRange(0, this.durableSize);
  }

  durableRange(offset: number, length: number): Buffer {
    const end = Math.min(this.durableSize, offset + length);
    if (end <= offset) return Buffer.alloc(0);
    const out = Buffer.alloc(end - offset);
    if (offset < this.size) this.data.copy(out, 0, offset, Math.min(this.size, end));
    const last = Math.floor((end - 1) / SECTOR_BYTES);
    const overlay = (s: number, d: DirtySector) => {
      const from = Math.max(offset, s * SECTOR_BYTES);
      const to = Math.min(end, (s + 1) * SECTOR_BYTES);
      d.durable.copy(out, from - offset, from - s * SECTOR_BYTES, to - s * SECTOR_BYTES);
    };
    if (this.dirty.size < last - Math.floor(offset / SECTOR_BYTES) + 1) {
      for (const [s, d] of this.dirty) if (s >= Math.floor(offset / SECTOR_BYTES) && s <= last) overlay(s, d);
    } else {
      for (let s = Math.floor(offset / SECTOR_BYTES); s <= last; s++) {
        const d = this.dirty.get(s);
        if (d) overlay(s, d);
      }
    }
    return out;
  }

  /** A crash: each unsynced sector survives, is lost, or is torn; the size is the old or the new one. */
  crash(rng: Prng, draw: CrashDraw): void {
    const newSize = this.size !== this.durableSize && rng.chance(draw.keep) ? this.size : this.durableSize;
    const next = Buffer.alloc(Math.max(newSize, SECTOR_BYTES));
    this.data.copy(next, 0, 0, Math.min(this.size, newSize));
    for (const [s, d] of this.dirty) {
      const from = s * SECTOR_BYTES;
      if (from >= newSize) continue;
      const n = Math.min(SECTOR_BYTES, newSize - from);
      const r = d.lost ? 2 : rng.next();
      if (r < draw.keep) continue; // the new bytes reached the disk
      if (r < draw.keep + draw.tear) {
        // A prefix of the sector's new bytes reached the disk, the rest is the old.
        const cut = rng.int(1, SECTOR_BYTES);
        if (cut < n) d.durable.copy(next, from + cut, cut, n);
        continue;
      }
      d.durable.copy(next, from, 0, n);
    }
    this.data = next;
    this.size = newSize;
    this.durableSize = newSize;
    this.sizeSeq = this.durableSizeSeq = 0;
    this.dirty.clear();
  }

  read(buf: Uint8Array, bufOffset: number, length: number, position: number, withRot: boolean): number {
    const n = Math.max(0, Math.min(length, this.size - position));
    if (n === 0) return 0;
    if (withRot && this.rot.size > 0) {
      for (let s = Math.floor(position / SECTOR_BYTES); s <= Math.floor((position + n - 1) / SECTOR_BYTES); s++) {
        const r = this.rot.get(s);
        if (r?.kind === 'eio') throw new SimFsError('EIO', `latent sector error (sector ${s})`, true);
      }
    }
    this.data.copy(buf, bufOffset, position, position + n);
    if (withRot)
      for (const [s, r] of this.rot) {
        const at = s * SECTOR_BYTES + r.offset;
        if (r.kind === 'flip' && at >= position && at < position + n) buf[bufOffset + at - position]! ^= r.mask;
      }
    return n;
  }
}

interface CapturedSector {
  sector: number;
  seq: number;
}

interface SyncCapture {
  sectors: CapturedSector[];
  size: number;
  sizeSeq: number;
}

/** The chances, per unsynced sector at a crash, that it survives whole or torn (the rest are lost). */
export interface CrashDraw {
  keep: number;
  tear: number;
  /** Every unsynced directory operation lost (tests), instead of a prefix drawn per directory. */
  loseNames?: boolean;
}

type DirOp = { name: string; node: SimNode | null; seq: number };

class SimDir {
  readonly kind = 'dir';
  entries = new Map<string, SimNode>();
  durable = new Map<string, SimNode>();
  /** Name operations not yet durable, in order. */
  pending: DirOp[] = [];

  constructor(readonly id: number) {}

  set(name: string, node: SimNode | null, seq: number): void {
    if (node) this.entries.set(name, node);
    else this.entries.delete(name);
    this.pending.push({ name, node, seq });
  }

  /** A sync of the directory completed: its operations up to seq are durable. */
  commit(seq: number): void {
    let k = 0;
    while (k < this.pending.length && this.pending[k]!.seq <= seq) {
      const op = this.pending[k++]!;
      if (op.node) this.durable.set(op.name, op.node);
      else this.durable.delete(op.name);
    }
    this.pending = this.pending.slice(k);
  }

  crash(rng: Prng, loseAll: boolean): void {
    if (this.pending.length > 0 && !loseAll)
      this.commit(this.pending[rng.int(0, this.pending.length + 1) - 1]?.seq ?? -1);
    this.pending = [];
    this.entries = new Map(this.durable);
  }
}

type SimNode = SimFile | SimDir;

/** What the disk's owner (the simulated node) provides: its clock for completions, its disk's latency. */
export interface SimDiskHost {
  /** Runs fn after delayMs unless the node crashed meanwhile. */
  schedule(delayMs: number, fn: () => void): void;
  /** One device operation's latency, ms. */
  latencyMs(): number;
  rng: Prng;
}

export interface DiskFaults {
  /** Chance that a sync (of a file or a directory) fails with EIO. */
  syncEio: number;
  /** The disk is full: writes that need new space fail with ENOSPC. */
  full: boolean;
}

class SimHandle implements FileHandle {
  private closed = false;
  private seenErrSeq: number;

  constructor(
    private readonly fs: SimFileSystem,
    readonly file: SimFile,
    private readonly writable: boolean,
    private readonly generation: number,
  ) {
    this.seenErrSeq = file.errSeq;
  }

  private check(write = false): void {
    if (this.closed) throw new SimFsError('EBADF', 'handle is closed');
    if (this.generation !== this.fs.generation) throw new SimFsError('EBADF', 'handle of an earlier incarnation');
    if (write && !this.writable) throw new SimFsError('EBADF', 'handle is read-only');
  }

  sizeBytes(): number {
    this.check();
    return this.file.size;
  }
  read(buf: Uint8Array, bufOffset: number, length: number, position: number): number {
    this.check();
    return this.file.read(buf, bufOffset, length, position, true);
  }
  write(buf: Uint8Array, bufOffset: number, length: number, position: number): number {
    this.check(true);
    return this.fs.writeFile(this.file, buf.subarray(bufOffset, bufOffset + length), position);
  }
  writev(buffers: readonly Uint8Array[], position: number): number {
    this.check(true);
    let pos = position;
    for (const b of buffers) {
      const n = this.fs.writeFile(this.file, b, pos);
      pos += n;
      if (n < b.byteLength) break;
    }
    return pos - position;
  }
  writeAsync(
    buf: Uint8Array,
    bufOffset: number,
    length: number,
    position: number,
    done: (err: Error | null, written: number) => void,
  ): void {
    let n = 0;
    let err: Error | null = null;
    try {
      n = this.write(buf, bufOffset, length, position);
    } catch (e) {
      err = e as Error;
    }
    this.fs.later(() => done(err, n));
  }
  truncate(sizeBytes: number): void {
    this.check(true);
    this.file.truncate(sizeBytes, this.fs.nextSeq());
  }
  datasync(done: (err: Error | null) => void): void {
    this.syncLater(done);
  }
  datasyncSync(): void {
    this.syncNow();
  }
  sync(done: (err: Error | null) => void): void {
    this.syncLater(done);
  }
  syncSync(): void {
    this.syncNow();
  }
  close(): void {
    this.closed = true;
  }

  private syncLater(done: (err: Error | null) => void): void {
    try {
      this.check();
    } catch (e) {
      return this.fs.later(() => done(e as Error));
    }
    const c = this.file.capture();
    this.fs.later(() => done(this.finishSync(c)));
  }

  private syncNow(): void {
    this.check();
    const err = this.finishSync(this.file.capture());
    if (err) throw err;
  }

  /** Completes a sync: durable, or (a fault) failed; either way reports an earlier failure not yet seen. */
  private finishSync(c: SyncCapture): Error | null {
    if (this.fs.drawSyncFailure()) {
      this.file.fail(c);
      this.seenErrSeq = this.file.errSeq;
      return new SimFsError('EIO', `sync of a file of ${this.fs.label} failed`, true);
    }
    this.file.commit(c);
    if (this.seenErrSeq < this.file.errSeq) {
      this.seenErrSeq = this.file.errSeq;
      return new SimFsError('EIO', `an earlier write-back of a file of ${this.fs.label} failed`, true);
    }
    return null;
  }
}

/** A deep copy of the durable tree: a data directory as a backup would have caught it. */
export interface DurableImage {
  root: SimDir;
}

export class SimFileSystem implements FileSystem {
  private root: SimDir;
  private nextId = 1;
  private seq = 0;
  /** Bumped at every crash: handles of the incarnation before fail. */
  generation = 0;
  private host: SimDiskHost | null = null;
  faults: DiskFaults = { syncEio: 0, full: false };
  /** Counts of what the faults did (the run's statistics). */
  readonly injected = { eio: 0, enospc: 0, rot: 0, rotRead: 0 };

  constructor(readonly label: string) {
    this.root = new SimDir(this.nextId++);
  }

  /** The node starts an incarnation: completions go through its clock from now on. */
  attach(host: SimDiskHost): void {
    this.host = host;
  }

  nextSeq(): number {
    return ++this.seq;
  }

  later(fn: () => void): void {
    const h = this.host;
    if (!h) throw new Error(`${this.label}: no host attached`);
    h.schedule(h.latencyMs(), fn);
  }

  drawSyncFailure(): boolean {
    if (this.faults.syncEio <= 0 || !this.host || !this.host.rng.chance(this.faults.syncEio)) return false;
    this.injected.eio++;
    return true;
  }

  /** A write through a handle: all of it, a short write (the disk filled up), or ENOSPC. */
  writeFile(file: SimFile, src: Uint8Array, position: number): number {
    let n = src.byteLength;
    if (this.faults.full && position + n > file.size) {
      // Only the space already allocated can be written: up to the end of the file's last sector.
      const allocated = Math.ceil(file.size / SECTOR_BYTES) * SECTOR_BYTES;
      n = Math.max(0, Math.min(n, allocated - position));
      if (n === 0) {
        this.injected.enospc++;
        throw new SimFsError('ENOSPC', `${this.label}: no space left on the device`, true);
      }
    }
    file.write(src.subarray(0, n), position, this.nextSeq());
    return n;
  }

  // ---------------------------------------------------------------- paths

  private parts(p: string): string[] {
    if (!p.startsWith('/')) throw new Error(`sim fs: relative path ${p}`);
    const norm = p.includes('/.') || p.includes('//') ? path.posix.normalize(p) : p;
    return norm.split('/').filter((x) => x.length > 0);
  }

  private lookup(p: string): SimNode | undefined {
    let node: SimNode = this.root;
    for (const part of this.parts(p)) {
      if (node.kind !== 'dir') return undefined;
      const next = node.entries.get(part);
      if (!next) return undefined;
      node = next;
    }
    return node;
  }

  private parentOf(p: string): { dir: SimDir; name: string } {
    const parts = this.parts(p);
    const name = parts.pop();
    if (name === undefined) throw new SimFsError('EISDIR', 'the root');
    const dir = this.lookup(`/${parts.join('/')}`);
    if (!dir) throw new SimFsError('ENOENT', `no directory for ${p}`);
    if (dir.kind !== 'dir') throw new SimFsError('ENOTDIR', `${p}: a parent is not a directory`);
    return { dir, name };
  }

  private fileAt(p: string): SimFile {
    const node = this.lookup(p);
    if (!node) throw new SimFsError('ENOENT', `no such file ${p}`);
    if (node.kind !== 'file') throw new SimFsError('EISDIR', `${p} is a directory`);
    return node;
  }

  // ---------------------------------------------------------------- the FileSystem interface

  open(p: string, flags: OpenFlags): FileHandle {
    let file: SimFile;
    if (flags === 'w+') {
      const { dir, name } = this.parentOf(p);
      const existing = dir.entries.get(name);
      if (existing?.kind === 'dir') throw new SimFsError('EISDIR', `${p} is a directory`);
      if (existing) {
        file = existing;
        file.truncate(0, this.nextSeq());
      } else {
        file = new SimFile(this.nextId++);
        dir.set(name, file, this.nextSeq());
      }
    } else {
      file = this.fileAt(p);
    }
    return new SimHandle(this, file, flags !== 'r', this.generation);
  }

  readFile(p: string): Buffer {
    const file = this.fileAt(p);
    const out = Buffer.alloc(file.size);
    file.read(out, 0, file.size, 0, true);
    return out;
  }

  stat(p: string): FileStat | null {
    const node = this.lookup(p);
    if (!node) return null;
    return {
      isDirectory: node.kind === 'dir',
      sizeBytes: node.kind === 'file' ? node.size : 0,
      fileId: `${this.label}:${node.id}`,
    };
  }

  readdir(p: string): string[] {
    const node = this.lookup(p);
    if (!node) throw new SimFsError('ENOENT', `no such directory ${p}`);
    if (node.kind !== 'dir') throw new SimFsError('ENOTDIR', `${p} is not a directory`);
    return [...node.entries.keys()].sort();
  }

  mkdirp(p: string): void {
    let node: SimDir = this.root;
    for (const part of this.parts(p)) {
      let next = node.entries.get(part);
      if (!next) {
        next = new SimDir(this.nextId++);
        node.set(part, next, this.nextSeq());
      }
      if (next.kind !== 'dir') throw new SimFsError('ENOTDIR', `${p}: ${part} is a file`);
      node = next;
    }
  }

  rename(from: string, to: string): void {
    const src = this.parentOf(from);
    const node = src.dir.entries.get(src.name);
    if (!node) throw new SimFsError('ENOENT', `rename: no such file ${from}`);
    const dst = this.parentOf(to);
    if (dst.dir.entries.get(dst.name)?.kind === 'dir' && node.kind === 'file')
      throw new SimFsError('EISDIR', `rename: ${to} is a directory`);
    const seq = this.nextSeq();
    if (src.dir === dst.dir) {
      // One operation in the journal: the new name and the old name's removal become durable together.
      src.dir.entries.delete(src.name);
      src.dir.entries.set(dst.name, node);
      src.dir.pending.push({ name: dst.name, node, seq }, { name: src.name, node: null, seq });
      return;
    }
    dst.dir.set(dst.name, node, seq);
    src.dir.set(src.name, null, seq);
  }

  link(existing: string, newPath: string): void {
    const file = this.fileAt(existing);
    const dst = this.parentOf(newPath);
    if (dst.dir.entries.has(dst.name)) throw new SimFsError('EEXIST', `link: ${newPath} exists`);
    dst.dir.set(dst.name, file, this.nextSeq());
  }

  unlink(p: string): void {
    const node = this.lookup(p);
    if (!node) return;
    if (node.kind === 'dir') throw new SimFsError('EISDIR', `unlink: ${p} is a directory`);
    const { dir, name } = this.parentOf(p);
    dir.set(name, null, this.nextSeq());
  }

  removeTree(p: string): void {
    if (!this.lookup(p)) return;
    const { dir, name } = this.parentOf(p);
    dir.set(name, null, this.nextSeq());
  }

  /**
   * As removeTree, and reported done at once: what the model is about is the name's removal (durable once the
   * directory is synced); when the blocks are freed is not modelled.
   */
  removeTreeAsync(p: string, done: (err: Error | null) => void): void {
    let err: Error | null = null;
    try {
      this.removeTree(p);
    } catch (e) {
      err = e as Error;
    }
    done(err);
  }

  fsyncPath(p: string, done: (err: Error | null) => void): void {
    const node = this.lookup(p);
    if (!node) return this.later(() => done(new SimFsError('ENOENT', `fsync: no such file ${p}`)));
    if (node.kind === 'file') return new SimHandle(this, node, false, this.generation).sync(done);
    const seq = this.seq;
    this.later(() => done(this.finishDirSync(node, seq)));
  }

  fsyncPathSync(p: string): void {
    const node = this.lookup(p);
    if (!node) throw new SimFsError('ENOENT', `fsync: no such file ${p}`);
    if (node.kind === 'file') return new SimHandle(this, node, false, this.generation).syncSync();
    const err = this.finishDirSync(node, this.seq);
    if (err) throw err;
  }

  private finishDirSync(dir: SimDir, seq: number): Error | null {
    // A failed directory sync leaves its operations pending: a crash may keep any prefix of them.
    if (this.drawSyncFailure()) return new SimFsError('EIO', `sync of a directory of ${this.label} failed`, true);
    dir.commit(seq);
    return null;
  }

  // ---------------------------------------------------------------- crashes and faults

  private *walk(dir: SimDir, seen = new Set<number>()): Generator<SimNode> {
    if (seen.has(dir.id)) return;
    seen.add(dir.id);
    yield dir;
    for (const map of [dir.entries, dir.durable]) {
      for (const node of map.values()) {
        if (node.kind === 'dir') yield* this.walk(node, seen);
        else if (!seen.has(node.id)) {
          seen.add(node.id);
          yield node;
        }
      }
    }
  }

  /**
   * The machine crashes (or loses power): every directory keeps a prefix of its unsynced operations, every
   * file's unsynced sectors are drawn, handles of the incarnation that ran are void.
   */
  crash(rng: Prng, draw: CrashDraw): void {
    const nodes = [...this.walk(this.root)];
    for (const n of nodes) if (n.kind === 'dir') n.crash(rng, draw.loseNames === true);
    for (const n of nodes) if (n.kind === 'file' && n.isDirty) n.crash(rng, draw);
    this.generation++;
    this.host = null;
  }

  /** A latent sector error at a chosen byte of the file at the durable name `p` (scenarios): it reads flipped, or fails. */
  rotAt(p: string, offsetBytes: number, kind: 'flip' | 'eio'): void {
    const file = this.durableLookup(p);
    if (file?.kind !== 'file') throw new Error(`no durable file ${p}`);
    const s = Math.floor(offsetBytes / SECTOR_BYTES);
    file.rot.set(s, { kind, offset: offsetBytes % SECTOR_BYTES, mask: 0x20 });
    this.injected.rot++;
  }

  /**
   * A latent sector error in a durable sector of one file chosen by `pick` among the durable files, below the
   * byte offset it names (the whole file when it names none).
   */
  rotSector(
    rng: Prng,
    pick: (files: { path: string; sizeBytes: number }[]) => { path: string; belowBytes?: number } | string | null,
  ): string | null {
    const picked = pick(this.durableFiles());
    if (picked === null) return null;
    const chosen = typeof picked === 'string' ? picked : picked.path;
    // A durable name: the file may be renamed or removed in the running view (rot hits the file, not a name).
    const file = this.durableLookup(chosen);
    if (file?.kind !== 'file') return null;
    const limit = Math.min(file.durableSize, typeof picked === 'string' ? Infinity : (picked.belowBytes ?? Infinity));
    const sectors = Math.floor(limit / SECTOR_BYTES);
    const clean: number[] = [];
    for (let s = 0; s < sectors; s++) if (!file.dirty.has(s)) clean.push(s);
    if (clean.length === 0) return null;
    const s = rng.pick(clean);
    const inSector = Math.min(SECTOR_BYTES, file.durableSize - s * SECTOR_BYTES);
    file.rot.set(s, { kind: rng.chance(0.5) ? 'eio' : 'flip', offset: rng.int(0, inSector), mask: rng.int(1, 256) });
    this.injected.rot++;
    return `${chosen} sector ${s}`;
  }

  /** Files reachable through durable names, with their durable sizes. */
  durableFiles(): { path: string; sizeBytes: number }[] {
    const out: { path: string; sizeBytes: number }[] = [];
    const visit = (dir: SimDir, at: string) => {
      for (const [name, node] of dir.durable) {
        const p = `${at}/${name}`;
        if (node.kind === 'dir') visit(node, p);
        else out.push({ path: p, sizeBytes: node.durableSize });
      }
    };
    visit(this.root, '');
    return out.sort((a, b) => (a.path < b.path ? -1 : 1));
  }

  /** Names (in the running view) under directory `under` of files that hold a latent sector error, and how many. */
  rottenFiles(under: string): { path: string; sectors: number }[] {
    const out: { path: string; sectors: number }[] = [];
    const visit = (node: SimNode | undefined, at: string) => {
      if (!node) return;
      if (node.kind === 'file') {
        if (node.rot.size > 0) out.push({ path: at, sectors: node.rot.size });
        return;
      }
      for (const [name, child] of node.entries) visit(child, `${at}/${name}`);
    };
    visit(this.lookup(under), under);
    return out.sort((a, b) => (a.path < b.path ? -1 : 1));
  }

  /** Whether any latent sector error sits in a file (a node that stops on it is expected to). */
  get hasRot(): boolean {
    for (const n of this.walk(this.root)) if (n.kind === 'file' && n.rot.size > 0) return true;
    return false;
  }

  // ---------------------------------------------------------------- what the checkers read (no faults)

  private durableLookup(p: string): SimNode | undefined {
    let node: SimNode = this.root;
    for (const part of this.parts(p)) {
      if (node.kind !== 'dir') return undefined;
      const next = node.durable.get(part);
      if (!next) return undefined;
      node = next;
    }
    return node;
  }

  /** The pristine durable bytes of the file at the durable name `p`, or null. */
  durableBytes(p: string): Buffer | null {
    const node = this.durableLookup(p);
    return node?.kind === 'file' ? node.durableBytes() : null;
  }

  /** Pristine durable bytes [offset, offset + length) of the file at the durable name `p` (fewer at its end). */
  durableRange(p: string, offset: number, length: number): Buffer | null {
    const node = this.durableLookup(p);
    return node?.kind === 'file' ? node.durableRange(offset, length) : null;
  }

  /** Durable names in directory `p`. */
  durableNames(p: string): string[] {
    const node = this.durableLookup(p);
    return node?.kind === 'dir' ? [...node.durable.keys()].sort() : [];
  }

  /** The current bytes of `p` without rot, or null. */
  currentBytes(p: string): Buffer | null {
    const node = this.lookup(p);
    if (node?.kind !== 'file') return null;
    const out = Buffer.alloc(node.size);
    node.read(out, 0, node.size, 0, false);
    return out;
  }

  // ---------------------------------------------------------------- the data directory lost or restored

  /** A deep copy of what is durable now (a backup, a volume snapshot). */
  durableImage(): DurableImage {
    return { root: copyDurableTree(this.root) };
  }

  /** The data directory replaced by an older copy (copied again, so the image can be reused). */
  restoreImage(image: DurableImage): void {
    this.root = copyDurableTree(image.root);
    this.generation++;
    this.host = null;
  }

  /** The disk replaced by an empty one. */
  wipe(): void {
    this.root = new SimDir(this.nextId++);
    this.generation++;
    this.host = null;
  }
}

/** A deep copy of the durable names and bytes under `root` (hard links stay links). */
function copyDurableTree(root: SimDir): SimDir {
  const files = new Map<number, SimFile>();
  const copyDir = (d: SimDir): SimDir => {
    const out = new SimDir(d.id);
    for (const [name, node] of d.durable) {
      let copy: SimNode;
      if (node.kind === 'dir') copy = copyDir(node);
      else {
        let f = files.get(node.id);
        if (!f) {
          f = new SimFile(node.id);
          const bytes = node.durableBytes();
          f.data = bytes;
          f.size = f.durableSize = bytes.byteLength;
          files.set(node.id, f);
        }
        copy = f;
      }
      out.durable.set(name, copy);
      out.entries.set(name, copy);
    }
    return out;
  };
  return copyDir(root);
}
