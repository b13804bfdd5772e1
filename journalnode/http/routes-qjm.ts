// The journal RPCs libqjm and qjm call: POST /qjm/<rpc> with protobuf bodies. Every body is validated before
// anything happens (a 4xx names the problem and changes nothing); writes go through Raft on the leader
// (others answer NOT_LEADER with the leader's address); reads are served from this node's applied state,
// after a ReadIndex round when the reader asks for linearizable freshness.

import fs from 'node:fs';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { qjournal } from '../../src/gen/proto.js';
import { httpStatusOf, QjmError } from '../../src/errors.js';
import { isJournalId } from '../../src/ids.js';
import { readWriteRequest } from '../../src/journal-write-wire.js';
import { journalStateToProto, segmentToProto, WRITER_ACTIVE_MS } from '../../src/journal-state.js';
import type { Replica } from '../../src/replica/replica.js';
import type { JournalNodeConfig } from '../config.js';
import type { JournalStateMachine } from '../state/journal-state-machine.js';
import { checkIndex, checkJid, invalid, validateCommand } from '../state/commands.js';
import { errorNameOf, registerProtoRoute, sendJsonError, SMALL_BODY_BYTES } from './rpc-errors.js';
import type { ProtoAnswer, ProtoRoute, RpcErrorField } from './rpc-errors.js';
import { WRITE_OPS } from '../state/write-rpcs.js';
import { authorizeJournal, callerName, JSON_ENVELOPE, refuse, requireAdminToForce } from './authz.js';
import type { Caller } from './authz.js';
import { retentionFloor } from './retention.js';
import type { RecentReads } from './retention.js';
import type { RetentionFloor } from './retention.js';
import type { EditsPlan } from '../state/journal.js';
import { answerHolds, editsAnswer, INLINE_ANSWER_BYTES } from './edits-answer.js';
import { STREAM_WINDOW_BYTES } from './response-budget.js';
import type { ResponseBudget } from './response-budget.js';

/** Throws the refusal when the caller's certificate does not name the journal (authz.ts): nothing else is done. */
function requireJournal(caller: Caller | null, jid: string | null | undefined): void {
  const refusal = authorizeJournal(caller, jid ?? '');
  if (refusal) throw refusal;
}

const pb = qjournal.journal;
type Result = qjournal.journal.ICommandResult;

export interface QjmContext {
  config: JournalNodeConfig;
  replica: Replica<Result>;
  stateMachine: JournalStateMachine;
  /** Where readers read recently: part of the retention floor a purge respects. */
  reads: RecentReads;
  /** The answer bytes the node holds for its clients (large reads reserve before they are built). */
  budget: ResponseBudget;
}

function floorOf(ctx: QjmContext, jid: string): RetentionFloor {
  const j = ctx.stateMachine.journal(jid);
  if (!j?.formatted) return { fromTxId: 0, reason: 'the journal is not formatted' };
  return retentionFloor(j.state(), {
    minTxnsRetained: ctx.config.minTxnsRetained,
    readWindowMs: ctx.config.readRetentionWindowMs,
    reads: ctx.reads,
  });
}

const retentionToProto = (f: RetentionFloor) => ({ fromTxid: f.fromTxId, reason: f.reason });

/**
 * A purge keeps what the retention floor names unless forced (admin only). The floor is this leader's
 * knowledge (its readers, its settings), so it is written into the command here, over whatever the client
 * sent, and every replica applies that one value.
 */
function setRetentionFloor(ctx: QjmContext, wr: WriteRequestView, caller: Caller | null): void {
  const p = wr.command.purge!;
  if (p.force) requireAdminToForce(caller, 'purge');
  p.retainFromTxid = p.force ? 0 : Math.max(1, floorOf(ctx, wr.command.jid ?? '').fromTxId || Number.MAX_SAFE_INTEGER);
  wr.commandBytes = pb.Command.encode(wr.command).finish();
}

/**
 * `format` with `force` wipes a journal: refused while its writer is alive (wrote within WRITER_ACTIVE_MS on
 * this leader) unless the request says allowActiveWriter. A check of the leader's clock, so it is made here
 * before proposing, never at apply.
 */
