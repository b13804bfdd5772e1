// libqjm's route table: where writes and reads go, what a redirect, a success and a failure change, and
// that the Raft term it remembers only grows.

import { expect } from 'chai';
import { RouteTable } from '../../../libqjm/route-table.js';

const PEERS = ['a:1', 'b:1', 'c:1'];

describe('RouteTable', () => {
  it('refuses an empty peer list', () => {
    expect(() => new RouteTable([])).to.throw(/no peers/);
  });

  it('without a known leader, writes and reads rotate over the peers in turn', () => {
    const t = new RouteTable(PEERS);
    expect(t.knownLeader).to.equal(null);
    expect([t.leaderTarget(), t.leaderTarget(), t.anyTarget(), t.anyTarget(), t.leaderTarget()]).to.deep.equal(['a:1', 'b:1', 'c:1', 'a:1', 'b:1']);
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
    for (const step of [() => t.observeTerm(5), () => t.redirect('a:1', 3), () => t.confirm('a:1', 4), () => t.observeTerm(7), () => t.redirect(undefined, 0)]) {
      step();
      seen.push(t.term);
    }
    expect(seen).to.deep.equal([5, 5, 5, 7, 7]);
  });

  it('keeps its own copy of the peer list', () => {
    const peers = [...PEERS];
    const t = new RouteTable(peers);
    peers.push('x:1');
    t.redirect('d:1', 1);
    expect(peers).to.deep.equal([...PEERS, 'x:1']);
    expect(t.all()).to.deep.equal([...PEERS, 'd:1']);
  });
});
