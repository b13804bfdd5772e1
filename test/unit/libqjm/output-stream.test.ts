// The writer's output stream against a fake client whose journal() answers the test releases by hand:
// batching, group commit, backpressure and its hard cap, failure, and txid assignment.

import { expect } from 'chai';
import { qjournal } from '../../../src/gen/proto.js';
import { framedSize, iterateRecords } from '../../../src/edit-records.js';
import { FencedError, QjmError, TooLargeError, QuorumUnavailableError } from '../../../src/errors.js';
import { EditLogOutputStream } from '../../../libqjm/output-stream.js';
import type { JournalWriter, OutputStreamOptions } from '../../../libqjm/output-stream.js';
import type { WriteResult } from '../../../libqjm/journal-client.js';
import { deferred, nextTurn, watch } from '../../support/async.js';
import type { Deferred } from '../../support/async.js';

const pb = qjournal.journal;
const RECORD_BYTES = 10;
/** A flush with nothing in flight seals its batch at the end of the turn's microtasks: let that happen. */
const endOfTurn = () => new Promise<void>((r) => queueMicrotask(r));
const FRAME = framedSize(RECORD_BYTES);
const rec = (fill = 7) => new Uint8Array(RECORD_BYTES).fill(fill);

interface JournalCall {
  rpc: string;
  /** The request as it was when sent (a copy: the stream reuses a buffer once its batch is acknowledged). */
  request: qjournal.journal.WriteRequest;
  op: qjournal.journal.IAppendRecordsOp;
  /** The bytes handed to the client, as they are. */
  body: Uint8Array;
  deadlineMs: number | undefined;
  answer: Deferred<WriteResult>;
}

/** A client whose every journal() call waits until the test acknowledges or fails it. */
class FakeWriter implements JournalWriter {
  readonly calls: JournalCall[] = [];

  writeEncoded(rpc: string, body: Uint8Array, opts: { deadlineMs?: number } = {}): Promise<WriteResult> {
    const answer = deferred<WriteResult>();
    const request = pb.WriteRequest.decode(Buffer.from(body));
    this.calls.push({ rpc, request, op: request.command!.appendRecords!, body, deadlineMs: opts.deadlineMs, answer });
    return answer.promise;
  }

  /** Acknowledges call `i` as durable on a quorum and lets the stream react. */
  async ack(i: number): Promise<void> {
    this.calls[i]!.answer.resolve({ result: pb.CommandResult.create(), index: i + 1, term: 1 });
    await nextTurn();
  }

  async fail(i: number, e: Error): Promise<void> {
    this.calls[i]!.answer.reject(e);
    await nextTurn();
  }

  txids(i: number): number[] {
    return [...iterateRecords(this.calls[i]!.op.records!)].map((r) => r.txid);
  }
}

function open(over: Partial<OutputStreamOptions> = {}): { out: EditLogOutputStream; w: FakeWriter } {
  const w = new FakeWriter();
  const out = new EditLogOutputStream(w, {
    jid: 'ns1',
    epoch: 3,
    segmentTxId: 1,
    nextTxId: 1,
    maxRecordBytes: 1024,
    maxBatchBytes: 1 << 20,
    highWaterMarkBytes: 1 << 20,
    autoFlushBytes: 1 << 20,
    writeTimeoutMs: 5000,
    ...over,
  });
  return { out, w };
}

