// What a node knows of damage to its own storage: every finding (of the scrubber, of a read that hit a bad
// CRC, of start-up recovery), what became of it (repairing, repaired, unrepairable and why), each change
// logged and counted. /status shows the open records and the most recent closed ones; a record closes only by
// saying so (repaired, with where the good copy came from), never by disappearing.

import type { Logger } from '../../src/logger.js';
import type { ScrubFinding, ScrubKind } from './scrubber.js';

export type DamageState = 'damaged' | 'repairing' | 'repaired' | 'unrepairable';

export interface DamageRecord extends ScrubFinding {
  id: number;
  foundBy: 'scrub' | 'read' | 'start-up';
  foundAtMs: number;
  state: DamageState;
  /** The last thing said about it: where the repair took its copy from, or why it stops short. */
  note: string | null;
  changedAtMs: number;
}

export interface DamageHooks {
  /** A finding that was not already open. */
  onFound?(r: DamageRecord): void;
  onChange?(r: DamageRecord, from: DamageState): void;
}

/** Closed records kept for /status (open ones are all kept: they are bounded by the files a node has). */
const CLOSED_KEPT = 32;

export class DamageRegistry {
  private readonly open = new Map<string, DamageRecord>();
  private readonly closed: DamageRecord[] = [];
  private nextId = 1;
  private readonly hooks: DamageHooks[] = [];

  constructor(
    private readonly logger: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Adds hooks (metrics, repair): each is told of every finding and change from now on. */
  listen(h: DamageHooks): void {
    this.hooks.push(h);
  }

  /** Records a finding; one already open for the same file is returned as it is (found once, repaired once). */
  report(f: ScrubFinding, foundBy: DamageRecord['foundBy']): DamageRecord {
    const key = `${f.kind}:${f.file}`;
    const known = this.open.get(key);
    if (known) return known;
    const t = this.now();
    const r: DamageRecord = {
      ...f,
      id: this.nextId++,
      foundBy,
      foundAtMs: t,
      state: 'damaged',
      note: null,
      changedAtMs: t,
    };
    this.open.set(key, r);
    this.logger.warn({ ...r }, `damaged ${f.kind} found (${foundBy}): ${f.file}`);
    for (const h of this.hooks) h.onFound?.(r);
    return r;
  }

  /** Moves a record on, with what is to be said about it; repaired and unrepairable are said in the log as warnings. */
  update(r: DamageRecord, state: DamageState, note: string): void {
    const from = r.state;
    if (from === state && r.note === note) return;
    r.state = state;
    r.note = note;
    r.changedAtMs = this.now();
    const fields = { id: r.id, kind: r.kind, file: r.file, range: r.range, state, note };
    if (state === 'repairing') this.logger.info(fields, `repairing damaged ${r.kind}: ${r.file}`);
    else this.logger.warn(fields, `damaged ${r.kind} ${state}: ${r.file}`);
    if (state === 'repaired') {
      this.open.delete(`${r.kind}:${r.file}`);
      this.closed.push(r);
      if (this.closed.length > CLOSED_KEPT) this.closed.shift();
    }
    for (const h of this.hooks) h.onChange?.(r, from);
  }

  /** The open record of this file, if any. */
  find(kind: ScrubKind, file: string): DamageRecord | undefined {
    return this.open.get(`${kind}:${file}`);
  }

  openRecords(): DamageRecord[] {
    return [...this.open.values()];
  }

  /** Open records, then the most recent closed ones (newest last). */
  list(): DamageRecord[] {
    return [...this.open.values(), ...this.closed].map((r) => ({ ...r }));
  }

  /** Open records per kind (a gauge). */
  openCount(kind: ScrubKind): number {
    let n = 0;
    for (const r of this.open.values()) if (r.kind === kind) n++;
    return n;
  }
}
