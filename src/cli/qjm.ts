// qjm: the operator's tool, braft_cli's verbs with dashes plus the journal's own. Each command declares the
// flags it takes (src/command-line.ts refuses any other); `qjm <command> --help` lists them. Exit codes:
// 0 ok, 1 unreachable / quorum unavailable / other failure, 2 usage, 3 not formatted, 4 refused (fenced,
// already formatted, writer active, out of sync), 5 corrupt data (dump).

import { AdminClient, QuorumJournalManager } from '../../libqjm/index.js';
import type { QjmOptions, RetryObserver, SegmentDescriptor, TlsOption } from '../../libqjm/index.js';
import { BENCH_COMMAND, runBenchCommand } from '../bench/bench.js';
import { DEMO_COMMAND } from '../demo/demo-command.js';
import { helpText, parseCommand, usageError, UsageError } from '../command-line.js';
import type { CommandSpec, FlagValues } from '../command-line.js';
import { QjmError } from '../errors.js';
import { formatPeers, parseAddresses, parseClientPeers, parsePeers } from '../peers.js';
import { humanBytes, renderTable } from '../text-table.js';
import { escapeControls, terminalSafe } from '../terminal-text.js';
import { WRITER_ACTIVE_MS } from '../journal-state.js';
import { CertExistsError } from '../security/certs.js';
import { CertificateError } from '../security/cert-files.js';
import { runResetPeers } from './reset-peers.js';
import { confirmDestruction, NotConfirmedError } from './confirm.js';
import { assessImpact } from './check-impact.js';
import type { NodeStatusJson } from '../node-status.js';
import { SETTINGS } from '../settings.js';
import type { Ask } from './confirm.js';
import { DUMP, dumpSegment, renderRecord } from './dump.js';
import { clusterProblems, discoverNodes, referenceLeader } from './cluster-check.js';
import { checkLines, checkReplicas } from './integrity-check.js';
import { waitFor } from '../wait-for.js';
import { newcomerStorage, runReplaceNode } from './replace-node.js';
import type { Peer } from '../peers.js';
import {
  CERT_CREATE_CA,
  CERT_CREATE_CLIENT,
  CERT_CREATE_NODE,
  CERT_LIST,
  cmdCreateCa,
  cmdCreateClient,
  cmdCreateNode,
  cmdList,
} from './cert.js';

export { UsageError } from '../command-line.js';

type Out = (line: string) => void;

export interface CliIo {
  out: Out;
  err: Out;
  /** Asks the operator at a terminal (destructive commands confirm there); absent without one. */
  ask?: Ask;
}

// Flags several commands share, declared once.
const YES = {
  type: 'boolean',
  description: 'confirm a destructive step without being asked (for scripts: there is no terminal to ask at)',
} as const;
const PEERS = {
  type: 'string',
  required: true,
  env: 'QJM_PEERS',
  valueName: 'HOST:PORT,...',
  description: 'JournalNode addresses: any members, the rest are learned',
} as const;
/** How qjm reaches the nodes: mutual TLS as a client certificate's user, or plain HTTP when asked for. */
const SECURITY = {
  'certs-dir': {
    type: 'string',
    env: 'QJM_CERTS_DIR',
    valueName: 'DIR',
    description: 'mutual TLS: the certificates directory (ca.crt, client.<user>.crt/.key)',
  },
  user: {
    type: 'string',
    env: 'QJM_USER',
    valueName: 'NAME',
    description: 'the client certificate to act as: DIR/client.<NAME>.crt',
  },
  insecure: { type: 'boolean', description: 'plain HTTP, for nodes started with --insecure (ignores QJM_CERTS_DIR)' },
} as const;
/** Whole seconds, as an operator types them; without it each call keeps its own default (OPERATIONS.md lists them). */
const TIMEOUT = {
  type: 'uint',
  valueName: 'SECONDS',
  description: 'give up on a call to the cluster after SECONDS of retrying or waiting (default 20; change-peers 120)',
} as const;
const CONNECT = { peers: PEERS, ...SECURITY, timeout: TIMEOUT } as const;
const JID = { type: 'string', required: true, valueName: 'ID', description: 'the journal id' } as const;
const JSON_OUT = { type: 'boolean', description: 'print JSON, for scripts' } as const;
const RECORD_FORMAT = DUMP.flags.format;

export const NO_CLIENT_CERTIFICATE =
  'no client certificate: give --certs-dir D --user NAME (or set QJM_CERTS_DIR and QJM_USER), or --insecure for nodes started with --insecure';

/** The connection flags every command that talks to the nodes takes (CONNECT). */
type Connection = {
  peers: string;
  'certs-dir'?: string | undefined;
  user?: string | undefined;
  insecure: boolean;
  timeout?: number | undefined;
};

/** The nodes and how to reach them; refuses (usage, exit 2) when neither TLS nor --insecure was chosen. */
function connection(f: Connection): { peers: string[]; tls?: TlsOption } {
  const peers = peersOf(f);
  if (f.insecure) return { peers };
  if (!f['certs-dir']) throw new UsageError(NO_CLIENT_CERTIFICATE);
  if (!f.user)
    throw new UsageError(
      '--user NAME is required with --certs-dir (or set QJM_USER): the client certificate to act as',
    );
  return { peers, tls: { certsDir: f['certs-dir'], user: f.user } };
}

