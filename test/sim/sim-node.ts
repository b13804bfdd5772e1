// One simulated JournalNode: its disk (which outlives its incarnations), and while it runs its storage (the
// shipped DiskLog, MetaStore and JournalStateMachine over that disk) and its replica. Also what a failure of
// one incarnation means: which errors a fault explains (the node stops, restarts after the machine is
// reset, or stays down when its disk holds damage it refused) and which are bugs.

import type { qjournal } from '../../src/gen/proto.js';
import type { MemoryStorage } from '../../src/raft/memory-storage.js';
import { NONE } from '../../src/raft/types.js';
import type { Entry, HardState, NodeId, Peer, SnapshotMeta } from '../../src/raft/types.js';
import type { ReplicaLog } from '../../src/replica/env.js';
import type { Replica } from '../../src/replica/replica.js';
import type { LogStorage } from '../../src/raft/log.js';
import type { DiskLog } from '../../src/storage/raft-log.js';
import { type SimFileSystem, SimFsError } from './sim-file-system.js';
import { durableLog, durablyHolds, durableHardState } from './sim-storage.js';
import type { ObservedStateMachine, OpenedStorage } from './sim-storage.js';
import type { DurableState } from './checker.js';
import type { NodeIntegrity } from '../../journalnode/integrity/node-integrity.js';

type Result = qjournal.journal.ICommandResult;

export class SimNode {
  incarnation = 0;
  alive = false;
  /** Gone for good (removed and stopped, or lost with a majority): never restarts, no longer checked. */
  destroyed = false;
  /**
   * Stopped until repaired: its storage refused damage a fault left on its disk (latent sector errors).
   * Repair from peers is later work; until then the node stays down, still a member of its configuration.
   */
  failed = false;
  replica: Replica<Result> | null = null;
  storage: OpenedStorage | null = null;
  observed: ObservedStateMachine | null = null;
  /** Its scrubber, repairs and (when it leads) comparison of the replicas, while it runs. */
  integrity: NodeIntegrity | null = null;
  slowDisk = false;
  /** Latency of one device operation, ms: [min, max). */
  latencyMs: [number, number] = [0.3, 2];
  /** When it first acknowledged an append or a snapshot (a learner may be promoted only after). */
  ackedAt: number | null = null;
  /** What the disk held when this node last went down (read from the durable bytes), until it runs again. */
  private downLog: MemoryStorage | null = null;
  /** The storage id of its data directory (known once the directory is opened or prepared). */
  storageId = '';
  /** While it waits for its cluster to form (sim-data-dir.ts): what it waits for. */
  forming: string[] | null = null;
  /** Why its last start was refused (data-dir.ts), while it stays down for it. */
  refused: string | null = null;
  /** Bumped each time its data directory is replaced or restored: nothing it sent or was sent before arrives. */
  dataDirEpoch = 0;
  /** Its disk was replaced: the next directory it prepares is a replaced disk's (replacedStorage). */
  wiped = false;
  /**
   * The storage id of a replaced disk, until a committed configuration binds this node to it (it was re-added):
   * until then it must neither vote nor have an acknowledgement counted.
   */
  replacedStorage: string | null = null;
  /**
   * Replaced or restored from an older copy: the durable state it had before (its votes and acknowledgements
   * came from it, and a leader may still count them). The quorum checks still count it: what keeps the node from
   * voting without it is its binding (a replaced disk counts for nothing until re-added, after catching up) or
   * its floor (a restored copy).
   */
  owed: { hard: HardState; log: MemoryStorage | null } | null = null;

  /**
   * @param initialPeers its command line: an initial member's --peers (the cluster forms from them), or null for
   *   a node started with --join (the members as the operator knows them when it starts).
   */
  constructor(
    readonly id: NodeId,
    readonly fs: SimFileSystem,
    public initialPeers: Peer[] | null,
  ) {}

  get exists(): boolean {
    return !this.destroyed;
  }

  /** Up, or able to come back: not destroyed and not stopped for good. */
  get serviceable(): boolean {
    return !this.destroyed && !this.failed;
  }

  get running(): boolean {
    return this.alive && this.replica !== null && this.storage !== null;
  }

  get diskLog(): DiskLog | null {
    return this.storage?.diskLog ?? null;
  }

  /** The node went down: what its disk holds now (after the crash drew what survived). */
  wentDown(lastSnapshot: SnapshotMeta | null): void {
    const snap = this.storage?.stateMachine.snapshotMeta ?? lastSnapshot ?? this.downLog?.snapshotMeta();
    if (snap) this.downLog = durableLog(this.fs, snap);
    this.integrity?.stop();
    this.integrity = null;
    this.storage = null;
    this.replica = null;
    this.observed = null;
  }

  /** The log the checkers compare: the running log, or what the disk held when the node went down. */
  log(): LogStorage | null {
    return this.running ? this.storage!.diskLog : this.downLog;
  }

