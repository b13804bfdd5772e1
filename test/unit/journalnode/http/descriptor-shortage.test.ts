// A read that cannot open its segment file because the process is out of file descriptors (a connection
// flood) is answered BUSY (retriable), not as a failure of the node: /healthz stays 200 and the same read
// succeeds once descriptors are back.

import fs from 'node:fs';
import { expect } from 'chai';
import { QuorumJournalManager } from '../../../../libqjm/index.js';
import { qjournal } from '../../../../src/gen/proto.js';
import { freePorts } from '../../../../src/local-cluster.js';
import { startSingleNode } from '../../../support/single-node.js';

const pb = qjournal.journal;

describe('a node out of file descriptors', function () {
  this.timeout(30_000);
  const realOpenSync = fs.openSync;
  afterEach(() => {
    fs.openSync = realOpenSync;
  });

  it('a read that cannot open its segment answers 429 BUSY; /healthz stays 200; the read succeeds after', async () => {
    const address = `127.0.0.1:${(await freePorts(1))[0]}`;
    const { node, dir } = await startSingleNode({
      listen: address,
      peers: [{ id: 'n1', address }],
      cacheBytesPerJournal: 0,
    });
    try {
      const ns = { namespaceId: 1, clusterId: 'C', blockPoolId: 'B' };
      const q = new QuorumJournalManager({ journalId: 'ns1', peers: [address], writerId: 'w', nsInfo: ns });
      await q.format(ns);
      await q.recoverUnfinalizedSegments();
      const out = await q.startLogSegment(1, -64);
      for (let i = 0; i < 5; i++) out.write(Buffer.from(`e${i}`));
      await q.finalizeLogSegment(1, await out.flush());
      await q.close();
      const read = async () => {
        const r = await node.app.inject({
          method: 'POST',
          url: '/qjm/getEdits',
          headers: { 'content-type': 'application/x-protobuf' },
          payload: Buffer.from(pb.GetEditsRequest.encode({ jid: 'ns1', fromTxid: 1 }).finish()),
        });
        return { status: r.statusCode, res: pb.GetEditsResponse.decode(r.rawPayload) };
      };
      fs.openSync = ((p: fs.PathLike, ...rest: unknown[]) => {
        if (String(p).includes('edits_'))
          throw Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' });
        return (realOpenSync as (...a: unknown[]) => number)(p, ...rest);
      }) as typeof fs.openSync;
      const busy = await read();
      expect(busy.status).to.equal(429);
      expect(busy.res.error?.code).to.equal(pb.ErrorCode.BUSY);
      expect((await node.app.inject({ url: '/healthz' })).statusCode).to.equal(200);
      expect(node.replica.status().fatal).to.equal(null);
      fs.openSync = realOpenSync;
      const ok = await read();
      expect([ok.status, ok.res.count]).to.deep.equal([200, 5]);
    } finally {
      fs.openSync = realOpenSync;
      await node.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
