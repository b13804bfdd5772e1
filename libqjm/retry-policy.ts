// The one retry policy of libqjm: capped exponential backoff with jitter, within an overall deadline.
// Only retriable errors are retried; FENCED and every other final error surface at once. An observer hears
// of each backoff, so a caller can say what it is waiting for (qjm prints it) instead of waiting in silence.

import { QjmError } from '../src/errors.js';

export interface RetryOptions {
  /** First backoff, ms. */
  initialBackoffMs: number;
  /** Backoff cap, ms. */
  maxBackoffMs: number;
  /** Give up after this long in total, ms. */
  deadlineMs: number;
}

// A 100 ms cap: during a failover the client finds the new leader within about one retry of its election.
export const DEFAULT_RETRY: RetryOptions = { initialBackoffMs: 10, maxBackoffMs: 100, deadlineMs: 20_000 };

export function backoffMs(attempt: number, options: RetryOptions): number {
  const base = Math.min(options.maxBackoffMs, options.initialBackoffMs * 2 ** Math.min(attempt, 20));
  // Full jitter in [base/2, base): clients that failed together do not retry together.
  return base / 2 + Math.random() * (base / 2);
}

/** Told before each backoff: the error being retried, and how long retrying goes on (ms) before giving up. */
export type RetryObserver = (e: QjmError, remainingMs: number) => void;

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * Runs fn until it succeeds, fails with a final error, or the deadline passes. `onRetry` sees each retriable
 * failure (to refresh routes). When the deadline passes the last error is returned through `onGiveUp`.
 * `onBackoff` hears of each wait before a retry (not of a redirect followed at once).
 */
export async function withRetry<T>(
  fn: (attempt: number) => Promise<T>,
  options: RetryOptions,
  onRetry: (e: QjmError, attempt: number) => void,
  onGiveUp: (last: QjmError, elapsedMs: number) => QjmError,
  onBackoff?: RetryObserver,
): Promise<T> {
  const t0 = Date.now();
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (e) {
      if (!(e instanceof QjmError) || !e.retriable) throw e;
      onRetry(e, attempt);
      const elapsed = Date.now() - t0;
      const wait = backoffMs(attempt, options);
      if (elapsed + wait > options.deadlineMs) throw onGiveUp(e, elapsed);
      // A redirect to a named leader is worth trying at once.
      if (!(e.errorName === 'NOT_LEADER' && e.details.leaderAddress) || attempt > 3) {
        onBackoff?.(e, options.deadlineMs - elapsed);
        await sleep(wait);
      }
    }
  }
}
