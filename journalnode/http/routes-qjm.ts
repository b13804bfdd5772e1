// The journal RPCs libqjm and qjm call: POST /qjm/<rpc> with protobuf bodies. Every body is validated before
// anything happens (a 4xx names the problem and changes nothing); writes go through Raft on the leader
// (others answer NOT_LEADER with the leader's address); reads are served from this node's applied state,
// after a ReadIndex round when the reader asks for linearizable freshness.

import fs from 'node:fs';
import type { FastifyInstance } from 'fastify';
import { qjournal } from '../../src/gen/proto.js';
import { QjmError } from '../../src/errors.js';
import { isJournalId } from '../../src/ids.js';
import { readWriteRequest } from '../../src/journal-write-wire.js';
import { journalStateToProto, segmentToProto, WRITER_ACTIVE_MS } from '../../src/journal-state.js';
import type { Replica } from '../../src/replica/replica.js';
import type { JournalNodeConfig } from '../config.js';
import type { JournalStateMachine } from '../state/journal-state-machine.js';
import { checkIndex, checkJid, invalid, validateCommand } from '../state/commands.js';
import { errorNameOf, HTTP_STATUS, registerProtoRoute, SMALL_BODY_BYTES } from './rpc-errors.js';
import { WRITE_OPS } from '../state/write-rpcs.js';
import { requireAdminToForce } from './authz.js';

const pb = qjournal.journal;
type Result = qjournal.journal.ICommandResult;

export interface QjmContext {
  config: JournalNodeConfig;
  replica: Replica<Result>;
  stateMachine: JournalStateMachine;
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

function readEdits(
  stateMachine: JournalStateMachine,
  r: qjournal.journal.GetEditsRequest,
  from: number,
  config: JournalNodeConfig,
) {
  const maxTxns = r.maxTxns === 0 ? 100_000 : Math.min(r.maxTxns, 1_000_000);
  const maxBytes = r.maxBytes === 0 ? config.maxBatchBytes : Math.min(r.maxBytes, config.maxAppendBodyBytes);
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
  return j.readEdits(from, maxTxns, maxBytes, r.inProgressOk);
}

/** A WriteRequest as the write routes read it: the command decoded from the very bytes the leader proposes. */
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

export function registerQjmRoutes(app: FastifyInstance, ctx: QjmContext): void {
  registerWriteRoutes(app, ctx);
  registerReadRoutes(app, ctx);
  registerSegmentDownload(app, ctx);
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
          const carried = validateCommand(wr.command, config);
          if (carried !== op) throw invalid(`this RPC carries a ${op} command, got ${carried}`);
          if (op === 'format' && wr.command.format?.force) requireAdminToForce(req.caller);
          if (op === 'format') refuseFormatUnderLiveWriter(ctx, wr.command);
          const expectedTerm = wr.expectedTerm;
          if (!Number.isSafeInteger(expectedTerm)) throw invalid('expectedTerm out of range');
          const refused = replica.identityRefusal();
          if (refused) throw refused;
          if (!replica.isLeader)
            throw new QjmError('NOT_LEADER', `${replica.id} is not the leader`, replica.leaderDetails());
          // Validated here, with this node's limits (never looser than those every replica applies with): when
          // these very bytes apply on this node, the state machine uses this decoding instead of decoding again.
          stateMachine.knowValidated(wr.commandBytes, wr.command);
          const res = await proposeCommand(wr.commandBytes, expectedTerm > 0 ? expectedTerm : undefined);
          const code = res.value.code ?? 0;
          return {
            status: code === 0 ? 200 : HTTP_STATUS[errorNameOf(code)],
            body: { result: res.value, raftIndex: res.index, raftTerm: res.term },
          };
        },
      },
      term,
      { bodyLimitBytes: op === 'journal' ? config.maxBatchBytes + SMALL_BODY_BYTES : SMALL_BODY_BYTES },
    );
  }
}

