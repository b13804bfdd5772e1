// Waiting for a condition with a deadline, instead of a fixed sleep that is either too short on a loaded
// machine or wastes time on an idle one: the local cluster launcher, the demo and the tests poll with it.

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
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  options: WaitForOptions,
): Promise<Exclude<T, false | null | undefined>> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 10;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await condition();
    if (v !== false && v !== null && v !== undefined) return v as Exclude<T, false | null | undefined>;
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for: ${options.what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
