// The leader's side of log replication: what it sends each follower under that follower's flow control
// (appends, empty probes, snapshot offers, heartbeats), how acknowledgements move progress and the commit
// index, and the bound on what it holds uncommitted. Owned by Raft, which calls it only while leading.

import type { Logger } from '../logger.js';
import type { RaftLog } from './log.js';
import { type Progress, ProgressState } from './progress.js';
import type { ProgressTracker } from './tracker.js';
import { cloneConf, entryBytes, MessageType, makeMessage } from './types.js';
import type { ConfState, Entry, Message, NodeId, RaftConfig, SnapshotMeta } from './types.js';

/** What replication needs of the Raft node that owns it. */
export interface ReplicationHost {
  readonly id: NodeId;
  readonly config: Readonly<RaftConfig>;
  readonly logger: Logger;
  readonly log: RaftLog;
  readonly tracker: ProgressTracker;
  term(): number;
  conf(): ConfState;
  members(): NodeId[];
  send(m: Message): void;
}

export class Replication {
  /** Bytes of entries appended by this leader and not yet committed. */
  private uncommittedBytes = 0;
  /** Followers need appends (new entries or a newer commit index); sent once per Ready, batching proposals. */
  private broadcastPending = false;

  constructor(private readonly host: ReplicationHost) {}

  /** A new term or role: nothing is owed to anyone. */
  reset(): void {
    this.uncommittedBytes = 0;
    this.broadcastPending = false;
  }

  get broadcastDue(): boolean {
    return this.broadcastPending;
  }

  /** Followers need appends at the next Ready (the configuration changed, or entries were appended). */
  markBroadcast(): void {
    this.broadcastPending = true;
  }

  /** Sends the pending appends to every follower when `leading` (new entries, or a commit index they lack). */
  flushBroadcast(leading: boolean): void {
    if (!this.broadcastPending) return;
    this.broadcastPending = false;
    if (!leading) return;
    for (const id of this.host.members()) if (id !== this.host.id) this.fill(id);
  }

  /** Appends entries at the end of the leader's log in the current term. False if over the uncommitted bound. */
  append(ents: Entry[]): boolean {
    const { log, config } = this.host;
    let bytes = 0;
    for (const e of ents) bytes += entryBytes(e);
    if (this.uncommittedBytes > 0 && this.uncommittedBytes + bytes > config.maxUncommittedBytes) return false;
    let li = log.lastIndex();
    for (const e of ents) {
      e.term = this.host.term();
      e.index = ++li;
    }
    log.append(ents);
    this.uncommittedBytes += bytes;
    this.broadcastPending = true;
    // A single-voter configuration commits once its own write is durable (see Raft.persisted()).
    return true;
  }

  /** Commits what a quorum of the configuration holds, if it is of this term (Figure 8). */
  maybeCommit(): boolean {
    const log = this.host.log;
    const ci = this.host.tracker.committed(this.host.conf());
    const before = log.committed;
    if (!log.maybeCommit(ci, this.host.term())) return false;
    this.reduceUncommitted(before, log.committed);
    return true;
  }

  private reduceUncommitted(from: number, to: number): void {
    if (this.uncommittedBytes === 0) return;
    const log = this.host.log;
    let freed = 0;
    const lo = Math.max(from + 1, log.firstIndex());
    if (lo <= to) for (const e of log.entries(lo, to + 1, Number.MAX_SAFE_INTEGER)) freed += entryBytes(e);
    this.uncommittedBytes = Math.max(0, this.uncommittedBytes - freed);
  }

  // ---------------------------------------------------------------- sending

  /** Fills the window of `to`: appends until its flow control pauses it or it has everything. */
  fill(to: NodeId): void {
    while (this.maybeSendAppend(to, false)) {
      /* send until paused or caught up */
    }
  }