/** --timeout in ms (undefined: each call's own default). */
function timeoutMsOf(f: Connection): number | undefined {
  if (f.timeout === undefined) return undefined;
  if (f.timeout < 1) throw new UsageError('--timeout must be at least 1 (seconds)');
  return f.timeout * 1000;
}

/**
 * Says on stderr what qjm is retrying and why, at most once a second: without it an unreachable cluster
 * looks like a hung command for the whole retry deadline.
 */
export function retryReporter(err: Out, nowMs: () => number = Date.now): RetryObserver {
  let lastMs = -Infinity;
  return (e, remainingMs) => {
    const now = nowMs();
    if (now - lastMs < 1000) return;
    lastMs = now;
    const node = e.details.node;
    const why =
      e.details.networkCode && typeof node === 'string'
        ? `${escapeControls(node)} unreachable (${e.details.networkCode})`
        : `${escapeControls(e.message)} (${e.code})`;
    err(`qjm: ${why}; retrying for ${Math.max(0, Math.ceil(remainingMs / 1000))} s more`);
  };
}

/** libqjm's options for a command: the connection, --timeout as every retry deadline, retries reported. */
function qjmOptions(f: Connection, io: CliIo): Omit<QjmOptions, 'journalId'> {
  const timeoutMs = timeoutMsOf(f);
  return {
    ...connection(f),
    onRetry: retryReporter(io.err),
    ...(timeoutMs !== undefined
      ? { requestTimeoutMs: Math.min(5000, timeoutMs), writeTimeoutMs: timeoutMs, recoveryTimeoutMs: timeoutMs }
      : {}),
  };
}

function adminClient(f: Connection, io: CliIo): AdminClient {
  const { peers, tls } = connection(f);
  const timeoutMs = timeoutMsOf(f);
  return new AdminClient(peers, {
    ...(tls ? { tls } : {}),
    onRetry: retryReporter(io.err),
    ...(timeoutMs !== undefined
      ? { requestTimeoutMs: Math.min(3000, timeoutMs), retry: { deadlineMs: timeoutMs } }
      : {}),
  });
}

/** The nodes --peers gives: host:port, or id=host:port (then the node there must be that one). */
function peersOf(f: { peers: string }): string[] {
  try {
    return parseClientPeers(f.peers).map((p) => (p.id === undefined ? p.address : `${p.id}=${p.address}`));
  } catch (e) {
    throw new UsageError(`--peers: ${(e as Error).message}, e.g. --peers 127.0.0.1:8485,127.0.0.1:8486,127.0.0.1:8487`);
  }
}

function exitCodeFor(e: unknown): number {
  if (e instanceof UsageError) return 2;
  if (e instanceof NotConfirmedError) return 4;
  if (e instanceof CertExistsError) return 4;
  if (e instanceof CertificateError) return 1;
  if (e instanceof QjmError) {
    switch (e.errorName) {
      case 'NOT_FORMATTED':
        return 3;
      case 'FENCED':
      case 'ALREADY_FORMATTED':
      case 'WRITER_ACTIVE':
      case 'OUT_OF_SYNC':
      case 'NAMESPACE_MISMATCH':
      case 'INVALID_CONF_CHANGE':
      case 'CONF_CHANGE_IN_PROGRESS':
      case 'TOO_MANY_JOURNALS':
        return 4;
      case 'CORRUPT':
        return 5;
      case 'INVALID_ARGUMENT':
        return 2;
      default:
        return 1;
    }
  }
  return 1;
}

const STATUS = {
  name: 'qjm status',
  summary:
    'Every node (those given, and the members they name): role, term, indexes, errors; the problems seen; the journals as the leader sees them.',
  flags: { ...CONNECT, jid: { ...JID, required: false, description: 'show only this journal' }, json: JSON_OUT },
} as const satisfies CommandSpec;

/** The node's standing when it is not a plain member (stood down, storage mismatch, ...), for the table. */
function standing(s: NodeStatusJson): string {
  const id = s.identity?.state;
  return id && id !== 'member' ? id : '';
}

