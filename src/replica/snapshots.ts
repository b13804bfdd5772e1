// The replica's snapshots: taken when due (entries, bytes or time since the last one) or on request; and a
// leader's snapshot fetched, then installed as a job of the persist queue, in an order that is safe at every
// crash point: the core and the log view switch to it at once, the image is made durable, and only then
// does the log drop its old entries on disk. A save, or an install's step, that ran short of file descriptors
// is not a disk failure: it is tried again after a backoff (shortage-retry.ts).

import { assert } from '../assert.js';
import type { Logger } from '../logger.js';
import type { RawNode } from '../raft/raw-node.js';
import type { NodeId, SnapshotMeta } from '../raft/types.js';
import type { Callback } from './client-waits.js';
import { qjmError as err } from './client-waits.js';
import type { ReplicaClock, ReplicaLog, ReplicaStateMachine, StagedSnapshot } from './env.js';
import { isResourceShortage, isStorageFailure } from './env.js';
import { SHORTAGE_FIRST_RETRY_MS, SHORTAGE_MAX_RETRY_MS, ShortageRetry } from './shortage-retry.js';
import type { PeerDirectory } from './peer-directory.js';
import type { PersistQueue } from './persist-queue.js';

/** What snapshots need from the replica that owns them. */
export interface SnapshotHost<R> {
  readonly raw: RawNode;
  readonly log: ReplicaLog;
  readonly stateMachine: ReplicaStateMachine<R>;
  readonly persist: PersistQueue;
  readonly peers: PeerDirectory;
  readonly clock: ReplicaClock;
  readonly logger: Logger;
  /**
   * The core moved to `meta`: the replica's applied index follows (entries it covers are never applied here).
   * Returns the applied index before, which the state machine reflects until the image is in place.
   */
  restored(meta: SnapshotMeta): number;
  /** The installed image is durable and the old log dropped: what waited for its index may go. */
  installed(): void;
  /** The reset generation a snapshot records (identity.ts). */
  generation(): number;
  /** A save that ran short of file descriptors may be due again (the replica checks, then maybeTake). */
  saveDue(): void;
  /** Storage ran short of file descriptors: `step` runs again after `retry`'s backoff (logged as `what`). */
  shortOf(e: Error, retry: ShortageRetry, what: string, step: () => void): void;
  schedule(): void;
  failed(e: Error): void;
  stopped(): boolean;
}

export interface SnapshotOptions {
  /** Take a snapshot after this many applied entries; 0 = never by count. */
  snapshotEntries: number;
  snapshotLogBytes: number;
  snapshotIntervalS: number;
  /** Entries kept in the log below a snapshot, so a slightly lagging follower still gets appends. */
  keepEntriesAfterSnapshot: number;
}

export class Snapshots<R> {
  private lastIndex: number;
  private lastAtMs: number;
  private appliedBytesSinceLast = 0;
  // Three processes that may overlap, each at most once: saving this node's image, fetching the leader's
  // (a new request may arrive while the previous image is still being installed), and installing one.
  private saving = false;
  private fetching = false;
  /** While an image is being installed: the applied index before it (what the state machine still reflects). */
  private installingFrom: number | null = null;
  /** A save that ran short of file descriptors: the next one after a backoff. */
  private readonly saveRetry = new ShortageRetry(SHORTAGE_FIRST_RETRY_MS, SHORTAGE_MAX_RETRY_MS);

  constructor(
    private readonly host: SnapshotHost<R>,
    private readonly options: SnapshotOptions,
  ) {
    this.lastIndex = host.log.snapshotMeta().index;
    this.lastAtMs = host.clock.now();
  }

  /** Nothing being saved, fetched or installed. */
  get idle(): boolean {
    return !this.saving && !this.fetching && this.installingFrom === null;
  }

  /** The applied index the state machine reflects while an image is put in place, else null. */
  get appliedBeforeInstall(): number | null {
    return this.installingFrom;
  }

  /** Tries again, once its backoff is over, a save that ran short of file descriptors. */
  retryIfDue(nowMs: number): void {
    this.saveRetry.runIfDue(nowMs);
  }

  /** Bytes of commands applied, counted toward the size trigger. */
  countApplied(bytes: number): void {
    this.appliedBytesSinceLast += bytes;
  }

  /** Takes a snapshot at `applied` if one is due. */
  maybeTake(applied: number): void {
    if (this.saving || this.saveRetry.waiting || applied <= this.lastIndex) return;
    const o = this.options;
    const due =
      (o.snapshotEntries > 0 && applied - this.lastIndex >= o.snapshotEntries) ||
      (o.snapshotLogBytes > 0 && this.appliedBytesSinceLast >= o.snapshotLogBytes) ||
      (o.snapshotIntervalS > 0 && this.host.clock.now() - this.lastAtMs >= o.snapshotIntervalS * 1000);
    if (due) this.take(applied);
  }

