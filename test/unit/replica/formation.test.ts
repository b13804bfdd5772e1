// The rule that forms a cluster once (src/replica/formation.ts), as a table: every named node's answer in, one
// decision out — wait, form, adopt the configuration a named node formed with this storage, or (a formed
// cluster binds this id to another storage) wait to be re-added, never bootstrapping. And the JournalNode's
// reading of a /status into an answer (journalnode/formation.ts), hostile answers included.

import { expect } from 'chai';
import { answerOf } from '../../../journalnode/formation.js';
import type { NodeStatusJson } from '../../../src/node-status.js';
import { decideFormation, initialConfiguration } from '../../../src/replica/formation.js';
import type { FormationDecision, PeerAnswer } from '../../../src/replica/formation.js';
import type { Peer } from '../../../src/raft/types.js';

const peers: Peer[] = [
  { id: 'n1', address: '127.0.0.1:1' },
  { id: 'n2', address: '127.0.0.1:2' },
  { id: 'n3', address: '127.0.0.1:3' },
];
const self = { id: 'n2', storageId: 'b2', peers };
const bound = (ids: Record<string, string>) => peers.map((p) => ({ ...p, storageId: ids[p.id] ?? '' }));
const forming = (storageId: string, ps: Peer[] = peers): PeerAnswer => ({ kind: 'forming', storageId, peers: ps });
const formed = (members: Peer[], initialPeers: Peer[] = members, generation = 0): PeerAnswer => ({
  kind: 'formed',
  clusterId: 'c1',
  generation,
  members,
  initialPeers,
});
const silent: PeerAnswer = { kind: 'silent', error: 'ECONNREFUSED' };

describe('forming a cluster once', () => {
  const table: [string, Record<string, PeerAnswer>, FormationDecision['kind'], RegExp | null][] = [
    ['every named node unformed with the same --peers', { n1: forming('a1'), n3: forming('c3') }, 'form', null],
    [
      'a named node does not answer: wait, never form without it',
      { n1: forming('a1'), n3: silent },
      'wait',
      /n3 .* does not answer: ECONNREFUSED/,
    ],
    ['a named node never asked', { n1: forming('a1') }, 'wait', /n3 .* does not answer$/],
    [
      'started with other --peers',
      { n1: forming('a1', peers.slice(0, 2)), n3: forming('c3') },
      'wait',
      /n1 was started with other --peers/,
    ],
    [
      'an unformed node without a storage id',
      { n1: forming(''), n3: forming('c3') },
      'wait',
      /n1 answers without a storage id/,
    ],
    [
      'formed with this storage, the same --peers: adopt',
      { n1: formed(bound({ n1: 'a1', n2: 'b2', n3: 'c3' })), n3: silent },
      'adopt',
      null,
    ],
    [
      'formed, binding this id to another storage: replaced',
      { n1: formed(bound({ n1: 'a1', n2: 'OLD', n3: 'c3' })), n3: forming('c3') },
      'replaced',
      null,
    ],
    [
      'formed, naming this id bound to no storage: replaced too',
      { n1: formed(bound({ n1: 'a1', n3: 'c3' })), n3: silent },
      'replaced',
      null,
    ],
    [
      'one says this storage, another another: replaced (never adopt on a conflict)',
      { n1: formed(bound({ n1: 'a1', n2: 'b2', n3: 'c3' })), n3: formed(bound({ n1: 'a1', n2: 'OLD', n3: 'c3' })) },
      'replaced',
      null,
    ],
    [
      'formed without this id: wait, naming --join',
      { n1: formed(bound({ n1: 'a1', n3: 'c3' }).filter((p) => p.id !== 'n2')), n3: silent },
      'wait',
      /does not name n2: to join it, start this node with --join/,
    ],
    [
      'formed with this storage but other --peers: wait',
      { n1: formed(bound({ n1: 'a1', n2: 'b2', n3: 'c3' }), bound({ n1: 'a1', n2: 'b2' }).slice(0, 2)), n3: silent },
      'wait',
      /other --peers/,
    ],
  ];
  for (const [what, answers, kind, reason] of table) {
    it(what, () => {
      const d = decideFormation(self, new Map(Object.entries(answers)));
      expect(d.kind).to.equal(kind);
      if (d.kind === 'wait' && reason) expect(d.reasons.join('\n')).to.match(reason);
      if (d.kind === 'form') expect(d.peers).to.deep.equal(bound({ n1: 'a1', n2: 'b2', n3: 'c3' }));
      if (d.kind === 'adopt') expect(d).to.deep.include({ clusterId: 'c1', from: 'n1' });
      if (d.kind === 'replaced')
        expect(
          d.members.map((p) => p.id),
          'the members it will listen to',
        ).to.deep.equal(['n1', 'n3']);
    });
  }

  it('a cluster of one forms at once; the configuration is the same whatever the order of --peers', () => {
    expect(decideFormation({ id: 'n1', storageId: 'a1', peers: [peers[0]!] }, new Map())).to.deep.equal({
      kind: 'form',
      peers: [{ ...peers[0]!, storageId: 'a1' }],
    });
    const shuffled = [...peers].reverse().map((p, i) => ({ ...p, storageId: `s${i}` }));
    expect(initialConfiguration(shuffled).map((p) => p.id)).to.deep.equal(['n1', 'n2', 'n3']);
  });
});

