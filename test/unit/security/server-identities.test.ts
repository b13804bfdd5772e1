// Which node a client expects at each address: given ids are final, otherwise the word of a majority of the
// other members; a node's word about itself, a report from a node that does not name itself, and lies in the
// minority change nothing; a disputed address is refused; the one address given alone is taken on first use.

import type { PeerCertificate } from 'node:tls';
import { expect } from 'chai';
import { ServerIdentities } from '../../../src/security/server-identities.js';

const node = (id: string) => ({ subject: { CN: id, O: 'qjournal', OU: 'peer' } }) as unknown as PeerCertificate;
const client = { subject: { CN: 'ops', O: 'qjournal', OU: 'admin' } } as unknown as PeerCertificate;
const members = (...pairs: string[]) => pairs.map((p) => ({ id: p.split('=')[0]!, address: p.split('=')[1]! }));
const CONFIG = members('n1=a:1', 'n2=b:1', 'n3=c:1');

describe('server identities', () => {
  it('a certificate must be a node certificate; a given id must be the one presented', () => {
    const ids = new ServerIdentities([{ id: 'n1', address: 'a:1' }, { address: 'b:1' }]);
    expect(ids.check('a:1', node('n1'))).to.equal(null);
    expect(ids.check('a:1', node('n9'))).to.equal('a:1 is node n9, expected n1');
    expect(ids.check('b:1', client)).to.match(/not a JournalNode's/);
    expect(ids.check('b:1', node('n9')), 'nothing known of b: any node certificate').to.equal(null);
    expect(ids.identityAt('a:1')).to.deep.equal({ kind: 'known', id: 'n1', how: 'given' });
  });

  it('the members name each other: an address is known once another member names it, never on its own word', () => {
    const ids = new ServerIdentities([{ address: 'a:1' }, { address: 'b:1' }, { address: 'c:1' }]);
    for (const [a, id] of [
      ['a:1', 'n1'],
      ['b:1', 'n2'],
      ['c:1', 'n3'],
    ] as const)
      expect(ids.check(a, node(id))).to.equal(null);
    ids.learn('a:1', CONFIG);
    expect(ids.identityAt('a:1'), "a's own word").to.deep.equal({ kind: 'unknown' });
    expect(ids.identityAt('b:1')).to.deep.equal({ kind: 'known', id: 'n2', how: 'named by the members' });
    ids.learn('b:1', CONFIG);
    expect(ids.identityAt('a:1')).to.deep.include({ kind: 'known', id: 'n1' });
    expect(ids.check('a:1', node('n9')), 'now a stranger at a is refused').to.equal('a:1 is node n9, expected n1');
  });

  it('a stranger (n9) among the addresses: unknown, its lies in the minority, its report of itself worthless', () => {
    const ids = new ServerIdentities(['a:1', 'b:1', 'c:1', 'f:1'].map((address) => ({ address })));
    for (const [a, id] of [
      ['a:1', 'n1'],
      ['b:1', 'n2'],
      ['c:1', 'n3'],
      ['f:1', 'n9'],
    ] as const)
      ids.check(a, node(id));
    // The stranger claims a configuration with itself in it, and lies about a.
    ids.learn('f:1', members('n9=f:1', 'n7=a:1', 'n2=b:1', 'n3=c:1'));
    ids.learn('b:1', CONFIG);
    ids.learn('c:1', CONFIG);
    expect(ids.identityAt('f:1')).to.deep.equal({ kind: 'unknown' });
    expect(ids.identityAt('a:1'), 'n1 by two against one').to.deep.include({ kind: 'known', id: 'n1' });
    // One against one: disputed, and refused until the id is given.
    const two = new ServerIdentities(['a:1', 'b:1', 'f:1'].map((address) => ({ address })));
    two.check('b:1', node('n2'));
    two.check('f:1', node('n9'));
    two.learn('b:1', CONFIG);
    two.learn('f:1', members('n9=f:1', 'n7=a:1'));
    expect(two.identityAt('a:1')).to.deep.equal({ kind: 'disputed', ids: ['n1', 'n7'] });
    expect(two.check('a:1', node('n1'))).to.match(/the members disagree which node is there \(n1 or n7\)/);
  });

  it("a report is heard only from a node that names itself where it was reached, with its certificate's id", () => {
    const ids = new ServerIdentities(['a:1', 'b:1'].map((address) => ({ address })));
    expect(ids.learn('a:1', CONFIG), 'before any handshake with a').to.deep.equal([]);
    expect(ids.identityAt('b:1')).to.deep.equal({ kind: 'unknown' });
    ids.check('a:1', node('n1'));
    ids.learn('a:1', members('n2=b:1', 'n3=c:1')); // a removed node's configuration, without itself
    ids.learn('a:1', members('n5=a:1', 'n2=b:1')); // someone else at its address
    ids.learn('a:1', [{ address: 'a:1' }, { address: 'b:1' }]); // no ids (an older node)
    expect(ids.identityAt('b:1')).to.deep.equal({ kind: 'unknown' });
  });

  it('the only address given is taken on first use; with others it is not', () => {
    const sole = new ServerIdentities([{ address: 'a:1' }]);
    expect(sole.identityAt('a:1')).to.deep.equal({ kind: 'unknown' });
    sole.check('a:1', node('n1'));
    expect(sole.identityAt('a:1')).to.deep.equal({ kind: 'known', id: 'n1', how: 'the only address given' });
    expect(sole.check('a:1', node('n9')), 'another certificate there later').to.equal('a:1 is node n9, expected n1');
    const two = new ServerIdentities([{ address: 'a:1' }, { address: 'b:1' }]);
    two.check('a:1', node('n1'));
    expect(two.identityAt('a:1')).to.deep.equal({ kind: 'unknown' });
  });

  it('learning says which addresses now expect another node than the one connected there', () => {
    const ids = new ServerIdentities(['a:1', 'b:1', 'f:1'].map((address) => ({ address })));
    ids.check('a:1', node('n1'));
    ids.check('f:1', node('n9'));
    expect(ids.learn('a:1', members('n1=a:1', 'n2=b:1', 'n3=f:1'))).to.deep.equal(['f:1']);
    expect(ids.learn('a:1', members('n1=a:1', 'n2=b:1', 'n3=f:1')), 'said again').to.deep.equal(['f:1']);
  });

  it('bounded: at most 256 addresses and 64 reporters per address are kept', () => {
    const ids = new ServerIdentities([{ address: 'x:1' }, { address: 'y:1' }]);
    for (let r = 0; r < 100; r++) {
      ids.check(`r${r}:1`, node(`r${r}`));
      const many = Array.from({ length: 64 }, (_, i) => ({ id: `m${r}_${i}`, address: `h${r}_${i}:1` }));
      ids.learn(`r${r}:1`, [{ id: `r${r}`, address: `r${r}:1` }, ...many, { id: `x${r}`, address: 'x:1' }]);
    }
    const known = Array.from({ length: 100 }, (_, r) =>
      Array.from({ length: 64 }, (_, i) => ids.identityAt(`h${r}_${i}:1`).kind),
    ).flat();
    expect(known.filter((k) => k !== 'unknown').length).to.be.at.most(256);
    expect(ids.identityAt('h99_63:1')).to.deep.equal({ kind: 'unknown' });
  });
});
