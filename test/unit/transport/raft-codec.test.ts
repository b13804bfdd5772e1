// A batch encoded as a stream frame, in chunks (entry data written from where it lies), decodes to the same
// batch: every message field, entries small and large, snapshot metadata; and the chunks reference large
// entry data instead of copying it.

import { expect } from 'chai';
import fc from 'fast-check';
import { BatchLimitError, decodeBatch, encodeBatch, encodeBatchFrame } from '../../../src/transport/raft-codec.js';
import type { Batch, BatchLimits } from '../../../src/transport/raft-codec.js';
import { FRAME_HEADER_BYTES } from '../../../src/transport/frames.js';
import { EntryType, makeMessage, MessageType } from '../../../src/raft/types.js';
import type { Message } from '../../../src/raft/types.js';

const LIMITS = { maxFrameBytes: 1 << 30, maxMessages: 10_000, maxEntries: 100_000, maxMembers: 100 };

function joined(chunks: Uint8Array[]): Buffer {
  return Buffer.concat(chunks.map((c) => Buffer.from(c.buffer, c.byteOffset, c.byteLength)));
}

/** Decodes a frame made of chunks, after checking its length prefix. */
function decodeFrame(f: { chunks: Uint8Array[]; bytes: number }): Batch {
  const all = joined(f.chunks);
  expect(all.byteLength).to.equal(f.bytes);
  expect(all.readUInt32BE(0)).to.equal(f.bytes - FRAME_HEADER_BYTES);
  return decodeBatch(all.subarray(FRAME_HEADER_BYTES), LIMITS);
}

/**
 * A batch as plain data, for deep equality: every field read through the decoded objects (a field left at its
 * default is absent from the bytes and read from the decoder's defaults), bytes as arrays.
 */
function plain(b: Batch): unknown {
  const bytes = (u: Uint8Array) => [...u];
  return {
    ...b,
    messages: b.messages.map((m) => ({
      type: m.type,
      to: m.to,
      from: m.from,
      term: Number(m.term),
      logTerm: Number(m.logTerm),
      index: Number(m.index),
      commit: Number(m.commit),
      reject: m.reject,
      rejectHint: Number(m.rejectHint),
      context: bytes(m.context),
      snapshot: m.snapshot ? JSON.parse(JSON.stringify(m.snapshot)) : null,
      entries: m.entries.map((e) => ({
        term: Number(e.term),
        index: Number(e.index),
        type: e.type,
        data: bytes(e.data),
      })),
    })),
  };
}

