// libqjm's route table: where writes and reads go, what a redirect, a success and a failure change, that the
// Raft term it remembers only grows, and how it follows the members: the furthest-applied word wins.

import { expect } from 'chai';
import { RouteTable, STOOD_DOWN_SKIP_MS } from '../../../libqjm/route-table.js';
import { formatMembersHeader, parseMembersHeader } from '../../../src/peers.js';

const PEERS = ['a:1', 'b:1', 'c:1'];

describe('RouteTable', () => {
  it('refuses an empty peer list', () => {
    expect(() => new RouteTable([])).to.throw(/no peers/);
  });

  it('without a known leader, writes and reads rotate over the peers in turn', () => {
    const t = new RouteTable(PEERS);
    expect(t.knownLeader).to.equal(null);
    expect([t.leaderTarget(), t.leaderTarget(), t.anyTarget(), t.anyTarget(), t.leaderTarget()]).to.deep.equal([
      'a:1',
      'b:1',
      'c:1',
      'a:1',
      'b:1',
    ]);
  });

  it('a confirmed leader is cached: every write goes to it while reads keep rotating', () => {
    const t = new RouteTable(PEERS);
    t.confirm('b:1', 2);
    expect([t.leaderTarget(), t.leaderTarget(), t.leaderTarget()]).to.deep.equal(['b:1', 'b:1', 'b:1']);
    expect([t.anyTarget(), t.anyTarget(), t.anyTarget()]).to.deep.equal(['a:1', 'b:1', 'c:1']);
    expect(t.knownLeader).to.equal('b:1');
  });

  it('a redirect names the leader; an unknown address is added to the peers once', () => {
    const t = new RouteTable(PEERS);
    t.redirect('d:1', 3);
    expect(t.knownLeader).to.equal('d:1');
    expect(t.leaderTarget()).to.equal('d:1');
    t.redirect('d:1', 3);
    t.redirect('a:1', 3);
    expect(t.all()).to.deep.equal(['a:1', 'b:1', 'c:1', 'd:1']);
    expect(t.knownLeader).to.equal('a:1');
  });

  it('a redirect without an address forgets the leader', () => {
    const t = new RouteTable(PEERS);
    t.confirm('c:1', 1);
    t.redirect(undefined, 2);
    expect(t.knownLeader).to.equal(null);
    expect(t.all()).to.deep.equal(PEERS);
  });

  it('failed() forgets the leader when it is the one that failed, and only then', () => {
    const t = new RouteTable(PEERS);
    t.confirm('b:1', 1);
    t.failed('a:1');
    expect(t.knownLeader).to.equal('b:1');
    t.failed('b:1');
    expect(t.knownLeader).to.equal(null);
    expect(t.all(), 'a failed peer stays a peer').to.deep.equal(PEERS);
  });

  it('the term only grows, whoever reports it', () => {
    const t = new RouteTable(PEERS);
    const seen: number[] = [];
    for (const step of [
      () => t.observeTerm(5),
      () => t.redirect('a:1', 3),
      () => t.confirm('a:1', 4),
      () => t.observeTerm(7),
      () => t.redirect(undefined, 0),
    ]) {
      step();
      seen.push(t.term);
    }
    expect(seen).to.deep.equal([5, 5, 5, 7, 7]);
  });

  it('a node that stood down is passed over, and forgotten as leader, while another is left; again after a while', () => {
    let nowMs = 0;
    const t = new RouteTable(PEERS, () => nowMs);
    t.confirm('a:1', 2);
    t.stoodDown('a:1');
    expect(t.knownLeader).to.equal(null);
    expect(Array.from({ length: 4 }, () => t.anyTarget())).to.deep.equal(['b:1', 'c:1', 'b:1', 'c:1']);
    expect(t.allStoodDown()).to.equal(false);
    t.stoodDown('b:1');
    expect([t.leaderTarget(), t.anyTarget()]).to.deep.equal(['c:1', 'c:1']);
    t.stoodDown('c:1');
    expect(t.allStoodDown(), 'nobody left: the answer is final').to.equal(true);
    expect(PEERS, 'all stood down: the rotation goes on regardless').to.include(t.anyTarget());
    nowMs += STOOD_DOWN_SKIP_MS;
    expect(t.allStoodDown(), 'the addresses may hold re-added nodes by now').to.equal(false);
    expect(Array.from({ length: 3 }, () => t.anyTarget()).sort()).to.deep.equal(PEERS);
  });

  it('keeps its own copy of the peer list', () => {
    const peers = [...PEERS];
    const t = new RouteTable(peers);
    peers.push('x:1');
    t.redirect('d:1', 1);
    expect(peers).to.deep.equal([...PEERS, 'x:1']);
    expect(t.all()).to.deep.equal([...PEERS, 'd:1']);
  });

  describe('following the members', () => {
    it('the members an answer names replace the seeds: writes and reads rotate over them', () => {
      const t = new RouteTable(PEERS);
      t.learnMembers(['d:1', 'e:1', 'f:1'], 10);
      expect(t.all()).to.deep.equal(['d:1', 'e:1', 'f:1']);
      expect([t.anyTarget(), t.anyTarget(), t.leaderTarget(), t.anyTarget()].sort()).to.deep.equal([
        'd:1',
        'd:1',
        'e:1',
        'f:1',
      ]);
    });

    it('the word of the node that applied the furthest wins: an older list changes nothing', () => {
      const t = new RouteTable(PEERS);
      t.learnMembers(['b:1', 'c:1', 'd:1'], 20);
      t.learnMembers(['a:1', 'b:1', 'c:1'], 19);
      expect(t.all(), 'a lagging (or removed) node names the old members').to.deep.equal(['b:1', 'c:1', 'd:1']);
      t.learnMembers(['c:1', 'd:1', 'e:1'], 20);
      expect(t.all(), 'the same index: both are that configuration').to.deep.equal(['c:1', 'd:1', 'e:1']);
      t.learnMembers(['d:1', 'e:1', 'f:1'], 35);
      expect(t.all()).to.deep.equal(['d:1', 'e:1', 'f:1']);
    });

    it('an empty list is no word at all', () => {
      const t = new RouteTable(PEERS);
      t.learnMembers([], 50);
      expect(t.all()).to.deep.equal(PEERS);
      t.learnMembers(['d:1'], 1);
      expect(t.all()).to.deep.equal(['d:1']);
    });

    it('a cached leader the members no longer name is forgotten; one they name is kept', () => {
      const t = new RouteTable(PEERS);
      t.confirm('b:1', 3);
      t.learnMembers(['b:1', 'c:1', 'd:1'], 10);
      expect(t.knownLeader).to.equal('b:1');
      t.learnMembers(['c:1', 'd:1', 'e:1'], 11);
      expect(t.knownLeader).to.equal(null);
    });

    it('every node replaced, one at a time: the table always names a live member', () => {
      // n1..n3 replaced by n4..n6; each step the answers name the configuration after it.
      const t = new RouteTable(['n1:1', 'n2:1', 'n3:1']);
      const steps = [
        ['n2:1', 'n3:1', 'n4:1'],
        ['n3:1', 'n4:1', 'n5:1'],
        ['n4:1', 'n5:1', 'n6:1'],
      ];
      for (const [i, members] of steps.entries()) t.learnMembers(members, 100 * (i + 1));
      const targets = new Set(Array.from({ length: 6 }, () => t.anyTarget()));
      expect([...targets].sort()).to.deep.equal(['n4:1', 'n5:1', 'n6:1']);
    });
  });

  describe('the qjournal-members header', () => {
    it("round-trips an applied index and the members' ids and addresses; reads the older form without ids", () => {
      const v = formatMembersHeader(1234, [
        { id: 'n1', address: '10.0.0.1:8485' },
        { id: 'n2', address: '[::1]:8486' },
        { id: 'n3', address: 'jn3.example:8487' },
      ]);
      expect(v).to.equal('1234 n1=10.0.0.1:8485,n2=[::1]:8486,n3=jn3.example:8487');
      expect(parseMembersHeader(v)).to.deep.equal({
        appliedIndex: 1234,
        addresses: ['10.0.0.1:8485', '[::1]:8486', 'jn3.example:8487'],
        members: [
          { id: 'n1', address: '10.0.0.1:8485' },
          { id: 'n2', address: '[::1]:8486' },
          { id: 'n3', address: 'jn3.example:8487' },
        ],
      });
      expect(parseMembersHeader('7 10.0.0.1:8485')).to.deep.equal({
        appliedIndex: 7,
        addresses: ['10.0.0.1:8485'],
        members: [{ address: '10.0.0.1:8485' }],
      });
    });

    it('anything malformed names nothing', () => {
      const many = Array.from({ length: 65 }, (_, i) => `h${i}:1`).join(',');
      for (const bad of [
        '',
        '12',
        '12 ',
        'x a:1',
        '-1 a:1',
        '1 a:1 b:1',
        '1 a',
        '1 a:0',
        '1 a:1,,b',
        `1 ${many}`,
        '1 n 1=a:1', // a bad id
        '1 =a:1',
        '1 n1=a:1,n2=a:1', // one address, two ids
      ]) {
        expect(parseMembersHeader(bad), JSON.stringify(bad)).to.equal(null);
      }
    });
  });
});
