// Snapshot transfer between JournalNodes, both halves: the leader serves GET /raft/snapshot/manifest and
// GET /raft/snapshot/chunk (files in chunks of at most maxSnapshotChunkBytes, within the snapshot's prefix of
// each file); a follower asked to install a snapshot pulls it with PeerSnapshotSource, from the address its
// peer directory holds for the sender.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { QjmError } from '../../src/errors.js';
import type { HttpPools } from '../../src/http-pool.js';
import { isJournalId } from '../../src/ids.js';
import { rateLimitedWarning } from '../../src/logger.js';
import type { Logger } from '../../src/logger.js';
import type { NodeId } from '../../src/raft/types.js';
import type { PeerDirectory } from '../../src/replica/peer-directory.js';
import type { JournalStateMachine, SnapshotSource } from '../state/journal-state-machine.js';
import { decodeManifest, encodeManifest } from '../state/snapshot-store.js';
import type { ManifestData } from '../state/snapshot-store.js';
import { parseSegmentName } from '../../src/edit-records.js';
import { JSON_ENVELOPE, refuse } from '../http/authz.js';

const MANIFEST_PATH = '/raft/snapshot/manifest';

const CHUNK_PATH = '/raft/snapshot/chunk';
/** How often a refused snapshot read is logged at most (any node certificate can provoke one). */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

export interface SnapshotRoutesContext {
  stateMachine: JournalStateMachine;
  maxSnapshotChunkBytes: number;
  /** The members of the configuration this node applied (voters and learners): only they may read a snapshot. */
  directory: Pick<PeerDirectory, 'isMember' | 'appliedIndex'>;
  logger: Logger;
}

/** A query parameter: its value when given once, undefined when absent, null when given twice (`?a=1&a=2`). */
function param(q: unknown, name: string): string | null | undefined {
  const v = (q as Record<string, unknown>)[name];
  return v === undefined ? undefined : typeof v === 'string' ? v : null;
}

/** A non-negative safe integer query parameter (decimal digits only), or null. */
function count(q: unknown, name: string): number | null {
  const v = param(q, name);
  if (typeof v !== 'string' || !/^\d{1,16}$/.test(v)) return null;
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : null;
}

/**
 * The snapshot is every record of every journal: only a member of this node's applied configuration (a
 * voter, or a learner being caught up: a node being added is a learner from the change's first step) reads it.
 * A node certificate proves an identity, not membership: a stranger's or a removed node's is refused.
 */
function nonMember(req: FastifyRequest, directory: SnapshotRoutesContext['directory']): QjmError | null {
  const caller = req.caller;
  if (caller?.kind === 'insecure') return null;
  if (caller?.kind === 'node' && directory.isMember(caller.id)) return null;
  const who = caller?.kind === 'node' ? `node ${caller.id}` : 'this caller';
  return new QjmError(
    'FORBIDDEN',
    `${who} is not a member of this node's configuration (applied at index ${directory.appliedIndex}): only members read snapshots`,
  );
}

