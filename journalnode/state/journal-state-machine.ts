// The replicated state machine of a JournalNode: the journals (one per jid) under <data>/journals, the
// commands that change them, snapshots (save, fetch from the leader, install) and the reads and long-poll
// waits that libqjm's readers use. Implements the Replica's ReplicaStateMachine.

import path from 'node:path';
import zlib from 'node:zlib';
import { assert } from '../../src/assert.js';
import type { Logger } from '../../src/logger.js';
import { qjournal } from '../../src/gen/proto.js';
import { ApplyInterrupted, isResourceShortage, storageFailure } from '../../src/replica/env.js';
import type { ReplicaStateMachine, StagedSnapshot } from '../../src/replica/env.js';
import type { Entry, NodeId, SnapshotMeta } from '../../src/raft/types.js';
import { Journal } from './journal.js';
import type { SegmentState } from '../../src/journal-state.js';
import { SegmentFile } from './segment-file.js';
import type { FileHandle, FileSystem } from '../../src/storage/file-system.js';
import { preadIntoSync, writeAllSync } from '../../src/storage/files.js';
import { series, SnapshotStore } from './snapshot-store.js';
import type { ManifestData, StagedImage } from './snapshot-store.js';
import { decodeCommittedCommand, journalLimitOf } from './commands.js';
import { ReadWaiters } from './read-waiters.js';
import { fetchSnapshot } from './snapshot-fetch.js';
import type { FetchSink, FetchSource, ManifestSummary, SnapshotFileRef } from './snapshot-fetch.js';

const pb = qjournal.journal;
type Result = qjournal.journal.ICommandResult;

/**
 * Where a follower fetches a snapshot from: the source of the fetch loop for one peer (the JournalNode's
 * HTTP client to its peers; the simulator's network).
 */
export type SnapshotSource = (peer: NodeId) => FetchSource<ManifestData>;

export interface StateMachineOptions {
  fileSystem: FileSystem;
  dataDir: string;
  /** Bytes of recent batches each journal keeps in memory for tailing readers. */
  cacheBytesPerJournal: number;
  /** Long-polls waiting at once; beyond, a reader is refused BUSY (default: no bound, for tests). */
  maxWaitingReads?: number;
  maxSnapshotChunkBytes: number;
  /** Snapshots kept on disk (the previous one may still be being fetched by a follower). */
  keepSnapshots: number;
  source: SnapshotSource | null;
  logger: Logger;
  /** Observes every batch of records appended (metrics, the dashboard): lastTxId after it, at Raft index `index`. */
  onRecordsAppended?(jid: string, txns: number, bytes: number, lastTxId: number, index: number): void;
  /** Observes a newEpoch applied at Raft index `index`: `fenced` is the writer it fences (null: there was none). */
  onNewEpoch?(
    jid: string,
    epoch: number,
    writerId: string,
    fenced: { epoch: number; writerId: string } | null,
    index: number,
  ): void;
  /** Observes a snapshot installed from the leader (this node's journals replaced by its image). */
  onSnapshotInstalled?(index: number): void;
  /**
   * After each command, check every segment of the journal against its invariants (tests); without it a node
   * checks the O(1) ones (epochs, the last two segments).
   */
  checkInvariants?: boolean;
}

interface Staged extends StagedSnapshot {
  image: StagedImage;
}

export function toSnapshotMeta(m: ManifestData): SnapshotMeta {
  const { index, term, conf, peers, generation } = m.meta;
  return {
    index,
    term,
    conf: { voters: [...conf.voters], votersOutgoing: [...conf.votersOutgoing], learners: [...conf.learners] },
    peers: peers.map((p) => (p.storageId ? { ...p } : { id: p.id, address: p.address })),
    generation,
  };
}

/** A snapshot's metadata as its manifest holds it (every binding and the generation spelled out). */
function manifestMeta(meta: SnapshotMeta): ManifestData['meta'] {
  return {
    index: meta.index,
    term: meta.term,
    conf: meta.conf,
    peers: (meta.peers ?? []).map((p) => ({ id: p.id, address: p.address, storageId: p.storageId ?? '' })),
    generation: meta.generation ?? 0,
  };
}

