// How the demo ends on Ctrl-C (SIGINT) or SIGTERM: the signal only flips this switch; the demo stops at its
// next step (a load loop between two bursts, the story between two steps) and then stops what it started in
// order (masters, then each JournalNode drained by SIGTERM). Nothing is killed from the signal handler.

/** Thrown at the story's next step once a signal came: the demo goes straight to stopping everything. */
export class Stopped extends Error {
  override name = 'Stopped';
  constructor(readonly signal: string) {
    super(`stopped by ${signal}`);
  }
}

export class StopSwitch {
  private readonly ac = new AbortController();
  private by: NodeJS.Signals | null = null;
  private readonly onSignal = (sig: NodeJS.Signals) => {
    // A second Ctrl-C (npm can forward the terminal's signal too) changes nothing: the stop is under way.
    if (this.by) return;
    this.by = sig;
    this.ac.abort();
  };

  constructor() {
    process.on('SIGINT', this.onSignal);
    process.on('SIGTERM', this.onSignal);
  }

  get stopped(): boolean {
    return this.by !== null;
  }

  /** The signal that stopped the demo, or null. */
  get signal(): NodeJS.Signals | null {
    return this.by;
  }

  /** Throws Stopped once a signal came. */
  check(): void {
    if (this.by) throw new Stopped(this.by);
  }

  /** Waits `ms`, or less when a signal comes meanwhile. */
  sleep(ms: number): Promise<void> {
    if (this.by) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.ac.signal.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.ac.signal.addEventListener('abort', done, { once: true });
    });
  }

  /** The signal handlers go: after the demo, SIGINT and SIGTERM do what they did before. */
  dispose(): void {
    process.off('SIGINT', this.onSignal);
    process.off('SIGTERM', this.onSignal);
  }
}