async function cmdStatus(f: FlagValues<typeof STATUS>, io: CliIo): Promise<number> {
  const admin = adminClient(f, io);
  try {
    const reports = await discoverNodes(admin, admin.peers, timeoutMsOf(f));
    const problems = clusterProblems(reports);
    if (f.json) {
      io.out(JSON.stringify({ nodes: reports, problems }, null, 2));
    } else {
      // LAG: entries a follower's log is behind the leader's. Only the leader knows it (of the newest
      // generation, then the highest term, if two claim it); '?' when no leader answered.
      const leader = referenceLeader(reports.flatMap((r) => (r.status ? [r.status] : [])));
      const lagOf = (id: string) =>
        !leader ? '?' : id === leader.id ? '-' : String(leader.followers[id]?.lagEntries ?? '?');
      const rows = reports.map(({ endpoint, status: s, error }) => {
        if (!s) return [endpoint, '', '', '', '', '', '', '', '', '', '', error ?? ''];
        const cells = [
          s.id,
          s.state,
          s.term,
          s.leader === s.id,
          s.commitIndex,
          s.appliedIndex,
          s.lastIndex,
          s.snapshotIndex,
        ];
        return [endpoint, ...cells.map(String), lagOf(s.id), standing(s), s.fatal ?? ''];
      });
      io.out(
        renderTable(
          [
            'ENDPOINT',
            'ID',
            'STATE',
            'TERM',
            'IS LEADER',
            'COMMIT',
            'APPLIED',
            'LAST',
            'SNAPSHOT',
            'LAG',
            'STANDING',
            'ERRORS',
          ],
          rows,
        ),
      );
      if (problems.length > 0) io.out(`\nproblems:\n${problems.map((p) => `- ${p}`).join('\n')}`);
      const journals = (leader ?? reports.find((r) => r.status)?.status)?.journals;
      if (journals) {
        const jrows = Object.entries(journals)
          .filter(([name]) => !f.jid || name === f.jid)
          .map(([name, j]) => [
            name,
            String(j.promisedEpoch),
            String(j.lastWriterEpoch),
            j.writerId || '-',
            String(j.lastTxId),
            String(j.segments.length),
            j.segments
              .filter((g) => g.inProgress)
              .map((g) => `${g.firstTxId}-${g.lastTxId}`)
              .join(',') || '-',
          ]);
        if (jrows.length)
          io.out(
            '\n' +
              renderTable(
                ['JOURNAL', 'EPOCH', 'WRITER EPOCH', 'WRITER', 'LAST TXID', 'SEGMENTS', 'IN PROGRESS'],
                jrows,
              ),
          );
      }
    }
    return problems.length > 0 || reports.some((r) => r.error) ? 1 : 0;
  } finally {
    await admin.close();
  }
}

const FORMAT = {
  name: 'qjm format',
  summary: 'Format a journal on the cluster (refused if it holds data, unless --force).',
  flags: {
    ...CONNECT,
    jid: JID,
    'namespace-id': { type: 'uint', required: true, description: 'the namespace id of the master' },
    'cluster-id': { type: 'string', required: true, valueName: 'C', description: 'the cluster id of the master' },
    'block-pool-id': { type: 'string', valueName: 'B', description: 'the block pool id (default empty)' },
    force: {
      type: 'boolean',
      description:
        'wipe a journal that holds data (epochs stay, so fenced writers stay fenced); asks first, at a terminal',
    },
    yes: YES,
    'allow-active-writer': {
      type: 'boolean',
      description: 'with --force: wipe it even though its writer wrote in the last few seconds',
    },
    json: JSON_OUT,
  },
} as const satisfies CommandSpec;

async function cmdFormat(f: FlagValues<typeof FORMAT>, io: CliIo): Promise<number> {
  const q = new QuorumJournalManager({ journalId: f.jid, ...qjmOptions(f, io), writerId: 'qjm' });
  try {
    const nsInfo = {
      namespaceId: f['namespace-id'],
      clusterId: f['cluster-id'],
      blockPoolId: f['block-pool-id'] ?? '',
    };
    if (f.force) {
      const st = await q.getJournalState();
      if (st.formatted && (st.lastTxId > 0 || st.segments.length > 0)) {
        const what = `qjm format --force wipes journal ${q.journalId}: ${st.lastTxId} edits in ${st.segments.length} segment(s), written by ${st.writerId || '?'} (epoch ${st.promisedEpoch})`;
        await confirmDestruction(io.ask, { what, token: q.journalId, yes: f.yes });
      }
    }
    await q.format(nsInfo, { force: f.force, allowActiveWriter: f['allow-active-writer'] });
    io.out(
      f.json
        ? JSON.stringify({ ok: true, jid: q.journalId, nsInfo })
        : `formatted journal ${q.journalId} (namespace ${nsInfo.namespaceId}, cluster ${escapeControls(nsInfo.clusterId)})`,
    );
    return 0;
  } finally {
    await q.close();
  }
}

const SEGMENTS = {
  name: 'qjm segments',
  summary: "A journal's segments, in progress or finalized.",
  flags: {
    ...CONNECT,
    jid: JID,
    since: { type: 'uint', valueName: 'TXID', description: 'only segments that end at or after TXID' },
    json: JSON_OUT,
  },
} as const satisfies CommandSpec;

