// What clients of a replica wait on, each with a deadline: proposals (resolved with the state machine's
// result when their entry applies at the same index and term), ReadIndex reads (by request context), and
// waits for an applied index. The replica feeds it applies, read states and ticks; it owns no Raft state.
// Bounded: proposals by the core's uncommitted bytes (a refused proposal is never tracked); reads and the
// applied-index waits they become, together, by maxPendingReads (addRead refuses beyond).

import type { ErrorName } from '../errors.js';
import { QjmError } from '../errors.js';
import { bytesToHex } from '../raft/bytes.js';
import type { Entry } from '../raft/types.js';

export type Callback<T> = (err: QjmError | null, value?: T) => void;

export interface ProposalResult<R> {
  index: number;
  term: number;
  value: R;
}

interface PendingProposal<R> {
  term: number;
  deadlineMs: number;
  cb: Callback<ProposalResult<R>>;
}

interface AppliedWaiter {
  index: number;
  deadlineMs: number;
  cb: Callback<number>;
}

export function qjmError(name: ErrorName, message: string, details: Record<string, unknown> = {}): QjmError {
  return new QjmError(name, message, details);
}

export class ClientWaits<R> {
  private readonly proposals = new Map<number, PendingProposal<R>[]>();
  private proposalCountValue = 0;
  private readonly reads = new Map<string, { deadlineMs: number; cb: Callback<number> }>();
  /** A read's context: this replica's salt (so a restarted node's contexts differ) and a sequence number. */
  private readSeq = 0;
  /** Sorted by index, so applying releases a prefix. */
  private waiters: AppliedWaiter[] = [];

  constructor(
    private readonly options: { proposalTimeoutMs: number; readTimeoutMs: number; maxPendingReads: number },
    private readonly readSalt: number,
  ) {}

  get proposalCount(): number {
    return this.proposalCountValue;
  }

  /** Reads waiting for the leader's confirmation. */
  get readCount(): number {
    return this.reads.size;
  }

  // ---------------------------------------------------------------- proposals

  trackProposal(index: number, term: number, nowMs: number, cb: Callback<ProposalResult<R>>): void {
    const p: PendingProposal<R> = { term, deadlineMs: nowMs + this.options.proposalTimeoutMs, cb };
    const list = this.proposals.get(index);
    if (list) list.push(p);
    else this.proposals.set(index, [p]);
    this.proposalCountValue++;
  }

  private take(index: number): PendingProposal<R>[] {
    const list = this.proposals.get(index);
    if (!list) return [];
    this.proposals.delete(index);
    this.proposalCountValue -= list.length;
    return list;
  }

  /** A command entry applied with `value`: its proposer learns the result, unless a later leader replaced it. */
  applied(e: Entry, value: R): void {
    for (const p of this.take(e.index)) {
      if (p.term === e.term) p.cb(null, { index: e.index, term: e.term, value });
      else p.cb(qjmError('DROPPED', `entry ${e.index} was replaced by a later leader: not applied`));
    }
  }

  /** An entry that is not a command (a no-op, a configuration change) applied where a proposal waited. */
  replaced(e: Entry): void {
    for (const p of this.take(e.index))
      p.cb(qjmError('DROPPED', `entry ${e.index} was replaced by a later leader: not applied`));
  }

  /** Fails proposals at or below `index` (a snapshot replaced them before they applied here). */
  failProposalsUpTo(index: number, e: QjmError): void {
    for (const i of [...this.proposals.keys()]) if (i <= index) for (const p of this.take(i)) p.cb(e);
  }

  failProposals(e: QjmError): void {
    for (const i of [...this.proposals.keys()]) for (const p of this.take(i)) p.cb(e);
  }

  // ---------------------------------------------------------------- reads

  /** Registers a ReadIndex read; returns the context the core carries it under, or null at the bound. */
  addRead(nowMs: number, cb: Callback<number>): Uint8Array | null {
    // Confirmed reads become applied-index waits: the bound counts both.
    if (this.reads.size + this.waiters.length >= this.options.maxPendingReads) return null;
    const context = new Uint8Array(12);
    const view = new DataView(context.buffer);
    view.setUint32(0, this.readSalt);
    view.setFloat64(4, ++this.readSeq);
    this.reads.set(bytesToHex(context), { deadlineMs: nowMs + this.options.readTimeoutMs, cb });
    return context;
  }

  /** The read with this context, removed; with its remaining time. */
  takeRead(context: Uint8Array, nowMs: number): { cb: Callback<number>; remainingMs: number } | undefined {
    const key = bytesToHex(context);
    const r = this.reads.get(key);
    if (!r) return undefined;
    this.reads.delete(key);
    return { cb: r.cb, remainingMs: Math.max(0, r.deadlineMs - nowMs) };
  }

  // ---------------------------------------------------------------- applied-index waits

  waitApplied(index: number, deadlineMs: number, cb: Callback<number>): void {
    const w: AppliedWaiter = { index, deadlineMs, cb };
    let i = this.waiters.length;
    while (i > 0 && this.waiters[i - 1]!.index > index) i--;
    this.waiters.splice(i, 0, w);
  }

  releaseApplied(applied: number): void {
    let n = 0;
    while (n < this.waiters.length && this.waiters[n]!.index <= applied) n++;
    if (n === 0) return;
    for (const w of this.waiters.splice(0, n)) w.cb(null, applied);
  }

  // ---------------------------------------------------------------- deadlines and failure

  expire(nowMs: number, applied: number): void {
    for (const [index, list] of this.proposals) {
      const keep = list.filter((p) => p.deadlineMs > nowMs);
      if (keep.length === list.length) continue;
      for (const p of list)
        if (p.deadlineMs <= nowMs)
          p.cb(
            qjmError('TIMEOUT', `entry ${index} not applied within ${this.options.proposalTimeoutMs} ms`, {
              unknownOutcome: true,
            }),
          );
      this.proposalCountValue -= list.length - keep.length;
      if (keep.length > 0) this.proposals.set(index, keep);
      else this.proposals.delete(index);
    }
    for (const [key, r] of this.reads) {
      if (r.deadlineMs > nowMs) continue;
      this.reads.delete(key);
      r.cb(qjmError('TIMEOUT', 'read index not confirmed in time'));
    }
    if (this.waiters.some((w) => w.deadlineMs <= nowMs)) {
      const expired = this.waiters.filter((w) => w.deadlineMs <= nowMs);
      this.waiters = this.waiters.filter((w) => w.deadlineMs > nowMs);
      for (const w of expired) w.cb(qjmError('TIMEOUT', `index ${w.index} not applied in time (applied ${applied})`));
    }
  }

  failAll(e: QjmError): void {
    this.failProposals(e);
    const reads = [...this.reads.values()];
    this.reads.clear();
    for (const r of reads) r.cb(e);
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w.cb(e);
  }
}
