// The leader's comparison of the replicas: every intervalMs it gathers every member's integrity report (its
// own in-process, the others' over the peer link), compares them (src/integrity.ts) and keeps the alarms: a
// node that differs from the majority or holds damage, named with the file and the range. An alarm is raised
// with a warning in the log and cleared with a line that says why; a node that stops leading clears its
// alarms saying so (the new leader compares again). Nodes that do not answer are not alarms of their own:
// /status and the dashboard show them as unreachable.

import type { IntegrityDifference, IntegrityReportJson } from '../../src/integrity.js';
import { compareReports } from '../../src/integrity.js';
import type { Logger } from '../../src/logger.js';
import type { NodeId } from '../../src/raft/types.js';
import type { ScrubClock } from './scrubber.js';

/** Alarms kept at most: far above what a handful of replicas can differ in at once. */
const MAX_ALARMS = 256;

export interface IntegrityAlarm extends IntegrityDifference {
  sinceMs: number;
}

export interface IntegrityMonitorOptions {
  selfId: NodeId;
  isLeader(): boolean;
  members(): NodeId[];
  localReport(): IntegrityReportJson;
  fetchReport(peer: NodeId, cb: (err: Error | null, report?: IntegrityReportJson) => void): void;
  intervalMs: number;
  clock: ScrubClock;
  logger: Logger;
  onRaised?(a: IntegrityAlarm): void;
  onCleared?(a: IntegrityAlarm): void;
}

export interface IntegrityCheckJson {
  /** When the leader last compared the replicas (0: never, or not the leader). */
  checkedAtMs: number;
  /** Nodes compared, and those that did not answer. */
  compared: NodeId[];
  unreachable: { node: NodeId; reason: string }[];
  alarms: IntegrityAlarm[];
}

const keyOf = (d: IntegrityDifference) => `${d.kind}|${d.node}|${d.file ?? ''}|${d.range}`;

export class IntegrityMonitor {
  private readonly alarms = new Map<string, IntegrityAlarm>();
  private checkedAtMs = 0;
  private compared: NodeId[] = [];
  private unreachable: { node: NodeId; reason: string }[] = [];
  private cancel: (() => void) | null = null;
  private checking = false;
  private round = 0;

  constructor(private readonly o: IntegrityMonitorOptions) {}

  start(): void {
    const tick = () => {
      this.cancel = this.o.clock.schedule(this.o.intervalMs, tick);
      this.checkNow();
    };
    this.cancel = this.o.clock.schedule(this.o.intervalMs, tick);
  }

  stop(): void {
    this.cancel?.();
    this.cancel = null;
  }

  status(): IntegrityCheckJson {
    return {
      checkedAtMs: this.checkedAtMs,
      compared: [...this.compared],
      unreachable: [...this.unreachable],
      alarms: [...this.alarms.values()].map((a) => ({ ...a })),
    };
  }

  /** Compares the replicas now (the leader only); a round already running is not doubled. */
  checkNow(): void {
    if (!this.o.isLeader()) return this.notLeading();
    if (this.checking) return;
    this.checking = true;
    const round = ++this.round;
    const peers = this.o.members().filter((m) => m !== this.o.selfId);
    const reports: IntegrityReportJson[] = [this.o.localReport()];
    const unreachable: { node: NodeId; reason: string }[] = [];
    let pending = peers.length;
    const finish = () => {
      this.checking = false;
      if (round !== this.round || !this.o.isLeader()) return;
      this.judge(reports, unreachable);
    };
    if (pending === 0) return finish();
    for (const p of peers)
      this.o.fetchReport(p, (err, r) => {
        if (err || !r) unreachable.push({ node: p, reason: err?.message ?? 'no report' });
        else if (r.node !== p) unreachable.push({ node: p, reason: `answered as ${r.node}` });
        else reports.push(r);
        if (--pending === 0) finish();
      });
  }

  private judge(reports: IntegrityReportJson[], unreachable: { node: NodeId; reason: string }[]): void {
    const now = this.o.clock.now();
    this.checkedAtMs = now;
    this.compared = reports.map((r) => r.node);
    this.unreachable = unreachable;
    const found = new Map<string, IntegrityDifference>();
    for (const d of compareReports(reports)) if (found.size < MAX_ALARMS) found.set(keyOf(d), d);
    for (const [k, a] of this.alarms) {
      if (found.has(k)) continue;
      // A node that did not answer this round is not judged: its alarms stay until it answers.
      if (unreachable.some((u) => u.node === a.node)) continue;
      this.alarms.delete(k);
      this.o.logger.info(
        { kind: a.kind, node: a.node, file: a.file, range: a.range, sinceMs: a.sinceMs },
        `integrity alarm cleared: ${a.node} agrees with the majority again${a.kind === 'damage' ? ' (its damage was repaired)' : ''}`,
      );
      this.o.onCleared?.(a);
    }
    for (const [k, d] of found) {
      const known = this.alarms.get(k);
      if (known) {
        known.detail = d.detail;
        continue;
      }
      const a: IntegrityAlarm = { ...d, sinceMs: now };
      this.alarms.set(k, a);
      this.o.logger.warn(
        { kind: a.kind, node: a.node, file: a.file, range: a.range, detail: a.detail },
        `integrity alarm: ${a.node} ${a.kind === 'damage' ? 'holds damage' : 'differs from the majority'} in ${a.file ?? a.range}`,
      );
      this.o.onRaised?.(a);
    }
  }

  private notLeading(): void {
    this.round++;
    this.checking = false;
    this.checkedAtMs = 0;
    if (this.alarms.size === 0) return;
    this.o.logger.info(
      { alarms: this.alarms.size },
      'integrity alarms cleared: this node no longer leads (the leader compares the replicas)',
    );
    for (const a of this.alarms.values()) this.o.onCleared?.(a);
    this.alarms.clear();
  }
}