function refuseFormatUnderLiveWriter(ctx: QjmContext, cmd: qjournal.journal.ICommand): void {
  const f = cmd.format!;
  if (!f.force || f.allowActiveWriter) return;
  const j = ctx.stateMachine.journal(cmd.jid ?? '');
  const age = ctx.stateMachine.lastWriteAgeMs(cmd.jid ?? '');
  if (j?.formatted && age !== null && age < WRITER_ACTIVE_MS) {
    throw new QjmError(
      'WRITER_ACTIVE',
      `journal ${j.jid}: writer ${j.writerId || '?'} (epoch ${j.promisedEpoch}) wrote ${age} ms ago; a forced format would destroy what it writes. Stop it first, or set allowActiveWriter`,
    );
  }
}

/**
 * A new journal whose id differs from an existing one only by case (NS1 beside ns1) is refused: an operator
 * reads them as one, and on a case-insensitive file system their directories would be one. A guard of the
 * leader's, before proposing (journals made before it stay as they are).
 */
function refuseCaseTwin(ctx: QjmContext, jid: string): void {
  if (ctx.stateMachine.journal(jid)) return;
  const twin = ctx.stateMachine.allJournals().find((j) => j.jid.toLowerCase() === jid.toLowerCase());
  if (twin) {
    throw new QjmError(
      'INVALID_ARGUMENT',
      `journal ${jid} differs from the existing journal ${twin.jid} only by case: use ${twin.jid}, or a name that differs by more than case`,
    );
  }
}

/**
 * A format as the leader proposes it: refused while a live writer would lose what it writes, or when it would
 * create one journal more than maxJournals; otherwise re-encoded carrying this leader's maxJournals, so that
 * formats racing past this check are refused at apply, alike on every replica (commands.ts).
 */
function formatAsProposed(ctx: QjmContext, cmd: qjournal.journal.Command): Uint8Array {
  refuseFormatUnderLiveWriter(ctx, cmd);
  const { stateMachine, config } = ctx;
  const jid = cmd.jid ?? '';
  if (!stateMachine.journal(jid) && stateMachine.journalCount >= config.maxJournals)
    throw new QjmError(
      'TOO_MANY_JOURNALS',
      `journal ${jid} would be journal ${stateMachine.journalCount + 1} of this cluster; maxJournals is ${config.maxJournals} (raise it on every node to create more)`,
    );
  cmd.format!.maxJournals = config.maxJournals;
  return pb.Command.encode(cmd).finish();
}

/**
 * Where the frames a read asks for lie, within what the answer may hold (`roomBytes`: the reader's budget,
 * response-budget.ts): a plan, nothing read yet.
 */
function planRead(
  stateMachine: JournalStateMachine,
  r: qjournal.journal.GetEditsRequest,
  from: number,
  config: JournalNodeConfig,
  roomBytes: number,
): EditsPlan {
  const maxTxns = r.maxTxns === 0 ? 100_000 : Math.min(r.maxTxns, 1_000_000);
  const asked = r.maxBytes === 0 ? config.maxBatchBytes : Math.min(r.maxBytes, config.maxAppendBodyBytes);
  const maxBytes = Math.min(asked, roomBytes);
  const j = stateMachine.journal(r.jid);
  if (!j?.formatted) throw new QjmError('NOT_FORMATTED', `journal ${r.jid} is not formatted`);
  const firstHeld = j.firstHeldTxId();
  if (from < firstHeld) {
    // Answering "no edits" here would leave a reader waiting for txids that will never come.
    throw new QjmError(
      'PURGED',
      `txids ${from}..${firstHeld - 1} of journal ${j.jid} were purged: the first txid it still holds is ${firstHeld}`,
      { firstAvailableTxId: firstHeld },
    );
  }
  return j.planEdits(from, maxTxns, maxBytes, r.inProgressOk);
}

/** A read refused for the answer budget: retriable, and the reader may read elsewhere. */
function readBusy(budget: ResponseBudget): QjmError {
  const o = budget.options;
  return new QjmError(
    'BUSY',
    `this node holds ${budget.bytesInFlight} bytes of answers for its clients (at most ${o.maxBytesInFlight}, ${o.maxBytesPerConnection} per connection): retry later`,
  );
}