describe('EditLogOutputStream', () => {
  describe('the request', () => {
    it('is a WriteRequest of a journal command: jid, epoch, segment, first txid, count and the framed records', async () => {
      const { out, w } = open({ jid: 'a-journal.x', epoch: 2 ** 40, segmentTxId: 300, nextTxId: 300 + 2 ** 33 });
      out.write(rec(1));
      out.write(rec(2));
      void out.flush();
      await endOfTurn();
      const r = w.calls[0]!.request;
      expect([r.command!.jid, Number(r.expectedTerm)]).to.deep.equal(['a-journal.x', 0]);
      const op = r.command!.appendRecords!;
      expect([Number(op.epoch), Number(op.segmentTxid), Number(op.firstTxid), op.count]).to.deep.equal([
        2 ** 40,
        300,
        300 + 2 ** 33,
        2,
      ]);
      expect([...iterateRecords(op.records!)].map((x) => [x.txid, x.data[0]])).to.deep.equal([
        [300 + 2 ** 33, 1],
        [301 + 2 ** 33, 2],
      ]);
    });

    it('records are framed once, in place: the request is the filled buffer, and an acknowledged buffer fills again', async () => {
      const { out, w } = open();
      out.write(rec(1));
      void out.flush();
      await endOfTurn();
      out.write(rec(2));
      void out.flush();
      await endOfTurn();
      await w.ack(0);
      out.write(rec(3));
      await w.ack(1);
      void out.flush();
      await endOfTurn();
      const [first, second, third] = w.calls.map((c) => c.body);
      expect(second!.buffer, 'the second batch filled while the first was in flight: another buffer').to.not.equal(
        first!.buffer,
      );
      expect(third!.buffer, 'the third fills the buffer the first one acknowledged').to.equal(first!.buffer);
      expect(w.txids(2)).to.deep.equal([3]);
    });
  });

  describe('batching', () => {
    it('records written between flushes go out as one journal() call, and none before the flush', async () => {
      const { out, w } = open();
      for (let i = 0; i < 5; i++) expect(out.write(rec())).to.equal(true);
      await nextTurn();
      expect(w.calls, 'write() alone sends nothing').to.have.length(0);
      const flushed = out.flush();
      await endOfTurn();
      expect(w.calls).to.have.length(1);
      expect(w.calls[0]!.rpc).to.equal('journal');
      expect(w.calls[0]!.deadlineMs, 'the batch gets writeTimeoutMs').to.equal(5000);
      expect(w.txids(0)).to.deep.equal([1, 2, 3, 4, 5]);
      await w.ack(0);
      expect(await flushed).to.equal(5);
      expect(w.calls).to.have.length(1);
    });

    it('a batch never exceeds maxBatchBytes: a long run goes out as several batches, in txid order, one at a time', async () => {
      const { out, w } = open({ maxBatchBytes: 3 * FRAME });
      for (let i = 0; i < 10; i++) out.write(rec());
      const flushed = out.flush();
      await endOfTurn();
      const seen: number[] = [];
      for (let i = 0; i < 4; i++) {
        expect(w.calls, `batch ${i} alone in flight`).to.have.length(i + 1);
        expect(w.calls[i]!.op.records!.byteLength).to.be.at.most(3 * FRAME);
        expect(Number(w.calls[i]!.op.firstTxid)).to.equal(seen.length + 1);
        expect(w.calls[i]!.op.count).to.equal(w.txids(i).length);
        seen.push(...w.txids(i));
        await w.ack(i);
      }
      expect(seen).to.deep.equal([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
      expect(w.calls.map((c) => c.op.count)).to.deep.equal([3, 3, 3, 1]);
      expect(await flushed).to.equal(10);
    });

    it('a batch goes out on its own once the buffer reaches autoFlushBytes', async () => {
      const { out, w } = open({ autoFlushBytes: 2 * FRAME });
      out.write(rec());
      expect(w.calls).to.have.length(0);
      out.write(rec());
      expect(w.calls, 'sent without flush()').to.have.length(1);
      expect(w.txids(0)).to.deep.equal([1, 2]);
      await w.ack(0);
      expect(out.lastDurableTxId).to.equal(2);
    });
  });

  describe('group commit', () => {
    it('a flush while a batch is in flight resolves after the next batch', async () => {
      const { out, w } = open();
      out.write(rec());
      const first = out.flush();
      await endOfTurn();
      out.write(rec());
      const second = watch(out.flush());
      await endOfTurn();
      expect(w.calls, 'one batch in flight at a time').to.have.length(1);
      await w.ack(0);
      expect(await first).to.equal(1);
      expect(second.outcome, 'txid 2 is not durable yet').to.equal('pending');
      expect(w.calls).to.have.length(2);
      expect(w.txids(1)).to.deep.equal([2]);
      await w.ack(1);
      expect(second.outcome).to.deep.equal({ resolved: 2 });
    });

    it("the NameNode's handlers: each writes one edit and awaits its own flush; those woken together share one request", async () => {
      const { out, w } = open();
      const handlers = Array.from({ length: 8 }, async (_, h) => {
        for (let k = 0; k < 2; k++) {
          out.write(rec(h));
          await out.flush();
        }
      });
      await nextTurn();
      expect(
        w.calls.map((c) => c.op.count),
        'the first round: one request for all eight, not the first alone',
      ).to.deep.equal([8]);
      await w.ack(0);
      expect(
        w.calls.map((c) => c.op.count),
        'woken by the acknowledgement, all eight again in one',
      ).to.deep.equal([8, 8]);
      await w.ack(1);
      await Promise.all(handlers);
      expect(w.calls).to.have.length(2);
    });

    it('several flush() callers waiting behind a batch in flight share one round trip', async () => {
      const { out, w } = open();
      out.write(rec());
      const first = out.flush();
      await endOfTurn();
      const waiting: Promise<number>[] = [];
      for (let i = 0; i < 3; i++) {
        out.write(rec());
        out.write(rec());
        waiting.push(out.flush());
        await endOfTurn();
      }
      expect(w.calls).to.have.length(1);
      await w.ack(0);
      expect(await first).to.equal(1);
      expect(w.calls, 'the three flushes make one batch').to.have.length(2);
      expect(w.txids(1)).to.deep.equal([2, 3, 4, 5, 6, 7]);
      await w.ack(1);
      expect(await Promise.all(waiting)).to.deep.equal([7, 7, 7]);
      expect(w.calls).to.have.length(2);
    });

    it('a flush with nothing new resolves at once with the durable txid', async () => {
      const { out, w } = open();
      out.write(rec());
      const f = out.flush();
      await endOfTurn();
      await w.ack(0);
      await f;
      expect(await out.flush()).to.equal(1);
      expect(w.calls).to.have.length(1);
    });
  });

  describe('backpressure', () => {
    it('write() returns false from the high-water mark on; drain() resolves once the bytes are durable', async () => {
      const { out, w } = open({ highWaterMarkBytes: 4 * FRAME });
      expect([out.write(rec()), out.write(rec()), out.write(rec())]).to.deep.equal([true, true, true]);
      expect(out.write(rec()), 'at the high-water mark').to.equal(false);
      const drained = watch(out.drain());
      await nextTurn();
      expect(drained.outcome).to.equal('pending');
      void out.flush();
      await endOfTurn();
      await nextTurn();
      expect(drained.outcome, 'still in flight').to.equal('pending');
      await w.ack(0);
      expect(drained.outcome).to.deep.equal({ resolved: undefined });
      expect(out.write(rec())).to.equal(true);
    });

    it('a record that is not bytes (a string, a number, an array, null) is refused at write(), where a try catches it, and assigns no txid', async () => {
      const { out, w } = open();
      for (const bad of ['mkdir /x', 42, [1, 2, 3], null, undefined, { byteLength: 3 }]) {
        expect(() => out.write(bad as unknown as Uint8Array), String(bad))
          .to.throw(QjmError)
          .with.property('errorName', 'INVALID_ARGUMENT');
      }
      expect(() => out.write('mkdir /x' as unknown as Uint8Array)).to.throw(/TextEncoder/);
      expect(out.lastWrittenTxId).to.equal(0);
      out.write(rec());
      const flushed = out.flush();
      await endOfTurn();
      expect(w.txids(0), 'only the good record went out').to.deep.equal([1]);
      await w.ack(0);
      expect(await flushed).to.equal(1);
    });

    it('past twice the high-water mark write() throws BUSY and assigns no txid', () => {
      const { out } = open({ highWaterMarkBytes: 2 * FRAME });
      for (let i = 0; i < 4; i++) out.write(rec());
      expect(() => out.write(rec()))
        .to.throw(QjmError)
        .with.property('errorName', 'BUSY');
      expect(out.lastWrittenTxId).to.equal(4);
    });
  });

  describe('failure', () => {
    it('a failed batch fails the stream: pending flushes reject, later calls fail with the same FencedError', async () => {
      const { out, w } = open();
      out.write(rec());
      const first = watch(out.flush());
      await endOfTurn();
      out.write(rec());
      const second = watch(out.flush());
      await endOfTurn();
      const fenced = new FencedError('epoch 4 was promised', { promisedEpoch: 4 });
      await w.fail(0, fenced);
      expect(first.outcome).to.deep.equal({ rejected: fenced });
      expect(second.outcome).to.deep.equal({ rejected: fenced });
      expect(out.failed).to.equal(fenced);
      expect(() => out.write(rec())).to.throw(FencedError);
      const later = [watch(out.flush()), watch(out.drain())];
      await nextTurn();
      expect(later.map((l) => l.outcome)).to.deep.equal([{ rejected: fenced }, { rejected: fenced }]);
      expect(w.calls, 'nothing is sent after a failure (it would leave a gap)').to.have.length(1);
    });

    it('a drain() waiting when the stream fails is released', async () => {
      const { out, w } = open({ highWaterMarkBytes: FRAME });
      expect(out.write(rec())).to.equal(false);
      const drained = watch(out.drain());
      const flushed = watch(out.flush());
      await endOfTurn();
      await w.fail(0, new QuorumUnavailableError('no quorum'));
      expect(drained.outcome).to.not.equal('pending');
      expect(flushed.outcome).to.have.property('rejected').that.is.instanceOf(QuorumUnavailableError);
      expect(() => out.write(rec())).to.throw(QuorumUnavailableError);
    });
  });

  describe('txids', () => {
    it('are assigned from nextTxId, consecutively, and sent with the epoch and segment', async () => {
      const { out, w } = open({ segmentTxId: 101, nextTxId: 101, epoch: 7 });
      expect([out.lastWrittenTxId, out.lastDurableTxId]).to.deep.equal([100, 100]);
      for (let i = 0; i < 3; i++) out.write(rec(i));
      expect(out.lastWrittenTxId).to.equal(103);
      const f = out.flush();
      await endOfTurn();
      const op = w.calls[0]!.op;
      expect([op.epoch, op.segmentTxid, op.firstTxid, op.count]).to.deep.equal([7, 101, 101, 3]);
      expect([...iterateRecords(op.records!)].map((r) => [r.txid, r.data[0]])).to.deep.equal([
        [101, 0],
        [102, 1],
        [103, 2],
      ]);
      expect(out.lastDurableTxId).to.equal(100);
      await w.ack(0);
      expect([await f, out.lastDurableTxId]).to.deep.equal([103, 103]);
    });

    it('a record over maxRecordBytes is refused and takes no txid', () => {
      const { out } = open({ maxRecordBytes: 8 });
      expect(() => out.write(rec())).to.throw(TooLargeError);
      expect(out.write(new Uint8Array(8))).to.equal(true);
      expect(out.lastWrittenTxId).to.equal(1);
    });
  });
});
