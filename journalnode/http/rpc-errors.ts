// Errors on the wire and the one way a protobuf RPC route is declared: each error is answered with its HTTP
// status (src/errors.ts's one table) and the RpcError libqjm decodes, carried in the route's own response message. Bad input is a
// 4xx and changes nothing; a journal rejection (FENCED, OUT_OF_SYNC, ...) is a 409.

import type { Readable } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { qjournal } from '../../src/gen/proto.js';
import { isErrorName, QjmError } from '../../src/errors.js';
import type { ErrorName } from '../../src/errors.js';
import { isResourceShortage } from '../../src/replica/env.js';

const pb = qjournal.journal;

export function errorNameOf(code: number): ErrorName {
  const name = pb.ErrorCode[code] as string | undefined;
  return name && name !== 'OK' && isErrorName(name) ? name : 'INTERNAL';
}

export function toRpcError(e: QjmError, term: number): qjournal.journal.IRpcError {
  const d = e.details;
  return {
    code: pb.ErrorCode[e.errorName],
    message: e.message,
    leaderId: typeof d.leaderId === 'string' ? d.leaderId : '',
    leaderAddress: typeof d.leaderAddress === 'string' ? d.leaderAddress : '',
    promisedEpoch: typeof d.promisedEpoch === 'number' ? d.promisedEpoch : 0,
    unknownOutcome: d.unknownOutcome === true,
    term,
    firstAvailableTxid: typeof d.firstAvailableTxId === 'number' ? d.firstAvailableTxId : 0,
  };
}

/**
 * A thrown value as a QjmError: out of file descriptors (a read that could not open its file during a
 * connection flood) is BUSY, retriable and no failure of the node; anything else unexpected is INTERNAL.
 */
export function asQjmError(e: unknown): QjmError {
  if (e instanceof QjmError) return e;
  const message = e instanceof Error ? e.message : String(e);
  if (isResourceShortage(e)) return new QjmError('BUSY', `this node is short of file descriptors: ${message}`);
  return new QjmError('INTERNAL', message);
}

export function invalid(message: string): QjmError {
  return new QjmError('INVALID_ARGUMENT', message);
}

export function sendProto(reply: FastifyReply, status: number, bytes: Uint8Array): FastifyReply {
  return reply
    .code(status)
    .type('application/x-protobuf')
    .send(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
}

/** The body limit of every route that carries no edits: its largest legal body is a few hundred bytes. */
export const SMALL_BODY_BYTES = 64 << 10;

/** What every response message of an RPC carries: the refusal, when there is one. */
export type RpcErrorField = { error?: qjournal.journal.IRpcError | null };

export interface ProtoRoute<Req, Res extends RpcErrorField> {
  /** The request message type (generated), and its name for errors. */
  request: { decode(bytes: Uint8Array): Req };
  requestName: string;
  /** The response message type (generated); its `error` field carries a refusal. */
  response: { encode(message: Res): { finish(): Uint8Array } };
  /**
   * The answer, and its HTTP status (200 unless said): a message, or one already encoded, or a stream of
   * exactly lengthBytes bytes of the encoded message (a large read). `call.req` carries the caller (authz.ts);
   * `call.reply` is the reply (its budget, response-budget.ts); `call.left` aborts when the client goes away
   * before its answer.
   */
  handle(
    request: Req,
    call: { req: FastifyRequest; reply: FastifyReply; left: AbortSignal },
  ): Promise<ProtoAnswer<Res>>;
}

export type ProtoAnswer<Res> =
  | { status?: number; body: Res }
  | { status?: number; encoded: Uint8Array }
  | { status?: number; stream: Readable; lengthBytes: number };

/**
 * One protobuf RPC: decode, handle, encode; every refusal (malformed input included) answers in the route's
 * own response type with its `error` set and the HTTP status of the error's name.
 */
export function registerProtoRoute<Req, Res extends RpcErrorField>(
  app: FastifyInstance,
  path: string,
  route: ProtoRoute<Req, Res>,
  term: () => number,
  options: { bodyLimitBytes?: number } = {},
): void {
  app.post(path, { bodyLimit: options.bodyLimitBytes ?? SMALL_BODY_BYTES }, async (req, reply) => {
    try {
      let decoded: Req;
      try {
        decoded = route.request.decode(req.body as Buffer);
      } catch (e) {
        throw invalid(`malformed ${route.requestName}: ${(e as Error).message}`);
      }
      // A client that goes away before its answer (a long-poll it abandoned) stops whatever waits for it.
      const left = new AbortController();
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) left.abort();
      });
      const r = await route.handle(decoded, { req, reply, left: left.signal });
      if ('stream' in r)
        return reply
          .code(r.status ?? 200)
          .type('application/x-protobuf')
          .header('content-length', String(r.lengthBytes))
          .send(r.stream);
      return sendProto(reply, r.status ?? 200, 'encoded' in r ? r.encoded : route.response.encode(r.body).finish());
    } catch (e) {
      const err = asQjmError(e);
      return sendProto(
        reply,
        err.httpStatus,
        route.response.encode({ error: toRpcError(err, term()) } as Res).finish(),
      );
    }
  });
}

/**
 * A refusal in the protobuf envelope of any /qjm or /admin route: every response message of those routes has
 * `RpcError error = 1`, so these bytes decode as whichever one the client expects.
 */
export function sendProtoError(reply: FastifyReply, e: QjmError, term: number, status = e.httpStatus): FastifyReply {
  return sendProto(reply, status, pb.WriteResponse.encode({ error: toRpcError(e, term) }).finish());
}

/**
 * A refusal on a route that answers JSON: `{ code, message }` with the error's status, or the status given
 * where HTTP itself names the refusal (fastify's own 404, 413, 415; 405 for a method a route does not take).
 * The type is set here: a route that had already said it answers bytes still refuses in JSON.
 */
export function sendJsonError(reply: FastifyReply, e: QjmError, status = e.httpStatus): FastifyReply {
  return reply.code(status).type('application/json; charset=utf-8').send(e.jsonBody());
}

/** A write refused because the node is shutting down. */
export function refuseWhileDraining(
  reply: FastifyReply,
  id: string,
  leader: { leaderId?: string; leaderAddress?: string },
): FastifyReply {
  return sendProtoError(reply, new QjmError('SHUTTING_DOWN', `${id} is shutting down`, leader), 0);
}