/** The smallest read worth answering: below it the reader is told BUSY rather than fed a few bytes at a time. */
const MIN_READ_BYTES = 64 << 10;
/** Room kept for what an answer holds besides its frames: its head and the fields before them. */
const ANSWER_MARGIN_BYTES = 4 << 10;

/**
 * The frame bytes a read may answer with now: what its connection and the node may still hold, less the
 * margin; where that is less than a streamed answer's window, no more than an answer built whole.
 */
function answerRoom(budget: ResponseBudget, reply: FastifyReply): number {
  const room = budget.room(reply.raw.socket ?? reply.raw) - ANSWER_MARGIN_BYTES;
  return room >= STREAM_WINDOW_BYTES ? room : Math.min(room, INLINE_ANSWER_BYTES);
}

/** A WriteRequest as the write routes read it: the command decoded from the very bytes the leader proposes. */
type WriteRequestView = ReturnType<typeof writeRequestCodec.decode> & { command: qjournal.journal.Command };

const writeRequestCodec = {
  decode(body: Uint8Array) {
    const { commandBytes, expectedTerm } = readWriteRequest(body);
    return {
      command: commandBytes ? pb.Command.decode(commandBytes) : null,
      commandBytes: commandBytes ?? new Uint8Array(0),
      expectedTerm,
    };
  },
};

export function registerQjmRoutes(app: FastifyInstance, context: QjmContext): void {
  registerWriteRoutes(app, context);
  registerReadRoutes(app, context);
  registerSegmentDownload(app, context);
}

/** The writes: validated, proposed through Raft on the leader, answered with the result of their apply. */
function registerWriteRoutes(app: FastifyInstance, ctx: QjmContext): void {
  const { replica, config, stateMachine } = ctx;
  const term = () => replica.term;
  const proposeCommand = (data: Uint8Array, expectedTerm: number | undefined) =>
    new Promise<{ index: number; term: number; value: Result }>((resolve, reject) => {
      replica.propose(data, expectedTerm, (err, res) => (err ? reject(err) : resolve(res!)));
    });
  for (const [rpc, op] of Object.entries(WRITE_OPS)) {
    registerProtoRoute(
      app,
      `/qjm/${rpc}`,
      {
        request: writeRequestCodec,
        requestName: 'WriteRequest',
        response: pb.WriteResponse,
        handle: async (wr, { req }) => {
          if (!wr.command) throw invalid('command is required');
          requireJournal(req.caller, wr.command.jid);
          const carried = validateCommand(wr.command, config);
          if (carried !== op) throw invalid(`this RPC carries a ${op} command, got ${carried}`);
          if (op === 'format' && wr.command.format?.force) requireAdminToForce(req.caller, 'format');
          if (op === 'purge') setRetentionFloor(ctx, wr as WriteRequestView, req.caller);
          if (op === 'format') refuseCaseTwin(ctx, wr.command.jid ?? '');
          const expectedTerm = wr.expectedTerm;
          if (!Number.isSafeInteger(expectedTerm)) throw invalid('expectedTerm out of range');
          const refused = replica.identityRefusal();
          if (refused) throw refused;
          if (!replica.isLeader)
            throw new QjmError('NOT_LEADER', `${replica.id} is not the leader`, replica.leaderDetails());
          const bytes = op === 'format' ? formatAsProposed(ctx, wr.command) : wr.commandBytes;
          // Validated here, with this node's limits (never looser than those every replica applies with): when
          // these very bytes apply on this node, the state machine uses this decoding instead of decoding again.
          stateMachine.knowValidated(bytes, wr.command);
          const res = await proposeCommand(bytes, expectedTerm > 0 ? expectedTerm : undefined);
          const code = res.value.code ?? 0;
          return {
            status: code === 0 ? 200 : httpStatusOf(errorNameOf(code)),
            body: { result: res.value, raftIndex: res.index, raftTerm: res.term },
          };
        },
      },
      term,
      { bodyLimitBytes: op === 'appendRecords' ? config.maxBatchBytes + SMALL_BODY_BYTES : SMALL_BODY_BYTES },
    );
  }
}

