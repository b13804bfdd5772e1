// A simulated node's storage: the shipped Raft log (DiskLog), Raft metadata (MetaStore) and journal state
// machine (JournalStateMachine, with its segment files and snapshots) over the node's simulated disk
// (sim-file-system.ts), opened the way the JournalNode opens them (journalnode/journal-node.ts), with its
// identity record. Also what the checkers read of a node's disk without going through its code: the durable
// hard state and identity record, and whether an entry is durably held (its frame read back from the pristine
// durable bytes).

import { JournalStateMachine } from '../../journalnode/state/journal-state-machine.js';
import type { SnapshotSource, StateMachineOptions } from '../../journalnode/state/journal-state-machine.js';
import { dataDirPaths } from '../../journalnode/data-dir.js';
import type { qjournal } from '../../src/gen/proto.js';
import type { Logger } from '../../src/logger.js';
import { MemoryStorage } from '../../src/raft/memory-storage.js';
import { readU64 } from '../../src/raft/bytes.js';
import type { Entry, EntryType, HardState, NodeId, SnapshotMeta } from '../../src/raft/types.js';
import { ApplyInterrupted } from '../../src/replica/env.js';
import type { ReplicaStateMachine, StagedSnapshot } from '../../src/replica/env.js';
import type { Settings } from '../../src/settings.js';
import type { FileHandle, FileStat, FileSystem } from '../../src/storage/file-system.js';
import {
  FRAME_HEADER_BYTES,
  SEGMENT_HEADER_BYTES,
  frameDataBytes,
  frameProblem,
  frameTerm,
  headerPrevTerm,
  parseLogFileName,
  segmentHeaderProblem,
} from '../../src/storage/log-segment.js';
import { DiskLog } from '../../src/storage/raft-log.js';
import { MetaStore } from '../../src/storage/raft-meta-store.js';
import { decodeIdentity, FileIdentityStore } from '../../src/storage/identity-store.js';
import { LogDamageTaker } from '../../src/storage/log-damage.js';
import type { LogDamage } from '../../src/storage/log-damage.js';
import type { IdentityRecord } from '../../src/replica/env.js';
import type { SimFileSystem } from './sim-file-system.js';
import { diskLogSettings, stateMachineSettings } from './sim-settings.js';

type Result = qjournal.journal.ICommandResult;

export const DATA_DIR = '/data';
export const PATHS = dataDirPaths(DATA_DIR);

/** The state machine's options on a simulated node (its settings, its disk, the snapshot source of its incarnation). */
export function simStateMachineOptions(
  fileSystem: FileSystem,
  settings: Settings,
  source: SnapshotSource | null,
  logger: Logger,
): StateMachineOptions {
  return { fileSystem, dataDir: DATA_DIR, ...stateMachineSettings(settings), source, logger };
}

export const quietLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export interface OpenedStorage {
  meta: MetaStore;
  stateMachine: JournalStateMachine;
  diskLog: DiskLog;
  /** The node's standing (its floor, after a damaged log was cut) and where it is kept. */
  identity: FileIdentityStore;
  record: IdentityRecord;
  /** Damage recovery found in the Raft log and dealt with. */
  logDamage: LogDamage[];
}

/**
 * Opens a node's storage as journal-node.ts does once its data directory is formed (sim-data-dir.ts): the
 * identity record, then the state machine (the log reconciles with its snapshot), then the log.
 */
export function openStorage(
  fs: SimFileSystem,
  settings: Settings,
  source: SnapshotSource,
  logger: Logger,
): OpenedStorage {
  const meta = MetaStore.open(fs, PATHS.raft);
  if (!meta) throw new Error(`no Raft metadata in ${PATHS.raft}: the data directory was never prepared`);
  const stateMachine = JournalStateMachine.open(simStateMachineOptions(fs, settings, source, logger));
  const identity = new FileIdentityStore(fs, PATHS.raft);
  const damage = new LogDamageTaker(identity.load(), identity, meta.meta.hardState.term);
  const diskLog = DiskLog.open(PATHS.log, {
    fileSystem: fs,
    ...diskLogSettings(settings),
    snapshot: stateMachine.snapshotMeta,
    meta,
    logger,
    onDamage: damage.take,
  });
  return { meta, stateMachine, diskLog, identity, record: damage.record, logDamage: damage.found };
}

/** What the checkers learn of every apply, every install and every snapshot of a node's state machine. */
export interface StateMachineObserver {
  onApply(node: NodeId, e: Entry, result: Result): void;
  onInstalled(node: NodeId, index: number): void;
}

/** The shipped state machine, with every apply and install reported to the checkers (nothing else changes). */
export class ObservedStateMachine implements ReplicaStateMachine<Result> {
  constructor(
    readonly inner: JournalStateMachine,
    private readonly node: NodeId,
    private readonly observer: StateMachineObserver,
  ) {}

