// Replicas proving they agree: the integrity report a node gives of itself (the digest of its applied state at
// checkpoint indexes, the terms of its log there, the size and CRC of its finalized segments, the damage its
// scrubber or its reads found), the one check of a report that arrived over the network, and the one
// comparison of the reports of every replica, which names each node that differs, the file and the range. The
// leader runs it (an alarm in /status, /metrics, the log and the dashboard), and so does `qjm check`.

/** Finalized segments one report carries at most (the newest): older ones are compared through the digests. */
export const MAX_REPORT_SEGMENTS = 4096;
/** Damage records, checkpoints and log terms one report carries at most. */
const MAX_REPORT_DAMAGE = 256;
const MAX_REPORT_CHECKPOINTS = 64;
const MAX_STRING = 4096;

export type DamageKind = 'log' | 'segment' | 'snapshot';

/** A damage record as reports and /status show it. */
export interface DamageJson {
  id: number;
  kind: DamageKind;
  file: string;
  range: string;
  offsetBytes: number | null;
  reason: string;
  foundBy: 'scrub' | 'read' | 'start-up';
  foundAtMs: number;
  state: 'damaged' | 'repairing' | 'repaired' | 'unrepairable';
  note: string | null;
  changedAtMs: number;
}

export interface SegmentHashJson {
  jid: string;
  file: string;
  firstTxId: number;
  lastTxId: number;
  sizeBytes: number;
  /** CRC32 of the file as it was written (the same one snapshot manifests carry). */
  crc32: number;
}

export interface IndexDigestJson {
  index: number;
  digest: string;
}

export interface IntegrityReportJson {
  node: string;
  appliedIndex: number;
  /** The digest of the applied state at appliedIndex. */
  digest: string;
  /** Digests recorded at checkpoint indexes (every 1024 entries), oldest first. */
  checkpoints: IndexDigestJson[];
  /** The term of this node's log at the checkpoint indexes it still holds. */
  logTerms: { index: number; term: number }[];
  /** Finalized segments, the newest MAX_REPORT_SEGMENTS. */
  segments: SegmentHashJson[];
  segmentsLeftOut: number;
  /** Damage not repaired yet. */
  damage: DamageJson[];
}

/** One scrub pass, as /status shows it. */
export interface ScrubPassJson {
  startedMs: number;
  endedMs: number | null;
  items: number;
  itemsDone: number;
  bytes: number;
  findings: number;
}

/** A difference the leader keeps raised since it first saw it. */
export interface IntegrityAlarmJson extends IntegrityDifference {
  sinceMs: number;
}

/** The `integrity` field of /status. */
export interface IntegrityStatusJson {
  scrub: {
    enabled: boolean;
    bytesPerS: number;
    passes: number;
    bytes: number;
    current: ScrubPassJson | null;
    last: ScrubPassJson | null;
  };
  /** Damage found on this node: open records, then the most recent repaired ones. */
  damage: DamageJson[];
  /** The leader's comparison of the replicas (empty on other nodes). */
  check: {
    checkedAtMs: number;
    compared: string[];
    unreachable: { node: string; reason: string }[];
    alarms: IntegrityAlarmJson[];
  };
}

export type DifferenceKind = 'damage' | 'segment' | 'digest' | 'log' | 'unreachable';

/** One way a replica differs from the others (or from what it wrote). */
export interface IntegrityDifference {
  kind: DifferenceKind;
  node: string;
  /** The file concerned, when there is one. */
  file: string | null;
  /** What it covers: a txid range of a journal, a Raft index, a snapshot. */
  range: string;
  detail: string;
}

// ---------------------------------------------------------------- checking a report that arrived

function fail(what: string): never {
  throw new Error(`not an integrity report: ${what}`);
}

const isCount = (n: unknown): n is number => typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
const isText = (s: unknown): s is string => typeof s === 'string' && s.length <= MAX_STRING;

function checkArray<T>(v: unknown, max: number, what: string, each: (x: Record<string, unknown>) => T): T[] {
  if (!Array.isArray(v)) fail(`${what} is not a list`);
  if (v.length > max) fail(`${what} has more than ${max} elements`);
  return v.map((x) => {
    if (typeof x !== 'object' || x === null) fail(`an element of ${what} is not an object`);
    return each(x as Record<string, unknown>);
  });
}

