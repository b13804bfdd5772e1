// A deterministic timer queue for the simulator: events ordered by (time, insertion sequence).

export interface SimEvent {
  at: number;
  seq: number;
  run: () => void;
}

export class EventQueue {
  private heap: SimEvent[] = [];
  private seq = 0;
  now = 0;

  schedule(delayMs: number, run: () => void): void {
    const ev: SimEvent = { at: this.now + Math.max(0, delayMs), seq: this.seq++, run };
    const h = this.heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (this.less(h[p]!, ev)) break;
      h[i] = h[p]!;
      i = p;
    }
    h[i] = ev;
  }

  get size(): number {
    return this.heap.length;
  }

  /** Runs the next event; false when none is due at or before `until`. */
  step(until: number): boolean {
    const h = this.heap;
    if (h.length === 0 || h[0]!.at > until) return false;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        let cand = last;
        if (l < h.length && this.less(h[l]!, cand)) {
          m = l;
          cand = h[l]!;
        }
        if (r < h.length && this.less(h[r]!, cand)) {
          m = r;
          cand = h[r]!;
        }
        if (m === i) break;
        h[i] = h[m]!;
        i = m;
      }
      h[i] = last;
    }
    this.now = top.at;
    top.run();
    return true;
  }

  private less(a: SimEvent, b: SimEvent): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }
}
