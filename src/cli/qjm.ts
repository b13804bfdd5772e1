// qjm: the operator's tool, braft_cli's verbs with dashes plus the journal's own. Each command declares the
// flags it takes (src/command-line.ts refuses any other); `qjm <command> --help` lists them. Exit codes:
// 0 ok, 1 unreachable / quorum unavailable / other failure, 2 usage, 3 not formatted, 4 refused (fenced,
// already formatted, writer active, out of sync), 5 corrupt data (dump).

import fs from 'node:fs';
import { AdminClient, QuorumJournalManager } from '../../libqjm/index.js';
import type { QjmOptions, RetryObserver, TlsOption } from '../../libqjm/index.js';
import { BENCH_COMMAND, runBenchCommand } from '../bench/bench.js';
import { DEMO_COMMAND } from '../demo/demo-command.js';
import { helpText, parseCommand, usageError, UsageError } from '../command-line.js';
import type { CommandSpec, FlagValues } from '../command-line.js';
import { QjmError } from '../errors.js';
import { decodeSegmentHeader, readFrame, SEGMENT_HEADER_BYTES } from '../edit-records.js';
import { formatPeers, parseAddresses, parsePeers } from '../peers.js';
import { humanBytes, renderTable } from '../text-table.js';
import { WRITER_ACTIVE_MS } from '../journal-state.js';
import { CertExistsError } from '../security/certs.js';
import { CertificateError } from '../security/cert-files.js';
import { runResetPeers } from './reset-peers.js';
import { latencyTable } from './latency-table.js';
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
}

// Flags several commands share, declared once.
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
const RECORD_FORMAT = {
  type: 'string',
  choices: ['text', 'hex', 'len'],
  description: 'how to print each record (default text)',
} as const;

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
        ? `${node} unreachable (${e.details.networkCode})`
        : `${e.message} (${e.code})`;
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

function peersOf(f: { peers: string }): string[] {
  try {
    return parseAddresses(f.peers);
  } catch (e) {
    throw new UsageError(`--peers: ${(e as Error).message}, e.g. --peers 127.0.0.1:8485,127.0.0.1:8486,127.0.0.1:8487`);
  }
}

