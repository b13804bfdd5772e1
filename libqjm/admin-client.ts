// Operator calls the qjm CLI makes: every node's /status, membership changes, reset-peers, leadership transfer,
// snapshots, and how recently a journal was written (to tell a live writer from a dead one). Like every request
// of the client, an admin request goes only to a node whose identity is established (journal-client.ts): a node
// certificate at an address no member names — a stranger's, a removed node's — gets none.

import { qjournal } from '../src/gen/proto.js';
import { makeError } from '../src/errors.js';
import { fetchNodeStatus } from '../src/node-status.js';
import type { MemberJson, NodeStatusJson } from '../src/node-status.js';
import { fromRpcError, JournalClient } from './journal-client.js';
import { withRetry } from './retry-policy.js';
import type { RetryObserver, RetryOptions } from './retry-policy.js';
import { resolveTls } from './tls-option.js';
import type { TlsOption } from './tls-option.js';

const pb = qjournal.journal;

export interface NodeStatusReport {
  endpoint: string;
  status: NodeStatusJson | null;
  error: string | null;
}

export class AdminClient {
  private readonly client: JournalClient;
  /** The addresses given (without the ids some of them may carry). */
  readonly peers: string[];

  /** `peers`: "host:port", or "id=host:port" for a node that must present that id's certificate. */
  constructor(
    peers: string[],
    options: {
      requestTimeoutMs?: number;
      retry?: Partial<RetryOptions>;
      tls?: TlsOption;
      onRetry?: RetryObserver;
    } = {},
  ) {
    this.peers = Array.isArray(peers) ? peers.map((p) => String(p).slice(String(p).indexOf('=') + 1)) : [];
    this.client = new JournalClient({
      peers,
      requestTimeoutMs: options.requestTimeoutMs ?? 3000,
      retry: { deadlineMs: 10_000, ...(options.retry ?? {}) },
      ...(options.tls !== undefined ? { tls: resolveTls(options.tls) } : {}),
      ...(options.onRetry ? { onRetry: options.onRetry } : {}),
    });
  }

  /** GET /status from every endpoint, in parallel; unreachable ones carry an error. */
  statusAll(timeoutMs = 2000): Promise<NodeStatusReport[]> {
    return this.statusOf(this.peers, timeoutMs);
  }

  /** GET /status from each of `endpoints`, in parallel; unreachable ones carry an error. Each names its members. */
  async statusOf(endpoints: readonly string[], timeoutMs = 2000): Promise<NodeStatusReport[]> {
    return Promise.all(
      endpoints.map(async (endpoint) => {
        try {
          const status = await fetchNodeStatus(endpoint, timeoutMs, this.client.statusHttp);
          this.client.learnMembers(endpoint, status.peers);
          return { endpoint, status, error: null };
        } catch (e) {
          return { endpoint, status: null, error: (e as Error).message };
        }
      }),
    );
  }