export class JournalStateMachine implements ReplicaStateMachine<Result> {
  readonly snapshots: SnapshotStore;
  readonly journalsRoot: string;
  private journals = new Map<string, Journal>();
  private readonly readers: ReadWaiters;
  /** Wall-clock time of the last write applied per journal (node-local; not part of the state). */
  private readonly lastWriteAtMs = new Map<string, number>();
  /** Metadata of the snapshot the state was last restored from or saved. */
  private snapshotMetaValue: SnapshotMeta;
  private appliedCommands = 0;
  /** Commands this node decoded and validated before proposing them, by their bytes (see knowValidated). */
  private readonly validated = new WeakMap<Uint8Array, qjournal.journal.Command>();

  private constructor(private readonly opts: StateMachineOptions) {
    this.snapshots = new SnapshotStore(opts.fileSystem, path.join(opts.dataDir, 'snapshots'));
    this.journalsRoot = path.join(opts.dataDir, 'journals');
    this.readers = new ReadWaiters(opts.maxWaitingReads ?? Infinity);
    this.snapshotMetaValue = { index: 0, term: 0, conf: { voters: [], votersOutgoing: [], learners: [] } };
  }

  /** A new data directory: the bootstrap snapshot at index 1 carries the initial configuration. */
  static bootstrap(options: StateMachineOptions, meta: SnapshotMeta): void {
    const store = new SnapshotStore(options.fileSystem, path.join(options.dataDir, 'snapshots'));
    assert(store.list().length === 0, 'bootstrap: the data directory already has snapshots');
    store.createInitial({ meta: manifestMeta(meta), journals: [], createdMs: Date.now() });
  }

  /** Start-up: the journals become exactly the newest snapshot's; the log then replays what follows. */
  static open(options: StateMachineOptions): JournalStateMachine {
    const stateMachine = new JournalStateMachine(options);
    const newest = stateMachine.snapshots.newest();
    if (!newest)
      throw new Error(
        `no snapshot in ${stateMachine.snapshots.root}: the data directory was not formatted by journalnode`,
      );
    stateMachine.loadFrom(newest.index);
    return stateMachine;
  }

  private loadFrom(index: number): void {
    for (const j of this.journals.values()) j.closeFiles();
    const m = this.snapshots.materialize(index, this.journalsRoot);
    const journals = new Map<string, Journal>();
    for (const js of m.journals) {
      const dir = path.join(this.journalsRoot, js.jid);
      const fileSystem = this.opts.fileSystem;
      const open = (s: SegmentState) =>
        s.inProgress
          ? SegmentFile.load(fileSystem, dir, s.file, {
              inProgress: true,
              sizeBytes: s.sizeBytes,
              truncate: true,
              expectedLastTxId: s.lastTxId,
            })
          : SegmentFile.trusted(fileSystem, dir, s.file, s);
      journals.set(js.jid, Journal.restore(fileSystem, js, dir, this.opts.cacheBytesPerJournal, open));
    }
    this.journals = journals;
    this.snapshotMetaValue = toSnapshotMeta(m);
    this.opts.logger.info({ index, journals: m.journals.length }, 'journal state loaded from snapshot');
  }

  get snapshotMeta(): SnapshotMeta {
    return this.snapshotMetaValue;
  }

  get commandsApplied(): number {
    return this.appliedCommands;
  }

  /**
   * These bytes were decoded and validated where they entered this node (the leader's write route, with
   * limits never looser than APPLY_LIMITS): if they commit, the entry's data is this very object, and it is
   * applied from this decoding instead of being decoded again. Keyed by the object, not its contents, so
   * only those exact bytes can use it: every other entry, from any peer, is decoded and checked at apply.
   */
  knowValidated(bytes: Uint8Array, cmd: qjournal.journal.Command): void {
    this.validated.set(bytes, cmd);
  }

  // ---------------------------------------------------------------- applying

  /**
   * Applies committed commands. An entry that is not a valid command (decoded and checked as the route checks
   * a request) is a no-op answered with its error, the same on every replica. An I/O error is thrown: the
   * replica stops and reports it (a full or failing disk), it does not skip the entry.
   */
  apply(entries: readonly Entry[]): Result[] {
    const out: Result[] = [];
    for (const e of entries) {
      try {
        out.push(this.applyEntry(e));
      } catch (err) {
        // Out of file descriptors (a connection flood), not a failing disk: the entry opened nothing it kept
        // (each command opens its files before it changes anything, journal.ts); the replica applies it and
        // those after it again later. Any other error stops the replica.
        if (isResourceShortage(err)) throw new ApplyInterrupted(out, err as Error);
        throw err;
      }
      this.appliedCommands++;
    }
    return out;
  }