function exitCodeFor(e: unknown): number {
  if (e instanceof UsageError) return 2;
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

function renderRecord(data: Uint8Array, format: string): string {
  if (format === 'hex') return Buffer.from(data).toString('hex');
  if (format === 'len') return '';
  const s = Buffer.from(data).toString('utf8');
  // Non-printable bytes would garble a terminal: show them as \xNN.
  return JSON.stringify(s).slice(1, -1);
}

const STATUS = {
  name: 'qjm status',
  summary: 'Every node: role, term, indexes, errors; then the journals as the leader sees them.',
  flags: { ...CONNECT, jid: { ...JID, required: false, description: 'show only this journal' }, json: JSON_OUT },
} as const satisfies CommandSpec;

async function cmdStatus(f: FlagValues<typeof STATUS>, io: CliIo): Promise<number> {
  const admin = adminClient(f, io);
  try {
    const reports = await admin.statusAll(timeoutMsOf(f));
    if (f.json) {
      io.out(JSON.stringify(reports, null, 2));
    } else {
      // LAG: entries a follower's log is behind the leader's. Only the leader knows it (the one in the highest
      // term, if two claim it); '?' when no leader answered.
      const leader =
        reports
          .map((r) => r.status)
          .filter((s) => s?.state === 'leader')
          .sort((a, b) => b!.term - a!.term)[0] ?? null;
      const lagOf = (id: string) =>
        !leader ? '?' : id === leader.id ? '-' : String(leader.followers[id]?.lagEntries ?? '?');
      const rows = reports.map(({ endpoint, status: s, error }) => {
        if (!s) return [endpoint, '', '', '', '', '', '', '', '', '', error ?? ''];
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
        return [endpoint, ...cells.map(String), lagOf(s.id), s.fatal ?? ''];
      });
      io.out(
        renderTable(
          ['ENDPOINT', 'ID', 'STATE', 'TERM', 'IS LEADER', 'COMMIT', 'APPLIED', 'LAST', 'SNAPSHOT', 'LAG', 'ERRORS'],
          rows,
        ),
      );
      io.out(
        `\n${latencyTable(
          reports.flatMap((r) => (r.status ? [r.status] : [])),
          leader,
        )}`,
      );
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
    return reports.some((r) => r.error) ? 1 : 0;
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
      description: 'wipe a journal that holds data (epochs stay, so fenced writers stay fenced)',
    },
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
    await q.format(nsInfo, { force: f.force, allowActiveWriter: f['allow-active-writer'] });
    io.out(
      f.json
        ? JSON.stringify({ ok: true, jid: q.journalId, nsInfo })
        : `formatted journal ${q.journalId} (namespace ${nsInfo.namespaceId}, cluster ${nsInfo.clusterId})`,
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
        `journal ${q.journalId}: last txid ${st.lastTxId}, promised epoch ${st.promisedEpoch}, writer ${st.writerId || '-'}; ${segs.length} segment(s), ${humanBytes(totalBytes)} (exact sizes: --json)`,
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
  summary: "Delete the finalized segments that end below a txid (under the current writer's epoch).",
  flags: {
    ...CONNECT,
    jid: JID,
    'min-txid': { type: 'uint', required: true, valueName: 'TXID', description: 'the first txid to keep' },
    json: JSON_OUT,
  },
} as const satisfies CommandSpec;

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
      const doomed = st.segments.filter((s) => !s.inProgress && s.lastTxId < minTxId);
      try {
        await admin.purgeAtEpoch(jid, st.promisedEpoch, minTxId);
      } catch (e) {
        if (e instanceof QjmError && e.errorName === 'FENCED' && attempt < 3) continue; // a writer took over meanwhile
        throw e;
      }
      io.out(
        f.json
          ? JSON.stringify({ ok: true, purged: doomed })
          : `purged ${doomed.length} segment(s) ending below txid ${minTxId}`,
      );
      return 0;
    }
  } finally {
    await q.close();
    await admin.close();
  }
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

const DUMP = {
  name: 'qjm dump',
  summary: 'Read a segment file offline (like hdfs oev): header, then every record with its CRC checked.',
  positionals: [{ name: 'FILE', description: 'the segment file (edits_... in a journal directory)' }],
  flags: { format: RECORD_FORMAT, json: JSON_OUT },
} as const satisfies CommandSpec;

/** Offline reader of one segment file: header, then each frame with its CRC checked. */
export function dumpSegment(file: string, format: string, io: CliIo, json: boolean): number {
  const buf = fs.readFileSync(file);
  const h = decodeSegmentHeader(buf);
  if (typeof h === 'string') {
    io.err(`qjm dump: ${file}: ${h}`);
    return 5;
  }
  if (!json)
    io.out(`# ${file}: segment format v${h.version}, layout version ${h.layoutVersion}, first txid ${h.firstTxId}`);
  let off = SEGMENT_HEADER_BYTES;
  let count = 0;
  let expect = h.firstTxId;
  let bytes = 0;
  while (off < buf.length) {
    const fr = readFrame(buf, off);
    if (!fr.ok) {
      io.err(`qjm dump: ${file}: ${fr.truncated ? 'torn frame' : 'corrupt frame'} at byte offset ${off}: ${fr.reason}`);
      if (!json) io.out(`# ${count} records read before the damage`);
      return 5;
    }
    const r = fr.record;
    const seq = r.txid === expect ? 'ok' : `EXPECTED ${expect}`;
    if (json)
      io.out(
        JSON.stringify({
          txid: r.txid,
          length: r.data.byteLength,
          crc: 'ok',
          sequence: seq,
          offset: off,
          record: Buffer.from(r.data).toString('base64'),
        }),
      );
    else
      io.out(
        `${r.txid}\t${r.data.byteLength}\tcrc ok\t${seq === 'ok' ? '' : `${seq}\t`}${renderRecord(r.data, format)}`,
      );
    if (r.txid !== expect) {
      io.err(`qjm dump: ${file}: txid ${r.txid} at byte offset ${off}, expected ${expect}`);
      return 5;
    }
    expect++;
    count++;
    bytes += r.data.byteLength;
    off = r.next;
  }
  if (!json) io.out(`# ${count} records, txids ${h.firstTxId}..${expect - 1}, ${bytes} bytes of edits, every CRC ok`);
  return 0;
}

const PEER = { type: 'string', required: true } as const;

const ADD_PEER = {
  name: 'qjm add-peer',
  summary: 'Add a node (started with --join) as a voter: it joins as a learner and catches up first.',
  flags: { ...CONNECT, peer: { ...PEER, valueName: 'ID=HOST:PORT', description: 'the new node' }, json: JSON_OUT },
} as const satisfies CommandSpec;

const REMOVE_PEER = {
  name: 'qjm remove-peer',
  summary: 'Remove a voter (the leader too: it steps down once the change commits).',
  flags: { ...CONNECT, peer: { ...PEER, valueName: 'ID', description: 'the node to remove' }, json: JSON_OUT },
} as const satisfies CommandSpec;

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
  target: (voters: { id: string; address: string }[]) => { id: string; address: string }[],
  json: boolean,
  io: CliIo,
): Promise<number> {
  const admin = adminClient(f, io);
  try {
    const m = await admin.membership();
    const voters = m.peers.filter((p) => p.role === 'voter').map((p) => ({ id: p.id, address: p.address }));
    const next = target(voters);
    if (!json)
      io.err(`changing voters from ${formatPeers(voters)} to ${formatPeers(next)} (new peers catch up first)...`);
    const msg = await admin.changePeers(next, timeoutMsOf(f));
    io.out(json ? JSON.stringify({ ok: true, voters: next }) : msg);
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
    (voters) => {
      if (voters.some((v) => v.id === p!.id)) throw new UsageError(`${p!.id} is already a voter`);
      return [...voters, p!];
    },
    f.json,
    io,
  );
}