/** The reads, from this node's applied state (after a ReadIndex round when the reader asks for it). */
function registerReadRoutes(app: FastifyInstance, ctx: QjmContext): void {
  const { replica, stateMachine, config } = ctx;
  const term = () => replica.term;
  // A node that stood down (or whose storage waits to be re-added) serves no read at all: what it applied may
  // run past the point where its old cluster was reset, into edits the reset cluster never held.
  const linearize = (read: qjournal.journal.IReadOptions | null | undefined) =>
    new Promise<void>((resolve, reject) => {
      const refused = replica.identityRefusal();
      if (refused) return reject(refused);
      if (!read?.linearizable) return resolve();
      replica.readIndex((err) => (err ? reject(err) : resolve()));
    });

  registerProtoRoute(
    app,
    '/qjm/getJournalState',
    {
      request: pb.GetJournalStateRequest,
      requestName: 'GetJournalStateRequest',
      response: pb.GetJournalStateResponse,
      handle: async (r) => {
        checkJid(r.jid);
        await linearize(r.read);
        const j = stateMachine.journal(r.jid);
        const age = stateMachine.lastWriteAgeMs(r.jid);
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
    },
    term,
  );

  registerProtoRoute(
    app,
    '/qjm/getEditLogManifest',
    {
      request: pb.GetManifestRequest,
      requestName: 'GetManifestRequest',
      response: pb.GetManifestResponse,
      handle: async (r) => {
        checkJid(r.jid);
        checkIndex(r.sinceTxid, 'sinceTxid', 0);
        await linearize(r.read);
        const j = stateMachine.journal(r.jid);
        if (!j?.formatted) throw new QjmError('NOT_FORMATTED', `journal ${r.jid} is not formatted`);
        return {
          body: { segments: j.manifest(r.sinceTxid, r.inProgressOk).map(segmentToProto), committedTxid: j.lastTxId },
        };
      },
    },
    term,
  );

  registerProtoRoute(
    app,
    '/qjm/getEdits',
    {
      request: pb.GetEditsRequest,
      requestName: 'GetEditsRequest',
      response: pb.GetEditsResponse,
      handle: async (r, { left }) => {
        checkJid(r.jid);
        const from = checkIndex(r.fromTxid, 'fromTxid', 1);
        if (r.waitMs > config.maxWaitMs) throw invalid(`waitMs ${r.waitMs} is over maxWaitMs (${config.maxWaitMs})`);
        await linearize(r.read);
        let got = readEdits(stateMachine, r, from, config);
        if (got.count === 0 && r.waitMs > 0) {
          await stateMachine.waitForTxid(r.jid, from, r.waitMs, left);
          got = readEdits(stateMachine, r, from, config);
        }
        const committed = stateMachine.journal(r.jid)?.lastTxId ?? 0;
        const leaderAddress = replica.leaderDetails().leaderAddress ?? '';
        return {
          body: {
            firstTxid: got.firstTxId,
            count: got.count,
            records: got.frames,
            committedTxid: committed,
            leaderAddress,
          },
        };
      },
    },
    term,
  );
}

/**
 * Raw segment download for bulk catch-up (Hadoop's /getJournal): a finalized segment, or the committed part
 * of the in-progress one.
 */
function registerSegmentDownload(app: FastifyInstance, ctx: QjmContext): void {
  const { stateMachine, replica } = ctx;
  app.get('/qjm/segment', async (req, reply) => {
    const refused = replica.identityRefusal();
    if (refused)
      return reply.code(HTTP_STATUS[refused.errorName]).send({ code: refused.code, message: refused.message });
    const q = req.query as Record<string, string | undefined>;
    const jid = q.jid ?? '';
    const first = Number(q.first);
    if (!isJournalId(jid) || !Number.isSafeInteger(first) || first < 1) {
      return reply.code(400).send({
        code: 'QJM_ERR_INVALID_ARGUMENT',
        message: 'expected ?jid=<journal id>&first=<first txid of a segment>',
      });
    }
    const seg = stateMachine.journal(jid)?.segmentAt(first);
    if (!seg)
      return reply
        .code(404)
        .send({ code: 'QJM_ERR_NOT_FORMATTED', message: `journal ${jid} has no segment starting at ${first}` });
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
