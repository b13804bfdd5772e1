// libqjm's RPC layer: protobuf over HTTP (undici, keep-alive pools) to the JournalNodes. Writes go to the
// leader (following NOT_LEADER redirects) and are retried with capped backoff until they succeed, fail
// finally, or the deadline passes: every write but format is safe to repeat (PROTOCOL.md), and format is
// never retried once it may have been applied. Reads may go to any node. Every failure becomes a typed
// QjmError with a stable code.

import { HttpPools } from '../src/http-pool.js';
import type { ClientTls, HttpError, HttpResponse } from '../src/http-pool.js';
import { qjournal } from '../src/gen/proto.js';
import { isErrorName, makeError, type QjmError, QuorumUnavailableError } from '../src/errors.js';
import type { ErrorName, QjmErrorDetails } from '../src/errors.js';
import { RouteTable } from './route-table.js';
import { MEMBERS_HEADER, parseMembersHeader } from '../src/peers.js';
import { DEFAULT_RETRY, withRetry } from './retry-policy.js';
import type { RetryObserver, RetryOptions } from './retry-policy.js';

const pb = qjournal.journal;

export type WriteRpc =
  | 'format'
  | 'newEpoch'
  | 'startLogSegment'
  | 'journal'
  | 'finalizeLogSegment'
  | 'dropSegment'
  | 'purgeLogs';

export interface ClientOptions {
  peers: readonly string[];
  /** One HTTP exchange, ms. */
  requestTimeoutMs?: number;
  connectTimeoutMs?: number;
  retry?: Partial<RetryOptions>;
  /** Mutual TLS (https://); without it, plain HTTP, which nodes refuse unless started with --insecure. */
  tls?: ClientTls;
  /** Hears of each backoff before a retry (what failed, how long retrying goes on). */
  onRetry?: RetryObserver;
}

export interface WriteResult {
  result: qjournal.journal.CommandResult;
  index: number;
  term: number;
}

function nameOf(code: number | null | undefined): ErrorName {
  const n = pb.ErrorCode[code ?? 0] as string | undefined;
  return n && isErrorName(n) ? n : 'INTERNAL';
}

/** The typed error an RpcError describes. */
export function fromRpcError(e: qjournal.journal.IRpcError, where: string): QjmError {
  const details: QjmErrorDetails = {};
  if (e.leaderId) details.leaderId = e.leaderId;
  if (e.leaderAddress) details.leaderAddress = e.leaderAddress;
  if (Number(e.promisedEpoch ?? 0) > 0) details.promisedEpoch = Number(e.promisedEpoch);
  if (e.unknownOutcome) details.unknownOutcome = true;
  if (Number(e.firstAvailableTxid ?? 0) > 0) details.firstAvailableTxId = Number(e.firstAvailableTxid);
  details.node = where;
  return makeError(nameOf(e.code), `${where}: ${e.message ?? ''}`, details);
}

export class JournalClient {
  readonly routes: RouteTable;
  /** The one HTTP pool of this client (AdminClient's /status fetches share it, and its TLS identity). */
  readonly http: HttpPools;
  private readonly requestTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  readonly retry: RetryOptions;
  /** Every retry loop of this client (and of AdminClient over it) reports its backoffs here. */
  readonly onRetry: RetryObserver | undefined;
  private closed = false;

  constructor(options: ClientOptions) {
    if (!Array.isArray(options.peers) || options.peers.length === 0)
      throw new TypeError('peers: at least one JournalNode address (host:port) is required');
    this.routes = new RouteTable(options.peers);
    this.requestTimeoutMs = options.requestTimeoutMs ?? 5000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 1000;
    this.retry = { ...DEFAULT_RETRY, ...(options.retry ?? {}) };
    this.onRetry = options.onRetry;
    this.http = new HttpPools({
      connectTimeoutMs: this.connectTimeoutMs,
      keepHeaders: [MEMBERS_HEADER],
      ...(options.tls ? { tls: options.tls } : {}),
    });
  }

  /**
   * One POST; network failures become retriable errors (TIMEOUT when the request may have been applied). The
   * members list an answer carries goes to the route table.
   */
  async post(
    address: string,
    path: string,
    body: Uint8Array,
    timeoutMs = this.requestTimeoutMs,
    signal?: AbortSignal,
  ): Promise<HttpResponse> {
    // Final: a retry cannot reopen it (a retriable error would spin until the write deadline).
    if (this.closed) throw makeError('INVALID_ARGUMENT', 'the client is closed');
    try {
      const res = await this.http.request(address, 'POST', path, body, timeoutMs, signal);
      const members = res.headers?.[MEMBERS_HEADER];
      const named = members === undefined ? null : parseMembersHeader(members);
      if (named) this.routes.learnMembers(named.addresses, named.appliedIndex);
      return res;
    } catch (e) {
      const err = e as HttpError;
      if (signal?.aborted) throw makeError('SHUTTING_DOWN', `${path}: aborted by the caller`, { node: address });
      this.routes.failed(address);
      // A TLS refusal (wrong CA, wrong host name, not a node) needs its sentence; a network code says enough.
      if (!err.maybeSent) {
        const socketCode = /^E[A-Z]+$/.test(err.code);
        throw makeError('UNAVAILABLE', socketCode ? `${address}: ${err.code}` : err.message, {
          node: address,
          ...(socketCode ? { networkCode: err.code } : {}),
        });
      }
      throw makeError('TIMEOUT', `${address}: ${path} got no answer (${err.code})`, {
        node: address,
        unknownOutcome: true,
      });
    }
  }

