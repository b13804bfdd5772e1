// Readers waiting for txids that are not applied yet (long-polls): each waits for one journal to reach a
// txid, at most timeoutMs, and stops waiting when its client goes away. Bounded: past maxWaiters a new
// wait is refused BUSY (retriable). Adding, expiring and dropping a waiter cost O(1); a wake visits the
// waiters of that one journal.

import { QjmError } from '../../src/errors.js';

interface Waiter {
  txid: number;
  timer: NodeJS.Timeout;
  done(): void;
}

export class ReadWaiters {
  private readonly byJournal = new Map<string, Set<Waiter>>();
  private count = 0;

  constructor(private readonly maxWaiters: number) {}

  get waiting(): number {
    return this.count;
  }

  /**
   * Resolves once `wake(jid, last)` reports last >= txid, after timeoutMs, or when `signal` aborts (the client
   * left); rejects BUSY when maxWaiters already wait.
   */
  wait(jid: string, txid: number, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.resolve();
    if (this.count >= this.maxWaiters) {
      return Promise.reject(
        new QjmError(
          'BUSY',
          `${this.count} readers are already waiting on this node (maxWaitingReads); retry, or read from another node`,
        ),
      );
    }
    return new Promise<void>((resolve) => {
      let set = this.byJournal.get(jid);
      if (!set) {
        set = new Set();
        this.byJournal.set(jid, set);
      }
      const journalWaiters = set;
      const onAbort = () => w.done();
      const w: Waiter = {
        txid,
        timer: setTimeout(() => w.done(), timeoutMs),
        done: () => {
          if (!journalWaiters.delete(w)) return;
          this.count--;
          clearTimeout(w.timer);
          signal?.removeEventListener('abort', onAbort);
          if (journalWaiters.size === 0 && this.byJournal.get(jid) === journalWaiters) this.byJournal.delete(jid);
          resolve();
        },
      };
      set.add(w);
      this.count++;
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** The journal now holds txids up to `last`: the readers waiting for them go. */
  wake(jid: string, last: number): void {
    const set = this.byJournal.get(jid);
    if (!set) return;
    for (const w of [...set]) if (w.txid <= last) w.done();
  }

  /** Everyone goes (the state was replaced by a snapshot, or the node is closing). */
  wakeAll(): void {
    for (const set of [...this.byJournal.values()]) for (const w of [...set]) w.done();
  }
}
