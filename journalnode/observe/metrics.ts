// Prometheus metrics of one JournalNode (GET /metrics): Raft progress, elections and leader changes, per
// follower lag in entries, bytes and txids (on the leader), log write latency and fdatasync percentiles over
// 60 s / 300 s / 3600 s (Hadoop's Syncs60s..3600s), per journal the last txid, promised and writer epochs
// (LastWrittenTxId, LastPromisedEpoch, LastWriterEpoch), batches / txns / bytes written, waiting long
// polls, peer queues, RPC latency. docs/OPERATIONS.md maps them to Hadoop's names. A registry per node, so several nodes
// can run in one process (tests).

import client from 'prom-client';
import type { ReplicaStatus } from '../../src/replica/replica.js';
import type { ReplicaLog } from '../../src/replica/env.js';
import type { Entry, HardState, SnapshotMeta } from '../../src/raft/types.js';
import type { JournalStateMachine } from '../state/journal-state-machine.js';
import type { PeerTransport } from '../peers/peer-transport.js';
import { TxidMarks } from './txid-marks.js';

/** What the gauges read, attached once the parts exist (the log and state machine feed counters before). */
export interface MetricSources {
  replica: { status(): ReplicaStatus; readonly isLeader: boolean };
  stateMachine: JournalStateMachine;
  transport: PeerTransport;
  /** Bytes of this node's Raft log after an index (the leader's byte lag of a follower). */
  logBytesAfter(index: number): number;
  /** Answer bytes the node holds for its clients now (journalnode/http/response-budget.ts). */
  responseBytes(): number;
}

/** Why the node refused or cut a client's connection or answer (qjournal_http_refused_total). */
export type RefusalReason =
  | 'response_budget'
  | 'response_stalled'
  | 'connections_total'
  | 'connections_per_address'
  | 'tls_handshake_timeout'
  | 'first_request_timeout';

/** The fdatasync percentiles, as Hadoop's JournalNode reports them. */
export const FSYNC_PERCENTILES = [0.5, 0.75, 0.9, 0.95, 0.99];
/** The windows (seconds) of the fdatasync percentiles, Hadoop's Syncs60s, Syncs300s, Syncs3600s. */
export const FSYNC_WINDOWS_S = [60, 300, 3600];

type Labels = Record<string, string>;

export class NodeMetrics {
  readonly registry = new client.Registry();
  readonly logWriteSeconds: client.Histogram;
  readonly logWriteBytes: client.Counter;
  readonly logWrites: client.Counter;
  readonly batchesWritten: client.Counter<'jid'>;
  readonly txnsWritten: client.Counter<'jid'>;
  readonly bytesWritten: client.Counter<'jid'>;
  readonly rpcSeconds: client.Histogram<'rpc' | 'code'>;
  readonly elections: client.Counter;
  readonly leaderChanges: client.Counter;
  readonly refusals: client.Counter<'reason'>;
  private readonly fsyncWindows: client.Summary[];
  /** Where each journal's txids sit in the log: the leader's txid lag of a follower. */
  readonly txidMarks = new TxidMarks();

  private sources: MetricSources | null = null;