  /** Saves a snapshot at `applied` now; cb with its index (the last one's when nothing was applied since). */
  take(applied: number, cb?: Callback<number>): void {
    if (this.saving) return cb?.(err('BUSY', 'a snapshot is already being saved'));
    if (applied <= this.lastIndex) return cb?.(null, this.lastIndex);
    const h = this.host;
    const term = h.raw.termAt(applied);
    assert(term !== undefined, 'term of the applied index is known');
    const meta: SnapshotMeta = {
      index: applied,
      term,
      conf: h.raw.conf(),
      peers: h.peers.list(),
      generation: h.generation(),
    };
    const bytesBefore = this.appliedBytesSinceLast;
    this.saving = true;
    this.appliedBytesSinceLast = 0;
    this.lastAtMs = h.clock.now();
    h.stateMachine.saveSnapshot(meta, (e) => {
      this.saving = false;
      if (h.stopped()) return;
      if (e && isResourceShortage(e)) {
        // Not a disk failure: the next snapshot is tried after a backoff, counting what this one would have.
        this.appliedBytesSinceLast += bytesBefore;
        h.shortOf(e, this.saveRetry, 'a snapshot', () => h.saveDue());
        return cb?.(err('BUSY', `snapshot not taken, retried later: ${e.message}`));
      }
      if (e) {
        h.failed(e);
        return cb?.(err('INTERNAL', `snapshot failed: ${e.message}`));
      }
      this.saveRetry.succeeded();
      // An installed snapshot may have overtaken this one meanwhile.
      if (meta.index > h.log.snapshotMeta().index) {
        this.lastIndex = meta.index;
        h.log.snapshotSaved(meta, Math.max(0, meta.index - this.options.keepEntriesAfterSnapshot));
      }
      h.logger.info({ index: meta.index, term: meta.term }, 'snapshot saved');
      cb?.(null, meta.index);
      h.schedule();
    });
  }

  /** The leader asked for an install: fetch its image, then queue the install behind the writes before it. */
  fetch(from: NodeId, meta: SnapshotMeta): void {
    if (this.fetching) return;
    const h = this.host;
    this.fetching = true;
    h.logger.info({ from, index: meta.index }, 'fetching snapshot');
    h.stateMachine.fetchSnapshot(from, meta, (e, staged) => {
      this.fetching = false;
      if (h.stopped()) {
        if (staged) h.stateMachine.discardSnapshot(staged);
        return;
      }
      // This node's own storage failed while staging: what that sync covered is lost, whatever a later one says.
      if (e && isStorageFailure(e)) return h.failed(e);
      if (e || !staged) {
        h.logger.warn({ from, index: meta.index, error: e?.message }, 'snapshot fetch failed');
        h.raw.snapshotFetched(meta, false);
        h.schedule();
        return;
      }
      h.persist.enqueueInstall(staged);
      h.persist.kick();
    });
  }

  /** The persist queue's install job; `done` once the queue may move on. */
  install(staged: StagedSnapshot, done: () => void): void {
    const h = this.host;
    const meta = staged.meta;
    if (!h.raw.snapshotFetched(meta, true)) {
      h.stateMachine.discardSnapshot(staged);
      h.schedule();
      return done();
    }
    h.persist.dropQueuedEntries();
    // From here the core and the log view start after the snapshot; no entry is applied until the image is
    // installed, because nothing after meta.index is durable before this job completes.
    h.log.beginReset(meta);
    h.raw.restore(meta);
    this.lastIndex = meta.index;
    this.appliedBytesSinceLast = 0;
    h.peers.reset(meta.peers ?? [], meta.index);
    this.installingFrom = h.restored(meta);
    h.schedule();
    this.installImage(staged, done);
  }

  /** Durable order: the image first, then the log drops its old entries (each retried after a shortage). */
  private installImage(staged: StagedSnapshot, done: () => void): void {
    const h = this.host;
    h.stateMachine.installSnapshot(staged, (e) => {
      if (h.stopped()) return;
      if (e && isResourceShortage(e))
        return h.shortOf(e, h.persist.retry, 'a snapshot install', () => this.installImage(staged, done));
      if (e) return h.failed(e);
      this.installingFrom = null;
      this.dropOldLog(staged.meta, done);
    });
  }

  private dropOldLog(meta: SnapshotMeta, done: () => void): void {
    const h = this.host;
    h.log.commitReset(meta, (e) => {
      if (!h.stopped() && e && isResourceShortage(e))
        return h.shortOf(e, h.persist.retry, 'dropping the log a snapshot replaced', () => this.dropOldLog(meta, done));
      if (!h.stopped()) {
        if (e) h.failed(e);
        else {
          h.persist.retry.succeeded();
          h.installed();
        }
      }
      done();
    });
  }
}