async function cmdSegments(f: FlagValues<typeof SEGMENTS>, io: CliIo): Promise<number> {
  const q = new QuorumJournalManager({ journalId: f.jid, ...qjmOptions(f, io) });
  try {
    const st = await q.getJournalState();
    if (!st.formatted) throw new QjmError('NOT_FORMATTED', `journal ${q.journalId} is not formatted`);
    const since = f.since ?? 0;
    const segs = st.segments.filter((s) => s.lastTxId >= since);
    const totalBytes = segs.reduce((n, s) => n + s.sizeBytes, 0);
    if (f.json) {
      io.out(
        JSON.stringify(
          { jid: q.journalId, lastTxId: st.lastTxId, promisedEpoch: st.promisedEpoch, totalBytes, segments: segs },
          null,
          2,
        ),
      );
    } else {
      io.out(
        renderTable(
          ['FIRST TXID', 'LAST TXID', 'TXNS', 'STATE', 'SIZE'],
          segs.map((s) => [
            String(s.firstTxId),
            String(s.lastTxId),
            String(s.lastTxId - s.firstTxId + 1),
            s.inProgress ? 'in progress' : 'finalized',
            humanBytes(s.sizeBytes),
          ]),
        ),
      );
      io.out(
        `journal ${q.journalId}: last txid ${st.lastTxId}, promised epoch ${st.promisedEpoch}, writer ${escapeControls(st.writerId) || '-'}; ${segs.length} segment(s), ${humanBytes(totalBytes)} (exact sizes: --json)`,
      );
    }
    return 0;
  } finally {
    await q.close();
  }
}

const FINALIZE = {
  name: 'qjm finalize',
  summary: 'Fence the writer and finalize its open segment (refused while it is writing, unless --force).',
  flags: {
    ...CONNECT,
    jid: JID,
    force: { type: 'boolean', description: 'fence a writer that is still writing' },
    json: JSON_OUT,
  },
} as const satisfies CommandSpec;

async function cmdFinalize(f: FlagValues<typeof FINALIZE>, io: CliIo): Promise<number> {
  const jid = f.jid;
  const admin = adminClient(f, io);
  const q = new QuorumJournalManager({ journalId: jid, ...qjmOptions(f, io), writerId: 'qjm-finalize' });
  try {
    const before = await q.getJournalState();
    if (!before.formatted) throw new QjmError('NOT_FORMATTED', `journal ${jid} is not formatted`);
    const open = before.segments.find((s) => s.inProgress);
    if (!open) {
      io.out(
        f.json
          ? JSON.stringify({ ok: true, finalized: null })
          : `journal ${jid} has no segment in progress; nothing to do`,
      );
      return 0;
    }
    const activity = await admin.lastWriteAgeMs(jid);
    if (activity.ageMs !== null && activity.ageMs < WRITER_ACTIVE_MS && !f.force) {
      throw new QjmError(
        'WRITER_ACTIVE',
        `journal ${jid}: writer ${before.writerId || '?'} (epoch ${before.promisedEpoch}) wrote ${activity.ageMs} ms ago and is probably still writing; finalizing would fence it. Use --force to fence it anyway.`,
      );
    }
    const r = await q.recoverUnfinalizedSegments();
    const what =
      open.lastTxId >= open.firstTxId
        ? `finalized segment ${open.firstTxId}-${r.lastTxId}`
        : `dropped empty segment ${open.firstTxId}`;
    io.out(
      f.json
        ? JSON.stringify({ ok: true, epoch: r.epoch, lastTxId: r.lastTxId, action: what })
        : `fenced prior writers with epoch ${r.epoch}; ${what}`,
    );
    return 0;
  } finally {
    await q.close();
    await admin.close();
  }
}

const PURGE = {
  name: 'qjm purge',
  summary:
    "Delete the finalized segments that end below a txid (under the current writer's epoch), within the retention floor.",
  flags: {
    ...CONNECT,
    jid: JID,
    'min-txid': { type: 'uint', required: true, valueName: 'TXID', description: 'the first txid to keep' },
    'dry-run': { type: 'boolean', description: 'say what would be deleted and what the floor keeps; delete nothing' },
    force: {
      type: 'boolean',
      description:
        'go past the retention floor (the newest finalized segment, minTxnsRetained, recent readers); admin; asks first',
    },
    yes: YES,
    json: JSON_OUT,
  },
} as const satisfies CommandSpec;

const rangeOf = (segs: readonly SegmentDescriptor[]) =>
  segs.length === 0
    ? 'none'
    : `${segs.length} segment(s), txids ${segs[0]!.firstTxId}-${segs[segs.length - 1]!.lastTxId}`;