  constructor(id: string) {
    const r = this.registry;
    r.setDefaultLabels({ node: id });
    client.collectDefaultMetrics({ register: r, prefix: 'qjournal_process_' });
    this.raftGauges();
    this.journalGauges();
    this.peerGauges();
    this.logWriteSeconds = new client.Histogram({
      name: 'qjournal_log_write_seconds',
      help: 'Raft log write latency: one group-committed write and its fdatasync',
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5],
      registers: [r],
    });
    this.logWriteBytes = new client.Counter({
      name: 'qjournal_log_write_bytes_total',
      help: 'Entry bytes written to the Raft log',
      registers: [r],
    });
    this.logWrites = new client.Counter({
      name: 'qjournal_log_writes_total',
      help: 'Raft log writes (each one fdatasync)',
      registers: [r],
    });
    this.batchesWritten = new client.Counter({
      name: 'qjournal_journal_batches_written_total',
      help: 'Batches of records appended by journal() RPCs (BatchesWritten)',
      labelNames: ['jid'],
      registers: [r],
    });
    this.txnsWritten = new client.Counter({
      name: 'qjournal_journal_txns_written_total',
      help: 'Transactions applied (TxnsWritten)',
      labelNames: ['jid'],
      registers: [r],
    });
    this.bytesWritten = new client.Counter({
      name: 'qjournal_journal_bytes_written_total',
      help: 'Edit bytes applied (BytesWritten)',
      labelNames: ['jid'],
      registers: [r],
    });
    this.fsyncWindows = FSYNC_WINDOWS_S.map(
      (windowS) =>
        new client.Summary({
          name: `qjournal_log_fsync_${windowS}s_seconds`,
          help: `fdatasync latency of Raft log appends, percentiles over the last ${windowS} s (Hadoop Syncs${windowS}s)`,
          percentiles: FSYNC_PERCENTILES,
          maxAgeSeconds: windowS,
          ageBuckets: 5,
          registers: [r],
        }),
    );
    this.elections = new client.Counter({
      name: 'qjournal_raft_elections_total',
      help: 'Elections this node started (it became a candidate)',
      registers: [r],
    });
    this.leaderChanges = new client.Counter({
      name: 'qjournal_raft_leader_changes_total',
      help: 'Times this node saw a new leader',
      registers: [r],
    });
    this.refusals = this.httpMetrics();
    this.rpcSeconds = new client.Histogram({
      name: 'qjournal_rpc_seconds',
      help: 'Journal RPC latency by RPC and HTTP status',
      labelNames: ['rpc', 'code'],
      buckets: [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30],
      registers: [r],
    });
  }

  /** What the node holds for its clients, and what it refused or cut to stay within its bounds. */
  private httpMetrics(): client.Counter<'reason'> {
    this.gauge(
      'qjournal_http_response_bytes',
      'Answer bytes the node holds for its clients (within maxResponseBytesInFlight)',
      () => this.sources?.responseBytes() ?? 0,
    );
    return new client.Counter({
      name: 'qjournal_http_refused_total',
      help: 'Connections and answers refused or cut to keep the node within its bounds, by reason',
      labelNames: ['reason'],
      registers: [this.registry],
    });
  }

  /** A gauge read at scrape time: one value, or one per label set. */
  private gauge(name: string, help: string, read: () => number | [Labels, number][], labelNames: string[] = []): void {
    new client.Gauge({
      name,
      help,
      labelNames,
      registers: [this.registry],
      collect() {
        const v = read();
        if (typeof v === 'number') return this.set(v);
        this.reset();
        for (const [labels, value] of v) this.set(labels, value);
      },
    });
  }

  private raftGauges(): void {
    const st = () => this.sources?.replica.status();
    this.gauge('qjournal_raft_term', 'Current Raft term', () => st()?.term ?? 0);
    this.gauge('qjournal_raft_is_leader', '1 if this node is the Raft leader', () =>
      this.sources?.replica.isLeader ? 1 : 0,
    );
    this.gauge('qjournal_raft_commit_index', 'Raft commit index', () => st()?.commitIndex ?? 0);
    this.gauge('qjournal_raft_applied_index', 'Raft applied index', () => st()?.appliedIndex ?? 0);
    this.gauge('qjournal_raft_last_index', 'Last index in the Raft log', () => st()?.lastIndex ?? 0);
    this.gauge('qjournal_raft_disk_index', 'Last index durable on this node', () => st()?.stableIndex ?? 0);
    this.gauge('qjournal_raft_snapshot_index', 'Index of the newest snapshot', () => st()?.snapshotIndex ?? 0);
    this.gauge('qjournal_raft_apply_lag_entries', 'Committed entries not yet applied here', () => {
      const s = st();
      return s ? s.commitIndex - s.appliedIndex : 0;
    });
    const perFollower = (name: string, help: string, fn: (s: ReplicaStatus, match: number) => number) =>
      this.gauge(
        name,
        help,
        () => {
          const s = st();
          return s ? Object.entries(s.progress).map(([peer, p]) => [{ peer }, fn(s, p.match)]) : [];
        },
        ['peer'],
      );
    perFollower(
      'qjournal_raft_follower_lag_entries',
      'Leader only: entries a follower is behind the leader',
      (s, match) => Math.max(0, s.lastIndex - match),
    );
    perFollower(
      'qjournal_raft_follower_lag_bytes',
      "Leader only: bytes of the leader's log a follower does not hold",
      (_s, match) => this.sources?.logBytesAfter(match) ?? 0,
    );
  }

  private journalGauges(): void {
    const perJournal = (
      name: string,
      help: string,
      fn: (j: ReturnType<JournalStateMachine['allJournals']>[number]) => number,
    ) =>
      this.gauge(
        name,
        help,
        () => (this.sources?.stateMachine.allJournals() ?? []).map((j) => [{ jid: j.jid }, fn(j)]),
        ['jid'],
      );
    perJournal('qjournal_journal_promised_epoch', 'Promised writer epoch (LastPromisedEpoch)', (j) => j.promisedEpoch);
    perJournal(
      'qjournal_journal_last_writer_epoch',
      'Epoch of the last writer that wrote (LastWriterEpoch)',
      (j) => j.lastWriterEpoch,
    );
    perJournal('qjournal_journal_last_txid', 'Last txid applied here (LastWrittenTxId)', (j) => j.lastTxId);
    perJournal('qjournal_journal_segments', 'Segments of the journal', (j) => j.segments.length);
    this.gauge(
      'qjournal_journal_lag_txns',
      'Leader only: txids of a journal a follower does not hold yet (CurrentLagTxns)',
      () => {
        const src = this.sources;
        if (!src) return [];
        const s = src.replica.status();
        const out: [Labels, number][] = [];
        for (const j of src.stateMachine.allJournals()) {
          for (const [peer, p] of Object.entries(s.progress))
            out.push([{ jid: j.jid, peer }, this.txidMarks.lagTxns(j.jid, p.match, j.lastTxId)]);
        }
        return out;
      },
      ['jid', 'peer'],
    );
    this.gauge(
      'qjournal_reads_waiting',
      'Readers waiting in a long poll for new edits',
      () => this.sources?.stateMachine.waitingReads ?? 0,
    );
  }

  private peerGauges(): void {
    const perPeer = (name: string, help: string, fn: (p: ReturnType<PeerTransport['stats']>[number]) => number) =>
      this.gauge(name, help, () => (this.sources?.transport.stats() ?? []).map((p) => [{ peer: p.id }, fn(p)]), [
        'peer',
      ]);
    perPeer('qjournal_peer_queue_bytes', 'Bytes queued for a peer', (p) => p.queuedBytes);
    perPeer(
      'qjournal_peer_dropped_messages',
      'Messages dropped because a peer was not keeping up',
      (p) => p.droppedMessages,
    );
  }

  /** One batch of records appended here, at Raft index `index`, taking the journal to lastTxId. */
  recordsAppended(jid: string, txns: number, bytes: number, lastTxId: number, index: number): void {
    this.batchesWritten.inc({ jid });
    this.txnsWritten.inc({ jid }, txns);
    this.bytesWritten.inc({ jid }, bytes);
    this.txidMarks.applied(jid, index, lastTxId - txns, lastTxId);
  }

  /** One fdatasync of the Raft log took `ms`. */
  fsynced(ms: number): void {
    for (const s of this.fsyncWindows) s.observe(ms / 1000);
  }

  /** A connection or an answer refused or cut for a bound. */
  refused(reason: RefusalReason): void {
    this.refusals.inc({ reason });
  }

  electionStarted(): void {
    this.elections.inc();
  }

  leaderChanged(): void {
    this.leaderChanges.inc();
  }

  /** The gauges read these from now on (before, they read as zero). */
  attach(sources: MetricSources): void {
    this.sources = sources;
  }

  /** The node's log, with every write (one group commit and its fdatasync) timed and counted. */
  meteredLog(log: ReplicaLog): ReplicaLog {
    return new MeteredLog(log, this);
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }
}