describe("reading a named node's /status for formation (hostile answers count as none)", () => {
  const base = {
    id: 'n1',
    state: 'follower',
    clusterId: 'c1',
    storageId: 'a1',
    peers: [{ id: 'n1', address: '127.0.0.1:1', role: 'voter', storageId: 'a1' }],
    initialPeers: [{ id: 'n1', address: '127.0.0.1:1', storageId: 'a1' }],
    identity: { generation: 2 },
  } as unknown as NodeStatusJson;
  const with_ = (over: object) => ({ ...base, ...over }) as unknown as NodeStatusJson;
  it('a formed node and a forming one', () => {
    expect(answerOf('n1', base)).to.deep.equal({
      kind: 'formed',
      clusterId: 'c1',
      generation: 2,
      members: [{ id: 'n1', address: '127.0.0.1:1', storageId: 'a1' }],
      initialPeers: [{ id: 'n1', address: '127.0.0.1:1', storageId: 'a1' }],
    });
    expect(answerOf('n1', with_({ state: 'uninitialized', formation: { peers, waitingFor: [] } }))).to.deep.equal({
      kind: 'forming',
      storageId: 'a1',
      peers: peers.map((p) => ({ ...p, storageId: '' })),
    });
  });
  const hostile: [string, object][] = [
    ['another node at the address', { id: 'n9' }],
    ['a member with a bad id', { peers: [{ id: '../x', address: '127.0.0.1:1' }] }],
    ['a member with a bad address', { peers: [{ id: 'n1', address: 'nowhere' }] }],
    [
      'a member with a storage id that is no storage id',
      { peers: [{ id: 'n1', address: '127.0.0.1:1', storageId: 'X'.repeat(9) }] },
    ],
    ['members that are no list', { peers: 'n1' }],
    ['too many members', { peers: Array.from({ length: 2000 }, (_, i) => ({ id: `n${i}`, address: '127.0.0.1:1' })) }],
    ['a generation that is no safe integer', { identity: { generation: 2 ** 60 } }],
    ['a negative generation', { identity: { generation: -1 } }],
    ['a cluster id with a path in it', { clusterId: '../c1' }],
    ['forming without a storage id', { state: 'uninitialized', storageId: '', formation: { peers, waitingFor: [] } }],
    ['forming with garbage --peers', { state: 'uninitialized', formation: { peers: [{ id: 5 }], waitingFor: [] } }],
  ];
  for (const [what, over] of hostile)
    it(`refuses ${what}`, () => expect(answerOf('n1', with_(over)).kind).to.equal('silent'));
});
