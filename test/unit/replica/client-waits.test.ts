// What clients of a replica wait on: ReadIndex reads and the applied-index waits they become are bounded
// together; past the bound a read is refused at once (the replica answers BUSY) and nothing is kept for it.

import { expect } from 'chai';
import { ClientWaits } from '../../../src/replica/client-waits.js';

const options = { proposalTimeoutMs: 1000, readTimeoutMs: 1000, maxPendingReads: 3 };

describe('client waits', () => {
  it('at most maxPendingReads reads wait at once, counting those confirmed and waiting for their index', () => {
    const w = new ClientWaits<number>(options, 7);
    const answers: string[] = [];
    const cb = (name: string) => (e: unknown, index?: number) => answers.push(`${name}:${e ? 'error' : index}`);
    const a = w.addRead(0, cb('a'))!;
    w.addRead(0, cb('b'));
    expect(w.addRead(0, cb('c')), 'the third fits').to.not.equal(null);
    expect(w.addRead(0, cb('d')), 'the fourth is refused').to.equal(null);
    // The first is confirmed and now waits for index 5 to apply: it still counts.
    const r = w.takeRead(a, 0)!;
    w.waitApplied(5, 1000, r.cb);
    expect(w.addRead(0, cb('e'))).to.equal(null);
    w.releaseApplied(5);
    expect(answers).to.deep.equal(['a:5']);
    expect(w.addRead(0, cb('f')), 'room once it is answered').to.not.equal(null);
    expect(w.readCount).to.equal(3);
  });

  it('each read gets a context of its own, under which it is found once', () => {
    const w = new ClientWaits<number>({ ...options, maxPendingReads: 100 }, 7);
    const contexts = Array.from({ length: 50 }, () => w.addRead(0, () => {})!);
    expect(new Set(contexts.map((c) => Buffer.from(c).toString('hex'))).size).to.equal(50);
    expect(w.takeRead(contexts[10]!, 0)).to.not.equal(undefined);
    expect(w.takeRead(contexts[10]!, 0)).to.equal(undefined);
  });
});
