// The scrubber: re-reads in the background, at a bounded rate, what a node keeps but rarely reads (closed Raft
// log segments, finalized journal segments, snapshots) and checks every CRC, so rot is found before the read
// that needs it (a follower catching up, the reader of a failover). What it reads is a list of items fixed
// when a pass starts (scrub-items.ts); an item that goes away meanwhile (compacted, purged, pruned) is skipped.
//
// Bounds: one step reads about chunkBytes; steps are spaced so the pass reads at most bytesPerS, and a sixteenth
// of that while the node writes its log (a write within the last second); a step whose timer fired late (the event loop busy with foreground
// work) doubles the pause before the next: the scrubber yields to writes and reads and catches up when they
// quieten. A pass starts intervalMs after the
// previous one started (at once when it took longer): a full pass takes the data's size / bytesPerS.

import { AssertionError } from '../../src/assert.js';
import type { ScrubPassJson } from '../../src/integrity.js';
import type { Logger } from '../../src/logger.js';

/** What kind of file a scrub step reads. */
export type ScrubKind = 'log' | 'segment' | 'snapshot';

/** One file (or one snapshot) a pass checks, step by step. */
export interface ScrubItem {
  kind: ScrubKind;
  /** The file (for a snapshot, its directory) as the damage record names it. */
  file: string;
  /** What the damage would cover: an index range, a txid range, a snapshot index. */
  range: string;
  /**
   * Reads and checks the next part (about maxBytes): the bytes read and whether the item is done; null when
   * the item is gone (not damage). Throws on damage: a CRC that does not match, a read that fails.
   */
  step(maxBytes: number): { bytes: number; done: boolean } | null;
}

/** Damage a scrub step found. */
export interface ScrubFinding {
  kind: ScrubKind;
  file: string;
  range: string;
  /** Where in the file, when the check knows. */
  offsetBytes: number | null;
  reason: string;
}

export interface ScrubClock {
  now(): number;
  /** Runs fn after ms; the returned function cancels it. */
  schedule(ms: number, fn: () => void): () => void;
}

export interface ScrubberOptions {
  /** Bytes read per second at most; 0 turns the scrubber off. */
  bytesPerS: number;
  /** A pass starts this long after the previous one started (or as soon as it ends, when it took longer). */
  intervalMs: number;
  /** Bytes one step reads (about). */
  chunkBytes: number;
  clock: ScrubClock;
  /** The items of a new pass, in the order they are checked. */
  items(): ScrubItem[];
  onFinding(f: ScrubFinding): void;
  /** Bytes checked (metrics). */
  onBytes?(kind: ScrubKind, bytes: number): void;
  onPass?(p: ScrubPass): void;
  /**
   * A count that grows with the node's foreground I/O (its log writes): while it moved within the last second,
   * the node is busy and the scrubber reads at a sixteenth of its rate (it still progresses, so a pass ends).
   */
  foregroundWork?(): number;
  logger: Logger;
}

/** One pass (as /status shows it, src/integrity.ts). */
export type ScrubPass = ScrubPassJson;

/** A step whose timer fired this late found the event loop busy (writes, reads): the scrubber backs off. */
const LATE_MS = 5;
const MAX_BACKOFF_MS = 1000;
/** While the node is busy with foreground I/O, the scrubber reads this many times slower. */
const BUSY_SLOWDOWN = 16;
/** The node counts as busy this long after its foreground work last moved (a writer's batches come seconds apart at most). */
const BUSY_WINDOW_MS = 1000;
/** A pass longer than this misses the daily full pass: said once per pass. */
const DAY_MS = 86_400_000;

export class Scrubber {
  private pass: (ScrubPass & { list: ScrubItem[] }) | null = null;
  private lastPassValue: ScrubPass | null = null;
  private passes = 0;
  private bytesTotal = 0;
  private nextPassAtMs = 0;
  private backoffMs = 0;
  private cancel: (() => void) | null = null;
  private running = false;
  private warnedSlow = false;
  /** An operator asked for a pass now: the next one starts as soon as the current one ends. */
  private urgent = false;
  /** The foreground work count at the last step (foregroundWork), and when it last moved. */
  private lastWork = 0;
  private lastWorkAtMs = -Infinity;
  /** A verification pass running (verifyNow), and who waits for it. */
  private verifying: { findings: ScrubFinding[]; waiters: ((f: ScrubFinding[]) => void)[] } | null = null;

  constructor(private readonly o: ScrubberOptions) {}

  get enabled(): boolean {
    return this.o.bytesPerS > 0;
  }

  start(): void {
    if (!this.enabled || this.running) return;
    this.running = true;
    this.nextPassAtMs = this.o.clock.now();
    this.later(0);
  }

  stop(): void {
    this.running = false;
    this.cancel?.();
    this.cancel = null;
  }

  /** Starts a pass now (an operator's `qjm check --repair`), or at the end of the one running. */
  scrubNow(): void {
    if (!this.running) return;
    this.urgent = true;
    if (this.pass === null) this.later(0);
  }

