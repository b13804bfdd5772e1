// The safe-to-stop check: a quorum of caught-up voters must remain without the node, counted as stopping
// keeps the configuration and removing shrinks it; the leader's view of each follower decides "caught up".

import { expect } from 'chai';
import { assessImpact } from '../../../src/cli/check-impact.js';
import type { FollowerJson, NodeStatusJson } from '../../../src/node-status.js';

const follower = (lagEntries: number, recentActive = true): FollowerJson => ({
  nextIndex: 1,
  matchIndex: 1,
  state: 'replicate',
  inflight: 0,
  recentActive,
  lagEntries,
});

function leader(voters: string[], followers: Record<string, FollowerJson>, joint = false): NodeStatusJson {
  return {
    id: voters[0]!,
    state: 'leader',
    peers: voters.map((id) => ({ id, address: `${id}:1`, role: 'voter' as const })),
    joint,
    followers,
  } as unknown as NodeStatusJson;
}

describe('check-impact', () => {
  const healthy3 = leader(['n1', 'n2', 'n3'], { n2: follower(0), n3: follower(3) });
  const cases: {
    name: string;
    st: NodeStatusJson;
    node: string;
    action: 'stop' | 'remove';
    safe: boolean;
    says: RegExp;
  }[] = [
    {
      name: 'stop a follower of a healthy 3',
      st: healthy3,
      node: 'n2',
      action: 'stop',
      safe: true,
      says: /SAFE: .* 2 caught-up voter\(s\) of 3 .* quorum is 2 \(no failure/,
    },
    { name: 'stop the leader of a healthy 3', st: healthy3, node: 'n1', action: 'stop', safe: true, says: /SAFE/ },
    {
      name: 'stop a follower while the other lags',
      st: leader(['n1', 'n2', 'n3'], { n2: follower(0), n3: follower(5000) }),
      node: 'n2',
      action: 'stop',
      safe: false,
      says: /UNSAFE: .* only 1 caught-up voter\(s\) of 3/,
    },
    {
      name: 'stop a follower while the other is silent',
      st: leader(['n1', 'n2', 'n3'], { n2: follower(0), n3: follower(0, false) }),
      node: 'n2',
      action: 'stop',
      safe: false,
      says: /n3: not heard from/,
    },
    {
      name: 'remove a follower while the other lags: the two left need both',
      st: leader(['n1', 'n2', 'n3'], { n2: follower(0), n3: follower(5000) }),
      node: 'n2',
      action: 'remove',
      safe: false,
      says: /only 1 caught-up voter\(s\) of 2 remain; a quorum is 2/,
    },
    {
      name: 'remove the lagging one: the two left are caught up',
      st: leader(['n1', 'n2', 'n3'], { n2: follower(0), n3: follower(5000) }),
      node: 'n3',
      action: 'remove',
      safe: true,
      says: /SAFE: .* 2 caught-up voter\(s\) of 2/,
    },
    {
      name: 'stop one of five with one down',
      st: leader(['n1', 'n2', 'n3', 'n4', 'n5'], {
        n2: follower(0),
        n3: follower(0),
        n4: follower(0),
        n5: follower(0, false),
      }),
      node: 'n2',
      action: 'stop',
      safe: true,
      says: /3 caught-up voter\(s\) of 5 remain; a quorum is 3/,
    },
    {
      name: 'a joint configuration is never judged safe',
      st: leader(['n1', 'n2', 'n3'], { n2: follower(0), n3: follower(0) }, true),
      node: 'n2',
      action: 'stop',
      safe: false,
      says: /membership change is in progress/,
    },
    {
      name: 'a node that is not a voter',
      st: healthy3,
      node: 'n9',
      action: 'stop',
      safe: true,
      says: /n9 is not a voter/,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = assessImpact(c.st, c.node, c.action, 1000);
      expect(r.safe, r.lines.join('\n')).to.equal(c.safe);
      expect(r.lines.join('\n')).to.match(c.says);
    });
  }
});
