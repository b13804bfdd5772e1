// The retention floor: how far back a purge may reach. A purge keeps the newest finalized segment (a standby
// or a recovering writer still needs it), the last minTxnsRetained txids, and whatever a reader read within
// the last readRetentionWindowMs on this node — unless it is forced. Node-local knowledge (readers are seen
// by the node that serves them), so the leader computes the floor when it proposes a purge and writes it
// into the command: every replica then applies the same floor.

import type { JournalStateData } from '../../src/journal-state.js';

/** At most this many readers are remembered per journal; the one seen longest ago makes room. */
const MAX_READERS_PER_JOURNAL = 64;
/** At most this many journals are tracked (the node's own cap on journals is far lower). */
const MAX_JOURNALS = 4096;

export interface RetentionFloor {
  /** A purge keeps every segment ending at or after this txid (0: nothing holds it back). */
  fromTxId: number;
  /** Why, for the operator: the rule that set fromTxId. */
  reason: string;
}

interface SeenRead {
  fromTxId: number;
  atMs: number;
}

/** Where readers of each journal read from recently: one entry per reader (its identity and address). */
export class RecentReads {
  private readonly byJournal = new Map<string, Map<string, SeenRead>>();

  constructor(private readonly nowMs: () => number = Date.now) {}

  note(jid: string, reader: string, fromTxId: number): void {
    let readers = this.byJournal.get(jid);
    if (!readers) {
      if (this.byJournal.size >= MAX_JOURNALS) this.byJournal.delete(this.byJournal.keys().next().value!);
      readers = new Map();
      this.byJournal.set(jid, readers);
    }
    readers.delete(reader); // re-inserted last: the map stays in the order readers were last seen
    if (readers.size >= MAX_READERS_PER_JOURNAL) readers.delete(readers.keys().next().value!);
    readers.set(reader, { fromTxId, atMs: this.nowMs() });
  }

  /** The lowest txid a reader of jid read from within the window, with who; null if none did. */
  lowest(jid: string, windowMs: number): { fromTxId: number; reader: string; agoMs: number } | null {
    const now = this.nowMs();
    let best: { fromTxId: number; reader: string; agoMs: number } | null = null;
    for (const [reader, r] of this.byJournal.get(jid) ?? []) {
      if (now - r.atMs > windowMs) continue;
      if (!best || r.fromTxId < best.fromTxId) best = { fromTxId: r.fromTxId, reader, agoMs: now - r.atMs };
    }
    return best;
  }
}

/** The floor for a journal in its current state: the lowest of the rules that apply. */
export function retentionFloor(
  j: JournalStateData,
  options: { minTxnsRetained: number; readWindowMs: number; reads: RecentReads },
): RetentionFloor {
  const candidates: RetentionFloor[] = [];
  const finalized = j.segments.filter((s) => !s.inProgress);
  const newest = finalized[finalized.length - 1];
  if (newest) {
    candidates.push({
      fromTxId: newest.firstTxId,
      reason: `the newest finalized segment (${newest.firstTxId}-${newest.lastTxId}) always stays`,
    });
  }
  if (options.minTxnsRetained > 0 && j.lastTxId > 0) {
    candidates.push({
      fromTxId: Math.max(1, j.lastTxId - options.minTxnsRetained + 1),
      reason: `minTxnsRetained: the last ${options.minTxnsRetained} txids stay (last txid ${j.lastTxId})`,
    });
  }
  const read = options.reads.lowest(j.jid, options.readWindowMs);
  if (read) {
    candidates.push({
      fromTxId: read.fromTxId,
      reason: `a reader (${read.reader}) read from txid ${read.fromTxId} ${Math.round(read.agoMs / 1000)} s ago`,
    });
  }
  if (candidates.length === 0) return { fromTxId: 0, reason: 'nothing holds the journal back' };
  return candidates.reduce((a, b) => (b.fromTxId < a.fromTxId ? b : a));
}
