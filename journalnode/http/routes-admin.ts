// What operators look at and do: GET /status (JSON, braft raft_stat's fields), GET /raft_stat (the same as a
// page), GET /flags (effective settings), GET /metrics (Prometheus), GET /healthz, and the admin RPCs behind
// qjm's membership, leadership, reset-peers and snapshot commands.

import type { FastifyInstance } from 'fastify';
import { qjournal } from '../../src/gen/proto.js';
import { QjmError } from '../../src/errors.js';
import { checkHostPort, isNodeId, isStorageBinding, NODE_ID_RULE } from '../../src/ids.js';
import type { JournalStatusJson, MemberJson, NodeStatusJson } from '../../src/node-status.js';
import { sameAddress } from '../../src/peers.js';
import { diskFullText } from '../../src/replica/replica.js';
import type { Replica, ReplicaStatus, ResetResult } from '../../src/replica/replica.js';
import type { qjournal as Q } from '../../src/gen/proto.js';
import { NONE } from '../../src/raft/types.js';
import type { Peer } from '../../src/raft/types.js';
import type { JournalNodeConfig } from '../config.js';
import type { JournalStateMachine } from '../state/journal-state-machine.js';
import type { NodeMetrics } from '../observe/metrics.js';
import type { PeerTransport } from '../peers/peer-transport.js';
import type { NodeIntegrity } from '../integrity/node-integrity.js';
import { invalid, registerProtoRoute, sendJsonError } from './rpc-errors.js';
import type { ProtoRoute } from './rpc-errors.js';
import { transferTarget } from '../../src/replica/leader-transfer.js';

const pb = qjournal.journal;