  apply(entries: readonly Entry[]): Result[] {
    let results: Result[];
    try {
      results = this.inner.apply(entries);
    } catch (e) {
      // Interrupted (a full disk): the entries it did apply before are applied, and observed as such.
      if (e instanceof ApplyInterrupted) this.observe(entries, e.results as Result[]);
      throw e;
    }
    this.observe(entries, results);
    return results;
  }
  private observe(entries: readonly Entry[], results: Result[]): void {
    for (let i = 0; i < results.length; i++) this.observer.onApply(this.node, entries[i]!, results[i]!);
  }
  saveSnapshot(meta: SnapshotMeta, done: (err: Error | null) => void): void {
    this.inner.saveSnapshot(meta, done);
  }
  fetchSnapshot(from: NodeId, meta: SnapshotMeta, done: (err: Error | null, staged?: StagedSnapshot) => void): void {
    this.inner.fetchSnapshot(from, meta, done);
  }
  installSnapshot(staged: StagedSnapshot, done: (err: Error | null) => void): void {
    this.inner.installSnapshot(staged, (err) => {
      if (!err) this.observer.onInstalled(this.node, staged.meta.index);
      done(err);
    });
  }
  discardSnapshot(staged: StagedSnapshot): void {
    this.inner.discardSnapshot(staged);
  }
}

// ---------------------------------------------------------------- the durable state, as the checkers read it

/** A read-only FileSystem over the pristine durable bytes (the shipped readers decode them for the checkers). */
function durableReader(fs: SimFileSystem): FileSystem {
  const refuse = (what: string) => () => {
    throw new Error(`the durable view of ${fs.label} is read-only (${what})`);
  };
  return {
    readFile: (p: string) => {
      const b = fs.durableBytes(p);
      if (!b) throw new Error(`no durable file ${p}`);
      return b;
    },
    stat: (p: string): FileStat | null => {
      const b = fs.durableBytes(p);
      return b ? { isDirectory: false, sizeBytes: b.byteLength, fileId: p } : null;
    },
    readdir: (p: string) => fs.durableNames(p),
    unlink: () => {}, // MetaStore.open drops a leftover temporary file: nothing to do in a view
    removeTree: () => {},
    removeTreeAsync: refuse('removeTreeAsync'),
    open: refuse('open') as () => FileHandle,
    mkdirp: refuse('mkdirp'),
    rename: refuse('rename'),
    link: refuse('link'),
    fsyncPath: refuse('fsyncPath'),
    fsyncPathSync: refuse('fsyncPathSync'),
  };
}

/** The identity record a restart would load (null when it is not durable, or unreadable). */
export function durableIdentity(fs: SimFileSystem): IdentityRecord | null {
  const bytes = fs.durableBytes(`${PATHS.raft}/identity`);
  if (!bytes) return null;
  try {
    return decodeIdentity(bytes, 'identity');
  } catch {
    return null;
  }
}

/** The hard state a restart would load (NONE-like zeros when the metadata is not durable or unreadable). */
export function durableHardState(fs: SimFileSystem): HardState {
  try {
    return MetaStore.open(durableReader(fs), PATHS.raft)?.meta.hardState ?? { term: 0, vote: '', commit: 0 };
  } catch {
    return { term: 0, vote: '', commit: 0 };
  }
}

/** Whether the frame of (index, term) that `log` says it wrote is in the durable bytes, at a durable name. */
export function durablyHolds(fs: SimFileSystem, log: DiskLog, index: number, term: number): boolean {
  const at = log.locate(index);
  if (!at || log.term(index) !== term) return false;
  const head = fs.durableRange(at.file, at.offsetBytes, FRAME_HEADER_BYTES);
  return (
    head !== null &&
    head.byteLength === FRAME_HEADER_BYTES &&
    readU64(head, 16) === index &&
    frameTerm(head, 0) === term &&
    frameDataBytes(head, 0) === at.frameBytes - FRAME_HEADER_BYTES
  );
}

/**
 * The Raft log a restart would find, read from the pristine durable bytes (each segment's frames up to the
 * first that is not whole and checked), above the snapshot `snap`: what a crashed node holds. A log that
 * does not reach or does not hold the snapshot's entry holds nothing above it (recovery discards or refuses it).
 */
export function durableLog(fs: SimFileSystem, snap: SnapshotMeta): MemoryStorage {
  const log = new MemoryStorage(snap.conf);
  log.applySnapshot(snap);
  const names = fs
    .durableNames(PATHS.log)
    .map((name) => ({ name, first: parseLogFileName(name)?.first }))
    .filter((x): x is { name: string; first: number } => x.first !== undefined)
    .sort((a, b) => a.first - b.first);
  const all: Entry[] = [];
  let prevTerm = 0;
  for (const { name, first } of names) {
    const buf = fs.durableBytes(`${PATHS.log}/${name}`);
    if (!buf || buf.byteLength < SEGMENT_HEADER_BYTES || segmentHeaderProblem(buf, first)) break;
    if (all.length > 0 && first !== all[all.length - 1]!.index + 1) break;
    if (all.length === 0) prevTerm = headerPrevTerm(buf);
    let index = first;
    for (let off = SEGMENT_HEADER_BYTES; off < buf.byteLength && !frameProblem(buf, off, index, prevTerm); index++) {
      const len = frameDataBytes(buf, off);
      prevTerm = frameTerm(buf, off);
      all.push({
        index,
        term: prevTerm,
        type: buf[off + 24]! as EntryType,
        data: buf.subarray(off + FRAME_HEADER_BYTES, off + FRAME_HEADER_BYTES + len),
      });
      off += FRAME_HEADER_BYTES + len;
    }
  }
  const at = all.findIndex((e) => e.index === snap.index);
  const holdsSnapshot = (at >= 0 && all[at]!.term === snap.term) || all[0]?.index === snap.index + 1;
  if (holdsSnapshot) log.append(all.filter((e) => e.index > snap.index));
  return log;
}
