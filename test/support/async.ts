// Waiting in tests: waitFor (src/wait-for.ts) polls a condition until a deadline instead of a fixed sleep,
// and deferred() gives a promise the test
// settles by hand (a fake server's answer, held until the test releases it), watch() to look at a promise's
// outcome without awaiting it.

export { waitFor } from '../../src/wait-for.js';
export type { WaitForOptions } from '../../src/wait-for.js';

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
