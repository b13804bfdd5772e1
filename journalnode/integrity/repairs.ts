// What a node does about damage to its own storage, one repair at a time, while it serves:
//   - a journal segment file (finalized, or the prefix of the in-progress one a snapshot holds): rewritten in
//     place from a copy a majority of the voters agrees on (segment-repair.ts);
//   - a snapshot whose manifest, or a file that is no longer live, is damaged: a newer snapshot takes its
//     place (taken now when there is none), then the damaged one is removed;
//   - a closed Raft log segment: its entries are applied and, once a snapshot covers them, the segment is
//     dropped (compacted away) — a follower that needs them gets the snapshot; entries not applied yet cannot be
//     vouched for while the node runs: the node stops, and its start-up recovery keeps the sound prefix of the
//     log and fetches the rest from its peers (log-recovery.ts).
// A repair that stops short (no majority copy, no peer) is said and tried again later; every outcome is in the
// damage record, the log and the metrics.

import type { NodeId, SnapshotMeta } from '../../src/raft/types.js';
import type { Logger } from '../../src/logger.js';
import type { FileSystem } from '../../src/storage/file-system.js';
import type { DiskLog } from '../../src/storage/raft-log.js';
import type { JournalStateMachine } from '../state/journal-state-machine.js';
import type { SegmentFile } from '../state/segment-file.js';
import type { DamageRecord, DamageRegistry } from './damage-registry.js';
import { repairSegment } from './segment-repair.js';
import type { RepairOutcome, RepairSource, SegmentRepairJob } from './segment-repair.js';
import type { ScrubClock } from './scrubber.js';

/** A repair that stopped short is tried again this long after. */
export const REPAIR_RETRY_MS = 30_000;

export interface RepairsOptions {
  registry: DamageRegistry;
  fileSystem: FileSystem;
  stateMachine: JournalStateMachine;
  diskLog: DiskLog;
  selfId: NodeId;
  voters(): NodeId[];
  members(): NodeId[];
  source: RepairSource;
  maxChunkBytes: number;
  clock: ScrubClock;
  retryMs?: number;
  /** The applied index now. */
  applied(): number;
  /** Takes a snapshot at the applied index now; cb with its index (the replica's takeSnapshot). */
  snapshotNow(cb: (err: Error | null, index?: number) => void): void;
  /** Damage this node cannot repair while it runs: it stops serving (the next start recovers from its peers). */
  stopForRecovery(r: DamageRecord, reason: string): void;
  /** The floor a cut log left (the node votes again once its log holds its leader's log that far), or null. */
  floor(): { index: number; term: number } | null;
  onOutcome?(kind: DamageRecord['kind'], ok: boolean): void;
  logger: Logger;
}

type Plan =
  | { kind: 'segment'; job: SegmentRepairJob }
  | { kind: 'done'; note: string }
  | { kind: 'replace-snapshot'; index: number }
  | { kind: 'compact-log'; last: number }
  | { kind: 'stop'; note: string }
  | { kind: 'wait'; note: string };

export class Repairs {
  private readonly queue: DamageRecord[] = [];
  /** The record being repaired now, if any. */
  private current: DamageRecord | null = null;
  private stopped = false;
  private cancelRetry: (() => void) | null = null;

  constructor(private readonly o: RepairsOptions) {
    o.registry.listen({ onFound: (r) => this.enqueue(r) });
  }

  /** Starts the retries of repairs that stopped short. */
  start(): void {
    const retry = () => {
      this.cancelRetry = this.o.clock.schedule(this.o.retryMs ?? REPAIR_RETRY_MS, retry);
      this.repairNow();
    };
    this.cancelRetry = this.o.clock.schedule(this.o.retryMs ?? REPAIR_RETRY_MS, retry);
    for (const r of this.o.registry.openRecords()) this.enqueue(r);
  }

  stop(): void {
    this.stopped = true;
    this.cancelRetry?.();
  }

  /** Every open record that is not being repaired is tried now (an operator's `qjm check --repair`, a retry). */
  repairNow(): void {
    for (const r of this.o.registry.openRecords()) if (r !== this.current) this.enqueue(r);
  }