  private applyEntry(e: Entry): Result {
    const known = this.validated.get(e.data);
    const c = known ? { cmd: known } : decodeCommittedCommand(e.data);
    if ('error' in c) {
      this.opts.logger.warn(
        { index: e.index, term: e.term, error: c.error.message },
        'a committed entry is not a valid command: applied as a no-op',
      );
      return { code: pb.ErrorCode[c.error.errorName], message: `entry ${e.index}: ${c.error.message}` };
    }
    const r = this.applyCommand(c.cmd, e.index);
    // Kept until the entry applied: one interrupted by a shortage is applied again from the same decoding.
    if (known) this.validated.delete(e.data);
    return r;
  }

  private journalFor(jid: string, create: boolean): Journal | undefined {
    let j = this.journals.get(jid);
    if (!j && create) {
      j = new Journal(this.opts.fileSystem, jid, path.join(this.journalsRoot, jid), this.opts.cacheBytesPerJournal);
      this.journals.set(jid, j);
    }
    return j;
  }

  /** Milliseconds since a write to the journal was last applied here, or null if none since start. */
  lastWriteAgeMs(jid: string): number | null {
    const t = this.lastWriteAtMs.get(jid);
    return t === undefined ? null : Date.now() - t;
  }

  /** Applies one valid command; the journal it touched must keep its invariants (an assertion: a bug if not). */
  private applyCommand(cmd: qjournal.journal.Command, index: number): Result {
    const result = this.runCommand(cmd, index);
    this.journals.get(cmd.jid)?.checkInvariants(this.opts.checkInvariants === true);
    return result;
  }

  private runCommand(cmd: qjournal.journal.Command, index: number): Result {
    const jid = cmd.jid;
    if (cmd.appendRecords || cmd.startSegment || cmd.finalizeSegment) this.lastWriteAtMs.set(jid, Date.now());
    const n = (v: number | null | undefined) => Number(v ?? 0);
    if (cmd.format) {
      const limit = journalLimitOf(cmd.format);
      if (!this.journals.has(jid) && this.journals.size >= limit)
        return {
          code: pb.ErrorCode.TOO_MANY_JOURNALS,
          message: `journal ${jid} would be journal ${this.journals.size + 1} of this cluster; maxJournals is ${limit}`,
        };
      const r = this.journalFor(jid, true)!.format(cmd.format.nsInfo ?? {}, cmd.format.force === true);
      this.wake(jid);
      return r;
    }
    const j = this.journalFor(jid, false);
    if (!j) return { code: pb.ErrorCode.NOT_FORMATTED, message: `journal ${jid} is not formatted` };
    if (cmd.newEpoch) {
      const before = { epoch: j.promisedEpoch, writerId: j.writerId };
      const r = j.newEpoch(cmd.newEpoch.nsInfo ?? {}, cmd.newEpoch.writerId ?? '', cmd.newEpoch.requestId ?? '');
      // A retried newEpoch answers the same epoch: nobody new was fenced.
      if (r.code === pb.ErrorCode.OK && j.promisedEpoch > before.epoch)
        this.opts.onNewEpoch?.(jid, j.promisedEpoch, j.writerId, before.epoch > 0 ? before : null, index);
      return r;
    }
    if (cmd.startSegment)
      return j.startSegment(n(cmd.startSegment.epoch), n(cmd.startSegment.txid), n(cmd.startSegment.layoutVersion));
    if (cmd.appendRecords) {
      const o = cmd.appendRecords;
      const records = o.records ?? new Uint8Array(0);
      const before = j.lastTxId;
      const r = j.appendRecords(n(o.epoch), n(o.segmentTxid), n(o.firstTxid), n(o.count), records);
      if (r.code === pb.ErrorCode.OK && j.lastTxId > before) {
        this.opts.onRecordsAppended?.(jid, j.lastTxId - before, records.byteLength, j.lastTxId, index);
        this.wake(jid);
      }
      return r;
    }
    if (cmd.finalizeSegment) {
      const o = cmd.finalizeSegment;
      const r = j.finalizeSegment(n(o.epoch), n(o.firstTxid), n(o.lastTxid));
      this.wake(jid);
      return r;
    }
    if (cmd.dropSegment) return j.dropSegment(n(cmd.dropSegment.epoch), n(cmd.dropSegment.firstTxid));
    if (cmd.purge) return j.purge(n(cmd.purge.epoch), n(cmd.purge.minTxidToKeep), n(cmd.purge.retainFromTxid));
    return { code: pb.ErrorCode.INVALID_ARGUMENT, message: 'command without an operation' };
  }

