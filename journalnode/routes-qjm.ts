// The journal RPCs libqjm and qjm call: POST /qjm/<rpc> with protobuf bodies. Every body is validated before
// anything happens (a 4xx names the problem and changes nothing); writes go through Raft on the leader
// (others answer NOT_LEADER with the leader's address); reads are served from this node's applied state,
// after a ReadIndex round when the reader asks for linearizable freshness.

import fs from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { qjournal } from '../src/gen/proto.js';
import { QjmError } from '../src/errors.js';
import { validateBatch } from '../src/edit-records.js';
import { isJournalId, JOURNAL_ID_RULE } from '../src/ids.js';
import { journalStateToProto, segmentToProto } from '../src/journal-state.js';
import type { Replica } from '../src/replica/replica.js';
import type { JournalNodeConfig } from './config.js';
import type { JournalStateMachine } from './journal-state-machine.js';
import { errorNameOf, HTTP_STATUS, invalid, registerProtoRoute } from './rpc-errors.js';
import { WRITE_OPS } from './write-rpcs.js';
import { requireAdminToForce } from './authz.js';

const pb = qjournal.journal;
type Result = qjournal.journal.ICommandResult;

export interface QjmContext {
  config: JournalNodeConfig;
  replica: Replica<Result>;
  sm: JournalStateMachine;
}

type OpField = (typeof WRITE_OPS)[keyof typeof WRITE_OPS];
const OP_FIELDS: OpField[] = Object.values(WRITE_OPS);

function checkIndex(v: unknown, field: string, min: number): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min) {
    throw invalid(`${field} must be an integer >= ${min} and at most 2^53-1, got ${String(v)}`);
  }
  return v;
}

function checkJid(jid: string): void {
  if (!isJournalId(jid)) throw invalid(`bad journal id ${JSON.stringify(jid)}: expected ${JOURNAL_ID_RULE}`);
}

function checkNs(ns: qjournal.journal.INamespaceInfo | null | undefined): void {
  if (!ns) throw invalid('nsInfo is required');
  checkIndex(Number(ns.namespaceId ?? 0), 'nsInfo.namespaceId', 0);
  if ((ns.clusterId ?? '').length > 256 || (ns.blockPoolId ?? '').length > 256) throw invalid('nsInfo strings are limited to 256 characters');
}

/** Structural and limit checks of a write; state checks (epochs, txid continuity) happen when it applies. */
export function validateCommand(cmd: qjournal.journal.ICommand, op: OpField, cfg: JournalNodeConfig): void {
  checkJid(cmd.jid ?? '');
  const present = OP_FIELDS.filter((f) => cmd[f] != null);
  if (present.length !== 1 || present[0] !== op) throw invalid(`this RPC carries a ${op} command, got ${present.join(', ') || 'none'}`);
  const n = (v: number | null | undefined) => Number(v ?? 0);
  switch (op) {
    case 'format':
      checkNs(cmd.format!.nsInfo);
      return;
    case 'newEpoch':
      checkNs(cmd.newEpoch!.nsInfo);
      if ((cmd.newEpoch!.writerId ?? '').length > 256) throw invalid('writerId is limited to 256 characters');
      return;
    case 'startSegment':
      checkIndex(n(cmd.startSegment!.epoch), 'epoch', 1);
      checkIndex(n(cmd.startSegment!.txid), 'txid', 1);
      return;
    case 'journal': {
      const j = cmd.journal!;
      const records = j.records ?? new Uint8Array(0);
      const count = n(j.count);
      checkIndex(n(j.epoch), 'epoch', 1);
      const segmentTxid = checkIndex(n(j.segmentTxid), 'segmentTxid', 1);
      const first = checkIndex(n(j.firstTxid), 'firstTxid', 1);
      if (count < 1) throw invalid('count must be at least 1');
      checkIndex(first + count - 1, 'last txid (firstTxid + count - 1)', 1);
      if (first < segmentTxid) throw invalid(`firstTxid ${first} is before the segment's first txid ${segmentTxid}`);
      if (records.byteLength > cfg.maxBatchBytes) {
        throw new QjmError('TOO_LARGE', `batch of ${records.byteLength} bytes is over maxBatchBytes (${cfg.maxBatchBytes})`);
      }
      const problem = validateBatch(records, first, count, { maxRecordBytes: cfg.maxRecordBytes });
      if (problem) throw new QjmError(problem.name, problem.message);
      return;
    }
    case 'finalizeSegment': {
      const f = cmd.finalizeSegment!;
      checkIndex(n(f.epoch), 'epoch', 1);
      const first = checkIndex(n(f.firstTxid), 'firstTxid', 1);
      const last = checkIndex(n(f.lastTxid), 'lastTxid', 1);
      if (last < first) throw invalid(`lastTxid ${last} is before firstTxid ${first}`);
      return;
    }
    case 'dropSegment':
      checkIndex(n(cmd.dropSegment!.epoch), 'epoch', 1);
      checkIndex(n(cmd.dropSegment!.firstTxid), 'firstTxid', 1);
      return;
    case 'purge':
      checkIndex(n(cmd.purge!.epoch), 'epoch', 1);
      checkIndex(n(cmd.purge!.minTxidToKeep), 'minTxidToKeep', 0);
      return;
  }
}