export interface AdminContext {
  /** The scrubber, repairs and (on the leader) the comparison of the replicas: /status, GET /integrity, /admin/repair. */
  integrity: NodeIntegrity;
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

export function buildStatus(context: AdminContext): NodeStatusJson {
  const s = context.replica.status();
  const latencies = context.replica.latencies();
  const followers: NodeStatusJson['followers'] = {};
  for (const [id, p] of Object.entries(s.progress)) {
    followers[id] = {
      nextIndex: p.next,
      matchIndex: p.match,
      state: p.state,
      inflight: p.inflight,
      recentActive: p.recentActive,
      lagEntries: s.lastIndex - p.match,
      ack: latencies.acks[id] ?? null,
    };
  }
  const addressOf = new Map(s.peers.map((p) => [p.id, p.address]));
  const peers = memberList(s);
  const journals: Record<string, JournalStatusJson> = {};
  for (const j of context.stateMachine.allJournals()) {
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
          ? (addressOf.get(s.id) ?? context.config.advertise)
          : (addressOf.get(s.lead) ?? null),
    clusterId: context.clusterId,
    storageId: context.storageId,
    peers,
    joint: s.conf.votersOutgoing.length > 0,
    commitIndex: s.commitIndex,
    appliedIndex: s.appliedIndex,
    firstIndex: s.firstIndex,
    lastIndex: s.lastIndex,
    lastLogTerm: context.replica.rawNode.termAt(s.lastIndex) ?? 0,
    diskIndex: s.stableIndex,
    sync: latencies.sync,
    snapshotIndex: s.snapshotIndex,
    snapshotTerm: s.snapshotTerm,
    leadTransferee: s.leadTransferee || null,
    followers,
    pending: {
      proposals: s.pendingProposals,
      reads: s.pendingReads,
      persistJobs: s.persistQueueJobs,
      longPolls: context.stateMachine.waitingReads,
    },
    journals,
    storage: context.logStats(),
    transport: context.transport.stats(),
    peerStorageIdChanges: [...context.transport.storageIdChanges],
    fatal: s.fatal,
    ...(s.diskFull ? { diskFull: `disk full: ${diskFullText(s.diskFull)}` } : {}),
    identity: s.identity,
    integrity: context.integrity.status(),
    initialPeers: context.initialPeers,
    uptimeS: Math.round((Date.now() - context.startedAtMs) / 1000),
    version: context.version,
    security: context.config.certsDir ? 'mutual-tls' : 'insecure',
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
export function registerReadOnlyRoutes(app: FastifyInstance, context: AdminContext): void {
  app.get('/status', async () => buildStatus(context));
  app.get('/metrics', async (_req, reply) =>
    reply.type(context.metrics.registry.contentType).send(await context.metrics.text()),
  );
  app.get('/healthz', async (_req, reply) => {
    const s = context.replica.status();
    const { state, problem, repair } = s.identity;
    // A node that stood down, or whose storage waits to be re-added, does not serve: a supervisor must see it.
    // So does one whose disk is full: it takes no writes until space is freed (it resumes by itself then).
    const ok = s.fatal === null && s.diskFull === null && state !== 'stood-down' && state !== 'storage-mismatch';
    return reply.code(ok ? 200 : 503).send({
      ok,
      id: s.id,
      state: s.state,
      term: s.term,
      leader: s.lead || null,
      fatal: s.fatal,
      ...(s.diskFull ? { diskFull: `disk full: ${diskFullText(s.diskFull)}` } : {}),
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
  const ids = new Set<string>();
  const idAt = new Map<string, string>();
  for (const p of peers) {
    if (ids.has(p.id)) throw invalid(`peer ${p.id} named twice`);
    const twin = idAt.get(p.address);
    if (twin !== undefined) throw invalid(sameAddress(p.address, twin, p.id));
    ids.add(p.id);
    idAt.set(p.address, p.id);
  }
  return peers;
}

type NodeReplica = AdminContext['replica'];
type AdminRoute<Req> = ProtoRoute<Req, Q.journal.IAdminResponse | Q.journal.IResetPeersResponse>;

/** A replica call that answers through a callback, as a promise. */
function callback<T>(fn: (cb: (err: QjmError | null, v?: T) => void) => void): Promise<T | undefined> {
  return new Promise<T | undefined>((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))));
}

function requireLeader(replica: NodeReplica): void {
  if (!replica.isLeader) throw new QjmError('NOT_LEADER', `${replica.id} is not the leader`, replica.leaderDetails());
}

/** A route whose request names voters: they are checked as peers before `handle` sees them. */
function votersRoute<Req extends { peers: Q.raft.IPeer[] }>(
  request: { decode(bytes: Uint8Array): Req },
  requestName: string,
  response: AdminRoute<Req>['response'],
  handle: (voters: Peer[], req: Req) => ReturnType<AdminRoute<Req>['handle']>,
): AdminRoute<Req> {
  return { request, requestName, response, handle: async (req) => handle(checkedPeers(req.peers), req) };
}

function changePeersRoute(replica: NodeReplica): AdminRoute<Q.journal.ChangePeersRequest> {
  return votersRoute(pb.ChangePeersRequest, 'ChangePeersRequest', pb.AdminResponse, async (voters) => {
    requireLeader(replica);
    await callback<void>((cb) => replica.changePeers(voters, cb));
    return { body: { message: `voters are now ${voters.map((p) => p.id).join(', ')}` } };
  });
}

function resetPeersRoute(replica: NodeReplica): AdminRoute<Q.journal.ResetPeersRequest> {
  return votersRoute(pb.ResetPeersRequest, 'ResetPeersRequest', pb.ResetPeersResponse, async (voters, req) => {
    // The last guard against a reset of a healthy cluster (qjm asks every node first): a node that still
    // follows a leader (or leads) is part of a quorum that works.
    if (!req.force && replica.leaderId !== NONE) {
      throw new QjmError(
        'INVALID_CONF_CHANGE',
        `${replica.id} still ${replica.isLeader ? 'leads' : `follows leader ${replica.leaderId}`} in term ${replica.term}: reset-peers is for a majority lost for good (a node cut off from its quorum knows no leader within an election timeout or two: retry then; force to reset anyway)`,
      );
    }
    const r = (await callback<ResetResult>((cb) => replica.resetPeers(voters, cb)))!;
    const fiat =
      r.lastIndexBefore > r.committedBefore
        ? `; entries ${r.committedBefore + 1}-${r.lastIndexBefore} were committed by fiat`
        : '';
    return {
      body: {
        message: `${replica.id} reset to voters ${voters.map((p) => p.id).join(', ')} (snapshot at index ${r.index})${fiat}`,
        index: r.index,
        committedIndexBefore: r.committedBefore,
        lastIndexBefore: r.lastIndexBefore,
        lastTermBefore: r.lastTermBefore,
      },
    };
  });
}

function transferLeaderRoute(replica: NodeReplica): AdminRoute<Q.journal.TransferLeaderRequest> {
  return {
    request: pb.TransferLeaderRequest,
    requestName: 'TransferLeaderRequest',
    response: pb.AdminResponse,
    handle: async (req) => {
      requireLeader(replica);
      const to = req.to || transferTarget(replica.status(), false);
      if (!to) throw invalid('no other voter to transfer leadership to');
      await callback<void>((cb) => replica.transferLeader(to, cb));
      return { body: { message: `leadership transferred to ${to}` } };
    },
  };
}

function snapshotRoute(replica: NodeReplica): AdminRoute<Record<string, never>> {
  return {
    request: NO_BODY,
    requestName: 'an empty body',
    response: pb.AdminResponse,
    handle: async () => {
      const index = (await callback<number>((cb) => replica.takeSnapshot(cb))) ?? 0;
      return { body: { message: `snapshot at index ${index}`, index } };
    },
  };
}

function repairRoute(integrity: NodeIntegrity): AdminRoute<Record<string, never>> {
  return {
    request: NO_BODY,
    requestName: 'an empty body',
    response: pb.AdminResponse,
    handle: async () => {
      integrity.repairNow();
      const open = integrity.registry.openRecords().length;
      return { body: { message: `a scrub pass started; ${open} damaged file${open === 1 ? '' : 's'} being repaired` } };
    },
  };
}

/**
 * This node's integrity report (what `qjm check` compares across the replicas): no journal data. With
 * ?verify=1 every file is read and checked first (the answer waits for it).
 */
function registerIntegrityRoute(app: FastifyInstance, integrity: NodeIntegrity): void {
  app.get('/integrity', async (req, reply) => {
    const verify = (req.query as Record<string, unknown>).verify;
    if (verify === undefined) return integrity.report();
    if (verify !== '1') return sendJsonError(reply, invalid('verify takes the value 1'));
    return new Promise((resolve) => integrity.verifiedReport(resolve));
  });
}

export function registerAdminRoutes(app: FastifyInstance, context: AdminContext): void {
  const { replica } = context;
  const term = () => replica.term;
  registerReadOnlyRoutes(app, context);
  app.get('/raft_stat', async (_req, reply) =>
    reply.type('text/html; charset=utf-8').send(renderRaftStat(buildStatus(context))),
  );
  app.get('/flags', async () => ({ ...context.config }));
  registerIntegrityRoute(app, context.integrity);
  registerProtoRoute(app, '/admin/changePeers', changePeersRoute(replica), term);
  registerProtoRoute(app, '/admin/resetPeers', resetPeersRoute(replica), term);
  registerProtoRoute(app, '/admin/transferLeader', transferLeaderRoute(replica), term);
  registerProtoRoute(app, '/admin/repair', repairRoute(context.integrity), term);
  registerProtoRoute(app, '/admin/snapshot', snapshotRoute(replica), term);
}
