// The integrity machinery between JournalNodes, both halves: a member serves GET /raft/integrity/report (its
// integrity report, for the leader's comparison), GET /raft/integrity/file (its size and CRC of a segment file,
// for a repairing peer's majority) and GET /raft/integrity/chunk (the file's bytes, at most
// maxSnapshotChunkBytes at a time); PeerIntegritySource is the asking half, over the node's peer HTTP pool.
// Every answer is checked where it arrives, as any input from the network.

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { QjmError } from '../../src/errors.js';
import type { HttpPools } from '../../src/http-pool.js';
import { checkIntegrityReport } from '../../src/integrity.js';
import type { IntegrityReportJson } from '../../src/integrity.js';
import { rateLimitedWarning } from '../../src/logger.js';
import type { Logger } from '../../src/logger.js';
import type { NodeId } from '../../src/raft/types.js';
import type { PeerDirectory } from '../../src/replica/peer-directory.js';
import { fileRefProblem } from '../integrity/file-service.js';
import type { IntegrityPeers, NodeIntegrity } from '../integrity/node-integrity.js';
import type { FileRef, PeerFileHash } from '../integrity/segment-repair.js';
import { JSON_ENVELOPE, refuse } from '../http/authz.js';
import { count, nonMember, param } from './member-routes.js';
import type { MemberDirectory } from './member-routes.js';

const REPORT_PATH = '/raft/integrity/report';
const FILE_PATH = '/raft/integrity/file';
const CHUNK_PATH = '/raft/integrity/chunk';
/** A report is at most a few thousand segments: far under this. */
const MAX_REPORT_BYTES = 4 << 20;
const REFUSAL_LOG_INTERVAL_MS = 10_000;

export interface IntegrityRoutesContext {
  integrity: NodeIntegrity;
  maxChunkBytes: number;
  directory: MemberDirectory;
  logger: Logger;
}

/** The file a request names: ?jid=&file=&size=, checked; or why not. */
function fileRef(q: unknown): FileRef | QjmError {
  const ref = { jid: param(q, 'jid') ?? '', file: param(q, 'file') ?? '', sizeBytes: count(q, 'size') ?? -1 };
  const problem = typeof ref.jid === 'string' && typeof ref.file === 'string' ? fileRefProblem(ref) : 'bad parameters';
  return problem === null
    ? ref
    : new QjmError('INVALID_ARGUMENT', `expected ?jid=&file=&size= naming a segment file: ${problem}`);
}

export function registerIntegrityRoutes(app: FastifyInstance, ctx: IntegrityRoutesContext): void {
  const warn = rateLimitedWarning(ctx.logger, 'refused an integrity request', REFUSAL_LOG_INTERVAL_MS);
  const refused = (req: FastifyRequest, reply: FastifyReply, e: QjmError) => {
    warn({ caller: req.caller?.kind === 'node' ? req.caller.id : null, url: req.url.slice(0, 200), error: e.message });
    return refuse(reply, JSON_ENVELOPE, e);
  };
  const member = (req: FastifyRequest) => nonMember(req, ctx.directory, 'ask for integrity reports and file copies');

  app.get(REPORT_PATH, async (req, reply) => {
    const forbidden = member(req);
    if (forbidden) return refused(req, reply, forbidden);
    return ctx.integrity.report();
  });

  app.get(FILE_PATH, async (req, reply) => {
    const forbidden = member(req);
    if (forbidden) return refused(req, reply, forbidden);
    const ref = fileRef(req.query);
    if (ref instanceof QjmError) return refused(req, reply, ref);
    const h = ctx.integrity.describeFile(ref);
    if (!h) return refuse(reply, JSON_ENVELOPE, new QjmError('UNAVAILABLE', `no segment ${ref.jid}/${ref.file} here`));
    return h;
  });

  app.get(CHUNK_PATH, async (req, reply) => {
    const forbidden = member(req);
    if (forbidden) return refused(req, reply, forbidden);
    const ref = fileRef(req.query);
    if (ref instanceof QjmError) return refused(req, reply, ref);
    const offset = count(req.query, 'offset');
    const length = count(req.query, 'length');
    if (offset === null || length === null || length < 1 || length > ctx.maxChunkBytes || offset >= ref.sizeBytes)
      return refused(
        req,
        reply,
        new QjmError('INVALID_ARGUMENT', `expected &offset= within the size and &length= of 1 to ${ctx.maxChunkBytes}`),
      );
    let bytes: Buffer;
    try {
      bytes = ctx.integrity.readFileChunk(ref, offset, length);
    } catch (e) {
      // Not held, damaged here, or unreadable: the repairing peer asks another copy.
      return refuse(reply, JSON_ENVELOPE, new QjmError('UNAVAILABLE', (e as Error).message));
    }
    return reply.type('application/octet-stream').send(bytes);
  });
}