export function registerSnapshotRoutes(app: FastifyInstance, context: SnapshotRoutesContext): void {
  const warn = rateLimitedWarning(context.logger, 'refused a snapshot read', REFUSAL_LOG_INTERVAL_MS);
  // Every refusal is a 4xx through the status table, and a (rate-limited) warning: a peer can provoke them.
  const refused = (req: FastifyRequest, reply: FastifyReply, e: QjmError) => {
    warn({ caller: req.caller?.kind === 'node' ? req.caller.id : null, url: req.url.slice(0, 200), error: e.message });
    return refuse(reply, JSON_ENVELOPE, e);
  };

  app.get(MANIFEST_PATH, async (req, reply) => {
    const forbidden = nonMember(req, context.directory);
    if (forbidden) return refused(req, reply, forbidden);
    const minIndex = param(req.query, 'min_index') === undefined ? 0 : count(req.query, 'min_index');
    if (minIndex === null) return refused(req, reply, new QjmError('INVALID_ARGUMENT', 'bad min_index'));
    const newest = context.stateMachine.snapshots.newest();
    if (!newest || newest.index < minIndex) {
      // Not a refusal: the leader has not snapshotted that far yet; the follower asks again.
      return refuse(
        reply,
        JSON_ENVELOPE,
        new QjmError('UNAVAILABLE', `no snapshot at index >= ${minIndex} (newest: ${newest?.index ?? 'none'})`),
      );
    }
    return reply.type('application/x-protobuf').send(encodeManifest(newest.manifest));
  });

  app.get(CHUNK_PATH, async (req, reply) => {
    const forbidden = nonMember(req, context.directory);
    if (forbidden) return refused(req, reply, forbidden);
    const [index, offset, length] = ['index', 'offset', 'length'].map((n) => count(req.query, n));
    const jid = param(req.query, 'jid') ?? '';
    const file = param(req.query, 'file') ?? '';
    if (
      index === null ||
      offset === null ||
      length === null ||
      !isJournalId(jid) ||
      parseSegmentName(file) === null ||
      length > context.maxSnapshotChunkBytes
    ) {
      return refused(
        req,
        reply,
        new QjmError(
          'INVALID_ARGUMENT',
          `expected ?index=&jid=&file=&offset=&length= (length at most ${context.maxSnapshotChunkBytes})`,
        ),
      );
    }
    let bytes: Buffer;
    try {
      bytes = context.stateMachine.snapshots.readChunk(index, jid, file, offset, length);
    } catch (e) {
      if (e instanceof QjmError) return refused(req, reply, e);
      throw e; // the disk failed: an error of this node, answered 500 and logged as one
    }
    return reply.type('application/octet-stream').send(bytes);
  });
}

/** The follower's half: pulls a peer's snapshot over the node's HTTP pool. */
export class PeerSnapshotSource {
  constructor(
    private readonly options: {
      clients: HttpPools;
      /** Where each peer is dialed. */
      directory: PeerDirectory;
      requestTimeoutMs: number;
    },
  ) {}

  /** The fetch loop's source for one peer (the state machine's SnapshotSource). */
  readonly forPeer: SnapshotSource = (peer) => ({
    manifest: (minIndex, cb) =>
      this.manifest(peer, minIndex).then(
        (m) => cb(null, m),
        (e: Error) => cb(e),
      ),
    chunk: (index, f, offset, length, cb) =>
      this.chunk(peer, index, f.jid, f.file, offset, length).then(
        (b) => cb(null, b),
        (e: Error) => cb(e),
      ),
  });

  private address(peer: NodeId): string {
    const address = this.options.directory.addressOf(peer);
    if (!address) throw new Error(`no address for peer ${peer}`);
    return address;
  }

  async manifest(peer: NodeId, minIndex: number): Promise<ManifestData> {
    const res = await this.options.clients.request(
      this.address(peer),
      'GET',
      `${MANIFEST_PATH}?min_index=${minIndex}`,
      null,
      this.options.requestTimeoutMs,
    );
    if (res.status !== 200)
      throw new Error(
        `peer ${peer} has no snapshot >= ${minIndex}: ${res.status} ${res.body.toString('utf8', 0, 200)}`,
      );
    return decodeManifest(res.body, `snapshot manifest from ${peer}`);
  }

  async chunk(peer: NodeId, index: number, jid: string, file: string, offset: number, length: number): Promise<Buffer> {
    const q = new URLSearchParams({ index: String(index), jid, file, offset: String(offset), length: String(length) });
    const res = await this.options.clients.request(
      this.address(peer),
      'GET',
      `${CHUNK_PATH}?${q.toString()}`,
      null,
      this.options.requestTimeoutMs * 4,
    );
    if (res.status !== 200) throw new Error(`peer ${peer}: chunk ${jid}/${file}@${offset}: ${res.status}`);
    return res.body;
  }
}