describe('encodeBatchFrame', () => {
  const big = Buffer.alloc(100_000, 7);
  const batch: Batch = {
    from: 'n1',
    clusterId: 'CID-x',
    storageId: 'storage-1',
    fromAddress: '127.0.0.1:9',
    messages: [
      makeMessage({
        type: MessageType.App,
        to: 'n2',
        from: 'n1',
        term: 2 ** 40,
        logTerm: 3,
        index: 2 ** 53 - 1,
        commit: 17,
        entries: [
          { term: 4, index: 18, type: EntryType.Normal, data: Buffer.from('small command') },
          { term: 4, index: 19, type: EntryType.Normal, data: big },
          { term: 4, index: 20, type: EntryType.Normal, data: new Uint8Array(0) },
          { term: 0, index: 0, type: EntryType.ConfChange, data: Buffer.from([1, 2, 3]) },
        ],
      }),
      makeMessage({
        type: MessageType.AppResp,
        to: 'n2',
        from: 'n1',
        reject: true,
        rejectHint: 12,
        context: Buffer.from('ctx'),
      }),
      makeMessage({
        type: MessageType.Snap,
        to: 'n3',
        from: 'n1',
        term: 5,
        snapshot: {
          index: 100,
          term: 5,
          conf: { voters: ['n1', 'n2'], votersOutgoing: ['n3'], learners: ['n4'] },
          peers: [{ id: 'n1', address: 'a:1' }],
        },
      }),
    ],
  };

  it('decodes to the batch encodeBatch encodes', () => {
    expect(plain(decodeFrame(encodeBatchFrame(batch)))).to.deep.equal(plain(decodeBatch(encodeBatch(batch), LIMITS)));
    expect(decodeFrame(encodeBatchFrame(batch)).messages[0]!.entries[1]!.data.byteLength).to.equal(big.byteLength);
  });

  it('large entry data is a chunk of its own, the very bytes of the entry (not a copy)', () => {
    const f = encodeBatchFrame(batch);
    expect(
      f.chunks.some((c) => c === big),
      'the entry data itself is among the chunks',
    ).to.equal(true);
    expect(f.chunks.length).to.be.below(5);
  });

  it('an empty batch and a batch of heartbeats round-trip', () => {
    for (const messages of [
      [],
      [makeMessage({ type: MessageType.Heartbeat, to: 'b', from: 'a', term: 3, commit: 9 })],
    ]) {
      const b: Batch = { from: 'a', clusterId: 'c', storageId: '', fromAddress: '', messages };
      expect(plain(decodeFrame(encodeBatchFrame(b)))).to.deep.equal(plain(decodeBatch(encodeBatch(b), LIMITS)));
    }
  });

  it('property: any batch of appends round-trips through its frame', () => {
    const u53 = fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER });
    const entry = fc.record({
      term: u53,
      index: u53,
      type: fc.constantFrom(EntryType.Normal, EntryType.ConfChange),
      data: fc.uint8Array({ maxLength: 6000 }),
    });
    const message = fc
      .record({ term: u53, index: u53, logTerm: u53, commit: u53, entries: fc.array(entry, { maxLength: 4 }) })
      .map((f) => makeMessage({ type: MessageType.App, to: 'b', from: 'a', ...f }) as Message);
    fc.assert(
      fc.property(fc.array(message, { maxLength: 4 }), (messages) => {
        const b: Batch = { from: 'a', clusterId: 'c', storageId: 's', fromAddress: 'a:1', messages };
        expect(plain(decodeFrame(encodeBatchFrame(b)))).to.deep.equal(plain(decodeBatch(encodeBatch(b), LIMITS)));
      }),
      { numRuns: 200 },
    );
  });

  it("property: cut by a receiver's limits, a frame holds the longest prefix that the receiver accepts", () => {
    const entry = fc.record({
      term: fc.integer({ min: 1, max: 2 ** 40 }),
      index: fc.integer({ min: 1, max: 2 ** 40 }),
      type: fc.constant(EntryType.Normal),
      data: fc.uint8Array({ maxLength: 300 }),
    });
    const append = fc
      .record({ index: fc.nat(), entries: fc.array(entry, { maxLength: 6 }) })
      .map((f) => makeMessage({ type: MessageType.App, to: 'b', from: 'a', term: 1, ...f }) as Message);
    const snap = fc.nat({ max: 5 }).map((n) => {
      const ids = Array.from({ length: n }, (_, i) => `n${i}`);
      return makeMessage({
        type: MessageType.Snap,
        to: 'b',
        from: 'a',
        term: 1,
        snapshot: { index: 9, term: 1, conf: { voters: ids, votersOutgoing: [], learners: [] } },
      }) as Message;
    });
    const limits = fc.record({
      maxFrameBytes: fc.integer({ min: 40, max: 3000 }),
      maxMessages: fc.integer({ min: 1, max: 8 }),
      maxEntries: fc.integer({ min: 0, max: 20 }),
      maxMembers: fc.integer({ min: 0, max: 4 }),
    });
    /** Whether the receiver takes this frame: within its byte bound, and its shape within the rest. */
    const accepted = (f: { chunks: Uint8Array[]; bytes: number }, l: BatchLimits) => {
      if (f.bytes - FRAME_HEADER_BYTES > l.maxFrameBytes) return false;
      try {
        decodeBatch(joined(f.chunks).subarray(FRAME_HEADER_BYTES), l);
        return true;
      } catch (e) {
        if (e instanceof BatchLimitError) return false;
        throw e;
      }
    };
    fc.assert(
      fc.property(fc.array(fc.oneof(append, snap), { maxLength: 12 }), limits, (messages, l) => {
        const b: Batch = { from: 'a', clusterId: 'c', storageId: 's', fromAddress: 'a:1', messages };
        const f = encodeBatchFrame(b, l);
        const taken = messages.slice(0, f.count);
        if (f.count > 0 || messages.length === 0) {
          expect(accepted(f, l), 'the receiver accepts the frame').to.equal(true);
          expect(plain(decodeFrame(f))).to.deep.equal(
            plain(decodeBatch(encodeBatch({ ...b, messages: taken }), LIMITS)),
          );
        } else expect(f.chunks).to.deep.equal([]);
        if (f.count < messages.length) {
          const more = encodeBatchFrame({ ...b, messages: messages.slice(0, f.count + 1) });
          expect(accepted(more, l), 'one more message would be refused').to.equal(false);
        }
      }),
      { numRuns: 500 },
    );
  });
});