function readEdits(sm: JournalStateMachine, r: qjournal.journal.GetEditsRequest, from: number, config: JournalNodeConfig) {
  const maxTxns = r.maxTxns === 0 ? 100_000 : Math.min(r.maxTxns, 1_000_000);
  const maxBytes = r.maxBytes === 0 ? config.maxBatchBytes : Math.min(r.maxBytes, config.maxAppendBodyBytes);
  const j = sm.journal(r.jid);
  if (!j || !j.formatted) throw new QjmError('NOT_FORMATTED', `journal ${r.jid} is not formatted`);
  return j.readEdits(from, maxTxns, maxBytes, r.inProgressOk);
}

export function registerQjmRoutes(app: FastifyInstance, ctx: QjmContext): void {
  registerWriteRoutes(app, ctx);
  registerReadRoutes(app, ctx);
  registerSegmentDownload(app, ctx);
}

/** The writes: validated, proposed through Raft on the leader, answered with the result of their apply. */
function registerWriteRoutes(app: FastifyInstance, ctx: QjmContext): void {
  const { replica, config } = ctx;
  const term = () => replica.term;
  const proposeCommand = (data: Uint8Array, expectedTerm: number | undefined) =>
    new Promise<{ index: number; term: number; value: Result }>((resolve, reject) => {
      replica.propose(data, expectedTerm, (err, res) => (err ? reject(err) : resolve(res!)));
    });
  for (const [rpc, op] of Object.entries(WRITE_OPS)) {
    registerProtoRoute(app, `/qjm/${rpc}`, {
      request: pb.WriteRequest,
      requestName: 'WriteRequest',
      response: pb.WriteResponse,
      handle: async (wr, req) => {
        if (!wr.command) throw invalid('command is required');
        validateCommand(wr.command, op, config);
        if (op === 'format' && wr.command.format?.force) requireAdminToForce(req.caller);
        const expectedTerm = Number(wr.expectedTerm);
        if (!Number.isSafeInteger(expectedTerm)) throw invalid('expectedTerm out of range');
        if (!replica.isLeader) throw new QjmError('NOT_LEADER', `${replica.id} is not the leader`, replica.leaderDetails());
        const res = await proposeCommand(pb.Command.encode(wr.command).finish(), expectedTerm > 0 ? expectedTerm : undefined);
        const code = res.value.code ?? 0;
        return { status: code === 0 ? 200 : HTTP_STATUS[errorNameOf(code)], body: { result: res.value, raftIndex: res.index, raftTerm: res.term } };
      },
    }, term);
  }
}

