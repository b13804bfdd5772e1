// QuorumJournalManager: what the active master links to write the journal and the standby links to tail it.
// Fencing is a new epoch committed through Raft; recovery finalizes (or drops, when empty) the in-progress
// segment a dead writer left; segments are then started, written and finalized. Errors: docs/ERRORS.md.

import crypto from 'node:crypto';
import { qjournal } from '../src/gen/proto.js';
import { journalStateFromProto } from '../src/journal-state.js';
import { InvalidArgumentError, NotFormattedError } from '../src/errors.js';
import { isJournalId, JOURNAL_ID_RULE } from '../src/ids.js';
import { parseClientPeers } from '../src/peers.js';
import { EditLogOutputStream } from './output-stream.js';
import { readEdits } from './edit-reader.js';
import type { Edit, ReadEditsOptions } from './edit-reader.js';
import { JournalClient } from './journal-client.js';
import type { RetryObserver, RetryOptions } from './retry-policy.js';
import { resolveTls } from './tls-option.js';
import type { TlsOption } from './tls-option.js';

const pb = qjournal.journal;

export interface NamespaceInfo {
  namespaceId: number;
  clusterId: string;
  blockPoolId?: string;
  ctime?: number;
}

export interface QjmOptions {
  /** The journal (one per namespace). */
  journalId: string;
  /**
   * JournalNode addresses (host:port); any subset that reaches the cluster works, the rest is learned. Each may
   * name its node (id=host:port): the server there must then present that node's certificate.
   */
  peers: string[];
  /** This writer's name, recorded with its epoch (e.g. the NameNode's id). */
  writerId?: string;
  /** Checked by newEpoch against the journal's namespace; when absent the journal's own is used. */
  nsInfo?: NamespaceInfo;
  /** One HTTP exchange, ms (default 5 s). */
  requestTimeoutMs?: number;
  /** A write is retried for at most this long before QuorumUnavailableError (default 20 s, as Hadoop). */
  writeTimeoutMs?: number;
  /** Fencing and recovery get this long (default 120 s, as Hadoop). */
  recoveryTimeoutMs?: number;
  maxRecordBytes?: number;
  /** Largest batch the stream sends in one journal() call (default 2 MiB; at most the nodes' maxBatchBytes). */
  maxBatchBytes?: number;
  /** Output stream backpressure threshold: write() returns false past this (default 8 MiB). */
  highWaterMarkBytes?: number;
  /** A batch goes out without waiting for flush() once this full (default 1 MiB). */
  autoFlushBytes?: number;
  retry?: Partial<RetryOptions>;
  /** Hears of each backoff before a retry: the error, and how long retrying goes on (qjm prints it). */
  onRetry?: RetryObserver;
  /**
   * Mutual TLS: a certificates directory and this client's name in it (D/ca.crt, D/client.<user>.crt/.key,
   * from qjm cert create-client), or the PEM material. Without it the library speaks plain HTTP, which
   * JournalNodes refuse unless they were started with --insecure.
   */
  tls?: TlsOption;
}

export interface SegmentDescriptor {
  firstTxId: number;
  lastTxId: number;
  inProgress: boolean;
}

export interface EditLogManifest {
  segments: SegmentDescriptor[];
  committedTxId: number;
}

export interface JournalStatus {
  formatted: boolean;
  nsInfo: NamespaceInfo | null;
  promisedEpoch: number;
  lastWriterEpoch: number;
  writerId: string;
  lastTxId: number;
  segments: (SegmentDescriptor & { sizeBytes: number })[];
  /**
   * What a purge would keep now, as the answering node sees it: every segment ending at or after fromTxId
   * (0: nothing holds the journal back), and why.
   */
  retention: { fromTxId: number; reason: string };
}

function txid(v: unknown, name: string, min = 1): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw new InvalidArgumentError(`${name} must be an integer >= ${min} and at most 2^53-1, got ${String(v)}`);
  }
  return v;
}

function toNs(n: qjournal.journal.INamespaceInfo | null | undefined): NamespaceInfo | null {
  if (!n) return null;
  return {
    namespaceId: Number(n.namespaceId ?? 0),
    clusterId: n.clusterId ?? '',
    blockPoolId: n.blockPoolId ?? '',
    ctime: Number(n.ctime ?? 0),
  };
}

export class QuorumJournalManager {
  readonly journalId: string;
  readonly writerId: string;
  private readonly client: JournalClient;
  private readonly options: Required<Omit<QjmOptions, 'nsInfo' | 'retry' | 'writerId' | 'tls' | 'onRetry'>>;
  private nsInfo: NamespaceInfo | undefined;
  private epochValue = 0;
  private currentStream: EditLogOutputStream | null = null;

