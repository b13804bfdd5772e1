// The JSON a JournalNode serves at GET /status, declared once: the server builds it (journalnode/
// routes-admin.ts buildStatus), and every reader — the qjm CLI, libqjm's AdminClient, a joining node, the
// local cluster of tests and the demo — fetches it through fetchNodeStatus below.

import type { HttpPools } from './http-pool.js';
import type { IntegrityStatusJson } from './integrity.js';
import type { JournalStateData } from './journal-state.js';
import type { ProgressState } from './raft/progress.js';
import type { Peer, StateType } from './raft/types.js';
import type { IdentityStatus } from './replica/identity.js';

export type { IdentityStatus } from './replica/identity.js';

export interface MemberJson {
  id: string;
  address: string;
  role: 'voter' | 'outgoing-voter' | 'learner';
  /** The storage the configuration binds the member to ('' when unbound); absent from nodes of older versions. */
  storageId?: string;
}

/** A node started with --peers on an empty data directory, waiting for the cluster to form. */
export interface FormationJson {
  /** Its --peers. */
  peers: Peer[];
  /** Why it does not form the cluster yet: one line per node it waits for or a problem it found. */
  waitingFor: string[];
}

/** Recent latencies (the last minute, at most its newest 1024 samples), ms. */
export interface LatencyJson {
  p50Ms: number;
  p99Ms: number;
  samples: number;
}

/** The leader's view of one follower (empty on other nodes). */
export interface FollowerJson {
  nextIndex: number;
  matchIndex: number;
  state: `${ProgressState}`;
  inflight: number;
  recentActive: boolean;
  lagEntries: number;
  /** From an append leaving the leader to the follower's acknowledgement of it (null: none lately). */
  ack: LatencyJson | null;
}

/** A journal's state (keyed by its id, so without it), with the namespace flattened. */
export interface JournalStatusJson extends Omit<JournalStateData, 'jid' | 'nsInfo'> {
  namespaceId: number;
  clusterId: string;
}

/** This node's link to one peer: its send queue and failures. */
export interface PeerLinkJson {
  id: string;
  queuedMessages: number;
  queuedBytes: number;
  /** This node's stream to the peer is open. */
  streamOpen: boolean;
  /** Streams this node opened to the peer since it started (one per lifetime, plus reconnections). */
  streamsOpened: number;
  /** The peer's streams to this node open now. */
  inboundStreams: number;
  failures: number;
  /** Streams this node cut because a ping on them went unanswered (a dead link, redialed). */
  deadLinks: number;
  droppedMessages: number;
  sentBatches: number;
  storageId: string;
}

export interface NodeStatusJson {
  id: string;
  /** The Raft role; 'uninitialized' while the node waits for its cluster to form (`formation`). */
  state: `${StateType}` | 'uninitialized';
  term: number;
  /** The node this one voted for in `term` ('' for none). */
  vote: string;
  leader: string | null;
  leaderAddress: string | null;
  clusterId: string;
  storageId: string;
  peers: MemberJson[];
  /** A joint configuration (a membership change) is in progress. */
  joint: boolean;
  commitIndex: number;
  appliedIndex: number;
  firstIndex: number;
  lastIndex: number;
  /** The term of the entry at lastIndex: (lastLogTerm, lastIndex) orders logs by how up to date they are. */
  lastLogTerm: number;
  /** The last index durable on this node's disk. */
  diskIndex: number;
  /** This node's log writes, each with its fdatasync (null: none lately). */
  sync: LatencyJson | null;
  snapshotIndex: number;
  snapshotTerm: number;
  leadTransferee: string | null;
  followers: Record<string, FollowerJson>;
  /** Waiting here: proposals, ReadIndex reads, log writes, long-polls (readers waiting for new txids). */
  pending: { proposals: number; reads: number; persistJobs: number; longPolls: number };
  journals: Record<string, JournalStatusJson>;
  /** The Raft log's counters (writes, bytesWritten, ...). */
  storage: Record<string, number>;
  transport: PeerLinkJson[];
  /** Peers whose data directory changed identity (wiped and restarted under the same id). */
  peerStorageIdChanges: { id: string; from: string; to: string; atMs: number }[];
  fatal: string | null;
  /** "disk full: N bytes free at <path>" while its disk is full and it waits for space (absent otherwise). */
  diskFull?: string;
  /** Scrubbing, damage found on this node and what became of it, and (on the leader) the comparison of the replicas. */
  integrity?: IntegrityStatusJson;
  /** Its storage, generation and standing: stood down, storage mismatch, below its floor (absent from older versions). */
  identity?: IdentityStatus;
  /** The configuration the cluster was formed with, as this node formed it (empty: it joined). */
  initialPeers?: Peer[];
  /** Present while the node waits for its cluster to form. */
  formation?: FormationJson;
  uptimeS: number;
  version: string;
  /** "mutual-tls" (--certs-dir) or "insecure" (--insecure: plain HTTP, anyone may call anything). */
  security: 'mutual-tls' | 'insecure';
}

/** What fetchNodeStatus dials with: the caller's HTTP pool, so its TLS identity (a reader at least) goes along. */
export type StatusClient = Pick<HttpPools, 'request'>;

/**
 * GET /status of one node, within timeoutMs overall (connect included). Rejects with an Error whose message
 * is the short reason (ECONNREFUSED, HTTP 503: ..., timed out), ready for a table cell or a log line.
 */
export async function fetchNodeStatus(address: string, timeoutMs: number, http: StatusClient): Promise<NodeStatusJson> {
  let body: unknown;
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const r = await http.request(address, 'GET', '/status', null, timeoutMs, signal);
    if (r.status !== 200) throw new Error(`HTTP ${r.status}: ${r.body.toString('utf8', 0, 200)}`);
    body = JSON.parse(r.body.toString('utf8'));
  } catch (e) {
    const err = e as Error & { code?: unknown };
    if (signal.aborted) throw new Error(`timed out after ${timeoutMs} ms`);
    // A bare network code says it all (ECONNREFUSED); a TLS refusal needs its sentence.
    throw new Error(typeof err.code === 'string' && /^E[A-Z]+$/.test(err.code) ? err.code : err.message);
  }
  return checkNodeStatus(body);
}

/** A parsed /status body, checked: the fields readers act on. A proxy's page or another service's JSON must not pass for a node. */
export function checkNodeStatus(body: unknown): NodeStatusJson {
  const s = body as Partial<NodeStatusJson> | null;
  if (
    typeof s !== 'object' ||
    s === null ||
    typeof s.id !== 'string' ||
    typeof s.term !== 'number' ||
    typeof s.clusterId !== 'string' ||
    !Array.isArray(s.peers) ||
    typeof s.journals !== 'object' ||
    s.journals === null
  ) {
    throw new Error('not a JournalNode /status answer');
  }
  return s as NodeStatusJson;
}
