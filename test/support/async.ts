// Waiting in tests: waitFor polls a condition until a deadline (instead of a fixed sleep that is either
// too short on a loaded machine or wastes time on an idle one), and deferred() gives a promise the test
// settles by hand (a fake server's answer, held until the test releases it), watch() to look at a promise's
// outcome without awaiting it.

export interface WaitForOptions {
  /** Give up after this long, ms. */
  timeoutMs?: number;
  /** Between two polls, ms. */
  intervalMs?: number;
  /** What is waited for, as the failure message names it ("n1 answers /status"). */
  what: string;
}

/**
 * Polls `condition` (sync or async) until it returns a value other than false, null or undefined, and
 * returns that value. Past the deadline it throws an error naming what it waited for. An exception from the
 * condition is not "not yet": it fails the wait at once.
 */
export async function waitFor<T>(condition: () => T | Promise<T>, o: WaitForOptions): Promise<Exclude<T, false | null | undefined>> {
  const timeoutMs = o.timeoutMs ?? 10_000;
  const intervalMs = o.intervalMs ?? 10;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await condition();
    if (v !== false && v !== null && v !== undefined) return v as Exclude<T, false | null | undefined>;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${o.what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

export interface Deferred<T> {
  promise: Promise<T>;
  resolve(v: T): void;
  reject(e: unknown): void;
}

export function deferred<T>(): Deferred<T> {
  let resolve!: (v: T) => void;
  let reject!: (e: unknown) => void;
  const promise = new Promise<T>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

export type Outcome<T> = { resolved: T } | { rejected: unknown } | 'pending';

/** Follows a promise from its creation on, so the test can look at its outcome (or its absence) later. */
export function watch<T>(p: Promise<T>): { readonly outcome: Outcome<T> } {
  const w: { outcome: Outcome<T> } = { outcome: 'pending' };
  p.then(
    (v) => (w.outcome = { resolved: v }),
    (e: unknown) => (w.outcome = { rejected: e }),
  );
  return w;
}

/** Lets every queued microtask and already-due I/O callback run (one turn of the event loop). */
export function nextTurn(): Promise<void> {
  return new Promise((r) => setImmediate(r));
}
