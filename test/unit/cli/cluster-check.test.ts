// What `qjm status` makes of the answers (src/cli/cluster-check.ts): every node reachable through the members
// the answers name, and the problems among them, as a table of clusters and the sentences they must produce.

import { expect } from 'chai';
import type { NodeStatusReport } from '../../../libqjm/index.js';
import { clusterProblems, discoverNodes } from '../../../src/cli/cluster-check.js';
import type { IdentityStatus, MemberJson, NodeStatusJson } from '../../../src/node-status.js';

const addr = (id: string) => `127.0.0.1:${8480 + Number(id.slice(1))}`;
const members = (ids: string[], storage: Record<string, string> = {}): MemberJson[] =>
  ids.map((id) => ({ id, address: addr(id), role: 'voter', storageId: storage[id] ?? `s${id}` }));

function node(
  id: string,
  over: Partial<NodeStatusJson> = {},
  identity: Partial<IdentityStatus> = {},
): NodeStatusReport {
  const status = {
    id,
    state: 'follower',
    term: 5,
    leader: 'n1',
    clusterId: 'c1',
    storageId: `s${id}`,
    peers: members(['n1', 'n2', 'n3']),
    followers: {},
    journals: {},
    identity: { state: 'member', generation: 0, problem: null, repair: null, ...identity },
    ...over,
  } as unknown as NodeStatusJson;
  return { endpoint: addr(id), status, error: null };
}
const leader = (id: string, over: Partial<NodeStatusJson> = {}, identity: Partial<IdentityStatus> = {}) =>
  node(id, { state: 'leader', leader: id, ...over }, identity);
const down = (id: string): NodeStatusReport => ({ endpoint: addr(id), status: null, error: 'ECONNREFUSED' });

describe('qjm status: the problems it names', () => {
  const table: [string, NodeStatusReport[], RegExp[]][] = [
    ['a healthy cluster', [leader('n1'), node('n2'), node('n3')], []],
    ['a member down is no problem of its own (it is an unreachable row)', [leader('n1'), node('n2'), down('n3')], []],
    ['no leader', [node('n1', { leader: null }), node('n2', { leader: null })], [/^no leader/]],
    [
      'two leaders and two configurations (a pair reset away that elected itself)',
      [
        leader('n1', { peers: members(['n1']), term: 9 }, { generation: 1 }),
        leader('n2', { term: 4 }),
        node('n3', { leader: 'n2', term: 4 }),
      ],
      [
        /^2 leaders: n1 .* in term 9, generation 1; n2 .* in term 4, generation 0/,
        /^2 configurations: cluster c1 generation 1 \(n1\); cluster c1 generation 0 \(n2, n3\)/,
        /^n2 .* answers but the leader n1's configuration does not name it \(cluster c1, generation 0\): stop it/,
        /^n3 .* answers but the leader n1's configuration does not name it/,
      ],
    ],
    [
      'nodes that stood down, each naming its repair',
      [
        leader('n1', { peers: members(['n1']) }, { generation: 1 }),
        node(
          'n2',
          { leader: null },
          { state: 'stood-down', problem: 'stood down for good: x', repair: 'repair: wipe it' },
        ),
      ],
      [/^n2 \(127\.0\.0\.1:8482\) stood down for good: x; repair: wipe it/, /^2 configurations/],
    ],
    [
      'an uninitialized node',
      [
        leader('n1'),
        node('n2'),
        node('n3', {
          state: 'uninitialized',
          formation: { peers: [], waitingFor: ['n4 does not answer'] },
        } as Partial<NodeStatusJson>),
      ],
      [/^n3 .* is uninitialized: n4 does not answer/],
    ],
    [
      'a storage the configuration does not bind its node to, seen from the leader',
      [leader('n1', { peers: members(['n1', 'n2', 'n3'], { n2: 'OLD' }) }), node('n2'), node('n3')],
      [
        /^n2 .*: its storage sn2 is not the storage OLD the configuration binds n2 to; repair: qjm replace-node --peer n2=127\.0\.0\.1:8482/,
      ],
    ],
    [
      'a storage mismatch the node reports itself',
      [
        leader('n1'),
        node(
          'n2',
          {},
          { state: 'storage-mismatch', problem: 'its storage is not the one', repair: 'repair: qjm replace-node' },
        ),
        node('n3'),
      ],
      [/^n2 .* its storage is not the one; repair: qjm replace-node$/],
    ],
    [
      'a node below its floor',
      [leader('n1'), node('n2', {}, { state: 'below-floor', problem: 'its log ends below index 9' }), node('n3')],
      [/^n2 .* its log ends below index 9/],
    ],
    [
      'a removed node still running',
      [
        leader('n1', { peers: members(['n1', 'n3']) }),
        node('n3'),
        node('n2', { peers: members(['n1', 'n3']) }, { state: 'not-member' }),
      ],
      [/^n2 .* answers but is not a member of its own configuration \(removed\): stop it/],
    ],
    [
      'a node the leader does not name',
      [leader('n1', { peers: members(['n1', 'n3']) }), node('n3'), node('n2')],
      [/^n2 .* answers but the leader n1's configuration does not name it/],
    ],
    [
      'a joining node not added yet',
      [leader('n1'), node('n2'), node('n3'), node('n4', { peers: [] }, { state: 'joining' })],
      [/^n4 .* is not a member yet \(started with --join\): add it/],
    ],
  ];
  for (const [what, reports, want] of table)
    it(what, () => {
      const got = clusterProblems(reports);
      expect(got.length, got.join('\n')).to.equal(want.length);
      for (const re of want)
        expect(
          got.some((g) => re.test(g)),
          `${re} in\n${got.join('\n')}`,
        ).to.equal(true);
    });
});

describe('qjm status: the nodes it asks', () => {
  it('learns the members from the answers (a node added since), asks each address once, and the nodes a forming node waits for', async () => {
    const answers = new Map<string, NodeStatusReport>([
      [addr('n1'), leader('n1', { peers: members(['n1', 'n2', 'n4']) })],
      [addr('n2'), node('n2', { peers: members(['n1', 'n2', 'n4']) })],
      [addr('n4'), node('n4', { peers: members(['n1', 'n2', 'n4']) })],
      [
        addr('n5'),
        node('n5', {
          state: 'uninitialized',
          formation: { peers: members(['n5', 'n6']), waitingFor: [] },
        } as Partial<NodeStatusJson>),
      ],
    ]);
    const asked: string[] = [];
    const admin = {
      statusOf: async (eps: readonly string[]) =>
        eps.map((e) => {
          asked.push(e);
          return answers.get(e) ?? { endpoint: e, status: null, error: 'ECONNREFUSED' };
        }),
    };
    const got = await discoverNodes(admin, [addr('n1'), addr('n1'), addr('n5')]);
    expect(got.map((r) => r.endpoint).sort()).to.deep.equal(
      [addr('n1'), addr('n2'), addr('n4'), addr('n5'), addr('n6')].sort(),
    );
    expect(new Set(asked).size, 'each address once').to.equal(asked.length);
  });
});
