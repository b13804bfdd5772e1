// LinkLiveness, the pure rule of when a peer stream is dead: one ping outstanding, one per interval; a pong
// answers only the outstanding ping; dead once the peer kept talking a pong timeout past the ping without
// answering it, or after maxPongTimeoutMs of silence; bytes that move re-arm the wait; the timeout stretches
// to three of the link's recent round trips (a late pong included), within its bounds; a peer that never
// answered a ping is never held to one.

import { expect } from 'chai';
import { LinkLiveness } from '../../../../journalnode/peers/link-liveness.js';

const OPTIONS = { pingIntervalMs: 100, pongTimeoutMs: 300, maxPongTimeoutMs: 5000 };

/** A link whose peer answered its first ping (sent at t=1000) at once: it answers pings. */
function answering(): LinkLiveness {
  const l = new LinkLiveness(OPTIONS);
  l.sent(l.pingFor(1000), 0, 1000);
  expect(l.heardPong(1, 1000)).to.equal(true);
  return l;
}

describe('LinkLiveness', () => {
  it('one ping outstanding at a time, and at most one per interval', () => {
    const l = new LinkLiveness(OPTIONS);
    expect(l.pingFor(1000)).to.equal(1);
    l.sent(1, 0, 1000);
    expect(l.pingFor(1050), 'one outstanding').to.equal(0);
    expect(l.heardPong(1, 1010)).to.equal(true);
    expect(l.pingFor(1050), 'within the interval of the last').to.equal(0);
    expect(l.pingFor(1100)).to.equal(2);
  });

  it('a ping the peer did not answer while it kept talking, a pong timeout on, is a dead link', () => {
    const l = answering();
    expect(l.check(1150), 'a quiet stream is due a ping').to.equal('frame');
    l.sent(l.pingFor(1150), 0, 1150);
    l.heard(1400); // the peer talks, without the pong: a frame written before it could have answered
    expect(l.check(1460)).to.not.equal('dead');
    l.heard(1450); // a pong timeout after the ping: it never heard it
    expect(l.check(1460)).to.equal('dead');
  });

  it('a quiet stream gets a frame every ping interval, with a ping only when none is outstanding', () => {
    const l = answering();
    expect(l.check(1050)).to.equal('fine');
    expect(l.check(1100)).to.equal('frame');
    l.sent(l.pingFor(1100), 0, 1100);
    expect(l.pingFor(1200), 'ping 2 is outstanding').to.equal(0);
    expect(l.check(1200), 'but the stream still gets its frame').to.equal('frame');
  });

  it('a peer that says nothing at all (stalled, or the link back is dead too) is given maxPongTimeoutMs', () => {
    const l = answering();
    l.sent(l.pingFor(1200), 0, 1200);
    expect(l.check(1200 + 4999)).to.not.equal('dead');
    expect(l.check(1200 + 5000)).to.equal('dead');
  });

  it('only a pong for the outstanding ping answers it: a late pong of an older one does not', () => {
    const l = answering();
    l.sent(l.pingFor(1200), 0, 1200); // ping 2
    l.heard(1500);
    expect(l.heardPong(1, 1500)).to.equal(false);
    expect(l.check(1500)).to.equal('dead');
    expect(l.heardPong(2, 1220)).to.equal(true);
    expect(l.check(1500)).to.not.equal('dead');
  });

  it('a link whose pongs came slowly gets three of its round trips, never more than maxPongTimeoutMs', () => {
    const l = new LinkLiveness(OPTIONS);
    l.sent(l.pingFor(1000), 0, 1000);
    l.heardPong(1, 1400); // a 400 ms round trip
    expect(l.pongTimeoutMs).to.equal(1200);
    l.sent(l.pingFor(1500), 0, 1500);
    l.heard(2699);
    expect(l.check(2699)).to.not.equal('dead');
    l.heard(2700);
    expect(l.check(2700)).to.equal('dead');
    l.newStream();
    l.sent(l.pingFor(3000), 0, 3000);
    l.heardPong(2, 7000);
    expect(l.pongTimeoutMs, 'capped').to.equal(5000);
  });

  it('a pong that comes after its stream was cut still teaches the link its round trip', () => {
    const l = answering();
    l.sent(l.pingFor(1200), 0, 1200);
    l.heard(1500);
    expect(l.check(1500)).to.equal('dead');
    l.newStream();
    expect(l.heardPong(2, 1800), 'no ping outstanding on the new stream').to.equal(false);
    expect(l.pongTimeoutMs).to.equal(1800);
  });

  it('fast round trips bring the timeout back down to pongTimeoutMs', () => {
    const l = new LinkLiveness(OPTIONS);
    l.sent(l.pingFor(1000), 0, 1000);
    l.heardPong(1, 2000);
    expect(l.pongTimeoutMs).to.equal(3000);
    let t = 2000;
    for (let k = 0; k < 60; k++) {
      t += 100;
      l.sent(l.pingFor(t), 0, t);
      l.heardPong(k + 2, t + 1);
    }
    expect(l.pongTimeoutMs).to.equal(300);
  });

  it('bytes that move (a connection that pushed back drained) re-arm the wait', () => {
    const l = answering();
    l.sent(l.pingFor(1200), 0, 1200);
    l.progressed(1400);
    l.heard(1650);
    expect(l.check(1650)).to.not.equal('dead');
    l.heard(1700);
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
    expect(l.check(5000)).to.equal('frame');
    l.sent(l.pingFor(5000), 0, 5000);
    expect(l.check(9000)).to.equal('frame');
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
    l.heard(1300);
    expect(l.check(1300), 'it pinged: it answers').to.equal('dead');
  });
});
