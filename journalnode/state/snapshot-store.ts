// Snapshots of the journals' state machine on disk: <data>/snapshots/snap_<index>/ holds manifest.pb and hard
// links to every segment file of the snapshot (finalized segments are immutable; in-progress files only
// grow, so the snapshot owns a prefix of them). Capture is synchronous and cheap (links); making it durable
// (fsync files and directories, write the manifest, rename into place) is asynchronous. Also: serving
// chunks to followers, staging a fetched snapshot, and rebuilding the live journal directories from one.

import path from 'node:path';
import zlib from 'node:zlib';
import { QjmError } from '../../src/errors.js';
import { qjournal } from '../../src/gen/proto.js';
import { EDITS_NAMING, SEGMENT_HEADER_BYTES } from '../../src/edit-records.js';
import { checkHostPort, isJournalId, isNodeId, isStorageBinding } from '../../src/ids.js';
import { journalStateFromProto, journalStateToProto } from '../../src/journal-state.js';
import type { JournalStateData } from '../../src/journal-state.js';
import type { FileHandle, FileSystem } from '../../src/storage/file-system.js';
import { mkdirDurableSync, preadSync, truncatePathSync, writeFileSync } from '../../src/storage/files.js';
import { journalStateProblem } from './journal.js';

const pb = qjournal.journal;
const MANIFEST = 'manifest.pb';
const MAGIC = Buffer.from('QJSM', 'latin1');
const SNAP_RE = /^snap_(\d{20})$/;

export type Manifest = qjournal.journal.ISnapshotManifest;

/** A manifest as the code uses it: every field present, txids as numbers. */
export interface ManifestData {
  meta: {
    index: number;
    term: number;
    conf: { voters: string[]; votersOutgoing: string[]; learners: string[] };
    /** With each member's storage binding (absent or '' when unbound). */
    peers: { id: string; address: string; storageId?: string }[];
    /** The reset generation (absent: 0). */
    generation?: number;
  };
  journals: JournalStateData[];
  createdMs: number;
}

export function toManifestData(m: Manifest): ManifestData {
  const meta = m.meta ?? {};
  const conf = meta.conf ?? {};
  return {
    meta: {
      index: Number(meta.index ?? 0),
      term: Number(meta.term ?? 0),
      conf: {
        voters: [...(conf.voters ?? [])],
        votersOutgoing: [...(conf.votersOutgoing ?? [])],
        learners: [...(conf.learners ?? [])],
      },
      // Bindings and a generation only where there are some: a manifest without them reads back as it was.
      peers: (meta.peers ?? []).map((p) => ({
        id: p.id ?? '',
        address: p.address ?? '',
        ...(p.storageId ? { storageId: p.storageId } : {}),
      })),
      ...(Number(meta.generation ?? 0) > 0 ? { generation: Number(meta.generation) } : {}),
    },
    journals: (m.journals ?? []).map(journalStateFromProto),
    createdMs: Number(m.createdMs ?? 0),
  };
}

export function fromManifestData(d: ManifestData): Manifest {
  return { meta: d.meta, journals: d.journals.map(journalStateToProto), createdMs: d.createdMs };
}

export class SnapshotError extends Error {
  override name = 'SnapshotError';
}

export function encodeManifest(d: ManifestData): Buffer {
  const body = Buffer.from(pb.SnapshotManifest.encode(fromManifestData(d)).finish());
  const head = Buffer.alloc(12);
  MAGIC.copy(head, 0);
  head.writeUInt32BE(body.byteLength, 4);
  head.writeUInt32BE(zlib.crc32(body), 8);
  return Buffer.concat([head, body]);
}

export function decodeManifest(buf: Buffer, where: string): ManifestData {
  if (buf.byteLength < 12 || !buf.subarray(0, 4).equals(MAGIC))
    throw new SnapshotError(`${where}: not a snapshot manifest`);
  const len = buf.readUInt32BE(4);
  if (12 + len !== buf.byteLength) throw new SnapshotError(`${where}: manifest length ${len} does not match the file`);
  const body = buf.subarray(12);
  if (zlib.crc32(body) !== buf.readUInt32BE(8)) throw new SnapshotError(`${where}: manifest CRC mismatch`);
  const m = toManifestData(pb.SnapshotManifest.decode(body));
  const problem = manifestProblem(m);
  if (problem) throw new SnapshotError(`${where}: ${problem}`);
  return m;
}

/** At most this many journals, and segments per journal, in one manifest: far above any real journal. */
const MAX_MANIFEST_JOURNALS = 10_000;
const MAX_MANIFEST_SEGMENTS = 1_000_000;

/**
 * Why a manifest (one fetched from a peer, or read from disk) must not be used, or null. Every name that
 * becomes a path is checked here, before anything is written: journal ids by the journal-id rule, file names
 * by the segment naming scheme and against their own txids; every number is a safe integer in range.
 */
