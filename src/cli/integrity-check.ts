// `qjm check [--repair]`, and what it sees: every node it can reach (those given, and the members they name), each one's integrity
// report after it read and checked every file (GET /integrity?verify=1: applied-state digests, the log's terms
// where they are compared, finalized segments' sizes and CRCs, the damage it holds or just found), compared
// with the comparison the leader runs (src/integrity.ts). Every replica
// agrees — and every member answered — or each difference is one line naming the node, the file and the range.

import type { AdminClient } from '../../libqjm/index.js';
import type { CommandSpec, FlagValues } from '../command-line.js';
import { compareReports } from '../integrity.js';
import type { IntegrityDifference, IntegrityReportJson } from '../integrity.js';
import { escapeControls } from '../terminal-text.js';
import { waitFor } from '../wait-for.js';
import { discoverNodes } from './cluster-check.js';
import { adminClient, CONNECT, JSON_OUT, timeoutMsOf } from './connect.js';
import type { CliIo } from './connect.js';

export interface ReplicaCheck {
  /** Each node asked: its id (when known), where, its applied index and digest, or why it did not answer. */
  nodes: { id: string; endpoint: string; appliedIndex: number | null; digest: string | null; error: string | null }[];
  differences: IntegrityDifference[];
  /** Every member answered and nothing differs. */
  agree: boolean;
}

/** How long a node may take to read and check every file for `qjm check`, without --timeout. */
export const VERIFY_TIMEOUT_MS = 120_000;

/**
 * Reaches every node, gathers their integrity reports — each node reading and checking every file first,
 * unless `verify` is false (then as of their last scrub pass) — and compares them.
 */
export async function checkReplicas(
  admin: Pick<AdminClient, 'statusOf' | 'integrityOf' | 'peers'>,
  timeoutMs?: number,
  verify = true,
): Promise<ReplicaCheck> {
  const found = await discoverNodes(admin, admin.peers, timeoutMs);
  const members = found.filter((r) => r.status !== null && r.status.state !== 'uninitialized');
  const got = await admin.integrityOf(
    members.map((r) => r.endpoint),
    timeoutMs ?? VERIFY_TIMEOUT_MS,
    verify,
  );
  const reports: IntegrityReportJson[] = [];
  const unreachable: { node: string; reason: string }[] = [];
  const nodes: ReplicaCheck['nodes'] = [];
  for (const r of found) {
    const id = r.status?.id ?? r.endpoint;
    const g = got.find((x) => x.endpoint === r.endpoint);
    const error = r.status === null ? r.error : (g?.error ?? (g ? null : `${r.status.state}: not compared`));
    if (g?.report && g.report.node !== id) {
      unreachable.push({ node: id, reason: `answered as ${g.report.node}` });
      nodes.push({ id, endpoint: r.endpoint, appliedIndex: null, digest: null, error: `answered as ${g.report.node}` });
      continue;
    }
    if (g?.report) reports.push(g.report);
    else unreachable.push({ node: id, reason: error ?? 'no report' });
    nodes.push({
      id,
      endpoint: r.endpoint,
      appliedIndex: g?.report?.appliedIndex ?? null,
      digest: g?.report?.digest ?? null,
      error: g?.report ? null : (error ?? 'no report'),
    });
  }
  const differences = compareReports(reports, unreachable);
  return { nodes, differences, agree: differences.length === 0 && reports.length > 0 };
}

/** The check for a person: a line per node, then a line per difference (or that they agree). */
export function checkLines(c: ReplicaCheck): string[] {
  const lines = c.nodes.map((n) => {
    const diffs = c.differences.filter((d) => d.node === n.id).length;
    const state = n.error
      ? `did not answer: ${escapeControls(n.error)}`
      : diffs > 0
        ? `${diffs} difference${diffs > 1 ? 's' : ''}`
        : 'ok';
    const at = n.appliedIndex === null ? '' : ` applied ${n.appliedIndex} digest ${n.digest}`;
    return `${escapeControls(n.id)} (${escapeControls(n.endpoint)})${at}: ${state}`;
  });
  for (const d of c.differences.filter((x) => x.kind !== 'unreachable'))
    lines.push(
      `  ${escapeControls(d.node)} ${d.kind}${d.file ? ` ${escapeControls(d.file)}` : ''}${d.range ? ` (${escapeControls(d.range)})` : ''}: ${escapeControls(d.detail)}`,
    );
  lines.push(
    c.agree
      ? `every replica agrees (${c.nodes.length} node${c.nodes.length > 1 ? 's' : ''})`
      : `replicas differ or did not answer: ${c.differences.length} difference${c.differences.length === 1 ? '' : 's'}`,
  );
  return lines;
}

export const CHECK = {
  name: 'qjm check',
  summary:
    'Compare every replica (applied-state digests, log terms, finalized segments, damage); exit 0 only when all agree.',
  flags: {
    ...CONNECT,
    repair: {
      type: 'boolean',
      description:
        'start a scrub pass and every pending repair on every node now, then wait (up to --timeout, default 60 s) until they agree',
    },
    json: JSON_OUT,
  },
} as const satisfies CommandSpec;

/** How long `qjm check --repair` waits for the replicas to agree, without --timeout. */
const REPAIR_WAIT_MS = 60_000;

export async function cmdCheck(f: FlagValues<typeof CHECK>, io: CliIo): Promise<number> {
  const admin = adminClient(f, io);
  try {
    const timeoutMs = timeoutMsOf(f);
    let c = await checkReplicas(admin, timeoutMs);
    if (f.repair && !c.agree) {
      for (const n of c.nodes.filter((x) => x.error === null)) {
        try {
          io.err(`qjm check: ${escapeControls(n.id)}: ${escapeControls(await admin.repair(n.endpoint))}`);
        } catch (e) {
          io.err(`qjm check: ${escapeControls(n.id)}: repair not started: ${escapeControls((e as Error).message)}`);
        }
      }
      await waitFor(
        async () => {
          c = await checkReplicas(admin, timeoutMs);
          return c.agree;
        },
        { timeoutMs: timeoutMs ?? REPAIR_WAIT_MS, intervalMs: 1000, what: 'every replica agrees' },
      ).catch(() => {});
    }
    if (f.json) io.out(JSON.stringify(c, null, 2));
    else for (const l of checkLines(c)) io.out(l);
    return c.agree ? 0 : 1;
  } finally {
    await admin.close();
  }
}