const DAMAGE_KINDS: readonly string[] = ['log', 'segment', 'snapshot'];
const FOUND_BY: readonly string[] = ['scrub', 'read', 'start-up'];
const DAMAGE_STATES: readonly string[] = ['damaged', 'repairing', 'repaired', 'unrepairable'];

function checkDamage(d: Record<string, unknown>): DamageJson {
  if (
    !isCount(d.id) ||
    !DAMAGE_KINDS.includes(d.kind as string) ||
    !isText(d.file) ||
    !isText(d.range) ||
    !(d.offsetBytes === null || isCount(d.offsetBytes)) ||
    !isText(d.reason) ||
    !FOUND_BY.includes(d.foundBy as string) ||
    !isCount(d.foundAtMs) ||
    !DAMAGE_STATES.includes(d.state as string) ||
    !(d.note === null || isText(d.note)) ||
    !isCount(d.changedAtMs)
  )
    fail('a damage record is malformed');
  return d as unknown as DamageJson;
}

/**
 * A report parsed from JSON, checked field by field (a peer's answer is input like any other): every number a
 * safe count, every string bounded, every list within its bound. Throws an Error naming what is wrong.
 */
export function checkIntegrityReport(body: unknown): IntegrityReportJson {
  if (typeof body !== 'object' || body === null) fail('not an object');
  const r = body as Record<string, unknown>;
  if (!isText(r.node) || r.node === '') fail('node');
  if (!isCount(r.appliedIndex) || !isText(r.digest) || !isCount(r.segmentsLeftOut)) fail('index or digest');
  const checkpoints = checkArray(r.checkpoints, MAX_REPORT_CHECKPOINTS, 'checkpoints', (c) => {
    if (!isCount(c.index) || !isText(c.digest)) fail('a checkpoint is malformed');
    return { index: c.index, digest: c.digest };
  });
  const logTerms = checkArray(r.logTerms, MAX_REPORT_CHECKPOINTS, 'logTerms', (c) => {
    if (!isCount(c.index) || !isCount(c.term)) fail('a log term is malformed');
    return { index: c.index, term: c.term };
  });
  const segments = checkArray(r.segments, MAX_REPORT_SEGMENTS, 'segments', (s) => {
    if (
      !isText(s.jid) ||
      !isText(s.file) ||
      !isCount(s.firstTxId) ||
      !isCount(s.lastTxId) ||
      !isCount(s.sizeBytes) ||
      !isCount(s.crc32) ||
      s.crc32 > 0xffffffff
    )
      fail('a segment is malformed');
    return {
      jid: s.jid,
      file: s.file,
      firstTxId: s.firstTxId,
      lastTxId: s.lastTxId,
      sizeBytes: s.sizeBytes,
      crc32: s.crc32,
    };
  });
  const damage = checkArray(r.damage, MAX_REPORT_DAMAGE, 'damage', checkDamage);
  return {
    node: r.node,
    appliedIndex: r.appliedIndex,
    digest: r.digest,
    checkpoints,
    logTerms,
    segments,
    segmentsLeftOut: r.segmentsLeftOut,
    damage,
  };
}

// ---------------------------------------------------------------- comparing the replicas

/**
 * The value most holders report, when more than half of them do; null when none has a majority (then every
 * holder is named).
 */
function majorityOf<V>(values: Map<string, V>, key: (v: V) => string): string | null {
  const counts = new Map<string, number>();
  for (const v of values.values()) counts.set(key(v), (counts.get(key(v)) ?? 0) + 1);
  for (const [k, n] of counts) if (n * 2 > values.size) return k;
  return null;
}

/**
 * Compares the reports of every replica. Each node's open damage is a difference of its own; where nodes share
 * a finalized segment, a checkpoint index, or a log term at a checkpoint, the nodes that differ from the
 * majority of the holders are named (every holder, when no value has a majority). `unreachable` lists the
 * nodes that did not answer, each with why.
 */