/** The reads, from this node's applied state (after a ReadIndex round when the reader asks for it). */
function registerReadRoutes(app: FastifyInstance, ctx: QjmContext): void {
  const { replica, sm, config } = ctx;
  const term = () => replica.term;
  const linearize = (read: qjournal.journal.IReadOptions | null | undefined) =>
    new Promise<void>((resolve, reject) => {
      if (!read?.linearizable) return resolve();
      replica.readIndex((err) => (err ? reject(err) : resolve()));
    });

  registerProtoRoute(app, '/qjm/getJournalState', {
    request: pb.GetJournalStateRequest,
    requestName: 'GetJournalStateRequest',
    response: pb.GetJournalStateResponse,
    handle: async (r) => {
      checkJid(r.jid);
      await linearize(r.read);
      const j = sm.journal(r.jid);
      const age = sm.lastWriteAgeMs(r.jid);
      return {
        body: {
          state: j ? journalStateToProto(j.state()) : { jid: r.jid, formatted: false },
          appliedIndex: replica.appliedIndex,
          lastWriteAgeMs: age === null ? 0 : Math.max(1, age),
          nodeId: replica.id,
          fromLeader: replica.isLeader,
        },
      };
    },
  }, term);

  registerProtoRoute(app, '/qjm/getEditLogManifest', {
    request: pb.GetManifestRequest,
    requestName: 'GetManifestRequest',
    response: pb.GetManifestResponse,
    handle: async (r) => {
      checkJid(r.jid);
      checkIndex(r.sinceTxid, 'sinceTxid', 0);
      await linearize(r.read);
      const j = sm.journal(r.jid);
      if (!j || !j.formatted) throw new QjmError('NOT_FORMATTED', `journal ${r.jid} is not formatted`);
      return { body: { segments: j.manifest(r.sinceTxid, r.inProgressOk).map(segmentToProto), committedTxid: j.lastTxId } };
    },
  }, term);

  registerProtoRoute(app, '/qjm/getEdits', {
    request: pb.GetEditsRequest,
    requestName: 'GetEditsRequest',
    response: pb.GetEditsResponse,
    handle: async (r) => {
      checkJid(r.jid);
      const from = checkIndex(r.fromTxid, 'fromTxid', 1);
      if (r.waitMs > config.maxWaitMs) throw invalid(`waitMs ${r.waitMs} is over maxWaitMs (${config.maxWaitMs})`);
      await linearize(r.read);
      let got = readEdits(sm, r, from, config);
      if (got.count === 0 && r.waitMs > 0) {
        await new Promise<void>((resolve) => sm.waitForTxid(r.jid, from, r.waitMs, resolve));
        got = readEdits(sm, r, from, config);
      }
      const committed = sm.journal(r.jid)?.lastTxId ?? 0;
      const leaderAddress = replica.leaderDetails().leaderAddress ?? '';
      return { body: { firstTxid: got.firstTxId, count: got.count, records: got.frames, committedTxid: committed, leaderAddress } };
    },
  }, term);
}

/**
 * Raw segment download for bulk catch-up (Hadoop's /getJournal): a finalized segment, or the committed part
 * of the in-progress one.
 */
function registerSegmentDownload(app: FastifyInstance, ctx: QjmContext): void {
  const { sm } = ctx;
  app.get('/qjm/segment', async (req, reply) => {
    const q = req.query as Record<string, string | undefined>;
    const jid = q.jid ?? '';
    const first = Number(q.first);
    if (!isJournalId(jid) || !Number.isSafeInteger(first) || first < 1) {
      return reply.code(400).send({ code: 'QJM_ERR_INVALID_ARGUMENT', message: 'expected ?jid=<journal id>&first=<first txid of a segment>' });
    }
    const seg = sm.journal(jid)?.segmentAt(first);
    if (!seg) return reply.code(404).send({ code: 'QJM_ERR_NOT_FORMATTED', message: `journal ${jid} has no segment starting at ${first}` });
    const size = seg.sizeBytes;
    reply.header('x-qjm-first-txid', String(seg.firstTxId)).header('x-qjm-last-txid', String(seg.lastTxId)).header('x-qjm-in-progress', String(seg.inProgress));
    return reply.type('application/octet-stream').send(fs.createReadStream(seg.path, { start: 0, end: Math.max(0, size - 1) }));
  });
}