  /**
   * Sends the next append to `to` if its flow control allows. Without `sendIfEmpty`, only an append that
   * carries entries goes out: a follower learns a new commit index with the next entries or heartbeat.
   * Returns true if a message was sent.
   */
  maybeSendAppend(to: NodeId, sendIfEmpty: boolean): boolean {
    const { log, config } = this.host;
    const pr = this.host.tracker.progress.get(to);
    if (!pr || to === this.host.id || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = log.term(prevIndex);
    if (prevTerm === undefined || pr.next < log.firstIndex()) return this.sendSnapshot(to, pr);
    const lastIndex = log.lastIndex();
    let ents: Entry[] = [];
    if (pr.next <= lastIndex) {
      const hi = Math.min(lastIndex + 1, pr.next + config.maxEntriesPerAppend);
      ents = log.entries(pr.next, hi, config.maxAppendBodyBytes);
    }
    if (ents.length === 0 && !sendIfEmpty) return false;
    this.sendAppend(to, prevIndex, prevTerm, ents);
    if (ents.length > 0) {
      let bytes = 0;
      for (const e of ents) bytes += entryBytes(e);
      pr.sentEntries(ents[ents.length - 1]!.index, bytes);
    } else if (pr.state === ProgressState.Probe) {
      pr.probeSent = true;
    }
    return true;
  }

  private sendAppend(to: NodeId, prevIndex: number, prevTerm: number, entries: Entry[]): void {
    const { id: from, log } = this.host;
    this.host.send(
      makeMessage({
        type: MessageType.App,
        to,
        from,
        index: prevIndex,
        logTerm: prevTerm,
        entries,
        commit: log.committed,
      }),
    );
  }

  /** An append with no entries at the end of the window: the follower answers where it really is. */
  private sendEmptyAppend(to: NodeId, pr: Progress): void {
    const log = this.host.log;
    const prevIndex = pr.next - 1;
    const prevTerm = log.term(prevIndex);
    if (prevTerm === undefined || prevIndex < log.firstIndex() - 1) {
      // The window's end is compacted away: rediscover the follower (which leads to a snapshot).
      pr.becomeProbe();
      this.maybeSendAppend(to, true);
      return;
    }
    this.sendAppend(to, prevIndex, prevTerm, []);
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    const meta = this.host.log.storage.snapshotMeta();
    if (meta.index === 0) {
      this.host.logger.warn({ to }, 'follower needs compacted entries but no snapshot exists');
      return false;
    }
    pr.becomeSnapshot(meta.index);
    this.host.logger.info({ to, index: meta.index, term: meta.term }, 'sending snapshot');
    this.sendSnap(to, meta);
    return true;
  }

  private resendSnapshot(to: NodeId, pr: Progress): void {
    const meta = this.host.log.storage.snapshotMeta();
    if (meta.index < pr.pendingSnapshot) return;
    pr.pendingSnapshot = meta.index;
    this.sendSnap(to, meta);
  }

  private sendSnap(to: NodeId, meta: SnapshotMeta): void {
    const snapshot = { index: meta.index, term: meta.term, conf: cloneConf(meta.conf) };
    this.host.send(makeMessage({ type: MessageType.Snap, to, from: this.host.id, snapshot }));
  }

  /** A heartbeat to every follower, carrying `context` (a ReadIndex round) when given. */
  heartbeat(context: Uint8Array | undefined): void {
    const { id: from, log, tracker } = this.host;
    for (const to of this.host.members()) {
      if (to === from) continue;
      // Never tell a follower to commit past what it is known to hold.
      const commit = Math.min(tracker.progress.get(to)!.match, log.committed);
      this.host.send(
        makeMessage({ type: MessageType.Heartbeat, to, from, commit, context: context ?? new Uint8Array(0) }),
      );
    }
  }

  /** A tick: followers silent in Snapshot state are asked again, then probed after the timeout. */
  tickSnapshots(): void {
    const { id: self, config, logger } = this.host;
    for (const [id, pr] of this.host.tracker.progress) {
      if (id === self || pr.state !== ProgressState.Snapshot) continue;
      if (++pr.snapshotElapsedTicks >= config.snapshotTimeoutTicks) {
        logger.info({ to: id }, 'snapshot install unanswered: probing again');
        pr.becomeProbe();
      } else if (pr.snapshotElapsedTicks % config.electionTicks === 0) {
        // The follower may have restarted and lost its fetch. Asking again costs nothing: a follower still
        // fetching ignores the request, one that restarted starts over at once rather than at the timeout.
        this.resendSnapshot(id, pr);
      }
    }
  }

  // ---------------------------------------------------------------- answers

  /** An append answered by `m.from`. Returns true when it moved the follower's match (and the window refilled). */
  onAppendResponse(m: Message, pr: Progress): boolean {
    pr.recentActive = true;
    if (m.reject) {
      this.onAppendRejected(m, pr);
      return false;
    }
    const wasPaused = pr.isPaused();
    if (!pr.maybeUpdate(m.index)) {
      if (wasPaused && !pr.isPaused()) this.maybeSendAppend(m.from, false);
      return false;
    }
    switch (pr.state) {
      case ProgressState.Probe:
        pr.becomeReplicate();
        break;
      case ProgressState.Snapshot:
        if (pr.match >= pr.pendingSnapshot) {
          pr.becomeProbe();
          pr.becomeReplicate();
        }
        break;
      case ProgressState.Replicate:
        pr.inflights.freeLE(m.index);
        break;
    }
    // A new commit index is not broadcast on its own: it rides on the next append or heartbeat (within
    // a tick). An exchange per follower per commit would double the messages of every write.
    this.maybeCommit();
    // Keep the pipeline full for this follower.
    this.fill(m.from);
    return true;
  }

  private onAppendRejected(m: Message, pr: Progress): void {
    // The follower's hint: it may match at most at rejectHint, whose term it has as logTerm. Our own
    // last entry at or below that hint with a term <= logTerm is where probing resumes.
    let nextProbe = m.rejectHint;
    if (m.logTerm > 0) nextProbe = this.host.log.findConflictByTerm(m.rejectHint, m.logTerm).index;
    if (pr.state !== ProgressState.Snapshot && m.index === pr.next - 1 && m.rejectHint < pr.match) {
      // A follower's hint never falls below what it acknowledged unless its disk lost durable entries (a
      // fault outside the model: a data directory restored from an older copy). Re-replicate from where it
      // really is rather than probing (or, replicating, ignoring its answer as stale) forever.
      this.host.logger.warn(
        { from: m.from, match: pr.match, hint: m.rejectHint },
        'follower lost entries it had acknowledged: re-replicating',
      );
      // (Probing resumes from the entry it rejected: becomeProbe before match is forgotten.)
      if (pr.state === ProgressState.Replicate) pr.becomeProbe();
      pr.match = 0;
    }
    if (pr.maybeDecrTo(m.index, nextProbe)) {
      this.host.logger.debug({ from: m.from, rejected: m.index, next: pr.next }, 'append rejected: backing up');
      if (pr.state === ProgressState.Replicate) pr.becomeProbe();
      this.maybeSendAppend(m.from, true);
    }
  }

  /** A heartbeat answered by `from`. */
  onHeartbeatResponse(from: NodeId, pr: Progress, unverified: boolean): void {
    pr.recentActive = true;
    pr.probeSent = false;
    if (unverified && pr.state === ProgressState.Replicate) {
      // The follower could not take the commit index: nothing it holds is vouched for in this term (it
      // restarted, perhaps from an older copy). An append at the window's end checks where it really is.
      this.sendEmptyAppend(from, pr);
    } else if (pr.state === ProgressState.Replicate && pr.inflights.full()) {
      // Every append in the window may have been lost: an empty append at the window's end makes the
      // follower report where it really is (accept frees the window, reject falls back to probing).
      this.sendEmptyAppend(from, pr);
    } else if (pr.match < this.host.log.lastIndex() || pr.state === ProgressState.Probe) {
      this.maybeSendAppend(from, true);
    }
  }

  /** A follower reports how its snapshot install went. */
  onSnapshotStatus(m: Message, pr: Progress): void {
    if (pr.state !== ProgressState.Snapshot) return;
    pr.recentActive = true;
    if (m.reject) {
      this.host.logger.info({ from: m.from }, 'follower failed to install snapshot: will retry');
      pr.pendingSnapshot = 0;
      pr.becomeProbe();
    } else {
      pr.maybeUpdate(m.index);
      pr.becomeProbe();
      this.maybeSendAppend(m.from, true);
    }
  }

  /** A transport failure to `id`: a pipelining follower goes back to probing. */
  unreachable(id: NodeId): void {
    const pr = this.host.tracker.progress.get(id);
    if (pr?.state === ProgressState.Replicate) pr.becomeProbe();
  }
}
