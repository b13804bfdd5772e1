// The edit reader against a scripted client: order across responses, gap detection, the end of a read of
// history, following (long-poll, moving to the leader), moving off a failed node, and abort.

import { expect } from 'chai';
import { qjournal } from '../../../src/gen/proto.js';
import { encodeRecords } from '../../../src/edit-records.js';
import { makeError, QjmError } from '../../../src/errors.js';
import { readEdits } from '../../../libqjm/edit-reader.js';
import type { EditSource, ReadEditsOptions } from '../../../libqjm/edit-reader.js';
import { RouteTable } from '../../../libqjm/route-table.js';
import type { RetryOptions } from '../../../libqjm/retry-policy.js';
import { waitFor } from '../../support/async.js';

const pb = qjournal.journal;
const data = (txid: number) => Buffer.from(`edit-${txid}`);

interface ReadCall {
  path: string;
  /** The node the reader pinned the read to (undefined: the client picks). */
  node: string | undefined;
  req: qjournal.journal.GetEditsRequest;
  timeoutMs: number | undefined;
  deadlineMs: number | undefined;
  signal: AbortSignal | undefined;
  atMs: number;
}

/** An answer: edits (and the node that served them), or the error the client would throw. */
type Answer = { node?: string; response: qjournal.journal.IGetEditsResponse } | QjmError;

function edits(
  first: number,
  count: number,
  extra: Partial<qjournal.journal.IGetEditsResponse> = {},
): { response: qjournal.journal.IGetEditsResponse } {
  const records = encodeRecords(
    first,
    Array.from({ length: count }, (_, i) => data(first + i)),
  );
  return { response: { firstTxid: count > 0 ? first : 0, count, records, ...extra } };
}

/** A client whose read() answers from a script, one answer per call; the reader's requests are kept. */
class ScriptedSource implements EditSource {
  readonly routes = new RouteTable(['a:1', 'b:1', 'c:1']);
  readonly retry: RetryOptions = { initialBackoffMs: 40, maxBackoffMs: 40, deadlineMs: 5000 };
  readonly calls: ReadCall[] = [];

  constructor(private readonly script: (call: ReadCall, i: number) => Answer | Promise<Answer>) {}

  /** Every node's word is taken here (what is established is the real client's business: server-identities). */
  leaderNamedBy(_address: string, leaderAddress: string | null | undefined): string | undefined {
    return leaderAddress || undefined;
  }

  async read<T extends { error?: qjournal.journal.IRpcError | null }>(
    path: string,
    body: Uint8Array,
    decode: (b: Buffer) => T,
    opts: { node?: string; timeoutMs?: number; deadlineMs?: number; signal?: AbortSignal } = {},
  ): Promise<{ node: string; response: T }> {
    const call: ReadCall = {
      path,
      node: opts.node,
      req: pb.GetEditsRequest.decode(body),
      timeoutMs: opts.timeoutMs,
      deadlineMs: opts.deadlineMs,
      signal: opts.signal,
      atMs: Date.now(),
    };
    this.calls.push(call);
    const a = await this.script(call, this.calls.length - 1);
    if (a instanceof QjmError) throw a;
    const node = a.node ?? opts.node ?? this.routes.anyTarget();
    return { node, response: decode(Buffer.from(pb.GetEditsResponse.encode(a.response).finish())) };
  }
}

/** The txids read (into `seen`, which keeps them when the read fails), until `until` says stop. */
async function collect(
  src: EditSource,
  opts: ReadEditsOptions,
  until?: (txid: number) => boolean,
  seen: number[] = [],
): Promise<number[]> {
  for await (const e of readEdits(src, 'ns1', opts)) {
    expect(Buffer.from(e.record).toString(), `record of txid ${e.txid}`).to.equal(`edit-${e.txid}`);
    seen.push(e.txid);
    if (until?.(e.txid)) break;
  }
  return seen;
}

async function failure(p: Promise<unknown>): Promise<QjmError> {
  const e = await p.then(
    () => null,
    (err: unknown) => err,
  );
  expect(e, 'expected a failure').to.be.instanceOf(QjmError);
  return e as QjmError;
}

