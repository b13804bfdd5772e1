// Snapshot transfer between JournalNodes, both halves: the leader serves GET /raft/snapshot/manifest and
// GET /raft/snapshot/chunk (files in chunks of at most maxSnapshotChunkBytes, within the snapshot's prefix of
// each file); a follower asked to install a snapshot pulls it with PeerSnapshotSource, from the address its
// peer directory holds for the sender.

import type { FastifyInstance } from 'fastify';
import { QjmError } from '../../src/errors.js';
import { sendJsonError } from '../http/rpc-errors.js';
import type { HttpPools } from '../../src/http-pool.js';
import { isJournalId } from '../../src/ids.js';
import type { NodeId } from '../../src/raft/types.js';
import type { PeerDirectory } from '../../src/replica/peer-directory.js';
import type { JournalStateMachine, SnapshotSource } from '../state/journal-state-machine.js';
import { decodeManifest, encodeManifest } from '../state/snapshot-store.js';
import type { ManifestData } from '../state/snapshot-store.js';
import { parseSegmentName } from '../../src/edit-records.js';

const MANIFEST_PATH = '/raft/snapshot/manifest';

const CHUNK_PATH = '/raft/snapshot/chunk';

export function registerSnapshotRoutes(
  app: FastifyInstance,
  context: { stateMachine: JournalStateMachine; maxSnapshotChunkBytes: number },
): void {
  app.get(MANIFEST_PATH, async (req, reply) => {
    const minIndex = Number((req.query as Record<string, string>).min_index ?? 0);
    if (!Number.isSafeInteger(minIndex) || minIndex < 0)
      return sendJsonError(reply, new QjmError('INVALID_ARGUMENT', 'bad min_index'));
    const newest = context.stateMachine.snapshots.newest();
    if (!newest || newest.index < minIndex) {
      const message = `no snapshot at index >= ${minIndex} (newest: ${newest?.index ?? 'none'})`;
      return sendJsonError(reply, new QjmError('UNAVAILABLE', message));
    }
    return reply.type('application/x-protobuf').send(encodeManifest(newest.manifest));
  });

  app.get(CHUNK_PATH, async (req, reply) => {
    const q = req.query as Record<string, string | undefined>;
    const index = Number(q.index);
    const offset = Number(q.offset);
    const length = Number(q.length);
    const jid = q.jid ?? '';
    const file = q.file ?? '';
    if (
      ![index, offset, length].every((n) => Number.isSafeInteger(n) && n >= 0) ||
      !isJournalId(jid) ||
      parseSegmentName(file) === null ||
      length > context.maxSnapshotChunkBytes
    ) {
      const message = `bad chunk request (length at most ${context.maxSnapshotChunkBytes})`;
      return sendJsonError(reply, new QjmError('INVALID_ARGUMENT', message));
    }
    try {
      return reply
        .type('application/octet-stream')
        .send(context.stateMachine.snapshots.readChunk(index, jid, file, offset, length));
    } catch (e) {
      return sendJsonError(reply, new QjmError('UNAVAILABLE', (e as Error).message));
    }
  });
}

/** The follower's half: pulls a peer's snapshot over the node's HTTP pool. */
export class PeerSnapshotSource implements SnapshotSource {
  constructor(
    private readonly options: {
      clients: HttpPools;
      /** Where each peer is dialed. */
      directory: PeerDirectory;
      requestTimeoutMs: number;
    },
  ) {}

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
