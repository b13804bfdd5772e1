// The answer budget with real sockets against a node in this process: readers that ask for megabytes and never
// read hold at most the node's budget (a streamed answer its window, a cached one its pinned bytes), the next
// reader is told BUSY (retriable) instead of being fed more memory, a stalled answer is cut after
// responseStallTimeoutMs and its budget comes back; and answers streamed from files or the cache carry exactly
// the edits that were written.

import fs from 'node:fs';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import Fastify from 'fastify';
import { expect } from 'chai';
import { request } from 'undici';
import { QuorumJournalManager } from '../../../../libqjm/index.js';
import { qjournal } from '../../../../src/gen/proto.js';
import { iterateRecords } from '../../../../src/edit-records.js';
import { freePorts } from '../../../../src/local-cluster.js';
import { waitFor } from '../../../support/async.js';
import { startSingleNode } from '../../../support/single-node.js';
import { openStalledReads } from '../../../support/stalled-readers.js';
import type { JournalNode } from '../../../../journalnode/journal-node.js';
import type { JournalNodeConfig } from '../../../../journalnode/config.js';
import {
  jsonBusy,
  registerResponseBudget,
  ResponseBudget,
  STREAM_WINDOW_BYTES,
} from '../../../../journalnode/http/response-budget.js';

const pb = qjournal.journal;
const ns = { namespaceId: 1, clusterId: 'C', blockPoolId: 'B' };
const RECORD_BYTES = 64 << 10;
const MiB = 1 << 20;

/** A node whose journal ns1 holds `mib` MiB of 64 KiB records in two segments (the first finalized). */
async function nodeWithEdits(over: Partial<JournalNodeConfig>, mib: number) {
  const address = `127.0.0.1:${(await freePorts(1))[0]}`;
  const { node, dir } = await startSingleNode({ listen: address, peers: [{ id: 'n1', address }], ...over });
  const q = new QuorumJournalManager({ journalId: 'ns1', peers: [address], writerId: 'w', nsInfo: ns });
  await q.format(ns);
  const records: Buffer[] = [];
  for (let seg = 0; seg < 2; seg++) {
    const { lastTxId } = await q.recoverUnfinalizedSegments();
    const out = await q.startLogSegment(lastTxId + 1, -64);
    let last = lastTxId;
    for (let i = 0; i < (mib * 16) / 2; i++) {
      const r = Buffer.alloc(RECORD_BYTES, (records.length * 7) % 251);
      r.writeUInt32BE(records.length, 0);
      records.push(r);
      out.write(r);
      if (i % 16 === 15) last = await out.flush();
    }
    last = await out.flush();
    if (seg === 0) await q.finalizeLogSegment(lastTxId + 1, last);
  }
  await q.close();
  return { node, dir, address, records };
}

function getEdits(fromTxid: number, maxBytes: number): Buffer {
  return Buffer.from(
    pb.GetEditsRequest.encode({ jid: 'ns1', fromTxid, maxBytes, maxTxns: 0, inProgressOk: true }).finish(),
  );
}

/** `count` readers asking for 16 MiB from txid 1 that never read a byte of their answers. */
function stallReaders(address: string, count: number): Promise<net.Socket[]> {
  return openStalledReads({ address, tls: null, path: '/qjm/getEdits', body: getEdits(1, 16 * MiB), count });
}

async function read(address: string, fromTxid: number, maxBytes: number) {
  const r = await request(`http://${address}/qjm/getEdits`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-protobuf' },
    body: getEdits(fromTxid, maxBytes),
  });
  const body = Buffer.from(await r.body.arrayBuffer());
  return { status: r.statusCode, res: pb.GetEditsResponse.decode(body) };
}

