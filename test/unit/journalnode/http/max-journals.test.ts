// maxJournals: the leader refuses a format that would create one journal more than its setting, and the
// formats that race past that check are refused when they apply, through the limit each one carries.

import fs from 'node:fs';
import { expect } from 'chai';
import { qjournal } from '../../../../src/gen/proto.js';
import { startSingleNode } from '../../../support/single-node.js';
import type { JournalNode } from '../../../../journalnode/journal-node.js';

const pb = qjournal.journal;
const ns = { namespaceId: 1, clusterId: 'C', blockPoolId: 'B' };

async function format(node: JournalNode, jid: string): Promise<{ status: number; code: string }> {
  const r = await node.app.inject({
    method: 'POST',
    url: '/qjm/format',
    headers: { 'content-type': 'application/x-protobuf' },
    payload: Buffer.from(pb.WriteRequest.encode({ command: { jid, format: { nsInfo: ns } } }).finish()),
  });
  const res = pb.WriteResponse.decode(r.rawPayload);
  const code = res.error?.code ?? res.result?.code ?? 0;
  return { status: r.statusCode, code: pb.ErrorCode[code]! };
}

describe('maxJournals', () => {
  it('a format beyond maxJournals is refused 409 TOO_MANY_JOURNALS; re-formatting a journal that exists is not', async () => {
    const { node, dir } = await startSingleNode({ maxJournals: 2 });
    try {
      expect(await format(node, 'j1')).to.deep.equal({ status: 200, code: 'OK' });
      expect(await format(node, 'j2')).to.deep.equal({ status: 200, code: 'OK' });
      expect(await format(node, 'j3')).to.deep.equal({ status: 409, code: 'TOO_MANY_JOURNALS' });
      expect(await format(node, 'j2')).to.deep.equal({ status: 200, code: 'OK' });
      expect(node.stateMachine.allJournals().map((j) => j.jid)).to.deep.equal(['j1', 'j2']);
    } finally {
      await node.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('formats racing past the route check: the limit they carry refuses the extra one at apply', async () => {
    const { node, dir } = await startSingleNode({ maxJournals: 2 });
    try {
      expect((await format(node, 'j1')).code).to.equal('OK');
      // Both pass the route's check (one journal exists); only one may be created.
      const [a, b] = await Promise.all([format(node, 'j2'), format(node, 'j3')]);
      expect([a.code, b.code].sort()).to.deep.equal(['OK', 'TOO_MANY_JOURNALS']);
      expect(node.stateMachine.journalCount).to.equal(2);
    } finally {
      await node.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