export function manifestProblem(m: ManifestData): string | null {
  const safe = (n: number, min = 0) => Number.isSafeInteger(n) && n >= min;
  if (!safe(m.meta.index) || !safe(m.meta.term) || !safe(m.meta.generation ?? 0))
    return 'index, term or generation out of range';
  const ids = [
    ...m.meta.conf.voters,
    ...m.meta.conf.votersOutgoing,
    ...m.meta.conf.learners,
    ...m.meta.peers.map((p) => p.id),
  ];
  const badId = ids.find((id) => !isNodeId(id));
  if (badId !== undefined) return `bad node id ${JSON.stringify(badId)}`;
  const badAddress = m.meta.peers.find((p) => checkHostPort(p.address) !== null);
  if (badAddress) return `peer ${badAddress.id}: bad address ${JSON.stringify(badAddress.address)}`;
  const badStorage = m.meta.peers.find((p) => !isStorageBinding(p.storageId ?? ''));
  if (badStorage) return `peer ${badStorage.id}: bad storage id ${JSON.stringify(badStorage.storageId)}`;
  if (m.journals.length > MAX_MANIFEST_JOURNALS) return `more than ${MAX_MANIFEST_JOURNALS} journals`;
  const jids = new Set<string>();
  for (const j of m.journals) {
    if (!isJournalId(j.jid)) return `bad journal id ${JSON.stringify(j.jid)}`;
    if (jids.has(j.jid)) return `journal ${j.jid} listed twice`;
    jids.add(j.jid);
    if (![j.promisedEpoch, j.lastWriterEpoch, j.lastTxId].every((n) => safe(n)))
      return `journal ${j.jid}: an epoch or txid out of range`;
    if (j.segments.length > MAX_MANIFEST_SEGMENTS)
      return `journal ${j.jid}: more than ${MAX_MANIFEST_SEGMENTS} segments`;
    for (let i = 0; i < j.segments.length; i++) {
      const g = j.segments[i]!;
      const where = `journal ${j.jid} segment ${JSON.stringify(g.file)}`;
      if (!safe(g.firstTxId, 1) || !safe(g.lastTxId) || g.lastTxId < g.firstTxId - 1)
        return `${where}: txids out of range`;
      const expected = g.inProgress
        ? EDITS_NAMING.inProgress(g.firstTxId)
        : EDITS_NAMING.closed(g.firstTxId, g.lastTxId);
      if (g.file !== expected) return `${where}: the name does not match its txids (expected ${expected})`;
      if (!safe(g.sizeBytes, SEGMENT_HEADER_BYTES) || !Number.isInteger(g.crc32) || g.crc32 < 0 || g.crc32 > 0xffffffff)
        return `${where}: size or CRC out of range`;
    }
    // The journal's own invariants (order, contiguity, the one open segment, epochs): a state that breaks
    // them is refused here, so that once installed they can be asserted.
    const problem = journalStateProblem(j);
    if (problem !== null) return `journal ${j.jid}: ${problem}`;
  }
  return null;
}

/** Runs a synchronous step for a callback chain: cb(null) when it returns, cb(error) when it throws. */
function attempt(fn: () => void, cb: (err: Error | null) => void): void {
  try {
    fn();
  } catch (e) {
    return cb(e as Error);
  }
  cb(null);
}

/** Runs async steps one after another, stopping at the first error. */
function series(steps: ((cb: (err: Error | null) => void) => void)[], done: (err: Error | null) => void): void {
  let i = 0;
  const next = (err: Error | null): void => {
    if (err || i >= steps.length) return done(err);
    const step = steps[i++]!;
    step(next);
  };
  next(null);
}

export interface CapturedFile {
  /** Path of the hard link in the snapshot directory. */
  link: string;
  /** The file changed since it was last fsynced. */
  dirty: boolean;
}

export interface PendingSnapshot {
  index: number;
  tmpDir: string;
  manifest: ManifestData;
  files: CapturedFile[];
}

export interface StagedImage {
  index: number;
  dir: string;
  manifest: ManifestData;
}

export class SnapshotStore {
  constructor(
    readonly fileSystem: FileSystem,
    readonly root: string,
  ) {
    mkdirDurableSync(fileSystem, root);
    // Leftovers of an interrupted capture or fetch are never part of a snapshot.
    for (const name of fileSystem.readdir(root)) {
      if (name.startsWith('tmp_') || name.startsWith('staging_')) fileSystem.removeTree(path.join(root, name));
    }
  }

  static dirName(index: number): string {
    return `snap_${String(index).padStart(20, '0')}`;
  }

  dirOf(index: number): string {
    return path.join(this.root, SnapshotStore.dirName(index));
  }

