// What operators look at and do: GET /status (JSON, braft raft_stat's fields), GET /raft_stat (the same as a
// page), GET /flags (effective settings), GET /metrics (Prometheus), GET /healthz, and the admin RPCs behind
// qjm's membership, leadership, reset-peers and snapshot commands.

import type { FastifyInstance } from 'fastify';
import { qjournal } from '../../src/gen/proto.js';
import { QjmError } from '../../src/errors.js';
import { checkHostPort, isNodeId, isStorageBinding, NODE_ID_RULE } from '../../src/ids.js';
import type { JournalStatusJson, MemberJson, NodeStatusJson } from '../../src/node-status.js';
import type { Replica, ReplicaStatus, ResetResult } from '../../src/replica/replica.js';
import type { qjournal as Q } from '../../src/gen/proto.js';
import { NONE } from '../../src/raft/types.js';
import type { Peer } from '../../src/raft/types.js';
import type { JournalNodeConfig } from '../config.js';
import type { JournalStateMachine } from '../state/journal-state-machine.js';
import type { NodeMetrics } from '../observe/metrics.js';
import type { PeerTransport } from '../peers/peer-transport.js';
import { invalid, registerProtoRoute } from './rpc-errors.js';
import { transferTarget } from '../../src/replica/leader-transfer.js';

const pb = qjournal.journal;

export interface AdminContext {
  config: JournalNodeConfig;
  replica: Replica<Q.journal.ICommandResult>;
  stateMachine: JournalStateMachine;
  transport: PeerTransport;
  metrics: NodeMetrics;
  logStats: () => Record<string, number>;
  startedAtMs: number;
  version: string;
  clusterId: string;
  storageId: string;
  /** The configuration the cluster was formed with (empty: this node joined). */
  initialPeers: Peer[];
}

/** The members of a node's configuration as /status lists them: role, address, storage binding. */
export function memberList(s: Pick<ReplicaStatus, 'conf' | 'peers'>): MemberJson[] {
  const addressOf = new Map(s.peers.map((p) => [p.id, p.address]));
  const storageOf = new Map(s.peers.map((p) => [p.id, p.storageId ?? '']));
  const member = (id: string, role: MemberJson['role']): MemberJson => ({
    id,
    address: addressOf.get(id) ?? '',
    role,
    storageId: storageOf.get(id) ?? '',
  });
  return [
    ...s.conf.voters.map((id) => member(id, 'voter')),
    ...s.conf.votersOutgoing.filter((id) => !s.conf.voters.includes(id)).map((id) => member(id, 'outgoing-voter')),
    ...s.conf.learners.map((id) => member(id, 'learner')),
  ];
}

export function buildStatus(ctx: AdminContext): NodeStatusJson {
  const s = ctx.replica.status();
  const followers: NodeStatusJson['followers'] = {};
  for (const [id, p] of Object.entries(s.progress)) {
    followers[id] = {
      nextIndex: p.next,
      matchIndex: p.match,
      state: p.state,
      inflight: p.inflight,
      recentActive: p.recentActive,
      lagEntries: s.lastIndex - p.match,
    };
  }
  const addressOf = new Map(s.peers.map((p) => [p.id, p.address]));
  const peers = memberList(s);
  const journals: Record<string, JournalStatusJson> = {};
  for (const j of ctx.stateMachine.allJournals()) {
    const { jid, nsInfo, ...state } = j.state();
    journals[jid] = { ...state, namespaceId: Number(nsInfo.namespaceId ?? 0), clusterId: nsInfo.clusterId ?? '' };
  }
  return {
    id: s.id,
    state: s.state,
    term: s.term,
    vote: s.vote,
    leader: s.lead === NONE ? null : s.lead,
    leaderAddress:
      s.lead === NONE
        ? null
        : s.lead === s.id
          ? (addressOf.get(s.id) ?? ctx.config.advertise)
          : (addressOf.get(s.lead) ?? null),
    clusterId: ctx.clusterId,
    storageId: ctx.storageId,
    peers,
    joint: s.conf.votersOutgoing.length > 0,
    commitIndex: s.commitIndex,
    appliedIndex: s.appliedIndex,
    firstIndex: s.firstIndex,
    lastIndex: s.lastIndex,
    lastLogTerm: ctx.replica.rawNode.termAt(s.lastIndex) ?? 0,
    diskIndex: s.stableIndex,
    snapshotIndex: s.snapshotIndex,
    snapshotTerm: s.snapshotTerm,
    leadTransferee: s.leadTransferee || null,
    followers,
    pending: {
      proposals: s.pendingProposals,
      reads: s.pendingReads,
      persistJobs: s.persistQueueJobs,
      longPolls: ctx.stateMachine.waitingReads,
    },
    journals,
    storage: ctx.logStats(),
    transport: ctx.transport.stats(),
    peerStorageIdChanges: ctx.transport.storageIdChanges,
    fatal: s.fatal,
    identity: s.identity,
    initialPeers: ctx.initialPeers,
    uptimeS: Math.round((Date.now() - ctx.startedAtMs) / 1000),
    version: ctx.version,
    security: ctx.config.certsDir ? 'mutual-tls' : 'insecure',
  };
}