describe('readEdits', () => {
  describe('a read of history (no follow)', () => {
    it('yields txids in order across responses and ends at the first empty answer', async () => {
      const answers = [edits(1, 3), edits(4, 2), edits(0, 0)];
      const src = new ScriptedSource((_c, i) => answers[i]!);
      expect(await collect(src, { fromTxId: 1 })).to.deep.equal([1, 2, 3, 4, 5]);
      expect(src.calls.map((c) => Number(c.req.fromTxid))).to.deep.equal([1, 4, 6]);
      const c = src.calls[0]!;
      expect([c.path, c.req.jid, c.req.waitMs, c.req.read?.linearizable]).to.deep.equal([
        '/qjm/getEdits',
        'ns1',
        0,
        true,
      ]);
    });

    it('stays on the node that answered even when it names another leader', async () => {
      const answers = [{ node: 'b:1', ...edits(1, 2, { leaderAddress: 'c:1' }) }, edits(3, 1), edits(0, 0)];
      const src = new ScriptedSource((_c, i) => answers[i]!);
      expect(await collect(src, { fromTxId: 1 })).to.deep.equal([1, 2, 3]);
      expect(src.calls.map((c) => c.node)).to.deep.equal([undefined, 'b:1', 'b:1']);
    });
  });

  describe('txid gaps', () => {
    it('a gap inside one response is CORRUPT', async () => {
      const records = Buffer.concat([encodeRecords(1, [data(1), data(2)]), encodeRecords(4, [data(4)])]);
      const src = new ScriptedSource(() => ({ response: { firstTxid: 1, count: 3, records } }));
      const seen: number[] = [];
      const err = await failure(collect(src, { fromTxId: 1 }, undefined, seen));
      expect(err.errorName).to.equal('CORRUPT');
      expect(err.message).to.match(/expected txid 3, got 4/);
      expect(seen).to.deep.equal([1, 2]);
    });

    it('a response that starts past the txid asked for is CORRUPT', async () => {
      const answers = [edits(1, 2), edits(4, 1), edits(0, 0)];
      const src = new ScriptedSource((_c, i) => answers[i]!);
      const seen: number[] = [];
      const err = await failure(collect(src, { fromTxId: 1 }, undefined, seen));
      expect(err.errorName).to.equal('CORRUPT');
      expect(err.message).to.match(/expected txid 3, got 4/);
      expect(seen).to.deep.equal([1, 2]);
    });
  });

  describe('follow', () => {
    it('long-polls, keeps asking after an empty answer, and moves to the leader the answer names', async () => {
      const answers = [
        { node: 'b:1', ...edits(1, 2, { leaderAddress: 'c:1' }) },
        edits(0, 0, { leaderAddress: 'c:1' }),
        edits(3, 2, { leaderAddress: 'c:1' }),
      ];
      const src = new ScriptedSource((_c, i) => answers[i]!);
      expect(await collect(src, { fromTxId: 1, follow: true, waitMs: 300 }, (t) => t === 4)).to.deep.equal([
        1, 2, 3, 4,
      ]);
      expect(src.calls.map((c) => c.node)).to.deep.equal([undefined, 'c:1', 'c:1']);
      expect(src.calls.map((c) => Number(c.req.fromTxid))).to.deep.equal([1, 3, 3]);
      for (const c of src.calls) {
        expect(
          [c.req.waitMs, c.req.read?.linearizable, c.timeoutMs],
          'a long-poll, not linearized, with time for the wait',
        ).to.deep.equal([300, false, 5300]);
      }
    });

    it('a leader that just failed is not moved back to at once', async () => {
      const src = new ScriptedSource((c, i) => {
        if (i === 0) return { node: 'b:1', ...edits(1, 1, { leaderAddress: 'c:1' }) };
        if (c.node === 'c:1') return makeError('UNAVAILABLE', 'c:1 is down', { node: 'c:1' });
        return { node: 'b:1', ...edits(Number(c.req.fromTxid), 1, { leaderAddress: 'c:1' }) };
      });
      expect(await collect(src, { fromTxId: 1, follow: true, waitMs: 300 }, (t) => t === 3)).to.deep.equal([1, 2, 3]);
      expect(src.calls.map((c) => c.node)).to.deep.equal([undefined, 'c:1', undefined, 'b:1']);
    });
  });

  describe('failures', () => {
    it('a failed node is left: after a backoff the next read lets the client pick a node, then sticks to it', async () => {
      const src = new ScriptedSource((c, i) => {
        if (i === 0) return makeError('UNAVAILABLE', `${c.node} refused the connection`, { node: c.node });
        return i === 1 ? { node: 'b:1', ...edits(1, 2) } : edits(0, 0);
      });
      src.routes.confirm('a:1', 1);
      expect(await collect(src, { fromTxId: 1 })).to.deep.equal([1, 2]);
      const [first, second, third] = src.calls;
      expect([first!.node, first!.deadlineMs], 'pinned to the known leader, no retries there').to.deep.equal([
        'a:1',
        0,
      ]);
      expect([second!.node, second!.deadlineMs], 'the client picks, within its deadline').to.deep.equal([
        undefined,
        5000,
      ]);
      expect(second!.atMs - first!.atMs, 'backed off (40 ms, jittered down to half)').to.be.at.least(19);
      expect(third!.node).to.equal('b:1');
    });

    it('a final error from a node surfaces', async () => {
      const src = new ScriptedSource(() => makeError('NOT_FORMATTED', 'journal ns1 is not formatted'));
      src.routes.confirm('a:1', 1);
      expect((await failure(collect(src, { fromTxId: 1 }))).errorName).to.equal('NOT_FORMATTED');
      expect(src.calls).to.have.length(1);
    });

    it('when the client itself gives up (no node answered within its deadline), the error surfaces', async () => {
      const src = new ScriptedSource(() => makeError('QUORUM_UNAVAILABLE', 'no JournalNode answered'));
      expect((await failure(collect(src, { fromTxId: 1 }))).errorName).to.equal('QUORUM_UNAVAILABLE');
      expect(src.calls).to.have.length(1);
    });
  });

  describe('abort', () => {
    it('aborting while a long-poll waits ends the iterator', async () => {
      const src = new ScriptedSource(
        (c) =>
          new Promise<Answer>((resolve) => {
            // As the real client does: an aborted request fails with SHUTTING_DOWN.
            c.signal!.addEventListener('abort', () => resolve(makeError('SHUTTING_DOWN', 'aborted by the caller')));
          }),
      );
      const ac = new AbortController();
      const it = readEdits(src, 'ns1', { fromTxId: 1, follow: true, signal: ac.signal });
      const next = it.next();
      await waitFor(() => src.calls.length === 1, { what: 'the first long-poll' });
      expect(src.calls[0]!.signal).to.equal(ac.signal);
      ac.abort();
      expect(await next).to.deep.equal({ done: true, value: undefined });
      expect(src.calls).to.have.length(1);
    });

    it('aborting between answers ends the iterator before the next request', async () => {
      const ac = new AbortController();
      const src = new ScriptedSource((c) => edits(Number(c.req.fromTxid), 2));
      const seen = await collect(src, { fromTxId: 1, follow: true, signal: ac.signal }, (t) => {
        if (t === 4) ac.abort();
        return false;
      });
      expect(seen).to.deep.equal([1, 2, 3, 4]);
      expect(src.calls).to.have.length(2);
    });
  });
});