type Linearize = (read: qjournal.journal.IReadOptions | null | undefined) => Promise<void>;
type ReadCall = Parameters<ProtoRoute<unknown, RpcErrorField>['handle']>[1];

/**
 * A read: the caller's right to the journal and the journal id first, then the request's own fields (`check`,
 * whose result `serve` gets), a ReadIndex round when the reader asks for a linearizable read, then the answer
 * from this node's applied state.
 */
function readRoute<
  Req extends { jid: string; read?: qjournal.journal.IReadOptions | null },
  Checked,
  Res extends RpcErrorField,
>(
  linearize: Linearize,
  message: Pick<ProtoRoute<Req, Res>, 'request' | 'requestName' | 'response'>,
  check: (r: Req, call: ReadCall) => Checked,
  serve: (r: Req, checked: Checked, call: ReadCall) => ProtoAnswer<Res> | Promise<ProtoAnswer<Res>>,
): ProtoRoute<Req, Res> {
  return {
    ...message,
    handle: async (r, call) => {
      requireJournal(call.req.caller, r.jid);
      checkJid(r.jid);
      const checked = check(r, call);
      await linearize(r.read);
      return serve(r, checked, call);
    },
  };
}

function journalStateRoute(context: QjmContext, linearize: Linearize) {
  const { replica, stateMachine } = context;
  const message = {
    request: pb.GetJournalStateRequest,
    requestName: 'GetJournalStateRequest',
    response: pb.GetJournalStateResponse,
  };
  return readRoute(
    linearize,
    message,
    () => null,
    (r): ProtoAnswer<qjournal.journal.IGetJournalStateResponse> => {
      const j = stateMachine.journal(r.jid);
      const age = stateMachine.lastWriteAgeMs(r.jid);
      return {
        body: {
          state: j ? journalStateToProto(j.state()) : { jid: r.jid, formatted: false },
          appliedIndex: replica.appliedIndex,
          lastWriteAgeMs: age === null ? 0 : Math.max(1, age),
          nodeId: replica.id,
          fromLeader: replica.isLeader,
          retention: retentionToProto(floorOf(context, r.jid)),
        },
      };
    },
  );
}

function manifestRoute({ stateMachine }: QjmContext, linearize: Linearize) {
  const message = {
    request: pb.GetManifestRequest,
    requestName: 'GetManifestRequest',
    response: pb.GetManifestResponse,
  };
  const check = (r: qjournal.journal.GetManifestRequest) => checkIndex(r.sinceTxid, 'sinceTxid', 0);
  return readRoute(linearize, message, check, (r): ProtoAnswer<qjournal.journal.IGetManifestResponse> => {
    const j = stateMachine.journal(r.jid);
    if (!j?.formatted) throw new QjmError('NOT_FORMATTED', `journal ${r.jid} is not formatted`);
    return {
      body: { segments: j.manifest(r.sinceTxid, r.inProgressOk).map(segmentToProto), committedTxid: j.lastTxId },
    };
  });
}

function editsRoute(context: QjmContext, linearize: Linearize) {
  const { config } = context;
  const message = { request: pb.GetEditsRequest, requestName: 'GetEditsRequest', response: pb.GetEditsResponse };
  const check = (r: qjournal.journal.GetEditsRequest, { req }: ReadCall) => {
    const from = checkIndex(r.fromTxid, 'fromTxid', 1);
    context.reads.note(r.jid, `${callerName(req.caller)}@${req.ip}`, from);
    if (r.waitMs > config.maxWaitMs) throw invalid(`waitMs ${r.waitMs} is over maxWaitMs (${config.maxWaitMs})`);
    return from;
  };
  return readRoute(linearize, message, check, (r, from, { reply, left }) => answerEdits(context, r, from, reply, left));
}

