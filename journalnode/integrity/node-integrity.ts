// A node's integrity machinery, wired once for the JournalNode and the simulator alike: the damage registry,
// the scrubber over the node's storage, the repairs, the leader's comparison of the replicas, and what the
// node answers its peers (its report, its copy of a file). It reads the replica only through the functions
// it is handed, and reaches the peers only through IntegrityPeers (HTTP between JournalNodes; the simulated
// network in the simulator).

import type { IntegrityReportJson, IntegrityStatusJson } from '../../src/integrity.js';
import type { Logger } from '../../src/logger.js';
import { confMembers } from '../../src/raft/types.js';
import type { NodeId } from '../../src/raft/types.js';
import type { Replica } from '../../src/replica/replica.js';
import type { Settings } from '../../src/settings.js';
import type { FileSystem } from '../../src/storage/file-system.js';
import type { DiskLog } from '../../src/storage/raft-log.js';
import { CorruptLogError } from '../../src/storage/log-recovery.js';
import type { LogDamage } from '../../src/storage/log-recovery.js';
import type { JournalStateMachine } from '../state/journal-state-machine.js';
import { DamageRegistry } from './damage-registry.js';
import type { DamageHooks } from './damage-registry.js';
import { describeFile, readFileChunk } from './file-service.js';
import { buildIntegrityReport, damageJson } from './integrity-report.js';
import { IntegrityMonitor } from './integrity-monitor.js';
import type { IntegrityAlarm } from './integrity-monitor.js';
import { Repairs, REPAIR_RETRY_MS } from './repairs.js';
import { scrubItems } from './scrub-items.js';
import { Scrubber } from './scrubber.js';
import type { ScrubClock, ScrubKind, ScrubPass } from './scrubber.js';
import type { FileRef, PeerFileHash, RepairSource } from './segment-repair.js';

/** Bytes one scrub step reads. */
const SCRUB_CHUNK_BYTES = 128 << 10;

export interface IntegrityTimings {
  scrubBytesPerS: number;
  scrubIntervalMs: number;
  checkIntervalMs: number;
  maxChunkBytes: number;
  /** A repair that stopped short is tried again this long after. */
  repairRetryMs: number;
}

export function integrityTimings(
  s: Pick<Settings, 'scrubBytesPerS' | 'scrubIntervalS' | 'integrityCheckIntervalS' | 'maxSnapshotChunkBytes'>,
): IntegrityTimings {
  return {
    scrubBytesPerS: s.scrubBytesPerS,
    scrubIntervalMs: s.scrubIntervalS * 1000,
    checkIntervalMs: s.integrityCheckIntervalS * 1000,
    maxChunkBytes: s.maxSnapshotChunkBytes,
    repairRetryMs: REPAIR_RETRY_MS,
  };
}

/** The peers as the integrity machinery reaches them: their reports, and their copies of files. */
export interface IntegrityPeers extends RepairSource {
  report(peer: NodeId, cb: (err: Error | null, report?: IntegrityReportJson) => void): void;
}

/** What the integrity machinery reads of the replica, and the two things it asks of it. */
export interface ReplicaView {
  isLeader(): boolean;
  appliedIndex(): number;
  voters(): NodeId[];
  members(): NodeId[];
  /** Takes a snapshot at the applied index now; cb with its index. */
  takeSnapshot(cb: (err: Error | null, index?: number) => void): void;
  /** Stops serving: damage the node cannot repair while it runs (its next start recovers). */
  fail(err: Error): void;
  /** The floor a cut log left (identity.ts), or null. */
  floor(): { index: number; term: number } | null;
}

/** The view of a Replica the integrity machinery reads (the JournalNode's and the simulator's alike). */
export function replicaView<R>(replica: Replica<R>): ReplicaView {
  return {
    isLeader: () => replica.isLeader,
    appliedIndex: () => replica.appliedIndex,
    voters: () => {
      const conf = replica.rawNode.conf();
      return [...new Set([...conf.voters, ...conf.votersOutgoing])];
    },
    members: () => confMembers(replica.rawNode.conf()),
    takeSnapshot: (cb) => replica.takeSnapshot(cb),
    fail: (err) => replica.fail(err),
    floor: () => replica.status().identity.floor,
  };
}

export interface IntegrityHooks extends DamageHooks {
  onScrubBytes?(kind: ScrubKind, bytes: number): void;
  onScrubPass?(p: ScrubPass): void;
  onRepairOutcome?(kind: ScrubKind, ok: boolean): void;
  onAlarmRaised?(a: IntegrityAlarm): void;
  onAlarmCleared?(a: IntegrityAlarm): void;
}

export interface NodeIntegrityOptions {
  selfId: NodeId;
  /** The node's settings as times in ms (the simulator scales them): integrityTimings(settings). */
  timings: IntegrityTimings;
  fileSystem: FileSystem;
  diskLog: DiskLog;
  stateMachine: JournalStateMachine;
  replica: ReplicaView;
  peers: IntegrityPeers;
  clock: ScrubClock;
  logger: Logger;
  hooks?: IntegrityHooks;
}

export class NodeIntegrity {
  readonly registry: DamageRegistry;
  readonly scrubber: Scrubber;
  readonly repairs: Repairs;
  readonly monitor: IntegrityMonitor;

