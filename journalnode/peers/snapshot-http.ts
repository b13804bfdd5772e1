// Snapshot transfer between JournalNodes, both halves: the leader serves GET /raft/snapshot/manifest and
// GET /raft/snapshot/chunk (files in chunks of at most maxSnapshotChunkBytes, within the snapshot's prefix of
// each file); a follower asked to install a snapshot pulls it with PeerSnapshotSource, from the address its
// peer directory holds for the sender.

import type { FastifyInstance } from 'fastify';
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
  ctx: { stateMachine: JournalStateMachine; maxSnapshotChunkBytes: number },
): void {
  app.get(MANIFEST_PATH, async (req, reply) => {
    const minIndex = Number((req.query as Record<string, string>).min_index ?? 0);
    if (!Number.isSafeInteger(minIndex) || minIndex < 0)
      return reply.code(400).send({ code: 'QJM_ERR_INVALID_ARGUMENT', message: 'bad min_index' });
    const newest = ctx.stateMachine.snapshots.newest();
    if (!newest || newest.index < minIndex) {
      return reply.code(404).send({
        code: 'QJM_ERR_UNAVAILABLE',
        message: `no snapshot at index >= ${minIndex} (newest: ${newest?.index ?? 'none'})`,
      });
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
      length > ctx.maxSnapshotChunkBytes
    ) {
      return reply.code(400).send({
        code: 'QJM_ERR_INVALID_ARGUMENT',
        message: `bad chunk request (length at most ${ctx.maxSnapshotChunkBytes})`,
      });
    }
    try {
      return reply
        .type('application/octet-stream')
        .send(ctx.stateMachine.snapshots.readChunk(index, jid, file, offset, length));
    } catch (e) {
      return reply.code(404).send({ code: 'QJM_ERR_UNAVAILABLE', message: (e as Error).message });
    }
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
