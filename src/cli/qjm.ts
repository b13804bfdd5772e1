// qjm: the operator's tool (SPEC 3.3), braft_cli's verbs with dashes plus the journal's own. Every command
// takes --peers (JournalNode addresses) and --json. Exit codes: 0 ok, 1 unreachable / quorum unavailable /
// other failure, 2 usage, 3 not formatted, 4 refused (fenced, already formatted, writer active, out of sync),
// 5 corrupt data (dump).

import fs from 'node:fs';
import { AdminClient, QuorumJournalManager } from '../../libqjm/index.js';
import { QjmError } from '../errors.js';
import { decodeSegmentHeader, readFrame, SEGMENT_HEADER_BYTES } from '../edit-records.js';
import { formatPeers, parseAddresses, parsePeers } from '../peers.js';
import { renderTable } from '../text-table.js';

export class UsageError extends Error {}

interface Flags {
  _: string[];
  [name: string]: string | boolean | string[];
}

function parseFlags(argv: string[], booleans: string[]): Flags {
  const out: Flags = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) {
      out._.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    if (booleans.includes(name)) {
      out[name] = eq > 0 ? a.slice(eq + 1) !== 'false' : true;
      continue;
    }
    const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (v === undefined) throw new UsageError(`--${name} needs a value`);
    out[name] = v;
  }
  return out;
}

const BOOLEANS = ['json', 'force', 'follow', 'help'];

function str(f: Flags, name: string, required = true): string | undefined {
  const v = f[name];
  if (v === undefined || v === true) {
    if (required) throw new UsageError(`--${name} is required`);
    return undefined;
  }
  return String(v);
}