/** The asking half: the leader's reports and a repairing node's copies, from the address each peer is dialed at. */
export class PeerIntegritySource implements IntegrityPeers {
  constructor(
    private readonly o: {
      clients: HttpPools;
      directory: Pick<PeerDirectory, 'addressOf'>;
      requestTimeoutMs: number;
      maxChunkBytes: number;
    },
  ) {}

  private get(peer: NodeId, pathAndQuery: string, timeoutMs: number): Promise<Buffer> {
    const address = this.o.directory.addressOf(peer);
    if (!address) return Promise.reject(new Error(`no address for peer ${peer}`));
    return this.o.clients.request(address, 'GET', pathAndQuery, null, timeoutMs).then((res) => {
      if (res.status !== 200) throw new Error(`HTTP ${res.status}: ${res.body.toString('utf8', 0, 200)}`);
      return res.body;
    });
  }

  report(peer: NodeId, cb: (err: Error | null, report?: IntegrityReportJson) => void): void {
    this.get(peer, REPORT_PATH, this.o.requestTimeoutMs).then(
      (body) => {
        if (body.byteLength > MAX_REPORT_BYTES) return cb(new Error(`report of ${body.byteLength} bytes`));
        let r: IntegrityReportJson;
        try {
          r = checkIntegrityReport(JSON.parse(body.toString('utf8')));
        } catch (e) {
          return cb(e as Error);
        }
        cb(null, r);
      },
      (e: Error) => cb(e),
    );
  }

  describe(peer: NodeId, ref: FileRef, cb: (err: Error | null, h?: PeerFileHash | null) => void): void {
    const q = new URLSearchParams({ jid: ref.jid, file: ref.file, size: String(ref.sizeBytes) });
    this.get(peer, `${FILE_PATH}?${q.toString()}`, this.o.requestTimeoutMs).then(
      (body) => {
        let h: unknown;
        try {
          h = JSON.parse(body.toString('utf8', 0, 1024));
        } catch (e) {
          return cb(e as Error);
        }
        const v = h as Partial<PeerFileHash> | null;
        const ok =
          typeof v === 'object' &&
          v !== null &&
          Number.isSafeInteger(v.sizeBytes) &&
          Number.isSafeInteger(v.crc32) &&
          (v.crc32 as number) >= 0 &&
          (v.crc32 as number) <= 0xffffffff &&
          typeof v.damaged === 'boolean';
        if (!ok) return cb(new Error(`peer ${peer}: not a file description`));
        cb(null, { sizeBytes: v.sizeBytes as number, crc32: v.crc32 as number, damaged: v.damaged as boolean });
      },
      (e: Error) => cb(e),
    );
  }

  chunk(
    peer: NodeId,
    ref: FileRef,
    offsetBytes: number,
    lengthBytes: number,
    cb: (err: Error | null, bytes?: Uint8Array) => void,
  ): void {
    const q = new URLSearchParams({
      jid: ref.jid,
      file: ref.file,
      size: String(ref.sizeBytes),
      offset: String(offsetBytes),
      length: String(Math.min(lengthBytes, this.o.maxChunkBytes)),
    });
    this.get(peer, `${CHUNK_PATH}?${q.toString()}`, this.o.requestTimeoutMs * 4).then(
      (b) => cb(null, b),
      (e: Error) => cb(e),
    );
  }
}
