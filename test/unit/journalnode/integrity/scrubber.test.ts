// The scrubber's pacing and passes, on a clock of the test's own: the read rate is bounded, a pass starts an
// interval after the previous one (or at once when asked), a late timer (a busy event loop) makes it back
// off, and damage an item throws is reported with its file, offset and reason while the pass goes on.

import { expect } from 'chai';
import { Scrubber } from '../../../../journalnode/integrity/scrubber.js';
import type { ScrubFinding, ScrubItem, ScrubPass } from '../../../../journalnode/integrity/scrubber.js';
import { SegmentCorruptError } from '../../../../journalnode/state/segment-file.js';
import { silentLogger } from '../../../../src/logger.js';

/** A clock whose time moves only when the test says, running what falls due in order. */
class TestClock {
  now = 0;
  private timers: { at: number; seq: number; fn: () => void }[] = [];
  private seq = 0;
  schedule(ms: number, fn: () => void): () => void {
    const t = { at: this.now + ms, seq: this.seq++, fn };
    this.timers.push(t);
    return () => {
      this.timers = this.timers.filter((x) => x !== t);
    };
  }
  /** Runs timers due up to `to`; `lateMs` delays each by that much (a busy event loop). */
  runUntil(to: number, lateMs = 0): void {
    for (;;) {
      this.timers.sort((a, b) => a.at - b.at || a.seq - b.seq);
      const t = this.timers[0];
      if (!t || t.at + lateMs > to) break;
      this.timers.shift();
      this.now = Math.max(this.now, t.at + lateMs);
      t.fn();
    }
    this.now = to;
  }
}

/** An item of `size` bytes read `maxBytes` at a time, whose reads are logged as [time, bytes]. */
function item(file: string, size: number, reads: [number, number][], clock: TestClock): ScrubItem {
  let at = 0;
  return {
    kind: 'segment',
    file,
    range: file,
    step: (maxBytes) => {
      const n = Math.min(maxBytes, size - at);
      at += n;
      reads.push([clock.now, n]);
      return { bytes: n, done: at >= size };
    },
  };
}

function scrubber(clock: TestClock, items: () => ScrubItem[], over: { bytesPerS?: number; intervalMs?: number } = {}) {
  const findings: ScrubFinding[] = [];
  const passes: ScrubPass[] = [];
  const s = new Scrubber({
    bytesPerS: over.bytesPerS ?? 1000,
    intervalMs: over.intervalMs ?? 10_000,
    chunkBytes: 100,
    clock: { now: () => clock.now, schedule: (ms, fn) => clock.schedule(ms, fn) },
    items,
    onFinding: (f) => findings.push(f),
    onPass: (p) => passes.push(p),
    logger: silentLogger,
  });
  return { s, findings, passes };
}

