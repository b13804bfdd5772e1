import { expect } from 'chai';
import { Inflights, Progress, ProgressState } from '../../../src/raft/progress.js';

describe('progress', () => {
  it('inflights: bounded by count and bytes, freed in order', () => {
    const inf = new Inflights(3, 100);
    inf.add(5, 10);
    inf.add(7, 10);
    expect(inf.full()).to.equal(false);
    inf.add(9, 10);
    expect(inf.full()).to.equal(true);
    inf.freeLE(7);
    expect(inf.count).to.equal(1);
    expect(inf.totalBytes).to.equal(10);
    inf.add(10, 95);
    expect(inf.full(), 'byte bound').to.equal(true);
    inf.freeLE(100);
    expect(inf.count).to.equal(0);
  });

  it('probe: one append at a time until answered', () => {
    const pr = new Progress(5, 4, 0);
    expect(pr.isPaused()).to.equal(false);
    pr.sentEntries(7, 10);
    expect(pr.isPaused()).to.equal(true);
    expect(pr.maybeUpdate(7)).to.equal(true);
    expect(pr.isPaused()).to.equal(false);
    expect(pr.next).to.equal(8);
  });

  it('replicate: optimistic next, window bound', () => {
    const pr = new Progress(1, 2, 0);
    pr.maybeUpdate(3);
    pr.becomeReplicate();
    pr.sentEntries(5, 1);
    expect(pr.next).to.equal(6);
    pr.sentEntries(8, 1);
    expect(pr.isPaused()).to.equal(true);
  });

  describe('maybeDecrTo', () => {
    const table: {
      state: ProgressState;
      match: number;
      next: number;
      rejected: number;
      hint: number;
      ok: boolean;
      wantNext: number;
    }[] = [
      // replicate: stale rejections (<= match) are ignored; otherwise fall back to match+1
      { state: ProgressState.Replicate, match: 5, next: 10, rejected: 5, hint: 5, ok: false, wantNext: 10 },
      { state: ProgressState.Replicate, match: 5, next: 10, rejected: 7, hint: 5, ok: true, wantNext: 6 },
      // probe: only the answer to the outstanding probe counts
      { state: ProgressState.Probe, match: 0, next: 10, rejected: 5, hint: 3, ok: false, wantNext: 10 },
      { state: ProgressState.Probe, match: 0, next: 10, rejected: 9, hint: 3, ok: true, wantNext: 4 },
      { state: ProgressState.Probe, match: 0, next: 10, rejected: 9, hint: 20, ok: true, wantNext: 9 },
      { state: ProgressState.Probe, match: 2, next: 10, rejected: 9, hint: 0, ok: true, wantNext: 3 },
    ];
    for (const t of table) {
      it(`${t.state} match=${t.match} next=${t.next} rejected=${t.rejected} hint=${t.hint} -> ${t.ok ? t.wantNext : 'stale'}`, () => {
        const pr = new Progress(t.next, 8, 0);
        pr.match = t.match;
        if (t.state === ProgressState.Replicate) {
          pr.becomeReplicate();
          pr.next = t.next;
        }
        expect(pr.maybeDecrTo(t.rejected, t.hint)).to.equal(t.ok);
        expect(pr.next).to.equal(t.wantNext);
      });
    }
  });

  it('snapshot: paused until the install is reported; probing resumes after it', () => {
    const pr = new Progress(1, 4, 0);
    pr.becomeSnapshot(50);
    expect(pr.isPaused()).to.equal(true);
    pr.becomeProbe();
    expect(pr.next).to.equal(51);
  });
});