export function compareReports(
  reports: readonly IntegrityReportJson[],
  unreachable: readonly { node: string; reason: string }[] = [],
): IntegrityDifference[] {
  const out: IntegrityDifference[] = [];
  for (const u of unreachable)
    out.push({ kind: 'unreachable', node: u.node, file: null, range: '', detail: `did not answer: ${u.reason}` });
  for (const r of reports)
    for (const d of r.damage)
      out.push({
        kind: 'damage',
        node: r.node,
        file: d.file,
        range: d.range,
        detail: `${d.kind} damaged (${d.reason}${d.offsetBytes === null ? '' : ` at byte ${d.offsetBytes}`}), ${d.state}${d.note ? `: ${d.note}` : ''}`,
      });
  compareSegments(reports, out);
  compareDigests(reports, out);
  compareLogTerms(reports, out);
  return out;
}

function compareSegments(reports: readonly IntegrityReportJson[], out: IntegrityDifference[]): void {
  const byFile = new Map<string, Map<string, SegmentHashJson>>();
  for (const r of reports)
    for (const s of r.segments) {
      const k = `${s.jid}/${s.file}`;
      if (!byFile.has(k)) byFile.set(k, new Map());
      byFile.get(k)!.set(r.node, s);
    }
  const show = (s: SegmentHashJson) => `${s.sizeBytes} bytes, CRC ${(s.crc32 >>> 0).toString(16).padStart(8, '0')}`;
  for (const holders of byFile.values()) {
    if (holders.size < 2) continue;
    const key = (s: SegmentHashJson) => `${s.sizeBytes}:${s.crc32 >>> 0}`;
    const major = majorityOf(holders, key);
    const majorValue = major === null ? null : [...holders.values()].find((s) => key(s) === major)!;
    for (const [node, s] of holders) {
      if (major !== null && key(s) === major) continue;
      out.push({
        kind: 'segment',
        node,
        file: s.file,
        range: `journal ${s.jid} txids ${s.firstTxId}-${s.lastTxId}`,
        detail:
          majorValue === null
            ? `${show(s)}: no majority of the ${holders.size} replicas holding it agree`
            : `${show(s)}, the majority has ${show(majorValue)}`,
      });
    }
  }
}

function compareDigests(reports: readonly IntegrityReportJson[], out: IntegrityDifference[]): void {
  const atIndex = new Map<number, Map<string, string>>();
  const note = (index: number, node: string, digest: string) => {
    if (!atIndex.has(index)) atIndex.set(index, new Map());
    atIndex.get(index)!.set(node, digest);
  };
  for (const r of reports) {
    for (const c of r.checkpoints) note(c.index, r.node, c.digest);
    note(r.appliedIndex, r.node, r.digest);
  }
  const named = new Set<string>();
  // Newest index first: a node is named once, at the newest index where it differs.
  for (const index of [...atIndex.keys()].sort((a, b) => b - a)) {
    const holders = atIndex.get(index)!;
    if (holders.size < 2) continue;
    const major = majorityOf(holders, (d) => d);
    for (const [node, digest] of holders) {
      if ((major !== null && digest === major) || named.has(node)) continue;
      named.add(node);
      out.push({
        kind: 'digest',
        node,
        file: null,
        range: `Raft index ${index}`,
        detail:
          major === null
            ? `applied-state digest ${digest}: no majority of the ${holders.size} replicas at this index agree`
            : `applied-state digest ${digest}, the majority has ${major}`,
      });
    }
  }
}

function compareLogTerms(reports: readonly IntegrityReportJson[], out: IntegrityDifference[]): void {
  const atIndex = new Map<number, Map<string, number>>();
  for (const r of reports)
    for (const t of r.logTerms) {
      if (!atIndex.has(t.index)) atIndex.set(t.index, new Map());
      atIndex.get(t.index)!.set(r.node, t.term);
    }
  const named = new Set<string>();
  for (const index of [...atIndex.keys()].sort((a, b) => b - a)) {
    const holders = atIndex.get(index)!;
    if (holders.size < 2) continue;
    const major = majorityOf(holders, (t) => String(t));
    for (const [node, term] of holders) {
      if ((major !== null && String(term) === major) || named.has(node)) continue;
      named.add(node);
      out.push({
        kind: 'log',
        node,
        file: null,
        range: `Raft index ${index}`,
        detail:
          major === null
            ? `log entry of term ${term}: no majority of the ${holders.size} replicas agree on this applied entry`
            : `log entry of term ${term} where the majority has term ${major} (an applied entry)`,
      });
    }
  }
}