describe('scrubber', () => {
  it('reads no faster than bytesPerS: 2,000 bytes at 1,000 bytes/s take two seconds', () => {
    const clock = new TestClock();
    const reads: [number, number][] = [];
    const { s, passes } = scrubber(clock, () => [item('a', 1200, reads, clock), item('b', 800, reads, clock)]);
    s.start();
    clock.runUntil(1500);
    expect(passes).to.have.length(0);
    const readBy1500 = reads.reduce((n, [, b]) => n + b, 0);
    expect(readBy1500).to.be.at.most(1600);
    clock.runUntil(2500);
    expect(passes).to.have.length(1);
    expect(passes[0]!.bytes).to.equal(2000);
    expect(passes[0]!.endedMs! - passes[0]!.startedMs).to.be.at.least(1900);
    // Every window of one second holds at most 1,000 bytes (plus one chunk).
    for (const [t0] of reads) {
      const inWindow = reads.filter(([t]) => t >= t0 && t < t0 + 1000).reduce((n, [, b]) => n + b, 0);
      expect(inWindow).to.be.at.most(1100);
    }
  });

  it('starts a pass intervalMs after the previous one started, and at once when asked', () => {
    const clock = new TestClock();
    const reads: [number, number][] = [];
    const { s, passes } = scrubber(clock, () => [item('a', 100, reads, clock)], { intervalMs: 10_000 });
    s.start();
    clock.runUntil(9_000);
    expect(passes).to.have.length(1);
    clock.runUntil(10_500);
    expect(passes).to.have.length(2);
    expect(passes[1]!.startedMs).to.equal(10_000);
    s.scrubNow();
    clock.runUntil(10_800);
    expect(passes).to.have.length(3);
    expect(s.status().passes).to.equal(3);
  });

  it('backs off when its timers fire late (the event loop is busy) and catches up after', () => {
    const clock = new TestClock();
    const reads: [number, number][] = [];
    const { s } = scrubber(clock, () => [item('a', 10_000_000, reads, clock)], { bytesPerS: 100_000 });
    s.start();
    clock.runUntil(1000);
    const calm = reads.length;
    reads.length = 0;
    clock.runUntil(2000, 50); // every timer 50 ms late
    const busy = reads.length;
    expect(busy).to.be.below(calm / 4);
    clock.runUntil(4000);
    reads.length = 0;
    clock.runUntil(5000);
    expect(reads.length).to.be.at.least(calm - 50);
  });

  it('reports damage with its file, offset and reason, and goes on with the next item', () => {
    const clock = new TestClock();
    const reads: [number, number][] = [];
    const bad: ScrubItem = {
      kind: 'segment',
      file: '/x/edits_1-9',
      range: 'journal ns1 txids 1-9',
      step: () => {
        throw new SegmentCorruptError('/x/edits_1-9', 4242, 'CRC mismatch for txid 5');
      },
    };
    const { s, findings, passes } = scrubber(clock, () => [bad, item('b', 100, reads, clock)]);
    s.start();
    clock.runUntil(1000);
    expect(findings).to.deep.equal([
      {
        kind: 'segment',
        file: '/x/edits_1-9',
        range: 'journal ns1 txids 1-9',
        offsetBytes: 4242,
        reason: 'CRC mismatch for txid 5',
      },
    ]);
    expect(passes[0]!.findings).to.equal(1);
    expect(reads.reduce((n, [, b]) => n + b, 0)).to.equal(100);
  });

  it('skips an item that went away (null), and does nothing at all when off (bytesPerS 0)', () => {
    const clock = new TestClock();
    const gone: ScrubItem = { kind: 'log', file: 'l', range: 'r', step: () => null };
    const on = scrubber(clock, () => [gone]);
    on.s.start();
    clock.runUntil(100);
    expect(on.passes).to.have.length(1);
    expect(on.findings).to.have.length(0);
    let asked = 0;
    const off = scrubber(
      clock,
      () => {
        asked++;
        return [];
      },
      { bytesPerS: 0 },
    );
    off.s.start();
    clock.runUntil(100_000);
    expect(asked).to.equal(0);
    expect(off.s.status().enabled).to.equal(false);
  });

  it('verifyNow: every item read at once, a chunk a turn, with what it found; a second request joins the first', () => {
    const clock = new TestClock();
    const reads: [number, number][] = [];
    const bad: ScrubItem = {
      kind: 'log',
      file: 'log_1-9',
      range: 'Raft log entries 1-9',
      step: () => {
        throw new SegmentCorruptError('log_1-9', 7, 'entry CRC mismatch');
      },
    };
    let built = 0;
    const { s, findings } = scrubber(
      clock,
      () => {
        built++;
        return [item('a', 1000, reads, clock), bad];
      },
      { bytesPerS: 1 },
    );
    const got: string[][] = [];
    s.verifyNow((f) => got.push(f.map((x) => x.file)));
    s.verifyNow((f) => got.push(f.map((x) => x.file)));
    clock.runUntil(0);
    expect(got).to.deep.equal([['log_1-9'], ['log_1-9']]);
    expect(built).to.equal(1);
    expect(reads.reduce((n, [, b]) => n + b, 0)).to.equal(1000);
    expect(findings.map((f) => f.file)).to.deep.equal(['log_1-9']);
  });

  it('while the node writes its log (foreground work moves), it reads sixteen times slower, and never stops', () => {
    const clock = new TestClock();
    const reads: [number, number][] = [];
    let work = 0;
    const s = new Scrubber({
      bytesPerS: 16_000,
      intervalMs: 10_000,
      chunkBytes: 100,
      clock: { now: () => clock.now, schedule: (ms, fn) => clock.schedule(ms, fn) },
      items: () => [item('a', 1_000_000, reads, clock)],
      onFinding: () => {},
      foregroundWork: () => work,
      logger: silentLogger,
    });
    s.start();
    clock.runUntil(1000);
    const idle = reads.reduce((n, [, b]) => n + b, 0);
    reads.length = 0;
    for (let t = 1000; t < 2000; t += 10) {
      work++;
      clock.runUntil(t + 10);
    }
    const whileBusy = reads.reduce((n, [, b]) => n + b, 0);
    expect(idle).to.be.at.least(15_000);
    expect(whileBusy).to.be.within(500, 2_000);
  });
});