function esc(s: unknown): string {
  return String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

/** braft's /raft_stat for a person: the same facts as /status, as a plain page. */
export function renderRaftStat(st: NodeStatusJson): string {
  const rows = (o: object) =>
    Object.entries(o)
      .filter(([, v]) => typeof v !== 'object' || v === null)
      .map(([k, v]) => `<tr><th>${esc(k)}</th><td>${esc(v)}</td></tr>`)
      .join('');
  const table = (head: string[], body: unknown[][]) =>
    `<table><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>${body.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</table>`;
  const peers = st.peers.map((p) => [p.id, p.address, p.role]);
  const followers = Object.entries(st.followers).map(([id, f]) => [
    id,
    f.nextIndex,
    f.matchIndex,
    f.lagEntries,
    f.state,
    f.inflight,
    f.recentActive,
  ]);
  const journals = Object.entries(st.journals).map(([jid, j]) => [
    jid,
    j.promisedEpoch,
    j.lastWriterEpoch,
    j.writerId,
    j.lastTxId,
    j.segments.map((g) => `${g.firstTxId}-${g.inProgress ? `${g.lastTxId}*` : g.lastTxId}`).join(' '),
  ]);
  return `<!doctype html><html><head><meta charset="utf-8"><title>raft_stat ${esc(st.id)}</title>
<style>body{font:13px monospace;margin:1.5em}table{border-collapse:collapse;margin:0 0 1.5em}th,td{border:1px solid #bbb;padding:2px 8px;text-align:left}th{background:#eee}</style></head>
<body><h2>qjournal node ${esc(st.id)} — ${esc(st.state)}, term ${esc(st.term)}</h2>
<table>${rows(st)}</table>
<h3>peers</h3>${table(['id', 'address', 'role'], peers)}
<h3>replication (leader only)</h3>${followers.length ? table(['peer', 'next_index', 'match_index', 'lag', 'state', 'inflight', 'recent_active'], followers) : '<p>not the leader</p>'}
<h3>journals</h3>${table(['jid', 'promised_epoch', 'last_writer_epoch', 'writer', 'last_txid', 'segments (* in progress)'], journals)}
</body></html>`;
}

/** Admin RPCs carry no request body or a small message; none answers with journal data. */
const NO_BODY = { decode: (): Record<string, never> => ({}), encode: () => ({ finish: () => new Uint8Array(0) }) };

/** The routes for a person and a scraper, on the main port and on the read-only dashboard port alike. */
export function registerReadOnlyRoutes(app: FastifyInstance, ctx: AdminContext): void {
  app.get('/status', async () => buildStatus(ctx));
  app.get('/metrics', async (_req, reply) =>
    reply.type(ctx.metrics.registry.contentType).send(await ctx.metrics.text()),
  );
  app.get('/healthz', async (_req, reply) => {
    const s = ctx.replica.status();
    const { state, problem, repair } = s.identity;
    // A node that stood down, or whose storage waits to be re-added, does not serve: a supervisor must see it.
    const ok = s.fatal === null && state !== 'stood-down' && state !== 'storage-mismatch';
    return reply.code(ok ? 200 : 503).send({
      ok,
      id: s.id,
      state: s.state,
      term: s.term,
      leader: s.lead || null,
      fatal: s.fatal,
      identity: { state, problem, repair },
    });
  });
}

/** A request's peer list, every id, address and storage binding checked. */
function checkedPeers(list: Q.raft.IPeer[]): Peer[] {
  const peers: Peer[] = list.map((p) =>
    p.storageId
      ? { id: p.id ?? '', address: p.address ?? '', storageId: p.storageId }
      : { id: p.id ?? '', address: p.address ?? '' },
  );
  for (const p of peers) {
    if (!isNodeId(p.id)) throw invalid(`bad peer id ${JSON.stringify(p.id)}: expected ${NODE_ID_RULE}`);
    const problem = checkHostPort(p.address);
    if (problem) throw invalid(`peer ${p.id}: bad address: ${problem}`);
    if (!isStorageBinding(p.storageId ?? ''))
      throw invalid(`peer ${p.id}: bad storage id ${JSON.stringify(p.storageId).slice(0, 80)}`);
  }
  return peers;
}

export function registerAdminRoutes(app: FastifyInstance, ctx: AdminContext): void {
  const { replica } = ctx;
  const term = () => replica.term;
  registerReadOnlyRoutes(app, ctx);
  app.get('/raft_stat', async (_req, reply) =>
    reply.type('text/html; charset=utf-8').send(renderRaftStat(buildStatus(ctx))),
  );
  app.get('/flags', async () => ({ ...ctx.config }));

  const callback = <T>(fn: (cb: (err: QjmError | null, v?: T) => void) => void) =>
    new Promise<T | undefined>((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))));
  const requireLeader = () => {
    if (!replica.isLeader) throw new QjmError('NOT_LEADER', `${replica.id} is not the leader`, replica.leaderDetails());
  };

  registerProtoRoute(
    app,
    '/admin/changePeers',
    {
      request: pb.ChangePeersRequest,
      requestName: 'ChangePeersRequest',
      response: pb.AdminResponse,
      handle: async (req) => {
        const peers = checkedPeers(req.peers);
        requireLeader();
        await callback<void>((cb) => replica.changePeers(peers, cb));
        return { body: { message: `voters are now ${peers.map((p) => p.id).join(', ')}` } };
      },
    },
    term,
  );

  registerProtoRoute(
    app,
    '/admin/resetPeers',
    {
      request: pb.ResetPeersRequest,
      requestName: 'ResetPeersRequest',
      response: pb.ResetPeersResponse,
      handle: async (req) => {
        const peers = checkedPeers(req.peers);
        // The last guard against a reset of a healthy cluster (qjm asks every node first): a node that still
        // follows a leader (or leads) is part of a quorum that works.
        if (!req.force && replica.leaderId !== NONE) {
          throw new QjmError(
            'INVALID_CONF_CHANGE',
            `${replica.id} still ${replica.isLeader ? 'leads' : `follows leader ${replica.leaderId}`} in term ${replica.term}: reset-peers is for a majority lost for good (a node cut off from its quorum knows no leader within an election timeout or two: retry then; force to reset anyway)`,
          );
        }
        const r = (await callback<ResetResult>((cb) => replica.resetPeers(peers, cb)))!;
        const fiat =
          r.lastIndexBefore > r.committedBefore
            ? `; entries ${r.committedBefore + 1}-${r.lastIndexBefore} were committed by fiat`
            : '';
        return {
          body: {
            message: `${replica.id} reset to voters ${peers.map((p) => p.id).join(', ')} (snapshot at index ${r.index})${fiat}`,
            index: r.index,
            committedIndexBefore: r.committedBefore,
            lastIndexBefore: r.lastIndexBefore,
            lastTermBefore: r.lastTermBefore,
          },
        };
      },
    },
    term,
  );

  registerProtoRoute(
    app,
    '/admin/transferLeader',
    {
      request: pb.TransferLeaderRequest,
      requestName: 'TransferLeaderRequest',
      response: pb.AdminResponse,
      handle: async (req) => {
        requireLeader();
        const to = req.to || transferTarget(replica.status(), false);
        if (!to) throw invalid('no other voter to transfer leadership to');
        await callback<void>((cb) => replica.transferLeader(to, cb));
        return { body: { message: `leadership transferred to ${to}` } };
      },
    },
    term,
  );

  registerProtoRoute(
    app,
    '/admin/snapshot',
    {
      request: NO_BODY,
      requestName: 'an empty body',
      response: pb.AdminResponse,
      handle: async () => {
        const index = (await callback<number>((cb) => replica.takeSnapshot(cb))) ?? 0;
        return { body: { message: `snapshot at index ${index}`, index } };
      },
    },
    term,
  );
}