function int(f: Flags, name: string, def?: number): number {
  const v = f[name];
  if (v === undefined) {
    if (def === undefined) throw new UsageError(`--${name} is required`);
    return def;
  }
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`--${name} must be a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}

function peersOf(f: Flags): string[] {
  const p = str(f, 'peers', false) ?? process.env.QJM_PEERS;
  if (!p) throw new UsageError('--peers is required (or set QJM_PEERS), e.g. --peers 127.0.0.1:8485,127.0.0.1:8486,127.0.0.1:8487');
  try {
    return parseAddresses(p);
  } catch (e) {
    throw new UsageError(`--peers: ${(e as Error).message}`);
  }
}

type Out = (line: string) => void;

export interface CliIo {
  out: Out;
  err: Out;
}

const USAGE = `qjm — operate a qjournal cluster

  qjm status           --peers A,B,C [--jid ns1] [--json]       every node: role, term, indexes, journals
  qjm format           --peers ... --jid ns1 --namespace-id N --cluster-id C [--block-pool-id B] [--force]
  qjm segments         --peers ... --jid ns1 [--since TXID] [--json]
  qjm finalize         --peers ... --jid ns1 [--force]          fence the writer, finalize its open segment
  qjm purge            --peers ... --jid ns1 --min-txid TXID    delete finalized segments ending below TXID
  qjm tail             --peers ... --jid ns1 [--from TXID] [--follow] [--format text|hex|len]
  qjm dump             FILE [--format text|hex|len] [--json]     read a segment file offline (like hdfs oev)
  qjm add-peer         --peers ... --peer n4=HOST:PORT
  qjm remove-peer      --peers ... --peer n3
  qjm change-peers     --peers ... --new-peers n1=HOST:PORT,n2=HOST:PORT,...
  qjm transfer-leader  --peers ... [--to n2]
  qjm snapshot         --peers ... [--node HOST:PORT]
  qjm bench            [--vs etcd] [--quick] [--out FILE]       runs the benchmark (see docs/PERFORMANCE.md)
  qjm demo                                                        the HA demo (same as npm start)

--peers may also come from QJM_PEERS. Exit codes: 0 ok, 1 failure (unreachable, no quorum), 2 usage,
3 not formatted, 4 refused (fenced, already formatted, writer active, out of sync), 5 corrupt data.`;

function exitCodeFor(e: unknown): number {
  if (e instanceof UsageError) return 2;
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

async function cmdStatus(f: Flags, io: CliIo): Promise<number> {
  const admin = new AdminClient(peersOf(f));
  try {
    const reports = await admin.statusAll();
    const jid = str(f, 'jid', false);
    if (f.json) {
      io.out(JSON.stringify(reports, null, 2));
    } else {
      const rows = reports.map((r) => {
        const s = r.status as Record<string, unknown> | null;
        if (!s) return [r.endpoint, '', '', '', '', '', '', '', '', r.error ?? ''];
        return [
          r.endpoint,
          String(s.id),
          String(s.state),
          String(s.term),
          s.leader === s.id ? 'true' : 'false',
          String(s.commitIndex),
          String(s.appliedIndex),
          String(s.lastIndex),
          String(s.snapshotIndex),
          (s.fatal as string | null) ?? '',
        ];
      });
      io.out(renderTable(['ENDPOINT', 'ID', 'STATE', 'TERM', 'IS LEADER', 'COMMIT', 'APPLIED', 'LAST', 'SNAPSHOT', 'ERRORS'], rows));
      const leaderReport = reports.find((r) => r.status && (r.status as { state: string }).state === 'leader');
      const journals = (leaderReport?.status ?? reports.find((r) => r.status)?.status)?.journals as Record<string, Record<string, unknown>> | undefined;
      if (journals) {
        const jrows = Object.entries(journals)
          .filter(([name]) => !jid || name === jid)
          .map(([name, j]) => [
            name,
            String(j.promisedEpoch),
            String(j.lastWriterEpoch),
            String(j.writerId || '-'),
            String(j.lastTxId),
            String((j.segments as unknown[]).length),
            (j.segments as { firstTxId: number; lastTxId: number; inProgress: boolean }[]).filter((s) => s.inProgress).map((s) => `${s.firstTxId}-${s.lastTxId}`).join(',') || '-',
          ]);
        if (jrows.length) io.out('\n' + renderTable(['JOURNAL', 'EPOCH', 'WRITER EPOCH', 'WRITER', 'LAST TXID', 'SEGMENTS', 'IN PROGRESS'], jrows));
      }
    }
    return reports.some((r) => r.error) ? 1 : 0;
  } finally {
    await admin.close();
  }
}

async function cmdFormat(f: Flags, io: CliIo): Promise<number> {
  const q = new QuorumJournalManager({ journalId: str(f, 'jid')!, peers: peersOf(f), writerId: 'qjm' });
  try {
    const nsInfo = { namespaceId: int(f, 'namespace-id'), clusterId: str(f, 'cluster-id')!, blockPoolId: str(f, 'block-pool-id', false) ?? '' };
    await q.format(nsInfo, { force: f.force === true });
    io.out(f.json ? JSON.stringify({ ok: true, jid: q.journalId, nsInfo }) : `formatted journal ${q.journalId} (namespace ${nsInfo.namespaceId}, cluster ${nsInfo.clusterId})`);
    return 0;
  } finally {
    await q.close();
  }
}

async function cmdSegments(f: Flags, io: CliIo): Promise<number> {
  const q = new QuorumJournalManager({ journalId: str(f, 'jid')!, peers: peersOf(f) });
  try {
    const st = await q.getJournalState();
    if (!st.formatted) throw new QjmError('NOT_FORMATTED', `journal ${q.journalId} is not formatted`);
    const since = int(f, 'since', 0);
    const segs = st.segments.filter((s) => s.lastTxId >= since);
    if (f.json) {
      io.out(JSON.stringify({ jid: q.journalId, lastTxId: st.lastTxId, promisedEpoch: st.promisedEpoch, segments: segs }, null, 2));
    } else {
      io.out(renderTable(['FIRST TXID', 'LAST TXID', 'TXNS', 'STATE', 'BYTES'], segs.map((s) => [String(s.firstTxId), String(s.lastTxId), String(s.lastTxId - s.firstTxId + 1), s.inProgress ? 'in progress' : 'finalized', String(s.sizeBytes)])));
      io.out(`journal ${q.journalId}: last txid ${st.lastTxId}, promised epoch ${st.promisedEpoch}, writer ${st.writerId || '-'}`);
    }
    return 0;
  } finally {
    await q.close();
  }
}

/** How recent a write must be for the writer to count as active. */
const WRITER_ACTIVE_MS = 5000;

async function cmdFinalize(f: Flags, io: CliIo): Promise<number> {
  const peers = peersOf(f);
  const jid = str(f, 'jid')!;
  const admin = new AdminClient(peers);
  const q = new QuorumJournalManager({ journalId: jid, peers, writerId: 'qjm-finalize' });
  try {
    const before = await q.getJournalState();
    if (!before.formatted) throw new QjmError('NOT_FORMATTED', `journal ${jid} is not formatted`);
    const open = before.segments.find((s) => s.inProgress);
    if (!open) {
      io.out(f.json ? JSON.stringify({ ok: true, finalized: null }) : `journal ${jid} has no segment in progress; nothing to do`);
      return 0;
    }
    const activity = await admin.lastWriteAgeMs(jid);
    if (activity.ageMs !== null && activity.ageMs < WRITER_ACTIVE_MS && f.force !== true) {
      throw new QjmError(
        'WRITER_ACTIVE',
        `journal ${jid}: writer ${before.writerId || '?'} (epoch ${before.promisedEpoch}) wrote ${activity.ageMs} ms ago and is probably still writing; finalizing would fence it. Use --force to fence it anyway.`,
      );
    }
    const r = await q.recoverUnfinalizedSegments();
    const what = open.lastTxId >= open.firstTxId ? `finalized segment ${open.firstTxId}-${r.lastTxId}` : `dropped empty segment ${open.firstTxId}`;
    io.out(f.json ? JSON.stringify({ ok: true, epoch: r.epoch, lastTxId: r.lastTxId, action: what }) : `fenced prior writers with epoch ${r.epoch}; ${what}`);
    return 0;
  } finally {
    await q.close();
    await admin.close();
  }
}

async function cmdPurge(f: Flags, io: CliIo): Promise<number> {
  const jid = str(f, 'jid')!;
  const minTxId = int(f, 'min-txid');
  const peers = peersOf(f);
  const q = new QuorumJournalManager({ journalId: jid, peers });
  const admin = new AdminClient(peers);
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
      io.out(f.json ? JSON.stringify({ ok: true, purged: doomed }) : `purged ${doomed.length} segment(s) ending below txid ${minTxId}`);
      return 0;
    }
  } finally {
    await q.close();
    await admin.close();
  }
}

async function cmdTail(f: Flags, io: CliIo): Promise<number> {
  const q = new QuorumJournalManager({ journalId: str(f, 'jid')!, peers: peersOf(f) });
  const format = str(f, 'format', false) ?? 'text';
  if (!['text', 'hex', 'len'].includes(format)) throw new UsageError('--format must be text, hex or len');
  const ac = new AbortController();
  const stop = () => ac.abort();
  process.once('SIGINT', stop);
  try {
    let from = int(f, 'from', 0);
    if (from === 0) {
      const st = await q.getJournalState();
      if (!st.formatted) throw new QjmError('NOT_FORMATTED', `journal ${q.journalId} is not formatted`);
      from = f.follow ? st.lastTxId + 1 : st.segments[0]?.firstTxId ?? 1;
    }
    for await (const e of q.readEdits({ fromTxId: Math.max(1, from), inProgressOk: true, follow: f.follow === true, signal: ac.signal, waitMs: 1000 })) {
      if (f.json) io.out(JSON.stringify({ txid: e.txid, length: e.record.byteLength, record: Buffer.from(e.record).toString('base64') }));
      else io.out(`${e.txid}\t${e.record.byteLength}\t${renderRecord(e.record, format)}`);
      if (ac.signal.aborted) break;
    }
    return 0;
  } finally {
    process.off('SIGINT', stop);
    await q.close();
  }
}

/** Offline reader of one segment file: header, then each frame with its CRC checked. */
export function dumpSegment(file: string, format: string, io: CliIo, json: boolean): number {
  const buf = fs.readFileSync(file);
  const h = decodeSegmentHeader(buf);
  if (typeof h === 'string') {
    io.err(`qjm dump: ${file}: ${h}`);
    return 5;
  }
  if (!json) io.out(`# ${file}: segment format v${h.version}, layout version ${h.layoutVersion}, first txid ${h.firstTxId}`);
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
    if (json) io.out(JSON.stringify({ txid: r.txid, length: r.data.byteLength, crc: 'ok', sequence: seq, offset: off, record: Buffer.from(r.data).toString('base64') }));
    else io.out(`${r.txid}\t${r.data.byteLength}\tcrc ok\t${seq === 'ok' ? '' : `${seq}\t`}${renderRecord(r.data, format)}`);
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

async function cmdChangePeers(f: Flags, io: CliIo, kind: 'add' | 'remove' | 'change'): Promise<number> {
  const admin = new AdminClient(peersOf(f));
  try {
    const m = await admin.membership();
    const voters = m.peers.filter((p) => p.role === 'voter').map((p) => ({ id: p.id, address: p.address }));
    let target: { id: string; address: string }[];
    if (kind === 'add') {
      const [p] = parsePeers(str(f, 'peer')!);
      if (voters.some((v) => v.id === p!.id)) throw new UsageError(`${p!.id} is already a voter`);
      target = [...voters, p!];
    } else if (kind === 'remove') {
      const id = str(f, 'peer')!.split('=')[0]!;
      if (!voters.some((v) => v.id === id)) throw new UsageError(`${id} is not a voter (voters: ${voters.map((v) => v.id).join(', ')})`);
      target = voters.filter((v) => v.id !== id);
    } else {
      try {
        target = parsePeers(str(f, 'new-peers')!);
      } catch (e) {
        throw new UsageError(`--new-peers: ${(e as Error).message}`);
      }
    }
    if (!f.json) io.err(`changing voters from ${formatPeers(voters)} to ${formatPeers(target)} (new peers catch up first)...`);
    const msg = await admin.changePeers(target);
    io.out(f.json ? JSON.stringify({ ok: true, voters: target }) : msg);
    return 0;
  } finally {
    await admin.close();
  }
}

async function cmdTransferLeader(f: Flags, io: CliIo): Promise<number> {
  const admin = new AdminClient(peersOf(f));
  try {
    const msg = await admin.transferLeader(str(f, 'to', false) ?? '');
    io.out(f.json ? JSON.stringify({ ok: true, message: msg }) : msg);
    return 0;
  } finally {
    await admin.close();
  }
}

async function cmdSnapshot(f: Flags, io: CliIo): Promise<number> {
  const admin = new AdminClient(peersOf(f));
  try {
    const msg = await admin.snapshot(str(f, 'node', false));
    io.out(f.json ? JSON.stringify({ ok: true, message: msg }) : msg);
    return 0;
  } finally {
    await admin.close();
  }
}

export async function runQjm(argv: string[], io: CliIo): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    if (!cmd || cmd === 'help' || cmd === '--help' || cmd === '-h') {
      io.out(USAGE);
      return cmd ? 0 : 2;
    }
    const f = parseFlags(rest, BOOLEANS);
    if (f.help) {
      io.out(USAGE);
      return 0;
    }
    switch (cmd) {
      case 'status':
        return await cmdStatus(f, io);
      case 'format':
        return await cmdFormat(f, io);
      case 'segments':
        return await cmdSegments(f, io);
      case 'finalize':
        return await cmdFinalize(f, io);
      case 'purge':
        return await cmdPurge(f, io);
      case 'tail':
        return await cmdTail(f, io);
      case 'dump': {
        const file = f._[0];
        if (!file) throw new UsageError('qjm dump FILE');
        const format = str(f, 'format', false) ?? 'text';
        if (!['text', 'hex', 'len'].includes(format)) throw new UsageError('--format must be text, hex or len');
        return dumpSegment(file, format, io, f.json === true);
      }
      case 'add-peer':
        return await cmdChangePeers(f, io, 'add');
      case 'remove-peer':
        return await cmdChangePeers(f, io, 'remove');
      case 'change-peers':
        return await cmdChangePeers(f, io, 'change');
      case 'transfer-leader':
        return await cmdTransferLeader(f, io);
      case 'snapshot':
        return await cmdSnapshot(f, io);
      case 'bench': {
        const { runBenchCli } = await import('../bench/bench.js');
        return await runBenchCli(rest);
      }
      case 'demo': {
        const { runDemo } = await import('../demo/demo.js');
        return await runDemo({});
      }
      default:
        throw new UsageError(`unknown command ${JSON.stringify(cmd)}`);
    }
  } catch (e) {
    const code = exitCodeFor(e);
    if (e instanceof UsageError) io.err(`qjm ${cmd}: ${e.message}\n\n${USAGE}`);
    else if (e instanceof QjmError) io.err(`qjm ${cmd}: ${e.code}: ${e.message}`);
    else io.err(`qjm ${cmd}: ${(e as Error).message}`);
    return code;
  }
}
