// The one retry policy of libqjm: which errors are retried, the backoff bounds, the deadline, and the
// redirect that is worth trying at once.

import { expect } from 'chai';
import { backoffMs, withRetry } from '../../../libqjm/retry-policy.js';
import type { RetryOptions } from '../../../libqjm/retry-policy.js';
import {
  ERROR_NAMES,
  FencedError,
  isRetriable,
  makeError,
  NotLeaderError,
  type QjmError,
} from '../../../src/errors.js';

/** Fails with the given errors in turn, then answers 'ok'. Records the attempt numbers it was called with. */
function failing(errors: Error[]): { fn: (attempt: number) => Promise<string>; attempts: number[] } {
  const attempts: number[] = [];
  return {
    attempts,
    fn: async (attempt) => {
      attempts.push(attempt);
      const e = errors[attempts.length - 1];
      if (e) throw e;
      return 'ok';
    },
  };
}

const noGiveUp = (last: QjmError): QjmError => last;

async function outcome<T>(p: Promise<T>): Promise<{ value?: T; error?: unknown; ms: number }> {
  const t0 = Date.now();
  try {
    return { value: await p, ms: Date.now() - t0 };
  } catch (error) {
    return { error, ms: Date.now() - t0 };
  }
}

describe('retry policy', () => {
  describe('backoffMs', () => {
    const o: RetryOptions = { initialBackoffMs: 10, maxBackoffMs: 100, deadlineMs: 1000 };
    const realRandom = Math.random;
    afterEach(() => {
      Math.random = realRandom;
    });

    // attempt -> the base before jitter: doubling from initialBackoffMs, capped at maxBackoffMs.
    const table: [number, number][] = [
      [0, 10],
      [1, 20],
      [2, 40],
      [3, 80],
      [4, 100],
      [10, 100],
      [1000, 100],
    ];
    for (const [attempt, base] of table) {
      it(`attempt ${attempt}: within [${base / 2}, ${base})`, () => {
        const got = [0, 0.5, 0.999].map((r) => {
          Math.random = () => r;
          return backoffMs(attempt, o);
        });
        expect(got[0]).to.equal(base / 2);
        expect(got[1]).to.equal((base * 3) / 4);
        expect(got[2])
          .to.be.lessThan(base)
          .and.greaterThan(base * 0.99);
      });
    }
  });

  describe('withRetry', () => {
    const fast: RetryOptions = { initialBackoffMs: 1, maxBackoffMs: 2, deadlineMs: 5000 };

    it('retries retriable errors until success, telling onRetry each time', async () => {
      const f = failing([makeError('UNAVAILABLE', 'down'), makeError('TIMEOUT', 'slow'), makeError('BUSY', 'busy')]);
      const seen: string[] = [];
      const r = await withRetry(f.fn, fast, (e, attempt) => seen.push(`${attempt}:${e.errorName}`), noGiveUp);
      expect(r).to.equal('ok');
      expect(f.attempts).to.deep.equal([0, 1, 2, 3]);
      expect(seen).to.deep.equal(['0:UNAVAILABLE', '1:TIMEOUT', '2:BUSY']);
    });

    it('FENCED surfaces at once, as the same error, and is never retried', async () => {
      const fenced = new FencedError('epoch 9 promised', { promisedEpoch: 9 });
      const f = failing([fenced]);
      let retries = 0;
      const r = await outcome(withRetry(f.fn, fast, () => retries++, noGiveUp));
      expect(r.error).to.equal(fenced);
      expect([f.attempts.length, retries]).to.deep.equal([1, 0]);
    });

    it('every final error code surfaces after one attempt', async () => {
      const finals = ERROR_NAMES.filter((n) => !isRetriable(n));
      expect(finals).to.include.members(['FENCED', 'OUT_OF_SYNC', 'INVALID_ARGUMENT', 'CORRUPT']);
      for (const name of finals) {
        const f = failing([makeError(name, name)]);
        const r = await outcome(withRetry(f.fn, fast, () => {}, noGiveUp));
        expect((r.error as QjmError).errorName, name).to.equal(name);
        expect(f.attempts, name).to.deep.equal([0]);
      }
    });

    it('an error that is not a QjmError (a bug) is not retried', async () => {
      const f = failing([new TypeError('x is undefined')]);
      const r = await outcome(withRetry(f.fn, fast, () => {}, noGiveUp));
      expect(r.error).to.be.instanceOf(TypeError);
      expect(f.attempts).to.have.length(1);
    });

    it('past the deadline onGiveUp gets the last error and the time spent, and its error is thrown', async () => {
      const o: RetryOptions = { initialBackoffMs: 20, maxBackoffMs: 20, deadlineMs: 150 };
      let n = 0;
      const fn = async () => {
        throw makeError('UNAVAILABLE', `attempt ${n++}`);
      };
      const gaveUp: { last: string; elapsedMs: number }[] = [];
      const r = await outcome(
        withRetry(
          fn,
          o,
          () => {},
          (last, elapsedMs) => {
            gaveUp.push({ last: last.message, elapsedMs });
            return makeError('QUORUM_UNAVAILABLE', 'gave up');
          },
        ),
      );
      expect((r.error as QjmError).message).to.equal('gave up');
      expect(gaveUp).to.have.length(1);
      expect(gaveUp[0]!.last, 'the last attempt').to.equal(`attempt ${n - 1}`);
      // It gives up when the next sleep would cross the deadline: not before deadline - maxBackoff.
      expect(gaveUp[0]!.elapsedMs).to.be.at.least(150 - 20);
      expect(r.ms).to.be.lessThan(150 + 500);
      expect(n).to.be.greaterThan(2);
    });

    it('onBackoff hears each wait with the error and the time left, but not a redirect followed at once', async () => {
      const o: RetryOptions = { initialBackoffMs: 1, maxBackoffMs: 2, deadlineMs: 5000 };
      const f = failing([
        new NotLeaderError('not me', { leaderAddress: 'b:1' }),
        makeError('UNAVAILABLE', 'a:1: ECONNREFUSED'),
        makeError('BUSY', 'busy'),
      ]);
      const heard: { error: string; remainingMs: number }[] = [];
      const r = await withRetry(
        f.fn,
        o,
        () => {},
        noGiveUp,
        (e, remainingMs) => heard.push({ error: e.errorName, remainingMs }),
      );
      expect(r).to.equal('ok');
      expect(heard.map((h) => h.error)).to.deep.equal(['UNAVAILABLE', 'BUSY']);
      for (const h of heard) expect(h.remainingMs).to.be.within(4000, 5000);
      expect(heard[1]!.remainingMs).to.be.at.most(heard[0]!.remainingMs);
    });

    describe('NOT_LEADER', () => {
      // A 400 ms backoff: any sleep takes at least 200 ms.
      const slow: RetryOptions = { initialBackoffMs: 400, maxBackoffMs: 400, deadlineMs: 10_000 };
      const redirect = () => new NotLeaderError('not me', { leaderAddress: 'b:1' });

      it('naming the leader: the first attempts retry at once, without sleeping', async () => {
        const f = failing([redirect(), redirect(), redirect(), redirect()]);
        const r = await outcome(withRetry(f.fn, slow, () => {}, noGiveUp));
        expect(r.value).to.equal('ok');
        expect(f.attempts).to.have.length(5);
        expect(r.ms).to.be.lessThan(150);
      });

      it('naming the leader, again and again: from the fifth attempt on it backs off', async () => {
        const f = failing([redirect(), redirect(), redirect(), redirect(), redirect()]);
        const r = await outcome(withRetry(f.fn, slow, () => {}, noGiveUp));
        expect(r.value).to.equal('ok');
        expect(r.ms).to.be.at.least(190);
      });

      it('without a leader address: backs off', async () => {
        const f = failing([new NotLeaderError('no leader known')]);
        const r = await outcome(withRetry(f.fn, slow, () => {}, noGiveUp));
        expect(r.value).to.equal('ok');
        expect(r.ms).to.be.at.least(190);
      });
    });
  });
});