  // ---------------------------------------------------------------- reads

  journal(jid: string): Journal | undefined {
    return this.journals.get(jid);
  }

  allJournals(): Journal[] {
    return [...this.journals.values()];
  }

  /** Journals this node holds (formatted ones; a journal is created only by format). */
  get journalCount(): number {
    return this.journals.size;
  }

  /**
   * Resolves once the journal holds txid, after timeoutMs, or when signal aborts (the reader left). Rejects
   * BUSY when maxWaitingReads readers already wait.
   */
  waitForTxid(jid: string, txid: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const j = this.journals.get(jid);
    if ((j && j.lastTxId >= txid) || timeoutMs <= 0) return Promise.resolve();
    return this.readers.wait(jid, txid, timeoutMs, signal);
  }

  /** Long-polls waiting on this node now. */
  get waitingReads(): number {
    return this.readers.waiting;
  }

  private wake(jid: string): void {
    this.readers.wake(jid, this.journals.get(jid)?.lastTxId ?? 0);
  }

  private wakeAll(): void {
    this.readers.wakeAll();
  }

  // ---------------------------------------------------------------- snapshots

  private buildManifest(meta: SnapshotMeta): {
    manifest: ManifestData;
    sources: { jid: string; file: string; fromPath: string; dirty: boolean }[];
    /** Segments this snapshot will make durable: dirty again if it fails. */
    cleaned: SegmentFile[];
  } {
    const sources: { jid: string; file: string; fromPath: string; dirty: boolean }[] = [];
    const cleaned: SegmentFile[] = [];
    for (const j of this.journals.values()) {
      for (const s of j.segments) {
        sources.push({ jid: j.jid, file: s.name, fromPath: s.path, dirty: s.dirty });
        if (s.dirty) cleaned.push(s);
        s.dirty = false;
      }
    }
    const manifest: ManifestData = {
      meta: manifestMeta(meta),
      journals: [...this.journals.values()].map((j) => j.state()),
      createdMs: Date.now(),
    };
    return { manifest, sources, cleaned };
  }

  saveSnapshot(meta: SnapshotMeta, done: (err: Error | null) => void): void {
    const { manifest, sources, cleaned } = this.buildManifest(meta);
    // A snapshot that fails (a shortage of descriptors, retried later) made none of its files durable.
    const failed = (e: Error) => {
      for (const s of cleaned) s.dirty = true;
      done(e);
    };
    let pending: ReturnType<SnapshotStore['capture']>;
    try {
      pending = this.snapshots.capture(manifest, sources);
    } catch (e) {
      return failed(e as Error);
    }
    this.snapshots.finish(pending, this.opts.keepSnapshots, (err) => {
      if (err) return failed(err);
      if (meta.index > this.snapshotMetaValue.index) this.snapshotMetaValue = meta;
      done(null);
    });
  }

  fetchSnapshot(from: NodeId, meta: SnapshotMeta, done: (err: Error | null, staged?: StagedSnapshot) => void): void {
    const source = this.opts.source;
    if (!source) return done(new Error('no snapshot source configured'));
    const sink = new StagingSink(this.snapshots, this.journalsRoot);
    fetchSnapshot<ManifestData>(
      {
        from,
        minIndex: meta.index,
        maxChunkBytes: this.opts.maxSnapshotChunkBytes,
        summarize: summarizeManifest,
        sink,
        source: source(from),
      },
      (err, manifest, stats) => {
        if (err || !manifest) return done(err ?? new Error('snapshot fetch failed'));
        this.opts.logger.info(
          { from, index: manifest.meta.index, fetchedBytes: stats?.fetchedBytes, reusedBytes: stats?.reusedBytes },
          'snapshot fetched',
        );
        const image: StagedImage = { index: manifest.meta.index, dir: sink.dir, manifest };
        done(null, { meta: toSnapshotMeta(manifest), image } as Staged);
      },
    );
  }

  installSnapshot(staged: StagedSnapshot, done: (err: Error | null) => void): void {
    const image = (staged as Staged).image;
    series(
      [
        (cb) => this.snapshots.promote(image, cb),
        (cb) => {
          try {
            this.loadFrom(image.index);
            this.snapshots.prune(this.opts.keepSnapshots);
            this.wakeAll();
            this.opts.onSnapshotInstalled?.(image.index);
            cb(null);
          } catch (e) {
            cb(e as Error);
          }
        },
      ],
      done,
    );
  }

