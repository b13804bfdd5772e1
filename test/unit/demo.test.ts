// The demo's parts that a long --serve run relies on: a namespace that stops growing at its limits, and a
// stop switch that a signal flips without killing anything (the demo then stops at its next step).

import { expect } from 'chai';
import { Namespace } from '../../src/demo/namespace.js';
import { Stopped, StopSwitch } from '../../src/demo/stop-switch.js';
import { Prng } from '../../src/prng.js';

describe('demo namespace', () => {
  it('with limits, random ops keep it within maxFiles and maxDirs, every op valid', () => {
    const ns = new Namespace();
    const rng = new Prng(7);
    let maxFiles = 0;
    for (let txid = 1; txid <= 5000; txid++) {
      ns.apply(
        ns.randomOp(() => rng.next(), txid, { maxFiles: 50, maxDirs: 10 }),
        txid,
      );
      maxFiles = Math.max(maxFiles, ns.files.size);
    }
    expect(maxFiles).to.equal(50);
    expect(ns.dirs.size).to.be.at.most(10);
  });

  it('without limits it grows (so the test above can fail)', () => {
    const ns = new Namespace();
    const rng = new Prng(7);
    for (let txid = 1; txid <= 5000; txid++)
      ns.apply(
        ns.randomOp(() => rng.next(), txid),
        txid,
      );
    expect(ns.files.size).to.be.greaterThan(50);
    expect(ns.dirs.size).to.be.greaterThan(10);
  });
});

describe('demo stop switch', () => {
  it('SIGINT ends a sleep at once and makes check() throw; a second signal changes nothing; dispose lets go', async () => {
    const before = process.listenerCount('SIGINT');
    const stop = new StopSwitch();
    try {
      expect(process.listenerCount('SIGINT')).to.equal(before + 1);
      stop.check();
      const t0 = Date.now();
      const slept = stop.sleep(60_000);
      process.emit('SIGINT', 'SIGINT');
      await slept;
      expect(Date.now() - t0).to.be.lessThan(1000);
      expect(() => stop.check()).to.throw(Stopped, 'stopped by SIGINT');
      process.emit('SIGTERM', 'SIGTERM');
      expect(stop.signal, 'the first signal is the one that stopped it').to.equal('SIGINT');
      const t1 = Date.now();
      await stop.sleep(60_000);
      expect(Date.now() - t1, 'once stopped, no sleep waits').to.be.lessThan(100);
    } finally {
      stop.dispose();
    }
    expect(process.listenerCount('SIGINT')).to.equal(before);
  });
});
