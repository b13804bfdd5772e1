// Every RPC validates its body (docs/SECURITY.md): malformed protobuf, missing fields, unknown journals, negative,
// zero or overflowing txids, records and batches over the limits, bodies over the size limit, reset-peers
// requests that must never force anything. Each gets a 4xx naming the problem and changes nothing. Then a
// fuzzer throws random and mutated bodies at every endpoint of a single in-process node.

import fs from 'node:fs';
import { expect } from 'chai';
import fc from 'fast-check';
import { qjournal } from '../../src/gen/proto.js';
import { encodeRecords } from '../../src/edit-records.js';
import type { JournalNode } from '../../journalnode/journal-node.js';
import { encodeBatch } from '../../src/transport/raft-codec.js';
import { startSingleNode } from '../support/single-node.js';
import { decodeManifest } from '../../journalnode/state/snapshot-store.js';
import { RAFT_STREAM_CONTENT_TYPE, RAFT_STREAM_PATH } from '../../journalnode/peers/peer-transport.js';

const pb = qjournal.journal;
const ns = { namespaceId: 9, clusterId: 'CID-f', blockPoolId: 'BP-f' };
const PROTO = { 'content-type': 'application/x-protobuf' };
const STREAM = { 'content-type': RAFT_STREAM_CONTENT_TYPE };

/** One length-prefixed frame of a peer stream. */
function frame(payload: Buffer): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(payload.byteLength);
  return Buffer.concat([h, payload]);
}

function write(node: JournalNode, rpc: string, command: qjournal.journal.ICommand | null, raw?: Buffer) {
  const body = raw ?? Buffer.from(pb.WriteRequest.encode({ command }).finish());
  return node.app.inject({ method: 'POST', url: `/qjm/${rpc}`, headers: PROTO, payload: body });
}

function journalState(node: JournalNode): string {
  return JSON.stringify(node.stateMachine.allJournals().map((j) => j.state()));
}

