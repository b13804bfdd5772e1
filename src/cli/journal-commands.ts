// qjm's journal verbs: format (a wipe with --force asks first), segments, finalize (fences a dead writer, refused
// while it still writes) and tail (committed edits, or --follow them). Purge has a file of its own (purge.ts).

import { QuorumJournalManager } from '../../libqjm/index.js';
import type { CommandSpec, FlagValues } from '../command-line.js';
import { QjmError } from '../errors.js';
import { WRITER_ACTIVE_MS } from '../journal-state.js';
import { humanBytes, renderTable } from '../text-table.js';
import { escapeControls } from '../terminal-text.js';
import { confirmDestruction } from './confirm.js';
import { adminClient, CONNECT, JID, JSON_OUT, qjmOptions, YES } from './connect.js';
import type { CliIo } from './connect.js';
import { DUMP, renderRecord } from './dump.js';

const RECORD_FORMAT = DUMP.flags.format;

export const FORMAT = {
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

export async function cmdFormat(f: FlagValues<typeof FORMAT>, io: CliIo): Promise<number> {
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

export const SEGMENTS = {
  name: 'qjm segments',
  summary: "A journal's segments, in progress or finalized.",
  flags: {
    ...CONNECT,
    jid: JID,
    since: { type: 'uint', valueName: 'TXID', description: 'only segments that end at or after TXID' },
    json: JSON_OUT,
  },
} as const satisfies CommandSpec;

export async function cmdSegments(f: FlagValues<typeof SEGMENTS>, io: CliIo): Promise<number> {
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

export const FINALIZE = {
  name: 'qjm finalize',
  summary: 'Fence the writer and finalize its open segment (refused while it is writing, unless --force).',
  flags: {
    ...CONNECT,
    jid: JID,
    force: { type: 'boolean', description: 'fence a writer that is still writing' },
    json: JSON_OUT,
  },
} as const satisfies CommandSpec;

export async function cmdFinalize(f: FlagValues<typeof FINALIZE>, io: CliIo): Promise<number> {
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

export const TAIL = {
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

export async function cmdTail(f: FlagValues<typeof TAIL>, io: CliIo): Promise<number> {
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