function cmdRemovePeer(f: FlagValues<typeof REMOVE_PEER>, io: CliIo): Promise<number> {
  const id = f.peer.split('=')[0]!;
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
  const conn = { ...f, peers: f.peers ?? node[0]! };
  const newPeers = parsePeersFlag('new-peers', f['new-peers']);
  const admin = adminClient(conn, io);
  try {
    return await runResetPeers(
      admin,
      {
        node: node[0]!,
        newPeers,
        peers: f.peers ? peersOf(conn) : [],
        force: f.force,
        json: f.json,
        timeoutMs: timeoutMsOf(conn),
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
    io.out(f.json ? JSON.stringify({ ok: true, message: msg }) : msg);
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
  format: command(FORMAT, cmdFormat),
  segments: command(SEGMENTS, cmdSegments),
  finalize: command(FINALIZE, cmdFinalize),
  purge: command(PURGE, cmdPurge),
  tail: command(TAIL, cmdTail),
  dump: command(DUMP, (f, io, [file]) => dumpSegment(file!, f.format ?? 'text', io, f.json)),
  'add-peer': command(ADD_PEER, cmdAddPeer),
  'remove-peer': command(REMOVE_PEER, cmdRemovePeer),
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
    return runDemo({ serve: f.serve });
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

export async function runQjm(argv: string[], io: CliIo): Promise<number> {
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
    else if (e instanceof QjmError) io.err(`qjm ${name}: ${e.code}: ${e.message}`);
    else io.err(`qjm ${name}: ${(e as Error).message}`);
    return code;
  }
}
