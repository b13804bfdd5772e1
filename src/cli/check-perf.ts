// qjm check perf (etcdctl check perf's idea for a journal): durable writes, one at a time, to a scratch journal of
// its own, timed as a master's logSync sees them; then each member's fdatasync percentiles, read off its /metrics
// over the minute the writes fill. Pass or fail against what a NameNode needs: its writes abort after
// dfs.qjournal.write-txns.timeout.ms (20 s), and Hadoop's QJM and JournalNode both warn from 1 s — a write or a
// sync past a second is the early sign of the stall that kills a master. The scratch journal is wiped after.

import { QuorumJournalManager } from '../../libqjm/index.js';
import type { AdminClient } from '../../libqjm/index.js';
import { percentile } from '../bench/workloads.js';
import type { CommandSpec, FlagValues } from '../command-line.js';
import { UsageError } from '../command-line.js';
import { QjmError } from '../errors.js';
import { renderTable } from '../text-table.js';
import { adminClient, CONNECT, JSON_OUT, qjmOptions } from './connect.js';
import type { CliIo } from './connect.js';

/** Hadoop warns from here: IPCLoggerChannel for a batch sent to a JournalNode, Journal for a sync on one. */
export const WARN_LATENCY_MS = 1000;
/** What a NameNode tolerates before it aborts (dfs.qjournal.write-txns.timeout.ms). */
const NAMENODE_TIMEOUT_MS = 20_000;
/** The journal the check writes to, unless told another; formatted if need be, wiped after. */
export const CHECK_JOURNAL = 'qjm-check-perf';
const CHECK_WRITER = 'qjm-check-perf';
/** The fdatasync summary a node keeps over the last minute (Hadoop's Syncs60s). */
const FSYNC_METRIC = 'qjournal_log_fsync_60s_seconds';

export const CHECK_PERF = {
  name: 'qjm check perf',
  summary:
    "Durable writes one at a time to a scratch journal, and each node's fdatasync p50/p99: pass or fail against a NameNode's needs.",
  flags: {
    ...CONNECT,
    jid: {
      type: 'string',
      valueName: 'ID',
      description: `the scratch journal to write to (default ${CHECK_JOURNAL}; formatted if absent, wiped after; never a master's)`,
    },
    writes: { type: 'uint', valueName: 'N', description: 'durable writes, one at a time (default 300)' },
    'record-bytes': {
      type: 'uint',
      valueName: 'B',
      description: 'bytes per record (default 200, an edit of a NameNode)',
    },
    'max-ms': {
      type: 'uint',
      valueName: 'MS',
      description: `fail when a write round trip's or a node's fdatasync p99 is above MS (default ${WARN_LATENCY_MS})`,
    },
    json: JSON_OUT,
  },
} as const satisfies CommandSpec;

type Flags = FlagValues<typeof CHECK_PERF>;

export interface NodeSyncs {
  id: string;
  address: string;
  role: string;
  p50Ms: number | null;
  p99Ms: number | null;
  error: string | null;
}

/**
 * The fdatasync quantiles in a node's /metrics text (seconds, as Prometheus has them) in ms; null where the
 * node has none (no sync in the window: "NaN"). Every value is checked: the text is a node's answer.
 */
export function fsyncQuantilesMs(metrics: string): { p50Ms: number | null; p99Ms: number | null } {
  const at = (q: string): number | null => {
    const m = new RegExp(`^${FSYNC_METRIC}\\{quantile="${q.replace('.', '\\.')}"[^}\\n]*\\} (\\S+)$`, 'm').exec(
      metrics,
    );
    const v = m ? Number(m[1]) : Number.NaN;
    return Number.isFinite(v) && v >= 0 && v < 86_400 ? v * 1000 : null;
  };
  return { p50Ms: at('0.5'), p99Ms: at('0.99') };
}

async function checkPerf(f: Flags, io: CliIo): Promise<number> {
  const writes = f.writes ?? 300;
  const recordBytes = f['record-bytes'] ?? 200;
  const maxMs = f['max-ms'] ?? WARN_LATENCY_MS;
  if (writes < 1 || writes > 100_000) throw new UsageError('--writes must be from 1 to 100000');
  if (recordBytes < 1 || recordBytes > 1 << 20) throw new UsageError('--record-bytes must be from 1 to 1048576');
  if (maxMs < 1) throw new UsageError('--max-ms must be at least 1');
  const jid = f.jid ?? CHECK_JOURNAL;
  const admin = adminClient(f, io);
  try {
    const writeMs = await timedWrites(f, io, { jid, writes, recordBytes });
    const nodes = await nodeSyncs(admin);
    return report(f, io, { jid, writes, recordBytes, maxMs, writeMs, nodes });
  } finally {
    await admin.close();
  }
}

/**
 * `writes` records to the scratch journal, each flushed (durable on a quorum) before the next is written: the
 * latency of each flush, in ms. The journal is formatted first if need be and wiped after (epochs stay).
 */