  discardSnapshot(staged: StagedSnapshot): void {
    // A staging directory left behind is removed at the next start.
    this.opts.fileSystem.removeTreeAsync((staged as Staged).image.dir, () => {});
  }

  close(): void {
    for (const j of this.journals.values()) j.closeFiles();
    this.wakeAll();
  }
}

function summarizeManifest(m: ManifestData): ManifestSummary {
  return {
    index: m.meta.index,
    files: m.journals.flatMap((j) =>
      j.segments.map((seg) => ({ jid: j.jid, file: seg.file, sizeBytes: seg.sizeBytes, crc32: seg.crc32 })),
    ),
  };
}

/** Where a fetched snapshot is staged: a staging directory of the snapshot store, files fsynced one by one. */
class StagingSink implements FetchSink {
  dir = '';
  private readonly files = new Map<string, FileHandle>();
  private readonly jdirs = new Set<string>();

  constructor(
    private readonly snapshots: SnapshotStore,
    private readonly journalsRoot: string,
  ) {}

  private get fileSystem(): FileSystem {
    return this.snapshots.fileSystem;
  }

  private target(f: SnapshotFileRef): string {
    const jdir = path.join(this.dir, 'journals', f.jid);
    if (!this.jdirs.has(jdir)) {
      this.fileSystem.mkdirp(jdir);
      this.jdirs.add(jdir);
    }
    return path.join(jdir, f.file);
  }

  private file(f: SnapshotFileRef): FileHandle {
    const key = `${f.jid}/${f.file}`;
    let file = this.files.get(key);
    if (file === undefined) {
      file = this.fileSystem.open(this.target(f), 'w+');
      this.files.set(key, file);
    }
    return file;
  }

  begin(index: number): void {
    this.dir = this.snapshots.newStagingDir(index);
  }

  reuse(f: SnapshotFileRef): boolean {
    const local = path.join(this.journalsRoot, f.jid, f.file);
    if (!prefixMatches(this.fileSystem, local, f.sizeBytes, f.crc32)) return false;
    const target = this.target(f);
    this.fileSystem.link(local, target);
    // Segment files are not fsynced as they are written (the Raft log is the durability point): a reused one
    // becomes part of a durable snapshot only once its bytes are on the disk too.
    syncOrStop(() => this.fileSystem.fsyncPathSync(target));
    return true;
  }

  write(f: SnapshotFileRef, offsetBytes: number, bytes: Uint8Array): void {
    writeAllSync(this.file(f), bytes, offsetBytes);
  }

  endFile(f: SnapshotFileRef, cb: (err: Error | null) => void): void {
    let err: Error | null = null;
    try {
      const file = this.file(f);
      this.files.delete(`${f.jid}/${f.file}`);
      try {
        syncOrStop(() => file.syncSync());
      } finally {
        file.close();
      }
    } catch (e) {
      err = e as Error;
    }
    cb(err);
  }

  finish(cb: (err: Error | null) => void): void {
    // Each journal's directory (its files' names), then the directory naming the journals' directories.
    const dirs = [...this.jdirs, path.join(this.dir, 'journals')];
    series(
      dirs.map((d) => (next: (err: Error | null) => void) => this.fileSystem.fsyncPath(d, next)),
      (err) => cb(err ? storageFailure(err) : null),
    );
  }

  abort(): void {
    for (const file of this.files.values()) file.close();
    this.files.clear();
    if (this.dir) this.fileSystem.removeTree(this.dir);
  }
}

/**
 * Runs a sync of the staging area: its failure is the node's storage failing, not a fetch to try again (what it
 * covered may be lost whatever a later sync says), so the replica stops on it.
 */
function syncOrStop(sync: () => void): void {
  try {
    sync();
  } catch (e) {
    throw storageFailure(e as Error);
  }
}

/** Whether the file's first `size` bytes have the given CRC32. */
function prefixMatches(fileSystem: FileSystem, file: string, size: number, crc: number): boolean {
  let handle: FileHandle;
  try {
    handle = fileSystem.open(file, 'r');
  } catch {
    return false;
  }
  try {
    if (handle.sizeBytes() < size) return false;
    const buf = Buffer.allocUnsafe(Math.min(size, 4 << 20));
    let c = 0;
    for (let off = 0; off < size; ) {
      const n = preadIntoSync(handle, buf, off, Math.min(buf.byteLength, size - off));
      if (n === 0) return false;
      c = zlib.crc32(buf.subarray(0, n), c);
      off += n;
    }
    return c >>> 0 === crc;
  } finally {
    handle.close();
  }
}