async function cmdPurge(f: FlagValues<typeof PURGE>, io: CliIo): Promise<number> {
  const jid = f.jid;
  const minTxId = f['min-txid'];
  const q = new QuorumJournalManager({ journalId: jid, ...qjmOptions(f, io) });
  const admin = adminClient(f, io);
  try {
    // Purging needs no fencing: it acts under the current writer's epoch and touches only finalized segments.
    for (let attempt = 0; ; attempt++) {
      const st = await q.getJournalState();
      if (!st.formatted) throw new QjmError('NOT_FORMATTED', `journal ${jid} is not formatted`);
      const finalized = st.segments.filter((s) => !s.inProgress);
      const asked = finalized.filter((s) => s.lastTxId < minTxId);
      const floor = st.retention.fromTxId > 0 ? st.retention.fromTxId : Number.MAX_SAFE_INTEGER;
      const allowed = asked.filter((s) => s.lastTxId < floor);
      const pastFloor = asked.filter((s) => s.lastTxId >= floor);
      const doomed = f.force ? asked : allowed;
      if (f['dry-run'] || (pastFloor.length > 0 && !f.force) || doomed.length === 0) {
        return purgePlanOnly(f, io, { jid, minTxId, floor: st.retention, doomed, pastFloor });
      }
      if (f.force && pastFloor.length > 0) {
        const what = `qjm purge --force deletes ${rangeOf(pastFloor)} of journal ${jid} that the retention floor keeps (${st.retention.reason}); a standby behind them must then be rebuilt`;
        await confirmDestruction(io.ask, { what, token: jid, yes: f.yes });
      }
      let purged: { purgedBelowTxId: number };
      try {
        purged = await admin.purgeAtEpoch(jid, st.promisedEpoch, minTxId, f.force);
      } catch (e) {
        if (e instanceof QjmError && e.errorName === 'FENCED' && attempt < 3) continue; // a writer took over meanwhile
        throw e;
      }
      const gone = doomed.filter((s) => s.lastTxId < purged.purgedBelowTxId);
      io.out(
        f.json
          ? JSON.stringify({ ok: true, purged: gone, purgedBelowTxId: purged.purgedBelowTxId })
          : `purged ${rangeOf(gone)} of journal ${jid} (every finalized segment ending below txid ${purged.purgedBelowTxId})`,
      );
      return 0;
    }
  } finally {
    await q.close();
    await admin.close();
  }
}

/** --dry-run, nothing to purge, or a request past the floor without --force: says what would go, deletes nothing. */
function purgePlanOnly(
  f: FlagValues<typeof PURGE>,
  io: CliIo,
  p: {
    jid: string;
    minTxId: number;
    floor: { fromTxId: number; reason: string };
    doomed: SegmentDescriptor[];
    pastFloor: SegmentDescriptor[];
  },
): number {
  const refused = !f['dry-run'] && !f.force && p.pastFloor.length > 0;
  if (f.json) {
    io.out(
      JSON.stringify({
        ok: !refused,
        dryRun: f['dry-run'],
        wouldPurge: p.doomed,
        keptByFloor: p.pastFloor,
        retention: p.floor,
      }),
    );
  } else {
    io.out(`${f['dry-run'] ? 'would purge' : 'to purge'}: ${rangeOf(p.doomed)} of journal ${p.jid}`);
    if (p.pastFloor.length > 0) {
      io.out(`kept by the retention floor (txid ${p.floor.fromTxId}: ${p.floor.reason}): ${rangeOf(p.pastFloor)}`);
    }
  }
  if (!refused) return 0;
  const within =
    p.doomed.length > 0 ? `qjm purge --jid ${p.jid} --min-txid ${p.floor.fromTxId} purges what the floor allows; ` : '';
  io.err(
    `qjm purge: refused: --min-txid ${p.minTxId} reaches past the retention floor (${p.floor.reason}); nothing was deleted. ${within}--force goes past it (admin, asks first)`,
  );
  return 4;
}

const TAIL = {
  name: 'qjm tail',
  summary: 'Print committed edits: txid, length, record.',
  flags: {
    ...CONNECT,
    jid: JID,
    from: {
      type: 'uint',
      valueName: 'TXID',
      description: 'the first txid to print (default: the oldest, or the next with --follow)',
    },
    follow: { type: 'boolean', description: 'keep printing edits as they are committed (until Ctrl-C)' },
    format: RECORD_FORMAT,
    json: JSON_OUT,
  },
} as const satisfies CommandSpec;

async function cmdTail(f: FlagValues<typeof TAIL>, io: CliIo): Promise<number> {
  const q = new QuorumJournalManager({ journalId: f.jid, ...qjmOptions(f, io) });
  const format = f.format ?? 'text';
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once('SIGINT', stop);
  try {
    let from = f.from ?? 0;
    if (from === 0) {
      const st = await q.getJournalState();
      if (!st.formatted) throw new QjmError('NOT_FORMATTED', `journal ${q.journalId} is not formatted`);
      from = f.follow ? st.lastTxId + 1 : (st.segments[0]?.firstTxId ?? 1);
    }
    for await (const e of q.readEdits({
      fromTxId: Math.max(1, from),
      inProgressOk: true,
      follow: f.follow,
      signal: ac.signal,
      waitMs: 1000,
    })) {
      if (f.json)
        io.out(
          JSON.stringify({
            txid: e.txid,
            length: e.record.byteLength,
            record: Buffer.from(e.record).toString('base64'),
          }),
        );
      else io.out(`${e.txid}\t${e.record.byteLength}\t${renderRecord(e.record, format)}`);
      if (ac.signal.aborted) break;
    }
    return 0;
  } finally {
    process.off('SIGINT', stop);
    await q.close();
  }
}

const PEER = { type: 'string', required: true } as const;