  private enqueue(r: DamageRecord): void {
    if (this.stopped || this.queue.includes(r)) return;
    this.queue.push(r);
    this.next();
  }

  private next(): void {
    if (this.current || this.stopped) return;
    const r = this.queue.shift();
    if (!r) return;
    if (r.state === 'repaired' || this.o.registry.find(r.kind, r.file) !== r) return this.next();
    this.current = r;
    const finish = (out: RepairOutcome) => {
      this.current = null;
      this.o.registry.update(r, out.ok ? 'repaired' : 'unrepairable', out.note);
      this.o.onOutcome?.(r.kind, out.ok);
      this.next();
    };
    let plan: Plan;
    try {
      plan = this.plan(r);
    } catch (e) {
      return finish({ ok: false, note: `could not plan the repair: ${(e as Error).message}` });
    }
    this.o.registry.update(r, 'repairing', describePlan(plan));
    if (plan.kind === 'wait') {
      // Nothing to do now: looked at again at the next retry.
      this.current = null;
      return this.next();
    }
    this.run(plan, finish);
  }

  private run(plan: Plan, finish: (out: RepairOutcome) => void): void {
    switch (plan.kind) {
      case 'done':
        return finish({ ok: true, note: plan.note });
      case 'stop':
        this.o.stopForRecovery(this.current!, plan.note);
        return finish({ ok: false, note: plan.note });
      case 'wait':
        return;
      case 'segment':
        return repairSegment(
          {
            fileSystem: this.o.fileSystem,
            selfId: this.o.selfId,
            voters: this.o.voters,
            members: this.o.members,
            source: this.o.source,
            maxChunkBytes: this.o.maxChunkBytes,
          },
          plan.job,
          finish,
        );
      case 'replace-snapshot':
        return this.replaceSnapshot(plan.index, finish);
      case 'compact-log':
        return this.compactLog(plan.last, finish);
    }
  }

  /** What to do about a record, decided from what the node holds now. */
  private plan(r: DamageRecord): Plan {
    if (r.kind === 'segment') {
      const seg = this.liveSegment((s) => s.path === r.file);
      if (!seg) return { kind: 'done', note: 'the segment is no longer held (purged): nothing to repair' };
      return { kind: 'segment', job: this.finalizedJob(seg.jid, seg.seg) };
    }
    if (r.kind === 'snapshot') return this.planSnapshot(r);
    return this.planLog(r);
  }

  private liveSegment(match: (s: SegmentFile) => boolean): { jid: string; seg: SegmentFile } | null {
    for (const j of this.o.stateMachine.allJournals())
      for (const s of j.segments) if (match(s)) return { jid: j.jid, seg: s };
    return null;
  }

  private finalizedJob(jid: string, seg: SegmentFile): SegmentRepairJob {
    const sm = this.o.stateMachine;
    return {
      ref: { jid, file: seg.name, sizeBytes: seg.sizeBytes },
      path: seg.path,
      expected: { sizeBytes: seg.sizeBytes, crc32: seg.crc32 },
      firstTxId: seg.firstTxId,
      lastTxId: seg.lastTxId,
      stillWanted: () => sm.journal(jid)?.segments.includes(seg) === true,
    };
  }

  private planSnapshot(r: DamageRecord): Plan {
    const store = this.o.stateMachine.snapshots;
    const index = store.list().find((i) => r.file === store.dirOf(i) || r.file.startsWith(`${store.dirOf(i)}/`));
    if (index === undefined)
      return { kind: 'done', note: 'the snapshot is no longer kept (pruned): nothing to repair' };
    if (r.file !== store.dirOf(index)) {
      // A file of the snapshot that is a live journal file (a hard link to it): repaired in place, with it.
      const id = this.o.fileSystem.stat(r.file)?.fileId;
      const live = id === undefined ? null : this.liveSegment((s) => this.o.fileSystem.stat(s.path)?.fileId === id);
      const m = live ? store.manifestOf(index) : null;
      const recorded = m?.journals
        .find((j) => j.jid === live?.jid)
        ?.segments.find((s) => s.firstTxId === live?.seg.firstTxId);
      if (live && recorded) {
        if (!live.seg.inProgress && recorded.sizeBytes === live.seg.sizeBytes)
          return { kind: 'segment', job: this.finalizedJob(live.jid, live.seg) };
        const sm = this.o.stateMachine;
        return {
          kind: 'segment',
          job: {
            ref: { jid: live.jid, file: live.seg.name, sizeBytes: recorded.sizeBytes },
            path: live.seg.path,
            expected: { sizeBytes: recorded.sizeBytes, crc32: recorded.crc32 },
            firstTxId: live.seg.firstTxId,
            lastTxId: null,
            stillWanted: () => sm.journal(live.jid)?.segments.includes(live.seg) === true,
          },
        };
      }
    }
    return { kind: 'replace-snapshot', index };
  }

