// libqjm's RPC layer: protobuf over HTTP (undici, keep-alive pools) to the JournalNodes. Writes go to the
// leader (following NOT_LEADER redirects) and are retried with capped backoff until they succeed, fail
// finally, or the deadline passes: every write but format is safe to repeat (PROTOCOL.md), and format is
// never retried once it may have been applied. Reads may go to any node. Every failure becomes a typed
// QjmError with a stable code. Over TLS every server must be a JournalNode, and the very node the members
// put at its address once that is known (ServerIdentities), learned from the answers' members lists.

import { HttpPools } from '../src/http-pool.js';
import { fetchNodeStatus } from '../src/node-status.js';
import type { ClientTls, HttpError, HttpResponse } from '../src/http-pool.js';
import { qjournal } from '../src/gen/proto.js';
import { isErrorName, makeError, type QjmError, QuorumUnavailableError } from '../src/errors.js';
import type { ErrorName, QjmErrorDetails } from '../src/errors.js';
import { RouteTable } from './route-table.js';
import { MEMBERS_HEADER, parseClientPeers, parseMembersHeader } from '../src/peers.js';
import type { ClientPeer } from '../src/peers.js';
import { ServerIdentities } from '../src/security/server-identities.js';
import { DEFAULT_RETRY, withRetry } from './retry-policy.js';
import type { RetryObserver, RetryOptions } from './retry-policy.js';

const pb = qjournal.journal;

/** How often at most the client asks every node it knows for its members, when a target is not established. */
const ESTABLISH_INTERVAL_MS = 1000;

export type WriteRpc =
  | 'format'
  | 'newEpoch'
  | 'startLogSegment'
  | 'journal'
  | 'finalizeLogSegment'
  | 'dropSegment'
  | 'purgeLogs';

export interface ClientOptions {
  /** "host:port", or "id=host:port": then the node at that address must be that one (its certificate). */
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
  /**
   * The HTTP pool requests go through: over TLS it connects only to a node whose identity is established
   * (ServerIdentities.checkEstablished), at the handshake, so nothing is ever sent to another.
   */
  readonly http: HttpPools;
  /**
   * The pool /status goes through (the same client certificate): any JournalNode, checked against what is
   * known; it is how the client learns who the members are before it sends anything else.
   */
  readonly statusHttp: HttpPools;
  private readonly requestTimeoutMs: number;
  private readonly connectTimeoutMs: number;
  readonly retry: RetryOptions;
  /** Every retry loop of this client (and of AdminClient over it) reports its backoffs here. */
  readonly onRetry: RetryObserver | undefined;
  /** Which node is at which address, and the check of each server's certificate (TLS only). */
  readonly identities: ServerIdentities;
  /** The addresses given (asked for their members when a target's identity is not yet established). */
  private readonly seeds: string[];
  /** The members being asked now (one round at a time), and when the last round ended. */
  private establishing: Promise<void> | null = null;
  private lastEstablishedMs = Number.NEGATIVE_INFINITY;
  private closed = false;

  constructor(options: ClientOptions) {
    if (!Array.isArray(options.peers) || options.peers.length === 0)
      throw new TypeError('peers: at least one JournalNode address (host:port) is required');
    let peers: ClientPeer[];
    try {
      peers = parseClientPeers(options.peers);
    } catch (e) {
      throw new TypeError(`peers: ${(e as Error).message}`);
    }
    this.seeds = peers.map((p) => p.address);
    this.routes = new RouteTable(this.seeds);
    this.identities = new ServerIdentities(peers);
    this.requestTimeoutMs = options.requestTimeoutMs ?? 5000;
    this.connectTimeoutMs = options.connectTimeoutMs ?? 1000;
    this.retry = { ...DEFAULT_RETRY, ...(options.retry ?? {}) };
    this.onRetry = options.onRetry;
    this.http = new HttpPools({
      connectTimeoutMs: this.connectTimeoutMs,
      keepHeaders: [MEMBERS_HEADER],
      ...(options.tls
        ? { tls: { ...options.tls, verifyServer: (address, cert) => this.identities.checkEstablished(address, cert) } }
        : {}),
    });
    this.statusHttp = options.tls
      ? new HttpPools({
          connectTimeoutMs: this.connectTimeoutMs,
          connections: 1,
          tls: { ...options.tls, verifyServer: (address, cert) => this.identities.check(address, cert) },
        })
      : this.http;
  }

  /** Whether servers are checked at all (TLS); with --insecure nothing proves who answers. */
  get verifiesServers(): boolean {
    return this.http.secure;
  }

  /**
   * The node at `reporter` names the members of its configuration: who is where, for the check of servers.
   * Connections to an address whose established node is not the one they reached are closed.
   */
  learnMembers(reporter: string, members: readonly ClientPeer[]): void {
    for (const address of this.identities.learn(reporter, members)) {
      this.http.forget(address);
      this.statusHttp.forget(address);
    }
  }