const ADD_PEER = {
  name: 'qjm add-peer',
  summary:
    'Add a node (started with --join) as a voter, bound to its storage: it joins as a learner and catches up first.',
  flags: { ...CONNECT, peer: { ...PEER, valueName: 'ID=HOST:PORT', description: 'the new node' }, json: JSON_OUT },
} as const satisfies CommandSpec;

const MAX_LAG = {
  type: 'uint',
  valueName: 'N',
  description: `a voter more entries than this behind the leader is not caught up (default ${SETTINGS.catchupMargin.default}, catchupMargin's)`,
} as const;

const REPLACE_NODE = {
  name: 'qjm replace-node',
  summary:
    'Re-add a node whose data directory was replaced (its storage is not the one the cluster binds it to): it catches up on its new storage, then votes.',
  flags: {
    ...CONNECT,
    peer: { ...PEER, valueName: 'ID=HOST:PORT', description: 'the node, running on its new data directory' },
    json: JSON_OUT,
  },
} as const satisfies CommandSpec;

const REMOVE_PEER = {
  name: 'qjm remove-peer',
  summary:
    'Remove a voter (the leader too: it steps down once the change commits); refused when the rest would not be a quorum of caught-up voters.',
  flags: {
    ...CONNECT,
    peer: { ...PEER, valueName: 'ID', description: 'the node to remove' },
    force: { type: 'boolean', description: 'remove it although the rest would not be a quorum of caught-up voters' },
    'max-lag': MAX_LAG,
    json: JSON_OUT,
  },
} as const satisfies CommandSpec;

const CHECK_IMPACT = {
  name: 'qjm check-impact',
  summary: 'Would the cluster keep a quorum of caught-up voters without this node (stopped, or removed)?',
  flags: {
    ...CONNECT,
    node: { type: 'string', required: true, valueName: 'ID', description: 'the node to stop or remove' },
    remove: { type: 'boolean', description: 'judge removing it from the configuration (default: stopping it)' },
    'max-lag': MAX_LAG,
    json: JSON_OUT,
  },
} as const satisfies CommandSpec;

/** The leader's own status (its view of every follower), asked of every node the client can reach. */
async function leaderStatus(admin: AdminClient): Promise<NodeStatusJson> {
  const m = await admin.membership();
  const reports = await admin.statusOf(m.leaderAddress ? [m.leaderAddress] : []);
  const s = reports[0]?.status;
  if (s?.state !== 'leader') {
    throw new QjmError(
      'QUORUM_UNAVAILABLE',
      `the leader ${m.leader} does not answer as leader (${reports[0]?.error ?? 'no address'})`,
    );
  }
  return s;
}

async function cmdCheckImpact(f: FlagValues<typeof CHECK_IMPACT>, io: CliIo): Promise<number> {
  const admin = adminClient(f, io);
  try {
    const action = f.remove ? 'remove' : 'stop';
    const impact = assessImpact(
      await leaderStatus(admin),
      f.node,
      action,
      f['max-lag'] ?? SETTINGS.catchupMargin.default,
    );
    if (f.json) io.out(JSON.stringify({ node: f.node, action, ...impact }));
    else for (const l of impact.lines) io.out(l);
    return impact.safe ? 0 : 1;
  } finally {
    await admin.close();
  }
}

