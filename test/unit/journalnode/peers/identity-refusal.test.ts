// An identity refusal of a peer stream, both ends (journalnode/peers/identity-refusal.ts): the body the refusing
// node answers, and the refused node's reading of it, which ignores whatever does not check out.

import { expect } from 'chai';
import {
  IDENTITY_REFUSAL_STATUS,
  identityRefusalBody,
  parseIdentityRefusal,
} from '../../../../journalnode/peers/identity-refusal.js';
import type { IdentityNotice } from '../../../../src/replica/identity.js';

const notice: IdentityNotice = {
  kind: 'reset-away',
  clusterId: 'c0ffee',
  generation: 2,
  expectedStorageId: '',
  members: ['n1'],
};
const body = (o: unknown) => Buffer.from(JSON.stringify(o));

describe('identity refusal of a peer stream', () => {
  it('round-trips: the body a node answers is read back as the notice, with the code that says what it means', () => {
    const b = identityRefusalBody('older generation', notice);
    expect(b).to.deep.include({ code: 'QJM_ERR_STOOD_DOWN', message: 'older generation' });
    expect(parseIdentityRefusal(IDENTITY_REFUSAL_STATUS, body(b))).to.deep.equal(notice);
    const mismatch = { ...notice, kind: 'storage-mismatch' as const, expectedStorageId: 'ab12', members: [] };
    expect(identityRefusalBody('x', mismatch)).to.include({ code: 'QJM_ERR_STORAGE_MISMATCH' });
    expect(identityRefusalBody('x', null)).to.deep.equal({ code: 'QJM_ERR_FORBIDDEN', message: 'x' });
  });

  const hostile: [string, number, Buffer][] = [
    ['another status', 403, body({ identity: notice })],
    ['not JSON', 409, Buffer.from('{"identity":')],
    ['JSON null', 409, body(null)],
    ['no identity', 409, body({ code: 'QJM_ERR_STOOD_DOWN' })],
    ['an unknown kind', 409, body({ identity: { ...notice, kind: 'go-away' } })],
    ['a generation that is a string', 409, body({ identity: { ...notice, generation: '9' } })],
    ['a negative generation', 409, body({ identity: { ...notice, generation: -1 } })],
    ['an unsafe generation', 409, body({ identity: { ...notice, generation: 2 ** 60 } })],
    ['a cluster id with a path in it', 409, body({ identity: { ...notice, clusterId: '../x' } })],
    ['a storage id that is no storage id', 409, body({ identity: { ...notice, expectedStorageId: 'ZZ' } })],
    ['members that are no list', 409, body({ identity: { ...notice, members: 'n1' } })],
    ['a member with a bad id', 409, body({ identity: { ...notice, members: ['n1', '../n2'] } })],
    [
      'too many members',
      409,
      body({ identity: { ...notice, members: Array.from({ length: 2000 }, (_, i) => `n${i}`) } }),
    ],
  ];
  for (const [what, status, b] of hostile)
    it(`ignores ${what}`, () => expect(parseIdentityRefusal(status, b)).to.equal(null));
});
