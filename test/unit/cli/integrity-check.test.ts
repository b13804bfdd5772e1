// What `qjm check` makes of the replicas (src/cli/integrity-check.ts): every node reached through the members
// the answers name, each one's integrity report compared; all agree only when every member answered and
// nothing differs; a node that does not answer, or answers as another, is named; a difference names the node,
// the file and the range.

import { expect } from 'chai';
import type { IntegrityReportOf, NodeStatusReport } from '../../../libqjm/index.js';
import { checkLines, checkReplicas } from '../../../src/cli/integrity-check.js';
import type { IntegrityReportJson } from '../../../src/integrity.js';
import type { MemberJson, NodeStatusJson } from '../../../src/node-status.js';

const addr = (id: string) => `127.0.0.1:${8480 + Number(id.slice(1))}`;
const members: MemberJson[] = ['n1', 'n2', 'n3'].map((id) => ({ id, address: addr(id), role: 'voter' }));

function status(id: string): NodeStatusReport {
  return {
    endpoint: addr(id),
    status: { id, state: id === 'n1' ? 'leader' : 'follower', term: 2, peers: members } as unknown as NodeStatusJson,
    error: null,
  };
}

function report(node: string, crc32 = 77): IntegrityReportJson {
  return {
    node,
    appliedIndex: 40,
    digest: 'abc',
    checkpoints: [],
    logTerms: [{ index: 40, term: 2 }],
    segments: [{ jid: 'ns1', file: 'edits_1-9', firstTxId: 1, lastTxId: 9, sizeBytes: 500, crc32 }],
    segmentsLeftOut: 0,
    damage: [],
  };
}

/** An admin client whose nodes answer as given: a status, a report, or an error for each. */
function admin(answers: Record<string, { status?: boolean; report?: IntegrityReportJson | string }>) {
  return {
    peers: [addr('n1')],
    statusOf: async (endpoints: readonly string[]) =>
      endpoints.map((e) => {
        const id = `n${Number(e.split(':')[1]) - 8480}`;
        return answers[id]?.status === false ? { endpoint: e, status: null, error: 'ECONNREFUSED' } : status(id);
      }),
    integrityOf: async (endpoints: readonly string[]): Promise<IntegrityReportOf[]> =>
      endpoints.map((e) => {
        const id = `n${Number(e.split(':')[1]) - 8480}`;
        const r = answers[id]?.report ?? report(id);
        return typeof r === 'string'
          ? { endpoint: e, report: null, error: r }
          : { endpoint: e, report: r, error: null };
      }),
  };
}

describe('qjm check: comparing every replica', () => {
  it('every member answers and agrees: agree, one ok line per node', async () => {
    const c = await checkReplicas(admin({}));
    expect(c.agree).to.equal(true);
    expect(checkLines(c)).to.deep.equal([
      'n1 (127.0.0.1:8481) applied 40 digest abc: ok',
      'n2 (127.0.0.1:8482) applied 40 digest abc: ok',
      'n3 (127.0.0.1:8483) applied 40 digest abc: ok',
      'every replica agrees (3 nodes)',
    ]);
  });

  it('a finalized segment that differs on one node: not agreeing, the node, the file and the txids named', async () => {
    const c = await checkReplicas(admin({ n2: { report: report('n2', 78) } }));
    expect(c.agree).to.equal(false);
    const lines = checkLines(c);
    expect(lines[1]).to.equal('n2 (127.0.0.1:8482) applied 40 digest abc: 1 difference');
    expect(lines).to.include(
      '  n2 segment edits_1-9 (journal ns1 txids 1-9): 500 bytes, CRC 0000004e, the majority has 500 bytes, CRC 0000004d',
    );
  });

  it('a member that does not answer, or answers as another node, is a difference: never agree without it', async () => {
    const down = await checkReplicas(admin({ n3: { report: 'HTTP 503: stopped' } }));
    expect(down.agree).to.equal(false);
    expect(checkLines(down)[2]).to.equal('n3 (127.0.0.1:8483): did not answer: HTTP 503: stopped');
    const impostor = await checkReplicas(admin({ n3: { report: report('n2') } }));
    expect(impostor.agree).to.equal(false);
    expect(impostor.differences.map((d) => [d.kind, d.node, d.detail])).to.deep.include([
      'unreachable',
      'n3',
      'did not answer: answered as n2',
    ]);
  });
});
