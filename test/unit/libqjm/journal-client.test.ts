// JournalClient against fake nodes (local HTTP servers): a write whose first answer is a retriable error is
// retried with the very request the first attempt sent, encoded once; a node that answers STOOD_DOWN is out,
// and the others are tried, unless every node known stood down.

import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import { qjournal } from '../../../src/gen/proto.js';
import { JournalClient } from '../../../libqjm/journal-client.js';
import { QjmError } from '../../../src/errors.js';

const pb = qjournal.journal;

describe('JournalClient writes', () => {
  let server: http.Server;
  let address: string;
  const bodies: Buffer[] = [];
  before(async () => {
    server = http.createServer((req, res) => {
      const parts: Buffer[] = [];
      req.on('data', (c: Buffer) => parts.push(c));
      req.on('end', () => {
        bodies.push(Buffer.concat(parts));
        // The first attempt of each write is answered UNAVAILABLE (retriable), the next succeeds.
        const answer =
          bodies.length % 2 === 1
            ? { error: { code: pb.ErrorCode.UNAVAILABLE, message: 'try again' } }
            : { result: { code: pb.ErrorCode.OK }, raftIndex: 7, raftTerm: 2 };
        res
          .writeHead(bodies.length % 2 === 1 ? 503 : 200, { 'content-type': 'application/x-protobuf' })
          .end(Buffer.from(pb.WriteResponse.encode(answer).finish()));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    address = `127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((r) => server.close(() => r())));
  beforeEach(() => void bodies.splice(0));

  it('write(): encoded once; the retry resends the same bytes', async () => {
    const client = new JournalClient({ peers: [address], retry: { initialBackoffMs: 1, maxBackoffMs: 2 } });
    const encode = pb.WriteRequest.encode;
    let encodings = 0;
    pb.WriteRequest.encode = ((m: qjournal.journal.IWriteRequest) => {
      encodings++;
      return encode.call(pb.WriteRequest, m);
    }) as typeof encode;
    try {
      const r = await client.write('startLogSegment', {
        jid: 'ns1',
        startSegment: { epoch: 1, txid: 1, layoutVersion: -64 },
      });
      expect([r.index, r.term]).to.deep.equal([7, 2]);
    } finally {
      pb.WriteRequest.encode = encode;
      await client.close();
    }
    expect(bodies).to.have.length(2);
    expect(bodies[1]!.equals(bodies[0]!), "the retry sends the first attempt's bytes").to.equal(true);
    expect(encodings, 'encodings of the request').to.equal(1);
  });

  it("writeEncoded(): the caller's bytes, as they are, on every attempt", async () => {
    const client = new JournalClient({ peers: [address], retry: { initialBackoffMs: 1, maxBackoffMs: 2 } });
    const body = Buffer.from(
      pb.WriteRequest.encode({ command: { jid: 'ns1', purge: { epoch: 1, minTxidToKeep: 5 } } }).finish(),
    );
    try {
      await client.writeEncoded('purgeLogs', body);
    } finally {
      await client.close();
    }
    expect(bodies.map((b) => b.equals(body))).to.deep.equal([true, true]);
  });

  it('a closed client fails at once with a final error, not retries until the deadline', async () => {
    const client = new JournalClient({
      peers: [address],
      retry: { initialBackoffMs: 50, maxBackoffMs: 50, deadlineMs: 60_000 },
    });
    await client.close();
    const t0 = Date.now();
    const err = await client
      .write('startLogSegment', { jid: 'ns1', startSegment: { epoch: 1, txid: 1, layoutVersion: -64 } })
      .then(
        () => null,
        (e: Error) => e,
      );
    expect(err?.message).to.match(/the client is closed/);
    expect((err as { retriable?: boolean }).retriable).to.equal(false);
    // One attempt and no backoff: far less than even one 50 ms wait on any machine that runs the suite.
    expect(bodies).to.have.length(0);
    expect(Date.now() - t0, 'ms until it failed (60 s deadline)').to.be.below(30_000);
  });
});

describe('JournalClient and a node that stood down', () => {
  const servers: http.Server[] = [];
  const seen: string[] = [];
  /** A fake node: answers every write and read OK, or STOOD_DOWN (a node reset away by reset-peers). */
  async function fakeNode(name: string, stoodDown: boolean): Promise<string> {
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        seen.push(`${name} ${req.url}`);
        const error = { code: pb.ErrorCode.STOOD_DOWN, message: `${name} stood down: reset away` };
        const body = req.url!.startsWith('/qjm/getJournalState')
          ? pb.GetJournalStateResponse.encode(stoodDown ? { error } : { state: { jid: 'ns1' }, fromLeader: true })
          : pb.WriteResponse.encode(
              stoodDown ? { error } : { result: { code: pb.ErrorCode.OK }, raftIndex: 9, raftTerm: 3 },
            );
        res
          .writeHead(stoodDown ? 409 : 200, { 'content-type': 'application/x-protobuf' })
          .end(Buffer.from(body.finish()));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    servers.push(server);
    return `127.0.0.1:${(server.address() as AddressInfo).port}`;
  }
  let gone: string;
  let alsoGone: string;
  let live: string;
  before(async () => {
    gone = await fakeNode('a', true);
    alsoGone = await fakeNode('b', true);
    live = await fakeNode('c', false);
  });
  after(() => Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r())))));
  beforeEach(() => void seen.splice(0));

  const client = (peers: string[]) =>
    new JournalClient({ peers, retry: { initialBackoffMs: 1, maxBackoffMs: 2, deadlineMs: 10_000 } });
  const write = (c: JournalClient) => c.write('purgeLogs', { jid: 'ns1', purge: { epoch: 1, minTxidToKeep: 5 } });
  const read = (c: JournalClient) =>
    c.read('/qjm/getJournalState', pb.GetJournalStateRequest.encode({ jid: 'ns1' }).finish(), (b) =>
      pb.GetJournalStateResponse.decode(b),
    );

  it('writes and reads go on at the other nodes, and the stood-down ones are not asked again', async () => {
    const c = client([gone, alsoGone, live]);
    try {
      expect((await write(c)).index).to.equal(9);
      expect((await read(c)).node).to.equal(live);
      for (let i = 0; i < 3; i++) await write(c);
    } finally {
      await c.close();
    }
    expect(
      seen.filter((s) => s.startsWith('a ')),
      'a asked once',
    ).to.have.length(1);
    expect(
      seen.filter((s) => s.startsWith('b ')),
      'b asked once',
    ).to.have.length(1);
    expect(seen.filter((s) => s.startsWith('c ')).length).to.equal(5);
  });

  it('when every node known stood down, the answer is final at once', async () => {
    const c = client([gone, alsoGone]);
    const t0 = Date.now();
    try {
      for (const call of [write, read]) {
        const e = await call(c).then(
          () => null,
          (x: unknown) => x as QjmError,
        );
        expect(e, call.name).to.be.instanceOf(QjmError).with.property('errorName', 'STOOD_DOWN');
        expect(e!.retriable).to.equal(false);
      }
    } finally {
      await c.close();
    }
    expect(Date.now() - t0, 'no retrying until the deadline').to.be.below(5000);
  });
});