  /** The log as its durable bytes hold it, read without the node's code (and without the disk's faults). */
  pristineLog(): LogStorage | null {
    const snap = this.storage?.stateMachine.snapshotMeta;
    return this.running && snap ? durableLog(this.fs, snap) : this.downLog;
  }

  /** The data directory was replaced or restored behind the node's back: what it held before is no reference. */
  diskReplaced(how: 'wiped' | 'restored'): void {
    const prev = this.owed;
    const hard = durableHardState(this.fs);
    this.owed = {
      hard: prev && prev.hard.term > hard.term ? prev.hard : hard,
      log: this.downLog ?? prev?.log ?? null,
    };
    if (how === 'wiped') this.wiped = true;
    this.downLog = null;
    this.dataDirEpoch++;
  }

  /**
   * Just after a restart: a committed entry (index at most maxCommitted) that the disk held when the node went
   * down must be in the log recovery built, or under its snapshot; what recovery dropped of it, or null.
   */
  lostAtRecovery(maxCommitted: number): string | null {
    const before = this.downLog;
    const log = this.storage?.diskLog;
    if (!before || !log) return null;
    const snap = log.snapshotMeta().index;
    // Recovery cut a damaged log before its first damaged entry (keeping a floor): what follows comes back from
    // the leader, and is no loss of recovery's.
    const cuts = this.storage!.logDamage.filter((d) => d.action === 'cut').map((d) => d.firstIndex);
    const to = Math.min(maxCommitted, before.lastIndex(), cuts.length > 0 ? Math.min(...cuts) - 1 : Infinity);
    for (let i = Math.max(before.firstIndex(), snap + 1); i <= to; i++) {
      const t = before.term(i);
      if (t !== undefined && log.term(i) !== t)
        return `the disk held committed entry (${i}, t${t}) when the node went down, the recovered log ${log.term(i) === undefined ? 'lacks it' : `has t${log.term(i)} there`} (last ${log.lastIndex()}, snapshot ${snap})`;
    }
    return null;
  }

  /**
   * What a checker may read of this node's durable state (never through the node's own code, never faulted),
   * with what it held before its disk was replaced or restored (owed). A replaced disk not yet re-added counts
   * for nothing of its own.
   */
  durable(): DurableState {
    const fs = this.fs;
    const owed = this.owed;
    const held = (log: MemoryStorage | null, index: number, term: number) =>
      log !== null && (index <= log.snapshotMeta().index || log.term(index) === term);
    if (this.replacedStorage !== null || this.wiped) {
      const hard = owed?.hard ?? { term: 0, vote: '', commit: 0 };
      return { hard, holds: (index, term) => held(owed?.log ?? null, index, term) };
    }
    const running = this.running ? this.storage : null;
    const down = this.downLog;
    return {
      get hard(): HardState {
        const hard = durableHardState(fs);
        return owed && owed.hard.term > hard.term ? owed.hard : hard;
      },
      holds: (index, term) => {
        if (owed && held(owed.log, index, term)) return true;
        if (running) {
          if (index <= running.stateMachine.snapshotMeta.index) return true;
          return durablyHolds(fs, running.diskLog, index, term);
        }
        return held(down, index, term);
      },
    };
  }
}

/** Errors a fault of the simulated disk explains: injected ones (EIO, ENOSPC) and detected damage (rot). */
export function faultExplains(node: SimNode, e: unknown): 'injected' | 'damage' | null {
  if (e instanceof SimFsError && e.injected) return e.code === 'EIO' && node.fs.hasRot ? 'damage' : 'injected';
  const name = (e as Error | undefined)?.name;
  const corruption =
    name === 'CorruptLogError' ||
    name === 'SegmentCorruptError' ||
    name === 'MetaFileError' ||
    name === 'IdentityFileError' ||
    name === 'SnapshotError';
  return corruption && node.fs.hasRot ? 'damage' : null;
}

/** A disk that forgets the vote it made durable: the fault outside the model of outside-model.test.ts. */
export class ForgetfulLog implements ReplicaLog {
  constructor(private readonly inner: DiskLog) {}
  initialHardState(): HardState {
    return { ...this.inner.initialHardState(), vote: NONE };
  }
  snapshotMeta(): SnapshotMeta {
    return this.inner.snapshotMeta();
  }
  firstIndex(): number {
    return this.inner.firstIndex();
  }
  lastIndex(): number {
    return this.inner.lastIndex();
  }
  term(index: number): number | undefined {
    return this.inner.term(index);
  }
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    return this.inner.entries(lo, hi, maxBytes);
  }
  write(hardState: HardState | null, entries: Entry[], done: (err: Error | null) => void): void {
    this.inner.write(hardState, entries, done);
  }
  snapshotSaved(meta: SnapshotMeta, compactTo: number): void {
    this.inner.snapshotSaved(meta, compactTo);
  }
  beginReset(meta: SnapshotMeta): void {
    this.inner.beginReset(meta);
  }
  commitReset(meta: SnapshotMeta, done: (err: Error | null) => void): void {
    this.inner.commitReset(meta, done);
  }
}
