// The replica's ordered writes to its durable log, with group commit: every Ready's hard state and entries
// become a job, and the jobs queued while one write is in flight leave as one write and one fsync. Messages
// that depend on durability (votes, append acks) leave only once their write, and every earlier one, is done.
// A snapshot install is a job too, so nothing queued after it reaches the disk before it.
// Bounded: past maxPersistJobs queued the queue is `full`, and the replica takes no more input that would
// add to it (a leader's proposals are refused BUSY, peer messages are dropped: Raft resends them).
// A write (or an install's step) that ran short of file descriptors is issued again after a backoff, the queue
// held meanwhile as on a slow disk (shortage-retry.ts).

import { assert } from '../assert.js';
import { EntryType, MessageType, NONE } from '../raft/types.js';
import type { Entry, HardState, Message } from '../raft/types.js';
import type { ReplicaLog, StagedSnapshot } from './env.js';
import { isResourceShortage } from './env.js';
import { SHORTAGE_FIRST_RETRY_MS, SHORTAGE_MAX_RETRY_MS, ShortageRetry } from './shortage-retry.js';

interface WriteJob {
  kind: 'write';
  hardState: HardState | null;
  entries: Entry[];
  messages: Message[];
}

interface InstallJob {
  kind: 'install';
  staged: StagedSnapshot;
}

type PersistJob = WriteJob | InstallJob;

/** What the queue needs from the replica that owns it. */
export interface PersistHost {
  readonly log: ReplicaLog;
  send(messages: Message[]): void;
  /** The commit index a write may record as its hint: committed and already durable on this node. */
  commitHint(): number;
  /** Entries up to `last` are durable. */
  persisted(last: Entry): void;
  /** A Ready turn is due (what was waiting on the write may move on). */
  schedule(): void;
  /**
   * Runs an install job; `done` once it no longer holds the queue (installed, stale, or failed). Its steps
   * retry after a shortage on the queue's `retry`.
   */
  install(staged: StagedSnapshot, done: () => void): void;
  /** Storage ran short of file descriptors: `step` runs again after `retry`'s backoff (logged as `what`). */
  shortOf(e: Error, retry: ShortageRetry, what: string, step: () => void): void;
  /** The log failed: the replica stops. */
  failed(e: Error): void;
  stopped(): boolean;
}

export interface PersistQueueOptions {
  /** Bytes of entries one group-committed write may carry (more when a single job is larger). */
  maxAppendBufferBytes: number;
  /** Entries one group-committed write may carry (more when a single job is larger). */
  leaderBatch: number;
  /** Jobs queued at which the queue is full (a turn's Readies may still add a few past it). */
  maxPersistJobs: number;
}

export class PersistQueue {
  private readonly jobs: PersistJob[] = [];
  /** A write or an install holds the queue; nothing else starts until it is done. */
  private busy = false;
  /** The term and vote of the newest write queued (commit-only changes are not written for themselves). */
  private lastQueuedHard: HardState;
  /** The hard state of the last write issued to the log (its commit is the hint on disk). */
  private writtenHard: HardState;
  /** The job in flight ran short of file descriptors: its step again after a backoff (one at a time). */
  readonly retry = new ShortageRetry(SHORTAGE_FIRST_RETRY_MS, SHORTAGE_MAX_RETRY_MS);

  constructor(
    private readonly host: PersistHost,
    private readonly options: PersistQueueOptions,
    initial: HardState,
  ) {
    this.lastQueuedHard = { ...initial };
    this.writtenHard = { ...initial };
  }

  /** Jobs queued or in flight (for status). */
  get length(): number {
    return this.jobs.length + (this.busy ? 1 : 0);
  }

  /** The disk is this far behind: the replica takes no input that would queue more. */
  get full(): boolean {
    return this.jobs.length >= this.options.maxPersistJobs;
  }

  /** Nothing queued for or in flight to the disk. */
  get idle(): boolean {
    return this.jobs.length === 0 && !this.busy;
  }

  /**
   * A Ready's writes: its hard state (only when term or vote moved: a commit index alone is not worth a
   * write), its entries, and the messages that may leave once they are durable. Nothing to do, no job.
   */
  enqueueWrite(hardState: HardState | null, entries: Entry[], messages: Message[]): void {
    const last = this.lastQueuedHard;
    const hs = hardState && (hardState.term !== last.term || hardState.vote !== last.vote) ? hardState : null;
    if (hs === null && entries.length === 0 && messages.length === 0) return;
    this.jobs.push({ kind: 'write', hardState: hs, entries, messages });
    if (hs) this.lastQueuedHard = { ...hs };
  }

  /** A fetched snapshot, installed in its turn: after every write queued before it, before any after. */
  enqueueInstall(staged: StagedSnapshot): void {
    this.jobs.push({ kind: 'install', staged });
  }

  /**
   * An install replaced the log: writes queued behind it were cut from the old log, so their entries and the
   * acknowledgements that depended on them go (their hard state still matters).
   */
  dropQueuedEntries(): void {
    for (const job of this.jobs) {
      if (job.kind !== 'write') continue;
      job.entries = [];
      job.messages = job.messages.filter((m) => m.type !== MessageType.AppResp);
    }
  }