  constructor(options: QjmOptions) {
    if (typeof options !== 'object' || options === null) throw new InvalidArgumentError('options object required');
    if (!isJournalId(options.journalId))
      throw new InvalidArgumentError(
        `journalId: expected ${JOURNAL_ID_RULE}, got ${JSON.stringify(options.journalId)}`,
      );
    if (!Array.isArray(options.peers) || options.peers.length === 0 || options.peers.some((p) => typeof p !== 'string'))
      throw new InvalidArgumentError(
        `peers: expected a non-empty list of host:port (or id=host:port), got ${JSON.stringify(options.peers)}`,
      );
    try {
      parseClientPeers(options.peers);
    } catch (e) {
      throw new InvalidArgumentError(`peers: ${(e as Error).message}`);
    }
    if (options.writerId !== undefined && (typeof options.writerId !== 'string' || options.writerId.length > 256))
      throw new InvalidArgumentError('writerId: expected a string of at most 256 characters');
    if (options.onRetry !== undefined && typeof options.onRetry !== 'function')
      throw new InvalidArgumentError('onRetry: expected a function');
    const positive = (v: number | undefined, name: string, def: number) => {
      if (v === undefined) return def;
      if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0)
        throw new InvalidArgumentError(`${name}: expected a positive number, got ${String(v)}`);
      return v;
    };
    this.journalId = options.journalId;
    this.writerId = options.writerId ?? `writer-${process.pid}`;
    this.nsInfo = options.nsInfo;
    this.options = {
      journalId: options.journalId,
      peers: [...options.peers],
      requestTimeoutMs: positive(options.requestTimeoutMs, 'requestTimeoutMs', 5000),
      writeTimeoutMs: positive(options.writeTimeoutMs, 'writeTimeoutMs', 20_000),
      recoveryTimeoutMs: positive(options.recoveryTimeoutMs, 'recoveryTimeoutMs', 120_000),
      maxRecordBytes: positive(options.maxRecordBytes, 'maxRecordBytes', 1 << 20),
      maxBatchBytes: positive(options.maxBatchBytes, 'maxBatchBytes', 2 << 20),
      highWaterMarkBytes: positive(options.highWaterMarkBytes, 'highWaterMarkBytes', 8 << 20),
      autoFlushBytes: positive(options.autoFlushBytes, 'autoFlushBytes', 1 << 20),
    };
    this.client = new JournalClient({
      peers: options.peers,
      requestTimeoutMs: this.options.requestTimeoutMs,
      retry: { deadlineMs: this.options.writeTimeoutMs, ...(options.retry ?? {}) },
      ...(options.tls !== undefined ? { tls: resolveTls(options.tls) } : {}),
      ...(options.onRetry !== undefined ? { onRetry: options.onRetry } : {}),
    });
  }

  /** The epoch this writer holds (0 before recoverUnfinalizedSegments). */
  get epoch(): number {
    return this.epochValue;
  }

  /** The JournalNode last seen leading, if any. */
  get leader(): string | null {
    return this.client.routes.knownLeader;
  }

  // ---------------------------------------------------------------- format and state

  /**
   * Formats the journal (on every JournalNode, through Raft). With force, a journal holding data is wiped
   * (epochs stay, so fenced writers stay fenced); the leader refuses that with WRITER_ACTIVE while the
   * journal's writer is alive unless allowActiveWriter. Never retried once an attempt may have been applied.
   */
  async format(nsInfo: NamespaceInfo, options: { force?: boolean; allowActiveWriter?: boolean } = {}): Promise<void> {
    txid(nsInfo?.namespaceId, 'nsInfo.namespaceId', 0);
    const format = { nsInfo, force: options.force === true, allowActiveWriter: options.allowActiveWriter === true };
    await this.client.write('format', { jid: this.journalId, format }, { retryUnknownOutcome: false });
    this.nsInfo = nsInfo;
  }

  async getJournalState(options: { linearizable?: boolean } = {}): Promise<JournalStatus> {
    const body = pb.GetJournalStateRequest.encode({
      jid: this.journalId,
      read: { linearizable: options.linearizable !== false },
    }).finish();
    const { response } = await this.client.read('/qjm/getJournalState', body, (b) =>
      pb.GetJournalStateResponse.decode(b),
    );
    const { jid: _jid, nsInfo, segments, ...s } = journalStateFromProto(response.state ?? {});
    return {
      ...s,
      retention: { fromTxId: Number(response.retention?.fromTxid ?? 0), reason: response.retention?.reason ?? '' },
      nsInfo: s.formatted ? toNs(nsInfo) : null,
      segments: segments.map(({ firstTxId, lastTxId, inProgress, sizeBytes }) => ({
        firstTxId,
        lastTxId,
        inProgress,
        sizeBytes,
      })),
    };
  }

  /** True if the journal is formatted and holds any segment or txid (Hadoop's hasSomeData). */
  async hasSomeData(): Promise<boolean> {
    const s = await this.getJournalState();
    return s.formatted && (s.segments.length > 0 || s.lastTxId > 0);
  }

  // ---------------------------------------------------------------- writing

  /**
   * Fences every prior writer (a new epoch, committed through Raft), then finalizes the in-progress segment a
   * dead writer left at its last txid, or drops it when it holds none. Returns the epoch and the last txid.
   */
  async recoverUnfinalizedSegments(): Promise<{ epoch: number; lastTxId: number }> {
    const deadlineMs = this.options.recoveryTimeoutMs;
    let ns = this.nsInfo;
    if (!ns) {
      const st = await this.getJournalState();
      if (!st.formatted || !st.nsInfo) throw new NotFormattedError(`journal ${this.journalId} is not formatted`);
      ns = st.nsInfo;
    }
    // One request id for every retry of this newEpoch: a retry whose first attempt committed answers the same
    // epoch instead of fencing this writer with another one.
    const requestId = crypto.randomUUID();
    const r = await this.client.write(
      'newEpoch',
      { jid: this.journalId, newEpoch: { nsInfo: ns, writerId: this.writerId, requestId } },
      { deadlineMs },
    );
    const epoch = Number(r.result.epoch);
    this.epochValue = epoch;
    const state = journalStateFromProto(r.result.state ?? {});
    const last = state.segments[state.segments.length - 1];
    if (last?.inProgress) {
      const first = last.firstTxId;
      if (last.lastTxId >= first) {
        await this.client.write(
          'finalizeLogSegment',
          { jid: this.journalId, finalizeSegment: { epoch, firstTxid: first, lastTxid: last.lastTxId } },
          { deadlineMs },
        );
      } else {
        await this.client.write(
          'dropSegment',
          { jid: this.journalId, dropSegment: { epoch, firstTxid: first } },
          { deadlineMs },
        );
      }
    }
    return { epoch, lastTxId: state.lastTxId };
  }

  private requireEpoch(): number {
    if (this.epochValue === 0)
      throw new InvalidArgumentError('no epoch: call recoverUnfinalizedSegments() first (it fences prior writers)');
    return this.epochValue;
  }

  /** Opens a new in-progress segment at txid and returns its output stream. */
  async startLogSegment(firstTxId: number, layoutVersion: number): Promise<EditLogOutputStream> {
    const epoch = this.requireEpoch();
    txid(firstTxId, 'txid');
    if (!Number.isInteger(layoutVersion))
      throw new InvalidArgumentError(`layoutVersion must be an integer, got ${String(layoutVersion)}`);
    await this.client.write('startLogSegment', {
      jid: this.journalId,
      startSegment: { epoch, txid: firstTxId, layoutVersion },
    });
    this.currentStream = new EditLogOutputStream(this.client, {
      jid: this.journalId,
      epoch,
      segmentTxId: firstTxId,
      nextTxId: firstTxId,
      maxRecordBytes: this.options.maxRecordBytes,
      maxBatchBytes: this.options.maxBatchBytes,
      highWaterMarkBytes: this.options.highWaterMarkBytes,
      autoFlushBytes: this.options.autoFlushBytes,
      writeTimeoutMs: this.options.writeTimeoutMs,
    });
    return this.currentStream;
  }

  async finalizeLogSegment(firstTxId: number, lastTxId: number): Promise<void> {
    const epoch = this.requireEpoch();
    txid(firstTxId, 'firstTxId');
    txid(lastTxId, 'lastTxId');
    if (lastTxId < firstTxId) throw new InvalidArgumentError(`lastTxId ${lastTxId} is before firstTxId ${firstTxId}`);
    await this.client.write('finalizeLogSegment', {
      jid: this.journalId,
      finalizeSegment: { epoch, firstTxid: firstTxId, lastTxid: lastTxId },
    });
  }

  /** Deletes finalized segments that end below minTxIdToKeep. */
  async purgeLogsOlderThan(minTxIdToKeep: number): Promise<void> {
    const epoch = this.requireEpoch();
    txid(minTxIdToKeep, 'minTxIdToKeep', 0);
    await this.client.write('purgeLogs', { jid: this.journalId, purge: { epoch, minTxidToKeep: minTxIdToKeep } });
  }

  // ---------------------------------------------------------------- reading

  async getEditLogManifest(
    sinceTxId: number,
    options: { inProgressOk?: boolean; linearizable?: boolean } = {},
  ): Promise<EditLogManifest> {
    txid(sinceTxId, 'sinceTxId', 0);
    const body = pb.GetManifestRequest.encode({
      jid: this.journalId,
      sinceTxid: sinceTxId,
      inProgressOk: options.inProgressOk === true,
      read: { linearizable: options.linearizable !== false },
    }).finish();
    const { response } = await this.client.read('/qjm/getEditLogManifest', body, (b) =>
      pb.GetManifestResponse.decode(b),
    );
    return {
      segments: (response.segments ?? []).map((g) => ({
        firstTxId: Number(g.firstTxid),
        lastTxId: Number(g.lastTxid),
        inProgress: g.inProgress ?? false,
      })),
      committedTxId: Number(response.committedTxid ?? 0),
    };
  }

  /** Committed edits from opts.fromTxId on; with follow, waits for new ones (end it with break or a signal). */
  readEdits(options: ReadEditsOptions): AsyncGenerator<Edit, void, undefined> {
    txid(options?.fromTxId, 'fromTxId');
    return readEdits(this.client, this.journalId, options);
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