  /**
   * GET /metrics (Prometheus text) from each of `endpoints`, in parallel, through the same checked connections as
   * /status; an endpoint that does not answer (or answers other than 200) carries an error instead.
   */
  async metricsOf(
    endpoints: readonly string[],
    timeoutMs = 3000,
  ): Promise<{ endpoint: string; text: string | null; error: string | null }[]> {
    return Promise.all(
      endpoints.map(async (endpoint) => {
        try {
          const r = await this.client.statusHttp.request(endpoint, 'GET', '/metrics', null, timeoutMs);
          if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${r.body.toString('utf8', 0, 200)}`);
          return { endpoint, text: r.body.toString('utf8'), error: null };
        } catch (e) {
          return { endpoint, text: null, error: (e as Error).message };
        }
      }),
    );
  }

  /**
   * The leader's address and the current members (id, address, role), from a node whose identity is
   * established (a stranger's certificate claiming to lead is not listened to).
   */
  async membership(): Promise<{ leader: string | null; leaderAddress: string | null; peers: MemberJson[] }> {
    const reports = await this.statusAll();
    for (const r of reports) {
      const s = r.status;
      if (s?.leader && this.client.established(r.endpoint))
        return { leader: s.leader, leaderAddress: s.leaderAddress, peers: s.peers };
    }
    throw makeError('QUORUM_UNAVAILABLE', `no member knows a leader (asked ${this.peers.join(', ')})`);
  }

  /**
   * An admin RPC to the leader (or to `node` alone) under the client's one retry policy, within `timeoutMs`:
   * NOT_LEADER redirects are followed at once, other retriable errors back off; past the deadline the last
   * error surfaces.
   */
  private admin(path: string, body: Uint8Array, timeoutMs: number, node?: string): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    return withRetry(
      async () => {
        const target = node ?? this.client.routes.leaderTarget();
        const res = await this.client.post(target, path, body, Math.max(1000, deadline - Date.now()));
        const ar = pb.AdminResponse.decode(res.body);
        if (!ar.error) return ar.message;
        const e = fromRpcError(ar.error, target);
        if (e.errorName === 'NOT_LEADER')
          this.client.routes.redirect(
            this.client.leaderNamedBy(target, ar.error.leaderAddress),
            Number(ar.error.term ?? 0),
          );
        if (e.errorName === 'STOOD_DOWN' && node === undefined) throw this.client.stoodDown(target, e);
        throw e;
      },
      { ...this.client.retry, deadlineMs: timeoutMs },
      () => {},
      (last) => last,
      this.client.onRetry,
    );
  }

  changePeers(peers: { id: string; address: string; storageId?: string }[], timeoutMs = 120_000): Promise<string> {
    return this.admin('/admin/changePeers', pb.ChangePeersRequest.encode({ peers }).finish(), timeoutMs);
  }

  /**
   * Forces the voters on the one node at `node` (reset-peers: a majority is lost for good). Not retried: the
   * node either did it or says why not.
   */
  async resetPeers(
    node: string,
    peers: { id: string; address: string }[],
    force: boolean,
    timeoutMs = 60_000,
  ): Promise<qjournal.journal.ResetPeersResponse> {
    const res = await this.client.post(
      node,
      '/admin/resetPeers',
      pb.ResetPeersRequest.encode({ peers, force }).finish(),
      timeoutMs,
    );
    const r = pb.ResetPeersResponse.decode(res.body);
    if (r.error) throw fromRpcError(r.error, node);
    return r;
  }

  transferLeader(to: string, timeoutMs = 15_000): Promise<string> {
    return this.admin('/admin/transferLeader', pb.TransferLeaderRequest.encode({ to }).finish(), timeoutMs);
  }

  /**
   * Asks one node (default: the leader) to snapshot now. A snapshot the node is already saving (BUSY) is waited
   * out and the request repeated, so the one taken covers everything applied when this was called.
   */
  async snapshot(node?: string, timeoutMs = 60_000): Promise<string> {
    if (!node) {
      const m = await this.membership();
      if (!m.leaderAddress) throw makeError('QUORUM_UNAVAILABLE', 'no leader known');
      node = m.leaderAddress;
    }
    return this.admin('/admin/snapshot', new Uint8Array(0), timeoutMs, node);
  }

  /** How long ago the leader applied a write to the journal (null: none since it started). */
  async lastWriteAgeMs(jid: string): Promise<{ ageMs: number | null; fromLeader: boolean; node: string }> {
    const body = pb.GetJournalStateRequest.encode({ jid, read: { linearizable: true } }).finish();
    const target = this.client.routes.knownLeader ?? undefined;
    const { node, response } = await this.client.read(
      '/qjm/getJournalState',
      body,
      (b) => pb.GetJournalStateResponse.decode(b),
      target ? { node: target } : {},
    );
    if (!response.fromLeader) {
      // Ask the leader itself: only it applies writes first.
      const m = await this.membership();
      if (m.leaderAddress && m.leaderAddress !== node) {
        const again = await this.client.read(
          '/qjm/getJournalState',
          body,
          (b) => pb.GetJournalStateResponse.decode(b),
          { node: m.leaderAddress },
        );
        const a = Number(again.response.lastWriteAgeMs);
        return { ageMs: a === 0 ? null : a, fromLeader: again.response.fromLeader ?? false, node: again.node };
      }
    }
    const age = Number(response.lastWriteAgeMs);
    return { ageMs: age === 0 ? null : age, fromLeader: response.fromLeader ?? false, node };
  }

  /**
   * Purges under the current writer's epoch: no fencing (it touches only finalized segments); FENCED if a
   * new writer took over meanwhile.
   */
  async purgeAtEpoch(
    jid: string,
    epoch: number,
    minTxIdToKeep: number,
    force = false,
  ): Promise<{ purgedBelowTxId: number }> {
    const { result } = await this.client.write('purgeLogs', {
      jid,
      purge: { epoch, minTxidToKeep: minTxIdToKeep, force },
    });
    return { purgedBelowTxId: Number(result.purgedBelowTxid ?? 0) };
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}