  /** Issues again the step a shortage interrupted, once its backoff is over. */
  retryIfDue(nowMs: number): void {
    this.retry.runIfDue(nowMs);
  }

  /** Starts the next job if none is in flight. */
  kick(): void {
    if (this.busy || this.host.stopped() || this.jobs.length === 0) return;
    const head = this.jobs[0]!;
    if (head.kind === 'install') {
      this.jobs.shift();
      this.busy = true;
      this.host.install(head.staged, () => {
        this.busy = false;
        this.kick();
      });
      return;
    }
    const { hardState, entries, messages } = this.takeWriteBatch();
    if (hardState === null && entries.length === 0) {
      // Nothing new to make durable: every earlier write is already done, so the messages may go now.
      if (messages.length > 0) this.host.send(messages);
      this.kick();
      return;
    }
    this.checkWriteOrder(entries);
    this.busy = true;
    this.write(hardState, entries, messages);
  }

  /** One log write; the messages that waited for it leave once it is durable. */
  private write(hardState: HardState | null, entries: Entry[], messages: Message[]): void {
    this.host.log.write(hardState, entries, (e) => {
      if (this.host.stopped()) {
        this.busy = false;
        return;
      }
      if (e && isResourceShortage(e))
        return this.host.shortOf(e, this.retry, 'a log write', () => this.write(hardState, entries, messages));
      this.busy = false;
      if (e) return this.host.failed(e);
      this.retry.succeeded();
      const last = entries[entries.length - 1];
      if (last) this.host.persisted(last);
      if (messages.length > 0) this.host.send(messages);
      this.host.schedule();
      this.kick();
    });
  }

  /** Group commit: every queued write (up to the batch bounds) merged into one write and one fsync. */
  private takeWriteBatch(): { hardState: HardState | null; entries: Entry[]; messages: Message[] } {
    let hardState: HardState | null = null;
    let entries: Entry[] = [];
    const messages: Message[] = [];
    let bytes = 0;
    while (this.jobs.length > 0 && this.jobs[0]!.kind === 'write') {
      const job = this.jobs[0] as WriteJob;
      let jobBytes = 0;
      for (const e of job.entries) jobBytes += e.data.byteLength;
      if (
        entries.length > 0 &&
        (bytes + jobBytes > this.options.maxAppendBufferBytes ||
          entries.length + job.entries.length > this.options.leaderBatch)
      )
        break;
      const first = job.entries[0]?.index;
      // A later Ready replaced a suffix: keep what precedes it.
      const kept =
        first !== undefined && entries.length > 0 && first <= entries[entries.length - 1]!.index
          ? entries.filter((e) => e.index < first)
          : entries;
      // A configuration entry starts a write of its own, which then carries the commit hint (below).
      const cut = job.entries.findIndex((e, i) => e.type === EntryType.ConfChange && kept.length + i > 0);
      if (cut === 0) break;
      entries = kept;
      if (job.hardState) hardState = job.hardState;
      if (cut > 0) {
        // The rest of the job, with the messages that wait for all of it, is the next write.
        for (const e of job.entries.slice(0, cut)) entries.push(e);
        job.entries = job.entries.slice(cut);
        job.hardState = null;
        break;
      }
      this.jobs.shift();
      for (const e of job.entries) entries.push(e);
      for (const m of job.messages) messages.push(m);
      bytes += jobBytes;
    }
    return { hardState: this.withCommitHint(hardState, entries), entries, messages };
  }

  /** A write's entries are in order and continue or replace the durable log: they never leave a gap after it. */
  private checkWriteOrder(entries: Entry[]): void {
    const first = entries[0]?.index;
    if (first === undefined) return;
    const durableLast = this.host.log.lastIndex();
    assert(first <= durableLast + 1, () => `persist: a write at ${first} leaves a gap after ${durableLast}`);
    for (let i = 1; i < entries.length; i++)
      assert(entries[i]!.index === first + i, () => `persist: entry ${entries[i]!.index} written at ${first + i}`);
  }

  /**
   * The commit hint says entries up to it are committed: only ever as far as the log is durable and the
   * core's (a torn write must not leave a stale entry under it). A write that starts with a configuration
   * entry always carries it, so a restart knows the configuration entries before it are committed and
   * applies them before it may campaign (etcd #7625's apply-time invariants).
   */
  private withCommitHint(hardState: HardState | null, entries: Entry[]): HardState | null {
    if (hardState === null && entries[0]?.type !== EntryType.ConfChange) return null;
    const prev = this.writtenHard;
    const next = { ...(hardState ?? prev), commit: Math.max(prev.commit, this.host.commitHint()) };
    // What Raft's safety rests on, as it reaches the disk: the term never goes back, a vote is never changed
    // within a term.
    assert(
      next.term > prev.term || (next.term === prev.term && (prev.vote === NONE || next.vote === prev.vote)),
      () => `persist: hard state (${prev.term}, ${prev.vote}) followed by (${next.term}, ${next.vote})`,
    );
    this.writtenHard = next;
    return next;
  }
}
