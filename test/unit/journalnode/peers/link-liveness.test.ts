// LinkLiveness, the pure rule of when a peer stream is dead: one ping outstanding, one per interval; a pong
// answers only the outstanding ping; bytes that move re-arm the wait; a peer that never answered a ping is
// never held to one.

import { expect } from 'chai';
import { LinkLiveness } from '../../../../journalnode/peers/link-liveness.js';

const OPTIONS = { pingIntervalMs: 100, pongTimeoutMs: 300 };

/** A link whose peer answered its first ping (sent at t=1000): it answers pings. */
function answering(): LinkLiveness {
  const l = new LinkLiveness(OPTIONS);
  l.sent(l.pingFor(1000), 0, 1000);
  expect(l.heardPong(1)).to.equal(true);
  return l;
}

describe('LinkLiveness', () => {
  it('one ping outstanding at a time, and at most one per interval', () => {
    const l = new LinkLiveness(OPTIONS);
    expect(l.pingFor(1000)).to.equal(1);
    l.sent(1, 0, 1000);
    expect(l.pingFor(1050), 'one outstanding').to.equal(0);
    expect(l.heardPong(1)).to.equal(true);
    expect(l.pingFor(1050), 'within the interval of the last').to.equal(0);
    expect(l.pingFor(1100)).to.equal(2);
  });

  it('a ping unanswered for pongTimeoutMs is a dead link; a quiet stream is due a ping meanwhile', () => {
    const l = answering();
    expect(l.check(1150)).to.equal('ping');
    l.sent(l.pingFor(1150), 0, 1150);
    expect(l.check(1449)).to.equal('fine');
    expect(l.check(1450)).to.equal('dead');
  });

  it('only a pong for the outstanding ping answers it: a late pong of an older one does not', () => {
    const l = answering();
    l.sent(l.pingFor(1200), 0, 1200); // ping 2
    expect(l.heardPong(1)).to.equal(false);
    expect(l.check(1500)).to.equal('dead');
    expect(l.heardPong(2)).to.equal(true);
    expect(l.check(1500)).to.not.equal('dead');
  });

  it('bytes that move (a connection that pushed back drained) re-arm the wait', () => {
    const l = answering();
    l.sent(l.pingFor(1200), 0, 1200);
    l.progressed(1400);
    expect(l.check(1600)).to.equal('fine');
    expect(l.check(1700)).to.equal('dead');
  });

  it('a new stream has nothing outstanding', () => {
    const l = answering();
    l.sent(l.pingFor(1200), 0, 1200);
    l.newStream();
    expect(l.check(2000)).to.not.equal('dead');
  });

  it('a peer that never answered a ping (an older version) is never held to one, and still gets ping frames', () => {
    const l = new LinkLiveness(OPTIONS);
    l.sent(l.pingFor(1000), 0, 1000);
    expect(l.check(5000)).to.equal('ping');
    l.sent(l.pingFor(5000), 0, 5000);
    expect(l.check(9000)).to.equal('ping');
  });

  it('a peer that pings is one that answers; its ping is owed until a frame carried the pong', () => {
    const l = new LinkLiveness(OPTIONS);
    l.heardPing(9);
    expect(l.pongDue).to.equal(9);
    l.heardPing(10);
    l.sent(0, 9, 1000);
    expect(l.pongDue, 'a newer ping arrived meanwhile: still owed').to.equal(10);
    l.sent(0, 10, 1000);
    expect(l.pongDue).to.equal(0);
    l.sent(l.pingFor(1000), 0, 1000);
    expect(l.check(1300), 'it pinged: it answers').to.equal('dead');
  });
});