  constructor(private readonly o: NodeIntegrityOptions) {
    const h = o.hooks ?? {};
    this.registry = new DamageRegistry(o.logger, () => o.clock.now());
    this.registry.listen(h);
    this.scrubber = new Scrubber({
      bytesPerS: o.timings.scrubBytesPerS,
      intervalMs: o.timings.scrubIntervalMs,
      chunkBytes: SCRUB_CHUNK_BYTES,
      clock: o.clock,
      items: () => scrubItems({ fileSystem: o.fileSystem, diskLog: o.diskLog, stateMachine: o.stateMachine }),
      onFinding: (f) => this.registry.report(f, 'scrub'),
      ...(h.onScrubBytes ? { onBytes: h.onScrubBytes } : {}),
      ...(h.onScrubPass ? { onPass: h.onScrubPass } : {}),
      // The node's log writes are its foreground I/O: while they go on, the scrubber slows down.
      foregroundWork: () => o.diskLog.stats().writes,
      logger: o.logger,
    });
    this.repairs = new Repairs({
      registry: this.registry,
      fileSystem: o.fileSystem,
      stateMachine: o.stateMachine,
      diskLog: o.diskLog,
      selfId: o.selfId,
      voters: () => o.replica.voters(),
      members: () => o.replica.members(),
      source: o.peers,
      maxChunkBytes: o.timings.maxChunkBytes,
      clock: o.clock,
      retryMs: o.timings.repairRetryMs,
      applied: () => o.replica.appliedIndex(),
      snapshotNow: (cb) => o.replica.takeSnapshot(cb),
      stopForRecovery: (r, reason) =>
        o.replica.fail(new CorruptLogError(r.file, r.offsetBytes ?? 0, `${r.reason}: ${reason}`)),
      floor: () => o.replica.floor(),
      ...(h.onRepairOutcome ? { onOutcome: h.onRepairOutcome } : {}),
      logger: o.logger,
    });
    this.monitor = new IntegrityMonitor({
      selfId: o.selfId,
      isLeader: () => o.replica.isLeader(),
      members: () => o.replica.members(),
      localReport: () => this.report(),
      fetchReport: (peer, cb) => o.peers.report(peer, cb),
      intervalMs: o.timings.checkIntervalMs,
      clock: o.clock,
      logger: o.logger,
      ...(h.onAlarmRaised ? { onRaised: h.onAlarmRaised } : {}),
      ...(h.onAlarmCleared ? { onCleared: h.onAlarmCleared } : {}),
    });
  }

  start(): void {
    this.scrubber.start();
    this.repairs.start();
    this.monitor.start();
  }

  stop(): void {
    this.scrubber.stop();
    this.repairs.stop();
    this.monitor.stop();
  }

  /** An operator's `qjm check --repair`: a scrub pass now, every open damage tried again now. */
  repairNow(): void {
    this.scrubber.scrubNow();
    this.repairs.repairNow();
  }

  /** What start-up recovery found in the Raft log and did about it: reported, and followed until it is whole. */
  startupDamage(found: readonly LogDamage[]): void {
    for (const d of found)
      this.registry.report(
        {
          kind: 'log',
          file: d.file,
          range: `Raft log entries ${d.firstIndex}-${d.claimedLast.index}`,
          offsetBytes: d.offsetBytes,
          reason: `${d.reason} (${d.action === 'cut' ? `cut before entry ${d.firstIndex}` : 'segments the snapshot holds deleted'})`,
        },
        'start-up',
      );
  }

  /** Damage a client's read found in a segment file: recorded, and repaired like a scrub finding. */
  readFoundDamage(file: string, offsetBytes: number, reason: string): void {
    let range = file;
    for (const j of this.o.stateMachine.allJournals())
      for (const s of j.segments) if (s.path === file) range = `journal ${j.jid} txids ${s.firstTxId}-${s.lastTxId}`;
    this.registry.report({ kind: 'segment', file, range, offsetBytes, reason }, 'read');
  }

  /**
   * The report after every file was read and checked now (`qjm check`): its damage is what is open, and what
   * this verification found even when it was repaired meanwhile (it differed when it was checked).
   */
  verifiedReport(done: (report: IntegrityReportJson) => void): void {
    this.scrubber.verifyNow((findings) => {
      const r = this.report();
      const seen = new Set(r.damage.map((d) => `${d.kind}:${d.file}`));
      for (const rec of this.registry.list())
        if (!seen.has(`${rec.kind}:${rec.file}`) && findings.some((f) => f.kind === rec.kind && f.file === rec.file))
          r.damage.push(damageJson(rec));
      done(r);
    });
  }

  report(): IntegrityReportJson {
    return buildIntegrityReport({
      selfId: this.o.selfId,
      stateMachine: this.o.stateMachine,
      log: this.o.diskLog,
      appliedIndex: this.o.replica.appliedIndex(),
      registry: this.registry,
    });
  }

  /** A file's copy here, as a repairing peer asks for it. */
  describeFile(ref: FileRef): PeerFileHash | null {
    return describeFile(this.o.stateMachine, (p) => this.isDamaged(p), ref);
  }

  readFileChunk(ref: FileRef, offsetBytes: number, lengthBytes: number): Buffer {
    return readFileChunk(this.o.stateMachine, (p) => this.isDamaged(p), ref, offsetBytes, lengthBytes);
  }

  private isDamaged(path: string): boolean {
    return this.registry.openRecords().some((r) => r.file === path && r.state !== 'repaired');
  }

  status(): IntegrityStatusJson {
    const s = this.scrubber.status();
    return {
      scrub: { ...s, bytesPerS: this.o.timings.scrubBytesPerS },
      damage: this.registry.list().map(damageJson),
      check: this.monitor.status(),
    };
  }
}