  status(): { enabled: boolean; passes: number; bytes: number; current: ScrubPass | null; last: ScrubPass | null } {
    const strip = (p: (ScrubPass & { list?: unknown }) | null): ScrubPass | null => {
      if (!p) return null;
      const { list: _list, ...rest } = p;
      return rest;
    };
    return {
      enabled: this.enabled,
      passes: this.passes,
      bytes: this.bytesTotal,
      current: strip(this.pass),
      last: this.lastPassValue,
    };
  }

  private later(ms: number): void {
    this.cancel?.();
    const due = this.o.clock.now() + ms;
    this.cancel = this.o.clock.schedule(ms, () => {
      this.cancel = null;
      if (!this.running) return;
      const late = this.o.clock.now() - due;
      this.backoffMs = late > LATE_MS ? Math.min(MAX_BACKOFF_MS, Math.max(10, this.backoffMs * 2)) : this.backoffMs / 2;
      this.step();
    });
  }

  private step(): void {
    const now = this.o.clock.now();
    if (this.pass === null) {
      if (this.urgent) this.nextPassAtMs = now;
      this.urgent = false;
      if (now < this.nextPassAtMs) return this.later(this.nextPassAtMs - now);
      const list = this.o.items();
      this.pass = { startedMs: now, endedMs: null, items: list.length, itemsDone: 0, bytes: 0, findings: 0, list };
      this.warnedSlow = false;
    }
    const pass = this.pass;
    const item = pass.list[pass.itemsDone];
    if (!item) return this.endPass(pass, now);
    const { bytes } = this.check(pass, item);
    if (!this.warnedSlow && now - pass.startedMs > DAY_MS) {
      this.warnedSlow = true;
      this.o.logger.warn(
        { bytesPerS: this.o.bytesPerS, passBytes: pass.bytes },
        'a scrub pass is taking longer than a day: raise scrubBytesPerS so every byte is checked daily',
      );
    }
    const work = this.o.foregroundWork?.() ?? 0;
    if (work !== this.lastWork) this.lastWorkAtMs = now;
    this.lastWork = work;
    const busy = now - this.lastWorkAtMs < BUSY_WINDOW_MS;
    this.later(((bytes * (busy ? BUSY_SLOWDOWN : 1)) / this.o.bytesPerS) * 1000 + this.backoffMs);
  }

  /** Runs one step of `item`; returns the bytes it read, and what it found. Damage is reported, and the item done. */
  private check(pass: ScrubPass, item: ScrubItem): { bytes: number; finding: ScrubFinding | null } {
    let r: { bytes: number; done: boolean } | null;
    try {
      r = item.step(this.o.chunkBytes);
    } catch (e) {
      if (e instanceof AssertionError) throw e;
      pass.itemsDone++;
      pass.findings++;
      const err = e as Error & { file?: unknown; offset?: unknown; reason?: unknown };
      const finding: ScrubFinding = {
        kind: item.kind,
        file: typeof err.file === 'string' ? err.file : item.file,
        range: item.range,
        offsetBytes: typeof err.offset === 'number' ? err.offset : null,
        reason: typeof err.reason === 'string' ? err.reason : err.message,
      };
      this.o.logger.warn({ ...finding }, 'scrub found damage');
      this.o.onFinding(finding);
      return { bytes: 0, finding };
    }
    if (r === null) {
      pass.itemsDone++;
      return { bytes: 0, finding: null };
    }
    if (r.done) pass.itemsDone++;
    pass.bytes += r.bytes;
    this.bytesTotal += r.bytes;
    this.o.onBytes?.(item.kind, r.bytes);
    return { bytes: r.bytes, finding: null };
  }

  /**
   * A pass now, at full speed but one chunk per turn of the event loop (`qjm check`'s verification: every
   * byte read now, not as of the last pass); done with what it found. A request while one runs joins it.
   */
  verifyNow(done: (findings: ScrubFinding[]) => void): void {
    if (this.verifying) {
      this.verifying.waiters.push(done);
      return;
    }
    const list = this.o.items();
    const pass: ScrubPass = {
      startedMs: this.o.clock.now(),
      endedMs: null,
      items: list.length,
      itemsDone: 0,
      bytes: 0,
      findings: 0,
    };
    const v = { findings: [] as ScrubFinding[], waiters: [done] };
    this.verifying = v;
    const step = () => {
      const item = list[pass.itemsDone];
      if (!item) {
        this.verifying = null;
        for (const w of v.waiters) w(v.findings);
        return;
      }
      const { finding } = this.check(pass, item);
      if (finding) v.findings.push(finding);
      this.o.clock.schedule(0, step);
    };
    step();
  }

  private endPass(pass: ScrubPass & { list: ScrubItem[] }, now: number): void {
    const { list: _list, ...done } = pass;
    done.endedMs = now;
    this.pass = null;
    this.passes++;
    this.lastPassValue = done;
    this.o.onPass?.(done);
    this.o.logger.info(
      { items: done.items, bytes: done.bytes, findings: done.findings, ms: Math.round(now - done.startedMs) },
      'scrub pass done',
    );
    this.nextPassAtMs = this.urgent ? now : Math.max(this.nextPassAtMs, done.startedMs + this.o.intervalMs);
    this.later(Math.max(0, this.nextPassAtMs - now));
  }
}