  /** Indexes of complete snapshots, newest first. */
  list(): number[] {
    return this.fileSystem
      .readdir(this.root)
      .map((n) => SNAP_RE.exec(n))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => Number(m[1]))
      .sort((a, b) => b - a);
  }

  /** The newest snapshot whose manifest reads back intact. */
  newest(): { index: number; dir: string; manifest: ManifestData } | null {
    for (const index of this.list()) {
      const dir = this.dirOf(index);
      try {
        return { index, dir, manifest: this.readManifest(dir) };
      } catch {}
    }
    return null;
  }

  readManifest(dir: string): ManifestData {
    const file = path.join(dir, MANIFEST);
    return decodeManifest(this.fileSystem.readFile(file), file);
  }

  manifestOf(index: number): ManifestData | null {
    const dir = this.dirOf(index);
    if (!this.fileSystem.stat(dir)) return null;
    return this.readManifest(dir);
  }

  /** Step 1, synchronous: hard-link the files into a temporary directory. */
  capture(
    manifest: ManifestData,
    sources: { jid: string; file: string; fromPath: string; dirty: boolean }[],
  ): PendingSnapshot {
    const index = manifest.meta.index;
    const tmpDir = path.join(this.root, `tmp_${String(index).padStart(20, '0')}_${process.pid}_${Date.now()}`);
    const files: CapturedFile[] = [];
    try {
      this.fileSystem.mkdirp(path.join(tmpDir, 'journals'));
      for (const s of sources) {
        const jdir = path.join(tmpDir, 'journals', s.jid);
        this.fileSystem.mkdirp(jdir);
        const link = path.join(jdir, s.file);
        this.fileSystem.link(s.fromPath, link);
        files.push({ link, dirty: s.dirty });
      }
    } catch (e) {
      // A capture that fails (it may be retried) leaves nothing behind.
      this.fileSystem.removeTree(tmpDir);
      throw e;
    }
    return { index, tmpDir, manifest, files };
  }

  /** Step 2, asynchronous: make the files and the manifest durable, then publish the directory. */
  finish(p: PendingSnapshot, keep: number, done: (err: Error | null) => void): void {
    const fileSystem = this.fileSystem;
    const finalDir = this.dirOf(p.index);
    const steps: ((cb: (err: Error | null) => void) => void)[] = [];
    for (const f of p.files) if (f.dirty) steps.push((cb) => fileSystem.fsyncPath(f.link, cb));
    const jroot = path.join(p.tmpDir, 'journals');
    for (const j of fileSystem.readdir(jroot)) steps.push((cb) => fileSystem.fsyncPath(path.join(jroot, j), cb));
    steps.push((cb) => fileSystem.fsyncPath(jroot, cb));
    const tmp = path.join(p.tmpDir, `${MANIFEST}.tmp`);
    steps.push((cb) => attempt(() => writeFileSync(fileSystem, tmp, encodeManifest(p.manifest)), cb));
    steps.push((cb) => fileSystem.fsyncPath(tmp, cb));
    steps.push((cb) => attempt(() => fileSystem.rename(tmp, path.join(p.tmpDir, MANIFEST)), cb));
    steps.push((cb) => fileSystem.fsyncPath(p.tmpDir, cb));
    steps.push((cb) => {
      // The same index captured twice (e.g. after a restart): the existing one stays.
      if (fileSystem.stat(finalDir)) return fileSystem.removeTreeAsync(p.tmpDir, () => cb(null));
      attempt(
        () => fileSystem.rename(p.tmpDir, finalDir),
        (err) => (err ? cb(err) : fileSystem.fsyncPath(this.root, cb)),
      );
    });
    series(steps, (err) => {
      if (err) return fileSystem.removeTreeAsync(p.tmpDir, () => done(err));
      this.prune(keep);
      done(null);
    });
  }

  /** Keeps the newest `keep` snapshots (an older one may still be being fetched by a follower). */
  prune(keep: number): void {
    // In the background (freeing a purged segment's blocks takes time); one left behind goes at the next prune.
    for (const index of this.list().slice(Math.max(1, keep)))
      this.fileSystem.removeTreeAsync(this.dirOf(index), () => {});
  }

  /**
   * Bytes of a snapshot file, within the prefix the manifest gives it. A request no follower of this snapshot
   * makes (a file it does not hold, an offset past its prefix) is INVALID_ARGUMENT; a snapshot this node no
   * longer holds (a newer one replaced it while the follower fetched) is PURGED: fetch the manifest again.
   */
  readChunk(index: number, jid: string, file: string, offset: number, length: number): Buffer {
    const gone = () =>
      new QjmError('PURGED', `snapshot ${index} is not held here (a newer one replaced it?): fetch the manifest again`);
    const m = this.manifestOf(index);
    if (!m) throw gone();
    const j = m.journals.find((x) => x.jid === jid);
    const seg = j?.segments.find((s) => s.file === file);
    if (!seg) throw new QjmError('INVALID_ARGUMENT', `snapshot ${index} has no file ${jid}/${file}`);
    const size = seg.sizeBytes;
    if (offset > size)
      throw new QjmError(
        'INVALID_ARGUMENT',
        `offset ${offset} is past ${jid}/${file}'s ${size} bytes in snapshot ${index}`,
      );
    let handle: FileHandle;
    try {
      handle = this.fileSystem.open(path.join(this.dirOf(index), 'journals', jid, file), 'r');
    } catch (e) {
      if ((e as { code?: string }).code === 'ENOENT') throw gone(); // pruned since the manifest was read
      throw e;
    }
    try {
      return preadSync(handle, offset, Math.min(length, size - offset));
    } finally {
      handle.close();
    }
  }

  /** Writes the first snapshot of a new data directory (bootstrap), synchronously and durably. */
  createInitial(manifest: ManifestData): void {
    const fileSystem = this.fileSystem;
    const index = manifest.meta.index;
    const dir = this.dirOf(index);
    const tmp = path.join(this.root, `tmp_initial_${process.pid}`);
    fileSystem.removeTree(tmp);
    fileSystem.mkdirp(path.join(tmp, 'journals'));
    writeFileSync(fileSystem, path.join(tmp, MANIFEST), encodeManifest(manifest));
    fileSystem.fsyncPathSync(path.join(tmp, MANIFEST));
    fileSystem.fsyncPathSync(tmp);
    fileSystem.rename(tmp, dir);
    fileSystem.fsyncPathSync(this.root);
  }

  newStagingDir(index: number): string {
    const dir = path.join(this.root, `staging_${String(index).padStart(20, '0')}_${process.pid}_${Date.now()}`);
    this.fileSystem.mkdirp(path.join(dir, 'journals'));
    return dir;
  }

  /** Publishes a fully staged (and fsynced) image as a snapshot. */
  promote(staged: StagedImage, done: (err: Error | null) => void): void {
    const fileSystem = this.fileSystem;
    const finalDir = this.dirOf(staged.index);
    // Installed before (a retried install): the staged copy is not needed.
    if (fileSystem.stat(finalDir)) return fileSystem.removeTreeAsync(staged.dir, () => done(null));
    const manifest = path.join(staged.dir, MANIFEST);
    series(
      [
        (cb) => attempt(() => writeFileSync(fileSystem, manifest, encodeManifest(staged.manifest)), cb),
        (cb) => fileSystem.fsyncPath(manifest, cb),
        (cb) => fileSystem.fsyncPath(staged.dir, cb),
        (cb) => attempt(() => fileSystem.rename(staged.dir, finalDir), cb),
        (cb) => fileSystem.fsyncPath(this.root, cb),
      ],
      done,
    );
  }

  /**
   * Makes <journalsRoot>/<jid>/ hold exactly the snapshot's files: files not in it are removed, each file of
   * it is a hard link to the snapshot's copy, and in-progress files are cut to the snapshot's prefix (their
   * later bytes come back as the log is applied again). Synchronous: runs at start-up and during install.
   */
  materialize(index: number, journalsRoot: string): ManifestData {
    const fileSystem = this.fileSystem;
    const dir = this.dirOf(index);
    const m = this.readManifest(dir);
    fileSystem.mkdirp(journalsRoot);
    const wanted = new Set(m.journals.map((j) => j.jid));
    for (const jid of fileSystem.readdir(journalsRoot)) {
      if (!wanted.has(jid)) fileSystem.removeTree(path.join(journalsRoot, jid));
    }
    for (const j of m.journals) {
      const jdir = path.join(journalsRoot, j.jid);
      fileSystem.mkdirp(jdir);
      const files = new Map(j.segments.map((s) => [s.file, s]));
      for (const name of fileSystem.readdir(jdir)) if (!files.has(name)) fileSystem.unlink(path.join(jdir, name));
      for (const s of j.segments) {
        const src = path.join(dir, 'journals', j.jid, s.file);
        const dst = path.join(jdir, s.file);
        const a = fileSystem.stat(src);
        const b = fileSystem.stat(dst);
        if (!a || !b || a.fileId !== b.fileId) {
          fileSystem.unlink(dst);
          fileSystem.link(src, dst);
        }
        const size = fileSystem.stat(dst)!.sizeBytes;
        if (size < s.sizeBytes)
          throw new SnapshotError(
            `snapshot ${index}: ${j.jid}/${s.file} has ${size} bytes, the manifest says ${s.sizeBytes}`,
          );
        if (s.inProgress && size !== s.sizeBytes) truncatePathSync(fileSystem, dst, s.sizeBytes);
      }
      fileSystem.fsyncPathSync(jdir);
    }
    fileSystem.fsyncPathSync(journalsRoot);
    return m;
  }
}

export { series };