describe('bad input is refused and changes nothing', function () {
  this.timeout(60_000);
  let dir: string;
  let node: JournalNode;

  before(async () => {
    ({ node, dir } = await startSingleNode({
      maxRecordBytes: 1024,
      maxBatchBytes: 64 * 1024,
      maxAppendBodyBytes: 256 * 1024,
    }));
    expect((await write(node, 'format', { jid: 'ns1', format: { nsInfo: ns } })).statusCode).to.equal(200);
    const ne = await write(node, 'newEpoch', { jid: 'ns1', newEpoch: { nsInfo: ns, writerId: 'nn1' } });
    expect(ne.statusCode).to.equal(200);
    expect(
      (await write(node, 'startLogSegment', { jid: 'ns1', startSegment: { epoch: 1, txid: 1, layoutVersion: -64 } }))
        .statusCode,
    ).to.equal(200);
    expect(
      (
        await write(node, 'journal', {
          jid: 'ns1',
          appendRecords: {
            epoch: 1,
            segmentTxid: 1,
            firstTxid: 1,
            count: 2,
            records: encodeRecords(1, [Buffer.from('a'), Buffer.from('b')]),
          },
        })
      ).statusCode,
    ).to.equal(200);
  });
  after(async () => {
    await node.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const j = (o: Partial<qjournal.journal.IAppendRecordsOp>): qjournal.journal.ICommand => ({
    jid: 'ns1',
    appendRecords: {
      epoch: 1,
      segmentTxid: 1,
      firstTxid: 3,
      count: 1,
      records: encodeRecords(3, [Buffer.from('c')]),
      ...o,
    },
  });
  const flipped = () => {
    const b = encodeRecords(3, [Buffer.from('c')]);
    b[b.length - 1]! ^= 1;
    return b;
  };
  const cases: [string, string, qjournal.journal.ICommand | null, number, string, Buffer?][] = [
    ['garbage bytes', 'journal', null, 400, 'INVALID_ARGUMENT', Buffer.from([0xff, 0xff, 0xff, 0x0f, 0x01])],
    // What is validated must be what is proposed: a second command (which a decoder might merge) is refused.
    [
      'the command given twice',
      'journal',
      null,
      400,
      'INVALID_ARGUMENT',
      Buffer.concat([
        pb.WriteRequest.encode({ command: j({}) }).finish(),
        pb.WriteRequest.encode({ command: j({ count: 2 }) }).finish(),
      ]),
    ],
    ['no command', 'journal', null, 400, 'INVALID_ARGUMENT'],
    [
      'a format command sent to /qjm/journal',
      'journal',
      { jid: 'ns1', format: { nsInfo: ns } },
      400,
      'INVALID_ARGUMENT',
    ],
    ['a journal id with a path in it', 'journal', { ...j({}), jid: '../etc' }, 400, 'INVALID_ARGUMENT'],
    [
      'a new journal whose id differs from ns1 only by case',
      'format',
      { jid: 'NS1', format: { nsInfo: ns } },
      400,
      'INVALID_ARGUMENT',
    ],
    [
      'a purge whose retention floor is beyond 2^53',
      'purgeLogs',
      { jid: 'ns1', purge: { epoch: 1, minTxidToKeep: 1, retainFromTxid: 2 ** 53 + 2 } },
      400,
      'INVALID_ARGUMENT',
    ],
    ['an empty journal id', 'journal', { ...j({}), jid: '' }, 400, 'INVALID_ARGUMENT'],
    ['txid zero', 'journal', j({ firstTxid: 0 }), 400, 'INVALID_ARGUMENT'],
    ['a txid beyond 2^53', 'journal', j({ firstTxid: 2 ** 53 + 2 }), 400, 'INVALID_ARGUMENT'],
    ['epoch zero', 'journal', j({ epoch: 0 }), 400, 'INVALID_ARGUMENT'],
    ['count zero', 'journal', j({ count: 0 }), 400, 'INVALID_ARGUMENT'],
    ['a count that disagrees with the records', 'journal', j({ count: 2 }), 400, 'INVALID_ARGUMENT'],
    ['a record with a bad CRC', 'journal', j({ records: flipped() }), 400, 'INVALID_ARGUMENT'],
    [
      'records whose txids are not firstTxid..',
      'journal',
      j({ records: encodeRecords(9, [Buffer.from('c')]) }),
      400,
      'INVALID_ARGUMENT',
    ],
    [
      'a record over maxRecordBytes',
      'journal',
      j({ records: encodeRecords(3, [Buffer.alloc(2000)]) }),
      413,
      'TOO_LARGE',
    ],
    [
      'a batch over maxBatchBytes',
      'journal',
      j({
        count: 100,
        records: encodeRecords(
          3,
          Array.from({ length: 100 }, () => Buffer.alloc(1000)),
        ),
      }),
      413,
      'TOO_LARGE',
    ],
    [
      'finalize with last < first',
      'finalizeLogSegment',
      { jid: 'ns1', finalizeSegment: { epoch: 1, firstTxid: 5, lastTxid: 4 } },
      400,
      'INVALID_ARGUMENT',
    ],
    ['newEpoch without nsInfo', 'newEpoch', { jid: 'ns1', newEpoch: { writerId: 'x' } }, 400, 'INVALID_ARGUMENT'],
    [
      'a journal that was never formatted',
      'startLogSegment',
      { jid: 'nosuch', startSegment: { epoch: 1, txid: 1 } },
      404,
      'NOT_FORMATTED',
    ],
    ['an old epoch', 'journal', j({ epoch: 7 }), 409, 'FENCED'],
    ['a gap', 'journal', j({ firstTxid: 5, records: encodeRecords(5, [Buffer.from('c')]) }), 409, 'OUT_OF_SYNC'],
  ];
  for (const [name, rpc, cmd, status, code, raw] of cases) {
    it(`${name}: ${status} ${code}`, async () => {
      const before = journalState(node);
      const r = await write(node, rpc, cmd, raw);
      expect(r.statusCode).to.equal(status);
      const wr = pb.WriteResponse.decode(r.rawPayload);
      const got = wr.error ? pb.ErrorCode[wr.error.code ?? 0] : pb.ErrorCode[wr.result?.code ?? 0];
      expect(got).to.equal(code);
      expect(journalState(node)).to.equal(before);
    });
  }

  it('a body over the size limit is refused with 413 before it is read', async () => {
    const r = await node.app.inject({
      method: 'POST',
      url: '/qjm/journal',
      headers: PROTO,
      payload: Buffer.alloc(2 * 256 * 1024 + (1 << 20) + 10),
    });
    expect(r.statusCode).to.equal(413);
  });

  it('the wrong content type is refused (415)', async () => {
    const r = await node.app.inject({
      method: 'POST',
      url: '/qjm/journal',
      headers: { 'content-type': 'application/json' },
      payload: '{}',
    });
    expect(r.statusCode).to.equal(415);
  });

  it('reads: fromTxid 0, a wait over maxWaitMs, an unknown journal', async () => {
    const read = (req: qjournal.journal.IGetEditsRequest) =>
      node.app.inject({
        method: 'POST',
        url: '/qjm/getEdits',
        headers: PROTO,
        payload: Buffer.from(pb.GetEditsRequest.encode(req).finish()),
      });
    expect((await read({ jid: 'ns1', fromTxid: 0 })).statusCode).to.equal(400);
    expect((await read({ jid: 'ns1', fromTxid: 1, waitMs: 10_000_000 })).statusCode).to.equal(400);
    expect((await read({ jid: 'nosuch', fromTxid: 1 })).statusCode).to.equal(404);
    const ok = await read({ jid: 'ns1', fromTxid: 1, inProgressOk: true });
    expect(ok.statusCode).to.equal(200);
    expect(pb.GetEditsResponse.decode(ok.rawPayload).count).to.equal(2);
  });

  it('reset-peers: garbage, bad ids and addresses, an empty or duplicated list, one leaving this node out — refused with force too; nothing changes', async () => {
    const self = node.config.id;
    const reset = (body: Buffer) =>
      node.app.inject({ method: 'POST', url: '/admin/resetPeers', headers: PROTO, payload: body });
    const req = (peers: { id: string; address: string }[]) =>
      Buffer.from(pb.ResetPeersRequest.encode({ peers, force: true }).finish());
    const here = node.config.advertise;
    const before = {
      term: node.replica.term,
      status: JSON.stringify(node.replica.peers.list()),
      journals: journalState(node),
    };
    const cases: [string, Buffer, number][] = [
      ['garbage', Buffer.from([0xff, 0xff, 0xff, 0x0f, 0x01]), 400],
      ['truncated', req([{ id: self, address: here }]).subarray(0, 5), 400],
      ['a bad id', req([{ id: '../x', address: here }]), 400],
      ['a bad address', req([{ id: self, address: 'h:99999' }]), 400],
      ['no voters', req([]), 400],
      [
        'a peer twice',
        req([
          { id: self, address: here },
          { id: self, address: here },
        ]),
        400,
      ],
      ['this node left out', req([{ id: 'n9', address: '127.0.0.1:1' }]), 400],
      [
        'another node beside this one (the others join it afresh)',
        req([
          { id: self, address: here },
          { id: 'n9', address: '127.0.0.1:1' },
        ]),
        400,
      ],
    ];
    for (const [what, body, status] of cases) {
      const r = await reset(body);
      expect(r.statusCode, `${what}: ${r.payload.slice(0, 200)}`).to.equal(status);
      expect(pb.ResetPeersResponse.decode(r.rawPayload).error?.message, what).to.be.a('string').and.not.equal('');
    }
    expect({
      term: node.replica.term,
      status: JSON.stringify(node.replica.peers.list()),
      journals: journalState(node),
    }).to.deep.equal(before);
    expect(node.replica.isLeader, 'still the leader of its configuration').to.equal(true);
    const read = await node.app.inject({
      method: 'POST',
      url: '/qjm/getEdits',
      headers: PROTO,
      payload: Buffer.from(pb.GetEditsRequest.encode({ jid: 'ns1', fromTxid: 1, inProgressOk: true }).finish()),
    });
    expect(read.statusCode, 'the node still serves reads').to.equal(200);
  });

  it('membership with a forged storage binding: not a storage id, too long, not hex — refused 400; nothing changes', async () => {
    const change = (peers: { id: string; address: string; storageId?: string }[]) =>
      node.app.inject({
        method: 'POST',
        url: '/admin/changePeers',
        headers: PROTO,
        payload: Buffer.from(pb.ChangePeersRequest.encode({ peers }).finish()),
      });
    const self = { id: node.config.id, address: node.config.advertise };
    const before = JSON.stringify(node.replica.peers.list());
    for (const storageId of ['../etc', 'a'.repeat(65), 'XYZ', 'ab cd']) {
      const r = await change([self, { id: 'n2', address: '127.0.0.1:2', storageId }]);
      expect(r.statusCode, storageId).to.equal(400);
      expect(pb.AdminResponse.decode(r.rawPayload).error?.message).to.match(/bad storage id/);
    }
    expect(JSON.stringify(node.replica.peers.list())).to.equal(before);
    expect(node.replica.status().identity.state).to.equal('member');
  });

  it('membership naming two peers at one address, or one id twice: refused 400 naming them; nothing changes', async () => {
    const body = (peers: { id: string; address: string }[]) =>
      Buffer.from(pb.ChangePeersRequest.encode({ peers }).finish());
    const self = { id: node.config.id, address: node.config.advertise };
    const before = JSON.stringify(node.replica.peers.list());
    const cases: [string, { id: string; address: string }[], RegExp][] = [
      ['another id at this address', [self, { id: 'n2', address: self.address }], /is given to both n1 and n2/],
      [
        'two new ids at one address',
        [self, { id: 'n2', address: '127.0.0.1:2' }, { id: 'n3', address: '127.0.0.1:2' }],
        /127\.0\.0\.1:2 is given to both n2 and n3/,
      ],
      [
        'one id twice',
        [self, { id: 'n2', address: '127.0.0.1:2' }, { id: 'n2', address: '127.0.0.1:3' }],
        /n2 named twice/,
      ],
    ];
    for (const [what, peers, message] of cases) {
      for (const url of ['/admin/changePeers', '/admin/resetPeers']) {
        const r = await node.app.inject({ method: 'POST', url, headers: PROTO, payload: body(peers) });
        expect(r.statusCode, `${url}, ${what}: ${r.payload.slice(0, 200)}`).to.equal(400);
        expect(pb.AdminResponse.decode(r.rawPayload).error?.message, `${url}, ${what}`).to.match(message);
      }
    }
    expect(JSON.stringify(node.replica.peers.list())).to.equal(before);
    expect(node.replica.isLeader, 'still the leader of its configuration').to.equal(true);
  });

  it('peer RPCs: garbage, another cluster, not a stream, bad snapshot chunk parameters', async () => {
    const stream = (payload: Buffer) =>
      node.app.inject({ method: 'POST', url: RAFT_STREAM_PATH, headers: STREAM, payload });
    expect((await stream(frame(Buffer.from([0x0a, 0xff])))).statusCode).to.equal(400);
    const other = encodeBatch({ from: 'n9', clusterId: 'not-this-one', storageId: 'x', fromAddress: '', messages: [] });
    expect((await stream(frame(Buffer.from(other)))).statusCode).to.equal(403);
    expect(
      (await node.app.inject({ method: 'POST', url: RAFT_STREAM_PATH, headers: PROTO, payload: Buffer.from(other) }))
        .statusCode,
    ).to.equal(415);
    expect(
      (await node.app.inject({ method: 'GET', url: '/raft/snapshot/chunk?index=1&jid=..&file=x&offset=0&length=1' }))
        .statusCode,
    ).to.equal(400);
    // A snapshot the node does not have yet is UNAVAILABLE, a chunk of one it no longer holds PURGED, each
    // answered with its code's status (ERRORS.md).
    for (const [url, status, code] of [
      ['/raft/snapshot/manifest?min_index=999999', 503, 'QJM_ERR_UNAVAILABLE'],
      [
        '/raft/snapshot/chunk?index=999999&jid=ns1&file=edits_inprogress_0000000000000000001&offset=0&length=1',
        410,
        'QJM_ERR_PURGED',
      ],
    ] as const) {
      const r = await node.app.inject({ method: 'GET', url });
      expect([r.statusCode, r.json().code], `${url}: ${r.body}`).to.deep.equal([status, code]);
    }
  });

  it('snapshot reads: hostile query strings are refused 4xx with a stable code, and the node serves on unchanged', async () => {
    const snap = await node.app.inject({
      method: 'POST',
      url: '/admin/snapshot',
      headers: PROTO,
      payload: Buffer.alloc(0),
    });
    expect(snap.statusCode, snap.payload).to.equal(200);
    const m = await node.app.inject({ method: 'GET', url: '/raft/snapshot/manifest' });
    expect(m.statusCode).to.equal(200);
    const manifest = decodeManifest(m.rawPayload, 'manifest');
    const seg = manifest.journals.find((x) => x.jid === 'ns1')!.segments[0]!;
    const index = manifest.meta.index;
    const ok = `index=${index}&jid=ns1&file=${seg.file}`;
    const good = await node.app.inject({
      method: 'GET',
      url: `/raft/snapshot/chunk?${ok}&offset=0&length=${seg.sizeBytes}`,
    });
    expect([good.statusCode, good.rawPayload.byteLength]).to.deep.equal([200, seg.sizeBytes]);
    const before = journalState(node);
    const cases: [string, number, string][] = [
      [`chunk?${ok}&file=${seg.file}&offset=0&length=1`, 400, 'INVALID_ARGUMENT'], // a parameter twice
      [`chunk?${ok}&index=${index}&offset=0&length=1`, 400, 'INVALID_ARGUMENT'],
      [`chunk?${ok}&offset=-1&length=1`, 400, 'INVALID_ARGUMENT'],
      [`chunk?${ok}&offset=1e400&length=1`, 400, 'INVALID_ARGUMENT'],
      [`chunk?${ok}&offset=0x10&length=1`, 400, 'INVALID_ARGUMENT'],
      [`chunk?${ok}&offset=99999999999999999999&length=1`, 400, 'INVALID_ARGUMENT'],
      [`chunk?${ok}&offset=0&length=${2 ** 40}`, 400, 'INVALID_ARGUMENT'],
      [`chunk?${ok}&offset=0`, 400, 'INVALID_ARGUMENT'],
      [`chunk?${ok}&offset=${seg.sizeBytes + 1}&length=1`, 400, 'INVALID_ARGUMENT'], // past the file
      [
        `chunk?index=${index}&jid=ns1&file=edits_0000000000000000777-0000000000000000778&offset=0&length=1`,
        400,
        'INVALID_ARGUMENT',
      ],
      [`chunk?index=${index}&jid=..&file=${seg.file}&offset=0&length=1`, 400, 'INVALID_ARGUMENT'],
      [`chunk?index=${index}&jid=ns1&file=..%2F..%2Fraft%2Fraft_meta&offset=0&length=1`, 400, 'INVALID_ARGUMENT'],
      [`chunk?index=${index}&jid=nosuch&file=${seg.file}&offset=0&length=1`, 400, 'INVALID_ARGUMENT'],
      [`chunk?index=${index + 1000}&jid=ns1&file=${seg.file}&offset=0&length=1`, 410, 'PURGED'], // not held
      ['chunk', 400, 'INVALID_ARGUMENT'],
      ['manifest?min_index=-1', 400, 'INVALID_ARGUMENT'],
      ['manifest?min_index=abc', 400, 'INVALID_ARGUMENT'],
      ['manifest?min_index=1&min_index=2', 400, 'INVALID_ARGUMENT'],
      [`manifest?min_index=${2 ** 50}`, 503, 'UNAVAILABLE'], // not yet: the follower asks again later
    ];
    for (const [query, status, code] of cases) {
      const r = await node.app.inject({ method: 'GET', url: `/raft/snapshot/${query}` });
      let answered: string;
      try {
        answered = (JSON.parse(r.payload) as { code: string }).code;
      } catch {
        answered = `not JSON: ${JSON.stringify(r.payload.slice(0, 40))}`;
      }
      expect([r.statusCode, answered], query).to.deep.equal([status, `QJM_ERR_${code}`]);
    }
    expect(journalState(node)).to.equal(before);
    expect((await node.app.inject({ method: 'GET', url: '/healthz' })).statusCode).to.equal(200);
  });

  it('fuzz: random and mutated bodies at every endpoint never crash the node and change nothing unless valid', async () => {
    const valid: Record<string, Buffer> = {
      journal: Buffer.from(pb.WriteRequest.encode({ command: j({}) }).finish()),
      startLogSegment: Buffer.from(
        pb.WriteRequest.encode({
          command: { jid: 'ns1', startSegment: { epoch: 1, txid: 3, layoutVersion: -64 } },
        }).finish(),
      ),
      finalizeLogSegment: Buffer.from(
        pb.WriteRequest.encode({
          command: { jid: 'ns1', finalizeSegment: { epoch: 1, firstTxid: 1, lastTxid: 2 } },
        }).finish(),
      ),
      purgeLogs: Buffer.from(
        pb.WriteRequest.encode({ command: { jid: 'ns1', purge: { epoch: 1, minTxidToKeep: 1 } } }).finish(),
      ),
      getEdits: Buffer.from(pb.GetEditsRequest.encode({ jid: 'ns1', fromTxid: 1 }).finish()),
      getJournalState: Buffer.from(pb.GetJournalStateRequest.encode({ jid: 'ns1' }).finish()),
      getEditLogManifest: Buffer.from(pb.GetManifestRequest.encode({ jid: 'ns1' }).finish()),
    };
    // (Admin RPCs are left out: a random body that decodes as a valid membership change would wait a minute
    // for peers that do not exist.)
    const endpoints = [
      ...Object.keys(valid).map((k) => `/qjm/${k}`),
      '/qjm/format',
      '/qjm/newEpoch',
      '/qjm/dropSegment',
      RAFT_STREAM_PATH,
    ];
    const mutate = (b: Buffer, edits: [number, number][]) => {
      const out = Buffer.from(b);
      for (const [pos, val] of edits) if (out.length > 0) out[pos % out.length] = val;
      return out;
    };
    const body = fc.oneof(
      fc.uint8Array({ maxLength: 300 }).map((u) => Buffer.from(u)),
      fc
        .tuple(
          fc.constantFrom(...Object.values(valid)),
          fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
        )
        .map(([b, e]) => mutate(b, e)),
      fc.tuple(fc.constantFrom(...Object.values(valid)), fc.nat()).map(([b, n]) => b.subarray(0, n % (b.length + 1))),
    );
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...endpoints), body, async (url, payload) => {
        const before = journalState(node);
        // A peer stream gets the body as one frame (or, for a third of the bodies, as raw bytes).
        const asStream = url === RAFT_STREAM_PATH;
        const r = await node.app.inject({
          method: 'POST',
          url,
          headers: asStream ? STREAM : PROTO,
          payload: asStream && payload.length % 3 !== 0 ? frame(payload) : payload,
        });
        expect(r.statusCode, `${url} answered ${r.statusCode}: ${r.payload.slice(0, 200)}`).to.be.below(500);
        if (r.statusCode >= 400)
          expect(journalState(node), `${url} ${r.statusCode} changed the journal`).to.equal(before);
        else if (r.statusCode === 200) accepted++;
      }),
      { numRuns: 400, seed: 20261125 },
    );
    const health = await node.app.inject({ method: 'GET', url: '/healthz' });
    expect(health.statusCode).to.equal(200);
    expect(accepted, 'some mutated bodies are valid requests').to.be.greaterThan(0);
  });
});