/** The reads, from this node's applied state (after a ReadIndex round when the reader asks for it). */
function registerReadRoutes(app: FastifyInstance, context: QjmContext): void {
  const { replica } = context;
  const term = () => replica.term;
  // A node that stood down (or whose storage waits to be re-added) serves no read at all: what it applied may
  // run past the point where its old cluster was reset, into edits the reset cluster never held.
  const linearize: Linearize = (read) =>
    new Promise<void>((resolve, reject) => {
      const refused = replica.identityRefusal();
      if (refused) return reject(refused);
      if (!read?.linearizable) return resolve();
      replica.readIndex((err) => (err ? reject(err) : resolve()));
    });
  registerProtoRoute(app, '/qjm/getJournalState', journalStateRoute(context, linearize), term);
  registerProtoRoute(app, '/qjm/getEditLogManifest', manifestRoute(context, linearize), term);
  registerProtoRoute(app, '/qjm/getEdits', editsRoute(context, linearize), term);
}

/**
 * A getEdits answer (after the wait a long-poll asked for, when nothing is there yet), sized to what this
 * connection and the node may still hold (response-budget.ts) and reserved in that budget: BUSY when nothing
 * fits. Large answers are streamed (edits-answer.ts).
 */
async function answerEdits(
  ctx: QjmContext,
  r: qjournal.journal.GetEditsRequest,
  from: number,
  reply: FastifyReply,
  left: AbortSignal,
): Promise<ProtoAnswer<qjournal.journal.IGetEditsResponse>> {
  const { stateMachine, config, budget, replica } = ctx;
  if (answerRoom(budget, reply) < MIN_READ_BYTES) throw readBusy(budget);
  let plan = planRead(stateMachine, r, from, config, answerRoom(budget, reply));
  if (plan.count === 0 && r.waitMs > 0) {
    await stateMachine.waitForTxid(r.jid, from, r.waitMs, left);
    plan = planRead(stateMachine, r, from, config, Math.max(MIN_READ_BYTES, answerRoom(budget, reply)));
  }
  const answer = editsAnswer(plan, {
    committedTxid: stateMachine.journal(r.jid)?.lastTxId ?? 0,
    leaderAddress: replica.leaderDetails().leaderAddress ?? '',
  });
  // What the answer keeps alive while it is sent: its bytes, or its stream's window and the cached pieces it
  // streams from.
  const holds = 'bytes' in answer ? answer.bytes.byteLength : answerHolds(plan);
  if (!budget.reserve(reply, holds)) {
    if ('stream' in answer) answer.stream.destroy();
    throw readBusy(budget);
  }
  return 'bytes' in answer ? { encoded: answer.bytes } : answer;
}

/**
 * Raw segment download for bulk catch-up (Hadoop's /getJournal): a finalized segment, or the committed part
 * of the in-progress one.
 */
function registerSegmentDownload(app: FastifyInstance, ctx: QjmContext): void {
  const { stateMachine, replica } = ctx;
  app.get('/qjm/segment', async (req, reply) => {
    const refused = replica.identityRefusal();
    if (refused) return sendJsonError(reply, refused);
    const q = req.query as Record<string, unknown>;
    const jid = typeof q.jid === 'string' ? q.jid : '';
    const refusal = authorizeJournal(req.caller, jid);
    if (refusal) return refuse(reply, JSON_ENVELOPE, refusal);
    const first = typeof q.first === 'string' ? Number(q.first) : Number.NaN;
    if (!isJournalId(jid) || !Number.isSafeInteger(first) || first < 1) {
      const message = 'expected ?jid=<journal id>&first=<first txid of a segment>';
      return sendJsonError(reply, new QjmError('INVALID_ARGUMENT', message));
    }
    const seg = stateMachine.journal(jid)?.segmentAt(first);
    if (!seg) {
      return sendJsonError(reply, new QjmError('NOT_FORMATTED', `journal ${jid} has no segment starting at ${first}`));
    }
    const size = seg.sizeBytes;
    reply
      .header('x-qjm-first-txid', String(seg.firstTxId))
      .header('x-qjm-last-txid', String(seg.lastTxId))
      .header('x-qjm-in-progress', String(seg.inProgress));
    return reply
      .type('application/octet-stream')
      .send(fs.createReadStream(seg.path, { start: 0, end: Math.max(0, size - 1) }));
  });
}
