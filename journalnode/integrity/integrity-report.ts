// The integrity report a node gives of itself (src/integrity.ts declares it): the digest of its applied state
// now and at the checkpoint indexes it recorded, the term of its log at those indexes, the size and CRC of
// its newest finalized segments as written, and the damage it has not repaired yet.

import { MAX_REPORT_SEGMENTS } from '../../src/integrity.js';
import type { DamageJson, IntegrityReportJson, SegmentHashJson } from '../../src/integrity.js';
import type { LogStorage } from '../../src/raft/log.js';
import type { JournalStateMachine } from '../state/journal-state-machine.js';
import type { DamageRecord, DamageRegistry } from './damage-registry.js';

export function damageJson(r: DamageRecord): DamageJson {
  return {
    id: r.id,
    kind: r.kind,
    file: r.file,
    range: r.range,
    offsetBytes: r.offsetBytes,
    reason: r.reason,
    foundBy: r.foundBy,
    foundAtMs: r.foundAtMs,
    state: r.state,
    note: r.note,
    changedAtMs: r.changedAtMs,
  };
}

export function buildIntegrityReport(p: {
  selfId: string;
  stateMachine: JournalStateMachine;
  log: Pick<LogStorage, 'term'>;
  appliedIndex: number;
  registry: DamageRegistry;
}): IntegrityReportJson {
  const segments: SegmentHashJson[] = [];
  for (const j of p.stateMachine.allJournals())
    for (const s of j.segments)
      if (!s.inProgress)
        segments.push({
          jid: j.jid,
          file: s.name,
          firstTxId: s.firstTxId,
          lastTxId: s.lastTxId,
          sizeBytes: s.sizeBytes,
          crc32: s.crc32 >>> 0,
        });
  // The newest ones, when there are too many to carry: the digests cover the rest.
  const kept = segments.length > MAX_REPORT_SEGMENTS ? segments.slice(-MAX_REPORT_SEGMENTS) : segments;
  const checkpoints = p.stateMachine.digestCheckpoints().filter((c) => c.index <= p.appliedIndex);
  const logTerms: { index: number; term: number }[] = [];
  // The log's terms where the replicas compare their states: each checkpoint, and the applied index (the tail).
  for (const index of [...checkpoints.map((c) => c.index), p.appliedIndex]) {
    const term = p.log.term(index);
    if (index > 0 && term !== undefined && !logTerms.some((t) => t.index === index)) logTerms.push({ index, term });
  }
  return {
    node: p.selfId,
    appliedIndex: p.appliedIndex,
    digest: p.stateMachine.digest(),
    checkpoints,
    logTerms,
    segments: kept,
    segmentsLeftOut: segments.length - kept.length,
    damage: p.registry.openRecords().map(damageJson),
  };
}