class MeteredLog implements ReplicaLog {
  constructor(
    private readonly log: ReplicaLog,
    private readonly metrics: NodeMetrics,
  ) {}
  initialHardState(): HardState {
    return this.log.initialHardState();
  }
  snapshotMeta(): SnapshotMeta {
    return this.log.snapshotMeta();
  }
  firstIndex(): number {
    return this.log.firstIndex();
  }
  lastIndex(): number {
    return this.log.lastIndex();
  }
  term(index: number): number | undefined {
    return this.log.term(index);
  }
  entries(lo: number, hi: number, maxBytes: number): Entry[] {
    return this.log.entries(lo, hi, maxBytes);
  }
  write(hs: HardState | null, entries: Entry[], done: (err: Error | null) => void): void {
    const t0 = performance.now();
    let bytes = 0;
    for (const e of entries) bytes += e.data.byteLength;
    this.log.write(hs, entries, (err) => {
      this.metrics.logWriteSeconds.observe((performance.now() - t0) / 1000);
      this.metrics.logWrites.inc();
      this.metrics.logWriteBytes.inc(bytes);
      done(err);
    });
  }
  snapshotSaved(meta: SnapshotMeta, compactTo: number): void {
    this.log.snapshotSaved(meta, compactTo);
  }
  beginReset(meta: SnapshotMeta): void {
    this.log.beginReset(meta);
  }
  commitReset(meta: SnapshotMeta, done: (err: Error | null) => void): void {
    this.log.commitReset(meta, done);
  }
}