async function timedWrites(
  f: Flags,
  io: CliIo,
  o: { jid: string; writes: number; recordBytes: number },
): Promise<number[]> {
  const nsInfo = { namespaceId: 1, clusterId: CHECK_JOURNAL, blockPoolId: '' };
  const q = new QuorumJournalManager({ journalId: o.jid, ...qjmOptions(f, io), writerId: CHECK_WRITER, nsInfo });
  try {
    const st = await q.getJournalState();
    if (!st.formatted) await q.format(nsInfo);
    else if (st.writerId !== '' && st.writerId !== CHECK_WRITER)
      throw new QjmError(
        'INVALID_ARGUMENT',
        `journal ${o.jid} is written by ${st.writerId}, not by the check: give --jid a journal of the check's own (default ${CHECK_JOURNAL})`,
      );
    const { lastTxId } = await q.recoverUnfinalizedSegments();
    const out = await q.startLogSegment(lastTxId + 1, -64);
    const record = new Uint8Array(o.recordBytes).fill(0x71);
    const latenciesMs: number[] = [];
    for (let i = 0; i < o.writes; i++) {
      out.write(record);
      const t0 = performance.now();
      await out.flush();
      latenciesMs.push(performance.now() - t0);
    }
    await q.finalizeLogSegment(lastTxId + 1, lastTxId + o.writes);
    // Wiped: the check leaves an empty journal, whatever it wrote (its own writer, seconds ago: allowed).
    await q.format(nsInfo, { force: true, allowActiveWriter: true });
    return latenciesMs;
  } finally {
    await q.close();
  }
}

/** Every member's fdatasync percentiles over the last minute, from its /metrics (an error for one that does not answer). */
async function nodeSyncs(admin: AdminClient): Promise<NodeSyncs[]> {
  const m = await admin.membership();
  const members = m.peers.filter((p) => p.address !== '');
  const texts = await admin.metricsOf(members.map((p) => p.address));
  return members.map((p, i) => {
    const t = texts[i]!;
    const role = p.id === m.leader ? 'leader' : p.role;
    if (t.text === null) return { id: p.id, address: p.address, role, p50Ms: null, p99Ms: null, error: t.error };
    const q = fsyncQuantilesMs(t.text);
    return {
      id: p.id,
      address: p.address,
      role,
      ...q,
      error: q.p99Ms === null ? 'no fdatasync in the last minute' : null,
    };
  });
}

const ms = (v: number | null) => (v === null ? '-' : `${v < 10 ? v.toFixed(2) : v.toFixed(1)} ms`);

function report(
  f: Flags,
  io: CliIo,
  r: { jid: string; writes: number; recordBytes: number; maxMs: number; writeMs: number[]; nodes: NodeSyncs[] },
): number {
  const sorted = [...r.writeMs].sort((a, b) => a - b);
  const write = { p50Ms: percentile(sorted, 0.5), p99Ms: percentile(sorted, 0.99), maxMs: sorted[sorted.length - 1]! };
  const writeOk = write.p99Ms <= r.maxMs;
  const nodeOk = (n: NodeSyncs) => n.error === null && n.p99Ms !== null && n.p99Ms <= r.maxMs;
  const pass = writeOk && r.nodes.every(nodeOk);
  if (f.json) {
    io.out(
      JSON.stringify({
        pass,
        maxMs: r.maxMs,
        jid: r.jid,
        writes: r.writes,
        recordBytes: r.recordBytes,
        write,
        nodes: r.nodes,
      }),
    );
    return pass ? 0 : 1;
  }
  io.out(
    `${r.writes} durable writes of ${r.recordBytes} bytes to journal ${r.jid}, one at a time (each a quorum round trip with its fdatasyncs)\n`,
  );
  io.out(
    renderTable(
      ['NODE', 'ADDRESS', 'ROLE', 'FDATASYNC P50', 'FDATASYNC P99', ''],
      r.nodes.map((n) => [
        n.id,
        n.address,
        n.role,
        ms(n.p50Ms),
        ms(n.p99Ms),
        nodeOk(n) ? 'ok' : `FAIL${n.error ? `: ${n.error}` : ''}`,
      ]),
    ),
  );
  io.out(
    `\nwrite round trip: p50 ${ms(write.p50Ms)}, p99 ${ms(write.p99Ms)}, max ${ms(write.maxMs)}  ${writeOk ? 'ok' : 'FAIL'}`,
  );
  io.out(
    pass
      ? `PASS: every p99 is at most ${r.maxMs} ms (fdatasync over the last minute); a NameNode aborts after ${NAMENODE_TIMEOUT_MS / 1000} s without an answer, and Hadoop warns from ${WARN_LATENCY_MS} ms`
      : `FAIL: a p99 above ${r.maxMs} ms (or a node without an answer): a NameNode aborts after ${NAMENODE_TIMEOUT_MS / 1000} s without an answer, and stalls long before; look at the node's disk (fdatasync) or the network between the nodes`,
  );
  return pass ? 0 : 1;
}

export function cmdCheckPerf(f: Flags, io: CliIo): Promise<number> {
  return checkPerf(f, io);
}