const CHECK = {
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

async function cmdCheck(f: FlagValues<typeof CHECK>, io: CliIo): Promise<number> {
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

const CHANGE_PEERS = {
  name: 'qjm change-peers',
  summary: 'Replace the whole set of voters in one joint change (new nodes catch up first).',
  flags: {
    ...CONNECT,
    'new-peers': { ...PEER, valueName: 'ID=HOST:PORT,...', description: 'the voters after the change' },
    json: JSON_OUT,
  },
} as const satisfies CommandSpec;

async function cmdChangePeers(
  f: Connection,
  target: (voters: Peer[], admin: AdminClient) => Peer[] | Promise<Peer[]>,
  json: boolean,
  io: CliIo,
): Promise<number> {
  const admin = adminClient(f, io);
  try {
    const m = await admin.membership();
    const voters = m.peers.filter((p) => p.role === 'voter').map((p) => ({ id: p.id, address: p.address }));
    const next = await target(voters, admin);
    if (!json)
      io.err(
        `changing voters from ${escapeControls(formatPeers(voters))} to ${escapeControls(formatPeers(next))} (new peers catch up first)...`,
      );
    const msg = await admin.changePeers(next, timeoutMsOf(f));
    io.out(json ? JSON.stringify({ ok: true, voters: next }) : escapeControls(msg));
    return 0;
  } finally {
    await admin.close();
  }
}

function parsePeersFlag(flag: string, value: string): { id: string; address: string }[] {
  try {
    return parsePeers(value);
  } catch (e) {
    throw new UsageError(`--${flag}: ${(e as Error).message}`);
  }
}

function cmdAddPeer(f: FlagValues<typeof ADD_PEER>, io: CliIo): Promise<number> {
  const [p] = parsePeersFlag('peer', f.peer);
  return cmdChangePeers(
    f,
    async (voters, admin) => {
      if (voters.some((v) => v.id === p!.id)) throw new UsageError(`${p!.id} is already a voter`);
      const storageId = await newcomerStorage(admin, p!, io);
      return [...voters, storageId ? { ...p!, storageId } : p!];
    },
    f.json,
    io,
  );
}

async function cmdReplaceNode(f: FlagValues<typeof REPLACE_NODE>, io: CliIo): Promise<number> {
  const [peer] = parsePeersFlag('peer', f.peer);
  const admin = adminClient(f, io);
  try {
    return await runReplaceNode(admin, { peer: peer!, timeoutMs: timeoutMsOf(f), json: f.json }, io);
  } finally {
    await admin.close();
  }
}

async function cmdRemovePeer(f: FlagValues<typeof REMOVE_PEER>, io: CliIo): Promise<number> {
  const id = f.peer.split('=')[0]!;
  if (!f.force) {
    const admin = adminClient(f, io);
    try {
      const impact = assessImpact(
        await leaderStatus(admin),
        id,
        'remove',
        f['max-lag'] ?? SETTINGS.catchupMargin.default,
      );
      if (!impact.safe) {
        for (const l of impact.lines) io.err(l);
        throw new QjmError(
          'INVALID_CONF_CHANGE',
          `refused: removing ${id} leaves no quorum of caught-up voters (qjm check-impact --node ${id} --remove); --force removes it anyway`,
        );
      }
    } finally {
      await admin.close();
    }
  }
  return cmdChangePeers(
    f,
    (voters) => {
      if (!voters.some((v) => v.id === id))
        throw new UsageError(`${id} is not a voter (voters: ${voters.map((v) => v.id).join(', ')})`);
      return voters.filter((v) => v.id !== id);
    },
    f.json,
    io,
  );
}

function cmdReplacePeers(f: FlagValues<typeof CHANGE_PEERS>, io: CliIo): Promise<number> {
  const target = parsePeersFlag('new-peers', f['new-peers']);
  return cmdChangePeers(f, () => target, f.json, io);
}

const RESET_PEERS = {
  name: 'qjm reset-peers',
  summary:
    'A majority lost for good: force the voters on the survivor with the longest log (what only the lost nodes held is gone).',
  flags: {
    ...CONNECT,
    peers: { ...PEERS, required: false, description: 'other nodes to ask (default: the members the node names)' },
    node: { type: 'string', required: true, valueName: 'HOST:PORT', description: 'the surviving node to reset' },
    'new-peers': {
      ...PEER,
      valueName: 'ID=HOST:PORT,...',
      description: 'the voters after the reset: the survivor (alone, usually)',
    },
    force: {
      type: 'boolean',
      description: 'reset although a majority of the voters answers, or another node holds a longer log',
    },
    yes: YES,
    json: JSON_OUT,
  },
} as const satisfies CommandSpec;

async function cmdResetPeers(f: FlagValues<typeof RESET_PEERS>, io: CliIo): Promise<number> {
  let node: string[];
  try {
    node = parseAddresses(f.node);
  } catch (e) {
    throw new UsageError(`--node: ${(e as Error).message}`);
  }
  if (node.length !== 1) throw new UsageError('--node: one HOST:PORT, the node to reset');
  const newPeers = parsePeersFlag('new-peers', f['new-peers']);
  // The node reset is the one --new-peers names at its address: it must present that node's certificate.
  const named = newPeers.find((p) => p.address === node[0]);
  const target = named ? `${named.id}=${node[0]}` : node[0]!;
  const conn = { ...f, peers: f.peers ? `${f.peers},${target}` : target };
  const admin = adminClient(conn, io);
  try {
    return await runResetPeers(
      admin,
      {
        node: node[0]!,
        newPeers,
        peers: f.peers ? admin.peers.filter((a) => a !== node[0]) : [],
        force: f.force,
        json: f.json,
        timeoutMs: timeoutMsOf(conn),
        confirm: (what, token) => confirmDestruction(io.ask, { what, token, yes: f.yes }),
      },
      io,
    );
  } finally {
    await admin.close();
  }
}

const TRANSFER_LEADER = {
  name: 'qjm transfer-leader',
  summary: 'Move leadership to another voter.',
  flags: {
    ...CONNECT,
    to: { type: 'string', valueName: 'ID', description: 'the new leader (default: the most caught-up voter)' },
    json: JSON_OUT,
  },
} as const satisfies CommandSpec;

/** One admin call whose answer is a message for the operator. */
async function cmdAdmin(
  f: Connection & { json: boolean },
  io: CliIo,
  call: (admin: AdminClient) => Promise<string>,
): Promise<number> {
  const admin = adminClient(f, io);
  try {
    const msg = await call(admin);
    io.out(f.json ? JSON.stringify({ ok: true, message: msg }) : escapeControls(msg));
    return 0;
  } finally {
    await admin.close();
  }
}

const SNAPSHOT = {
  name: 'qjm snapshot',
  summary: 'Take a snapshot now (snapshots otherwise happen by log size and time).',
  flags: {
    ...CONNECT,
    node: { type: 'string', valueName: 'HOST:PORT', description: 'the node that snapshots (default: the leader)' },
    json: JSON_OUT,
  },
} as const satisfies CommandSpec;

interface Command {
  spec: CommandSpec;
  /** Parses the flags against the spec (or prints --help), then runs. */
  exec(argv: string[], io: CliIo): Promise<number>;
}

function command<S extends CommandSpec>(
  spec: S,
  run: (f: FlagValues<S>, io: CliIo, positionals: string[]) => Promise<number> | number,
): Command {
  return {
    spec,
    async exec(argv, io) {
      const p = parseCommand(spec, argv);
      if (p.help) {
        io.out(helpText(spec));
        return 0;
      }
      return run(p.flags, io, p.positionals);
    },
  };
}

const COMMANDS: Record<string, Command> = {
  status: command(STATUS, cmdStatus),
  check: command(CHECK, cmdCheck),
  'check-impact': command(CHECK_IMPACT, cmdCheckImpact),
  format: command(FORMAT, cmdFormat),
  segments: command(SEGMENTS, cmdSegments),
  finalize: command(FINALIZE, cmdFinalize),
  purge: command(PURGE, cmdPurge),
  tail: command(TAIL, cmdTail),
  dump: command(DUMP, (f, io, [file]) => dumpSegment(file!, f.format ?? 'text', io, f.json)),
  'add-peer': command(ADD_PEER, cmdAddPeer),
  'remove-peer': command(REMOVE_PEER, cmdRemovePeer),
  'replace-node': command(REPLACE_NODE, cmdReplaceNode),
  'change-peers': command(CHANGE_PEERS, cmdReplacePeers),
  'reset-peers': command(RESET_PEERS, cmdResetPeers),
  'transfer-leader': command(TRANSFER_LEADER, (f, io) =>
    cmdAdmin(f, io, (admin) => admin.transferLeader(f.to ?? '', timeoutMsOf(f))),
  ),
  snapshot: command(SNAPSHOT, (f, io) => cmdAdmin(f, io, (admin) => admin.snapshot(f.node, timeoutMsOf(f)))),
  'cert create-ca': command(CERT_CREATE_CA, (f, io) => cmdCreateCa(f, io.out)),
  'cert create-node': command(CERT_CREATE_NODE, (f, io, pos) => cmdCreateNode(f, io.out, pos)),
  'cert create-client': command(CERT_CREATE_CLIENT, (f, io, pos) => cmdCreateClient(f, io.out, pos)),
  'cert list': command(CERT_LIST, (f, io) => cmdList(f, io.out)),
  bench: command(BENCH_COMMAND, (f) => runBenchCommand(f)),
  demo: command(DEMO_COMMAND, async (f) => {
    const { runDemo } = await import('../demo/demo.js');
    return runDemo({ serve: f.serve, dataDir: f['data-dir'] });
  }),
};

function overview(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  return [
    'qjm — operate a qjournal cluster',
    '',
    'usage: qjm <command> [flags]          qjm <command> --help lists the flags of one command',
    '',
    ...Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(width)}  ${c.spec.summary}`),
    '',
    '--peers may also come from QJM_PEERS; --certs-dir and --user from QJM_CERTS_DIR and QJM_USER (or --insecure',
    'for nodes started with --insecure). Exit codes: 0 ok, 1 failure (unreachable, no quorum), 2 usage,',
    '3 not formatted, 4 refused (fenced, already formatted, writer active, out of sync, file exists), 5 corrupt data.',
  ].join('\n');
}

/**
 * Runs one qjm command. Everything it prints passes through terminalSafe (no control character of any data
 * reaches the terminal raw); values that could carry a line break of their own are escaped where they are
 * put into a line (escapeControls), so journal data can neither forge a line nor move the cursor.
 */
export async function runQjm(argv: string[], terminal: CliIo): Promise<number> {
  const io: CliIo = { out: (l) => terminal.out(terminalSafe(l)), err: (l) => terminal.err(terminalSafe(l)) };
  // `qjm cert <verb>` is one command of two words.
  const [name, ...rest] =
    argv[0] === 'cert' && argv[1] && !argv[1].startsWith('-') ? [`cert ${argv[1]}`, ...argv.slice(2)] : argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    // `qjm help purge` is `qjm purge --help`.
    const topic = name === 'help' && rest[0] ? (COMMANDS[rest.join(' ')] ?? COMMANDS[rest[0]]) : undefined;
    if (topic) io.out(helpText(topic.spec));
    else io.out(overview());
    return name ? 0 : 2;
  }
  const cmd = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!cmd) {
    io.err(`qjm: unknown command ${JSON.stringify(name)}\n\n${overview()}`);
    return 2;
  }
  try {
    return await cmd.exec(rest, io);
  } catch (e) {
    const code = exitCodeFor(e);
    if (e instanceof UsageError) io.err(usageError(cmd.spec, e.message));
    else if (e instanceof QjmError) io.err(`qjm ${name}: ${e.code}: ${escapeControls(e.message)}`);
    else io.err(`qjm ${name}: ${escapeControls((e as Error).message)}`);
    return code;
  }
}