  private planLog(r: DamageRecord): Plan {
    if (r.foundBy === 'start-up') {
      // Start-up recovery already dealt with it (log-damage.ts): a cut log waits for the leader's entries.
      const floor = this.o.floor();
      if (floor)
        return {
          kind: 'wait',
          note: `the log was cut before the damage; the leader sends the rest again; this node does not vote until it holds its leader's log to index ${floor.index}`,
        };
      return {
        kind: 'done',
        note: 'the log holds what it lost again (from the leader, or the snapshot holds it): this node votes',
      };
    }
    const seg = this.o.diskLog.closedSegments().find((s) => s.file === r.file);
    if (!seg) return { kind: 'done', note: 'the log segment is no longer held (compacted): nothing to repair' };
    if (seg.last <= this.o.applied()) return { kind: 'compact-log', last: seg.last };
    return {
      kind: 'stop',
      note: `entries ${seg.first}-${seg.last} are damaged and not all applied here: this node stops serving; at its next start it keeps the sound part of its log and fetches the rest from its peers`,
    };
  }

  /** A newer snapshot than the damaged one (taken now when there is none), then the damaged one removed. */
  private replaceSnapshot(index: number, finish: (out: RepairOutcome) => void): void {
    const store = this.o.stateMachine.snapshots;
    const newer = store.list().filter((i) => i > index && !this.o.registry.find('snapshot', store.dirOf(i)));
    const remove = (note: string) => {
      this.o.fileSystem.removeTreeAsync(store.dirOf(index), (err) =>
        finish(err ? { ok: false, note: `could not remove it: ${err.message}` } : { ok: true, note }),
      );
    };
    if (newer.length > 0) return remove(`removed it: snapshot ${newer[0]} is newer and sound`);
    if (this.o.applied() <= index)
      return finish({ ok: false, note: `a new snapshot is taken once an entry past ${index} is applied` });
    this.o.snapshotNow((err, taken) => {
      if (err || taken === undefined || taken <= index)
        return finish({ ok: false, note: `taking a new snapshot failed: ${err?.message ?? 'none newer'}` });
      remove(`replaced by snapshot ${taken}, taken from the live state, and removed`);
    });
  }

  /** Entries up to `last` are applied: once a snapshot covers them, the log is compacted past them. */
  private compactLog(last: number, finish: (out: RepairOutcome) => void): void {
    const compact = (meta: SnapshotMeta) => {
      try {
        this.o.diskLog.snapshotSaved(meta, last);
      } catch (e) {
        return finish({ ok: false, note: `compaction failed: ${(e as Error).message}` });
      }
      finish({ ok: true, note: `dropped it: its entries (to ${last}) are in snapshot ${meta.index}` });
    };
    const snap = this.o.diskLog.snapshotMeta();
    if (snap.index >= last) return compact(snap);
    this.o.snapshotNow((err) => {
      const now = this.o.diskLog.snapshotMeta();
      if (err || now.index < last)
        return finish({
          ok: false,
          note: `taking a snapshot past ${last} failed: ${err?.message ?? 'not far enough'}`,
        });
      compact(now);
    });
  }
}

function describePlan(p: Plan): string {
  switch (p.kind) {
    case 'segment':
      return `fetching ${p.job.ref.jid}/${p.job.ref.file} (${p.job.expected.sizeBytes} bytes) from a peer`;
    case 'replace-snapshot':
      return `replacing snapshot ${p.index}`;
    case 'compact-log':
      return `compacting the log past ${p.last}`;
    case 'stop':
    case 'done':
    case 'wait':
      return p.note;
  }
}
