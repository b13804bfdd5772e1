// What the replica does when storage runs short of file descriptors (env.ts, isResourceShortage): not stop
// for good, as for a failing disk, but try the interrupted step again later, from its clock's ticks, after a
// backoff that doubles while the shortage lasts (a connection flood) and starts over once a step succeeds.
// One pending step per concern (the persist queue, applying, snapshots): each concern does one step at a time.

/** The first wait after a shortage, and the most it grows to (the clock's ticks run the retries). */
export const SHORTAGE_FIRST_RETRY_MS = 50;
export const SHORTAGE_MAX_RETRY_MS = 1000;

export class ShortageRetry {
  private run: (() => void) | null = null;
  private atMs = 0;
  private attempts = 0;

  constructor(
    private readonly firstMs: number,
    private readonly maxMs: number,
  ) {}

  /** `step` runs again once due; returns the wait in ms. */
  later(nowMs: number, step: () => void): number {
    const waitMs = Math.min(this.maxMs, this.firstMs * 2 ** Math.min(this.attempts++, 20));
    this.run = step;
    this.atMs = nowMs + waitMs;
    return waitMs;
  }

  /** Runs the pending step if it is due. */
  runIfDue(nowMs: number): void {
    if (this.run === null || nowMs < this.atMs) return;
    const step = this.run;
    this.run = null;
    step();
  }

  /** The step went through: the next shortage starts from the first backoff again. */
  succeeded(): void {
    this.attempts = 0;
  }

  get waiting(): boolean {
    return this.run !== null;
  }
}