describe('the answer budget', function () {
  this.timeout(60_000);
  let node: JournalNode | null = null;
  let dir = '';
  let stalled: net.Socket[] = [];
  afterEach(async () => {
    for (const s of stalled) s.destroy();
    stalled = [];
    await node?.stop();
    node = null;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  // Answers of 16 MiB: far more than the kernel's socket buffers take from a client that does not read.
  it('stalled readers of cached answers hold at most the budget (their pinned bytes); the next is told BUSY; cut after the stall timeout, the budget comes back', async () => {
    const n = await nodeWithEdits(
      {
        cacheBytesPerJournal: 64 * MiB,
        maxResponseBytesInFlight: 32 * MiB,
        maxResponseBytesPerConnection: 16 * MiB,
        responseStallTimeoutMs: 1500,
      },
      24,
    );
    ({ node, dir } = n);
    stalled = await stallReaders(n.address, 10);
    await waitFor(() => node!.budget.bytesInFlight > 16 * MiB, { timeoutMs: 5000, what: 'answers in flight' });
    expect(node.budget.bytesInFlight, 'within the node budget').to.be.at.most(32 * MiB);
    expect(node.budget.answersInFlight, 'two answers of 16 MiB fill it').to.equal(2);
    const busy = await read(n.address, 1, 16 * MiB);
    expect(busy.status, 'a reader beyond the budget').to.equal(429);
    expect(busy.res.error?.code).to.equal(pb.ErrorCode.BUSY);
    // The stalled answers are cut; what they held comes back.
    await waitFor(() => node!.budget.bytesInFlight === 0, { timeoutMs: 10_000, what: 'stalled answers cut' });
    const ok = await read(n.address, 1, 16 * MiB);
    expect(ok.status).to.equal(200);
    expect(ok.res.records.byteLength, 'a whole answer again').to.be.above(15 * MiB);
  });

  it('stalled readers of answers streamed from files hold a window each, within the budget; cut after the stall timeout', async () => {
    const budgetBytes = 16 * MiB;
    const n = await nodeWithEdits(
      {
        cacheBytesPerJournal: 0,
        maxResponseBytesInFlight: budgetBytes,
        maxResponseBytesPerConnection: budgetBytes,
        // Long enough that the sampling below sees the stalled state, not answers being cut, on a loaded machine.
        responseStallTimeoutMs: 5000,
      },
      24,
    );
    ({ node, dir } = n);
    stalled = await stallReaders(n.address, 40);
    await waitFor(() => node!.budget.bytesInFlight > budgetBytes - STREAM_WINDOW_BYTES - 64 * 1024, {
      timeoutMs: 10_000,
      what: 'the budget filled with streamed answers',
    });
    // Sampled while they stall: never past the budget, and no answer holds more than its window.
    let most = 0;
    for (let i = 0; i < 50; i++) {
      most = Math.max(most, node.budget.bytesInFlight);
      expect(node.budget.bytesInFlight).to.be.at.most(node.budget.answersInFlight * (STREAM_WINDOW_BYTES + 1024));
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(most, 'within the node budget').to.be.at.most(budgetBytes);
    const next = await read(n.address, 1, 16 * MiB);
    expect([200, 429], 'a reader meanwhile: what is left, or BUSY').to.include(next.status);
    await waitFor(() => node!.budget.bytesInFlight === 0, { timeoutMs: 20_000, what: 'stalled answers cut' });
    const ok = await read(n.address, 1, 16 * MiB);
    expect(ok.res.records.byteLength, 'a whole answer again').to.be.above(15 * MiB);
  });

  it('answers streamed from files across segments, and from the cache, carry exactly the edits written', async () => {
    const n = await nodeWithEdits({ cacheBytesPerJournal: 3 * MiB, maxResponseBytesPerConnection: 8 * MiB }, 6);
    ({ node, dir } = n);
    const got: Buffer[] = [];
    let next = 1;
    const sizes: number[] = [];
    while (next <= n.records.length) {
      const r = await read(n.address, next, 5 * MiB);
      expect(r.status).to.equal(200);
      expect(r.res.count, `an answer from txid ${next}`).to.be.above(0);
      sizes.push(r.res.records.byteLength);
      for (const rec of iterateRecords(r.res.records)) {
        expect(rec.txid).to.equal(next++);
        got.push(Buffer.from(rec.data));
      }
    }
    expect(sizes[0], 'one answer spans both segments').to.be.above(3 * MiB);
    expect(got.length).to.equal(n.records.length);
    for (let i = 0; i < got.length; i++) expect(got[i]!.equals(n.records[i]!), `record ${i + 1}`).to.equal(true);
    expect(node.budget.bytesInFlight).to.equal(0);
  });
});

describe('the answer budget on every route (onSend)', function () {
  this.timeout(30_000);

  it('bodies in memory count their size, streams their window; beyond the budget BUSY in the route envelope; a stalled body is cut', async () => {
    const budget = new ResponseBudget({
      maxBytesInFlight: 10 * MiB,
      maxBytesPerConnection: 8 * MiB,
      stallTimeoutMs: 1000,
      logger: { info() {}, warn() {}, error() {}, debug() {} },
    });
    const app = Fastify();
    registerResponseBudget(app, budget, jsonBusy);
    const big = Buffer.alloc(4 * MiB, 1);
    app.get('/big', async (_req, reply) => reply.type('application/octet-stream').send(big));
    app.get('/stream', async (_req, reply) =>
      reply.type('application/octet-stream').send(
        Readable.from(
          (function* () {
            for (let i = 0; i < 64; i++) yield Buffer.alloc(MiB, 2);
          })(),
        ),
      ),
    );
    await app.listen({ host: '127.0.0.1', port: 0 });
    const address = `127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const sockets: net.Socket[] = [];
    const stall = (path: string) =>
      new Promise<net.Socket>((resolve) => {
        const s = net.connect(Number(address.split(':')[1]), '127.0.0.1', () => {
          s.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`, () => {
            s.pause();
            resolve(s);
          });
        });
        s.on('error', () => {});
        sockets.push(s);
      });
    try {
      await stall('/big');
      await stall('/big');
      await waitFor(() => budget.answersInFlight === 2, { timeoutMs: 5000, what: 'two bodies in flight' });
      expect(budget.bytesInFlight).to.equal(2 * (4 * MiB + 1024));
      const refused = await request(`http://${address}/big`);
      expect(refused.statusCode).to.equal(429);
      expect(await refused.body.json()).to.include({ code: 'QJM_ERR_BUSY' });
      // A stream takes its window, not its length (64 MiB here).
      await stall('/stream');
      await waitFor(() => budget.answersInFlight === 3, { timeoutMs: 5000, what: 'a stream in flight' });
      expect(budget.bytesInFlight).to.equal(2 * (4 * MiB + 1024) + STREAM_WINDOW_BYTES + 1024);
      await waitFor(() => budget.bytesInFlight === 0, { timeoutMs: 10_000, what: 'the stalled answers cut' });
      const ok = await request(`http://${address}/big`);
      expect(ok.statusCode).to.equal(200);
      expect((await ok.body.arrayBuffer()).byteLength).to.equal(4 * MiB);
    } finally {
      for (const s of sockets) s.destroy();
      await app.close();
      budget.close();
    }
  });
});