  /** Asks every node this client knows for its members (GET /status): one round at a time, at most once a second. */
  establish(): Promise<void> {
    if (this.establishing) return this.establishing;
    if (Date.now() - this.lastEstablishedMs < ESTABLISH_INTERVAL_MS) return Promise.resolve();
    const targets = [...new Set([...this.seeds, ...this.routes.all()])];
    const timeoutMs = Math.min(2000, this.requestTimeoutMs);
    this.establishing = Promise.all(
      targets.map(async (address) => {
        const status = await fetchNodeStatus(address, timeoutMs, this.statusHttp).catch(() => null);
        if (status) this.learnMembers(address, status.peers);
      }),
    ).then(() => {
      this.establishing = null;
      this.lastEstablishedMs = Date.now();
    });
    return this.establishing;
  }

  /** The leader a NOT_LEADER answer from `address` names, when that node's word can be taken. */
  leaderNamedBy(address: string, leaderAddress: string | null | undefined): string | undefined {
    return leaderAddress && this.established(address) ? leaderAddress : undefined;
  }

  /**
   * Whether what the node at `address` says can be taken (its members list, its view of the leader): the node
   * there is established and it is the one that answered. Always without TLS, where nothing is checked.
   */
  established(address: string): boolean {
    if (!this.verifiesServers) return true;
    const id = this.identities.identityAt(address);
    const presented = this.identities.presentedAt(address);
    // Before any handshake there, a known id is enough: the handshake will hold the node to it.
    return id.kind === 'known' && (presented === undefined || presented === id.id);
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
    // Learn who is where first: the connection below is refused at its handshake unless the node there is established.
    if (this.verifiesServers && !this.established(address)) await this.establish();
    try {
      const res = await this.http.request(address, 'POST', path, body, timeoutMs, signal);
      const members = res.headers?.[MEMBERS_HEADER];
      const named = members === undefined ? null : parseMembersHeader(members);
      if (named) {
        this.learnMembers(address, named.members);
        // Where to send requests follows the members only as an established node names them: a stranger's
        // certificate claiming a far-ahead configuration does not move this client.
        if (this.established(address)) this.routes.learnMembers(named.addresses, named.appliedIndex);
      }
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
    if (wr.error) {
      const e = fromRpcError(wr.error, target);
      if (e.errorName === 'NOT_LEADER')
        this.routes.redirect(this.leaderNamedBy(target, wr.error.leaderAddress), Number(wr.error.term ?? 0));
      else if (e.errorName === 'STOOD_DOWN') throw this.stoodDown(target, e);
      else if (e.retriable) this.routes.failed(target);
      throw e;
    }
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
   * A read RPC: tries nodes in turn (or the one given) until one answers, retrying retriable errors. `decode`
   * turns the body into the response, which carries an optional `error`.
   */
  read<T extends { error?: qjournal.journal.IRpcError | null }>(
    path: string,
    body: Uint8Array,
    decode: (b: Buffer) => T,
    options: { node?: string; timeoutMs?: number; deadlineMs?: number; signal?: AbortSignal } = {},
  ): Promise<{ node: string; response: T }> {
    const retry = options.deadlineMs === undefined ? this.retry : { ...this.retry, deadlineMs: options.deadlineMs };
    return withRetry(
      async () => {
        const target = options.node ?? this.routes.anyTarget();
        if (options.signal?.aborted) throw makeError('INVALID_ARGUMENT', `${path}: aborted by the caller`);
        const res = await this.post(target, path, body, options.timeoutMs ?? this.requestTimeoutMs, options.signal);
        let r: T;
        try {
          r = decode(res.body);
        } catch {
          throw makeError('UNAVAILABLE', `${target}: HTTP ${res.status} with an unreadable body`, { node: target });
        }
        if (r.error) {
          if (r.error.term) this.routes.observeTerm(Number(r.error.term));
          const e = fromRpcError(r.error, target);
          throw e.errorName === 'STOOD_DOWN' && options.node === undefined ? this.stoodDown(target, e) : e;
        }
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

  /**
   * A node answered that it stood down: it left its cluster for good, so it is out of this client's rotation and
   * the request goes to the others (a retriable UNAVAILABLE naming it). Only when every node the client knows
   * stood down is the answer final: there is nobody left to ask.
   */
  stoodDown(address: string, e: QjmError): QjmError {
    this.routes.stoodDown(address);
    if (this.routes.allStoodDown()) return e;
    return makeError('UNAVAILABLE', `${e.message} (trying the other nodes)`, { node: address, stoodDown: true });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.http.close();
    if (this.statusHttp !== this.http) await this.statusHttp.close();
  }
}
