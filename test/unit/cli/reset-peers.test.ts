// qjm reset-peers' plan, from the /status answers it gathered: which node holds the longest log, when it
// refuses (a majority of the voters answers; the node named is not the longest), and what it says may be lost.

import { expect } from 'chai';
import { describeLoss, planReset } from '../../../src/cli/reset-peers.js';
import type { NodeStatusReport } from '../../../libqjm/index.js';
import type { NodeStatusJson } from '../../../src/node-status.js';
import { QjmError } from '../../../src/errors.js';
import { thrownMessage } from '../../support/expect-throw.js';

const VOTERS = ['n1', 'n2', 'n3'];

/** n<i>'s /status: its log ends at (lastLogTerm, lastIndex), applied at appliedIndex, voters VOTERS. */
function node(
  id: string,
  lastLogTerm: number,
  lastIndex: number,
  o: { appliedIndex?: number; clusterId?: string; voters?: string[]; lastTxId?: number } = {},
): NodeStatusJson {
  return {
    id,
    clusterId: o.clusterId ?? 'C1',
    lastLogTerm,
    lastIndex,
    appliedIndex: o.appliedIndex ?? lastIndex,
    state: 'pre-candidate',
    peers: (o.voters ?? VOTERS).map((v) => ({ id: v, address: `${v}:1`, role: 'voter' as const })),
    journals: { ns1: { lastTxId: o.lastTxId ?? 100 } },
  } as unknown as NodeStatusJson;
}

const up = (s: NodeStatusJson): NodeStatusReport => ({ endpoint: `${s.id}:1`, status: s, error: null });
const down = (id: string, error = 'ECONNREFUSED'): NodeStatusReport => ({ endpoint: `${id}:1`, status: null, error });

describe('qjm reset-peers: the plan', () => {
  it('a survivor alone, the others gone: no refusal, the silent voters named with why', () => {
    const p = planReset([up(node('n1', 4, 120)), down('n2'), down('n3', 'timed out after 2000 ms')], 'n1:1');
    expect(p.refusals).to.deep.equal([]);
    expect(p.longest.id).to.equal('n1');
    expect(p.answering).to.deep.equal(['n1']);
    expect(p.silent).to.deep.equal([
      { id: 'n2', address: 'n2:1', error: 'ECONNREFUSED' },
      { id: 'n3', address: 'n3:1', error: 'timed out after 2000 ms' },
    ]);
  });

  it('refuses while a majority of the voters answers', () => {
    const p = planReset([up(node('n1', 4, 120)), up(node('n2', 4, 110)), down('n3')], 'n1:1');
    expect(p.refusals).to.have.length(1);
    expect(p.refusals[0]).to.match(/2 of the 3 voters answer \(n1, n2\): the cluster still has a quorum/);
  });

  it('the longest log is by last term first, then last index; a node that is not it is refused', () => {
    const reports = [up(node('n1', 4, 120)), up(node('n2', 5, 118)), down('n3'), down('n4'), down('n5')];
    const voters = ['n1', 'n2', 'n3', 'n4', 'n5'];
    const p = planReset(
      reports.map((r) =>
        r.status
          ? {
              ...r,
              status: { ...r.status, peers: voters.map((v) => ({ id: v, address: `${v}:1`, role: 'voter' as const })) },
            }
          : r,
      ),
      'n1:1',
    );
    expect(p.longest.id).to.equal('n2');
    expect(p.refusals).to.deep.equal([
      'n2 holds a longer log (last index 118 in term 5) than n1 (last index 120 in term 4): reset n2 instead, or what only it holds is lost',
    ]);
    const tie = planReset(
      [up(node('n1', 5, 118)), up(node('n2', 5, 118, { voters })), down('n3'), down('n4'), down('n5')],
      'n1:1',
    );
    expect(tie.longest.id, 'a tie keeps the node named').to.equal('n1');
  });

  it('the voters are those of the furthest-applied node; a node of another cluster counts for nothing', () => {
    const p = planReset(
      [
        up(node('n1', 4, 120, { appliedIndex: 90 })),
        up(node('n4', 4, 119, { appliedIndex: 100, voters: ['n1', 'n4', 'n5'] })),
        up(node('n9', 9, 999, { clusterId: 'C2' })),
        down('n5'),
      ],
      'n1:1',
    );
    expect(p.voters.map((v) => v.id)).to.deep.equal(['n1', 'n4', 'n5']);
    expect(p.longest.id).to.equal('n1');
    expect(p.answering).to.deep.equal(['n1', 'n4']);
    expect(p.refusals).to.have.length(1);
  });

  it('learners are not voters: their answers make no quorum', () => {
    const s = node('n1', 4, 120);
    s.peers.push({ id: 'n4', address: 'n4:1', role: 'learner' });
    const p = planReset([up(s), down('n2'), down('n3'), up(node('n4', 4, 100))], 'n1:1');
    expect(p.voters.map((v) => v.id)).to.deep.equal(VOTERS);
    expect(p.refusals).to.deep.equal([]);
  });

  it('the node to reset must answer', () => {
    expect(
      thrownMessage(() => planReset([down('n1'), up(node('n2', 1, 5))], 'n1:1'), QjmError, 'a silent node'),
    ).to.match(/n1:1, does not answer \(ECONNREFUSED\)/);
  });

  it("what may be lost: the survivor's log end, the lost nodes, and each journal's last txid held", () => {
    const p = planReset([up(node('n1', 4, 120)), down('n2'), down('n3')], 'n1:1');
    const lines = describeLoss(p, 120, 4, node('n1', 5, 121, { lastTxId: 4242 }));
    expect(lines[0]).to.equal("the survivor's last index is 120 in term 4; everything up to it is now committed.");
    expect(lines[1]).to.match(
      /^lost: n2 \(n2:1: ECONNREFUSED\), n3 \(n3:1: ECONNREFUSED\)\. The leader among them may have committed entries beyond index 120, up to its own last index, which is unknown\.$/,
    );
    expect(lines[2]).to.equal(
      'journal ns1: the survivor holds txids up to 4242; edits a writer was told are durable after txid 4242 may be lost.',
    );
  });
});