  /**
   * One write attempt against the current leader guess. It carries no expected_term: every journal command
   * states its own precondition (the writer's epoch, the txids it continues from), checked when the entry
   * applies, so the term of the leader that proposes it changes nothing (PROTOCOL.md).
   */
  private async writeOnce(rpc: WriteRpc, body: Uint8Array): Promise<WriteResult> {
    const target = this.routes.leaderTarget();
    const res = await this.post(target, `/qjm/${rpc}`, body);
    let wr: qjournal.journal.WriteResponse;
    try {
      wr = pb.WriteResponse.decode(res.body);
    } catch {
      this.routes.failed(target);
      throw makeError(
        'UNAVAILABLE',
        `${target}: HTTP ${res.status} with an unreadable body: ${res.body.toString('utf8', 0, 200)}`,
        { node: target },
      );
    }
    if (wr.error) throw this.refusedBy(target, wr.error);
    const result = (wr.result ?? pb.CommandResult.create()) as qjournal.journal.CommandResult;
    this.routes.confirm(target, Number(wr.raftTerm));
    if ((result.code ?? 0) !== 0) {
      const details: QjmErrorDetails = { node: target };
      if (result.code === pb.ErrorCode.FENCED) details.promisedEpoch = Number(result.epoch);
      throw makeError(nameOf(result.code), `${target}: ${result.message}`, details);
    }
    return { result, index: Number(wr.raftIndex), term: Number(wr.raftTerm) };
  }

  /**
   * An error answer from `target`, as a typed error, after learning what it says about the leader: a node
   * that is not (or no longer) the leader names the one it knows, or that it knows none; any other retriable
   * error drops `target` as the leader.
   */
  private refusedBy(target: string, error: qjournal.journal.IRpcError): QjmError {
    const e = fromRpcError(error, target);
    if (error.term) this.routes.observeTerm(Number(error.term));
    if (e.errorName === 'NOT_LEADER' || e.errorName === 'LEADERSHIP_LOST')
      this.routes.redirect(error.leaderAddress || undefined, Number(error.term ?? 0));
    else if (e.retriable) this.routes.failed(target);
    return e;
  }

  /**
   * A write through the leader, retried with capped backoff while the error is retriable (a command applied
   * once and repeated changes nothing more). Final errors (FENCED, OUT_OF_SYNC, ...) surface at once; past
   * the deadline the caller gets QuorumUnavailableError. With retryUnknownOutcome false, an attempt that may
   * have been applied is not retried either (format: a retry could wipe what was written in between); its
   * error surfaces with details.unknownOutcome.
   */
  write(
    rpc: WriteRpc,
    command: qjournal.journal.ICommand,
    options: { deadlineMs?: number; retryUnknownOutcome?: boolean } = {},
  ): Promise<WriteResult> {
    return this.writeEncoded(rpc, pb.WriteRequest.encode({ command }).finish(), options);
  }

  /**
   * A write whose WriteRequest the caller encoded (the output stream frames its records straight into the
   * request): the same bytes on every attempt, retried as write() retries.
   */
  writeEncoded(
    rpc: WriteRpc,
    body: Uint8Array,
    options: { deadlineMs?: number; retryUnknownOutcome?: boolean } = {},
  ): Promise<WriteResult> {
    const retry = options.deadlineMs === undefined ? this.retry : { ...this.retry, deadlineMs: options.deadlineMs };
    let maybeApplied = false;
    return withRetry(
      () => this.writeOnce(rpc, body),
      retry,
      (e) => {
        if (!e.details.unknownOutcome) return;
        maybeApplied = true;
        if (options.retryUnknownOutcome === false) {
          throw makeError(e.errorName, `${rpc}: ${e.message}; not retried: it may or may not have been applied`, {
            ...e.details,
            unknownOutcome: true,
          });
        }
      },
      (last, elapsedMs) =>
        new QuorumUnavailableError(
          `${rpc} was not acknowledged by a quorum within ${elapsedMs} ms (last error: ${last.code}: ${last.message})`,
          {
            lastError: last.code,
            unknownOutcome: maybeApplied || last.details.unknownOutcome === true,
          },
        ),
      this.onRetry,
    );
  }

  /**
   * A read RPC: tries nodes in turn (or the one given; with `leader`, the known leader first, as a write does)
   * until one answers, retrying retriable errors. `decode` turns the body into the response, which carries an
   * optional `error`. A linearizable read goes to the leader: only it can confirm one, and a node that stops
   * leading (or whose leader changed) fails its waiting reads at once, naming the leader it knows.
   */
  read<T extends { error?: qjournal.journal.IRpcError | null }>(
    path: string,
    body: Uint8Array,
    decode: (b: Buffer) => T,
    options: { node?: string; leader?: boolean; timeoutMs?: number; deadlineMs?: number; signal?: AbortSignal } = {},
  ): Promise<{ node: string; response: T }> {
    const retry = options.deadlineMs === undefined ? this.retry : { ...this.retry, deadlineMs: options.deadlineMs };
    return withRetry(
      async () => {
        const target = options.node ?? (options.leader ? this.routes.leaderTarget() : this.routes.anyTarget());
        if (options.signal?.aborted) throw makeError('INVALID_ARGUMENT', `${path}: aborted by the caller`);
        const res = await this.post(target, path, body, options.timeoutMs ?? this.requestTimeoutMs, options.signal);
        let r: T;
        try {
          r = decode(res.body);
        } catch {
          throw makeError('UNAVAILABLE', `${target}: HTTP ${res.status} with an unreadable body`, { node: target });
        }
        if (r.error) throw this.refusedBy(target, r.error);
        return { node: target, response: r };
      },
      retry,
      () => {},
      (last, elapsedMs) =>
        new QuorumUnavailableError(
          `${path}: no JournalNode answered within ${elapsedMs} ms (last error: ${last.code}: ${last.message})`,
          { lastError: last.code },
        ),
      this.onRetry,
    );
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.http.close();
  }
}
