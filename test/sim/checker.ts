// The simulator's safety checkers. They watch every apply, election, commit, acknowledgement and reset, and
// record violations of: election safety, leader completeness, state machine safety, log matching, durability
// of acknowledged writes, and the quorum rules read off the durable state the simulator can see (a leader's
// votes and every commit come from a quorum of the configuration in force, both halves of a joint one,
// learners never counted). The quorum math here is written apart from src/raft/quorum.ts on purpose: a bug
// there must not hide itself. A checker that can never fire is a defect: see outside-model.test.ts.

import type { qjournal } from '../../src/gen/proto.js';
import { EntryType } from '../../src/raft/types.js';
import type { ConfState, Entry, HardState, NodeId } from '../../src/raft/types.js';
import type { LogStorage } from '../../src/raft/log.js';

type Result = qjournal.journal.ICommandResult;

interface Committed {
  term: number;
  data: Uint8Array;
  /** The state machine's answer to it (every replica must give the same). */
  result: string;
  by: NodeId;
}

function resultKey(r: Result): string {
  return `${r.code ?? 0}/${Number(r.epoch ?? 0)}/${Number(r.lastTxid ?? 0)}/${r.message ?? ''}`;
}

/** An entry's bytes, kept as they are (entries are never modified after they are made). */
function dataKey(d: Uint8Array): Uint8Array {
  return d;
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a === b || Buffer.compare(a, b) === 0;
}

function majority(voters: readonly NodeId[], counted: (id: NodeId) => boolean): boolean {
  if (voters.length === 0) return true;
  let n = 0;
  for (const id of voters) if (counted(id)) n++;
  return 2 * n > voters.length;
}

/** A quorum of the configuration: a majority of the voters and, when joint, of the outgoing voters too. */
export function isJointQuorum(conf: ConfState, counted: (id: NodeId) => boolean): boolean {
  return conf.voters.length > 0 && majority(conf.voters, counted) && majority(conf.votersOutgoing, counted);
}

function confText(c: ConfState): string {
  return `[${c.voters.join(',')}]${c.votersOutgoing.length ? ` outgoing [${c.votersOutgoing.join(',')}]` : ''}${c.learners.length ? ` learners [${c.learners.join(',')}]` : ''}`;
}

/** What a checker may read of one node's durable state. */
export interface DurableState {
  hard: HardState;
  /** The disk holds the entry (index, term), or a snapshot that covers index. */
  holds(index: number, term: number): boolean;
}

export class Checker {
  readonly violations: string[] = [];
  /** Every command entry applied anywhere: index -> what was applied (all nodes must agree). */
  private readonly committed = new Map<number, Committed>();
  private readonly leaders = new Map<number, NodeId>();
  /**
   * The term of the leader whose commit first covered each index. Leader completeness binds only the leaders of
   * later terms: a stale leader of a lower term may still win its election after a higher term committed more
   * (its voters' answers were in flight), and it can commit nothing (the quorum has moved on).
   */
  private readonly firstCommitTerm = new Map<number, number>();
  private commitMarkedTo = 0;
  /** Writes acknowledged to a client: index -> data. */
  readonly acked = new Map<number, { term: number; data: Uint8Array }>();
  /** The highest index acknowledged to a client (what a linearizable read started now must cover). */
  maxAckedIndex = 0;
  /** Hears of each command index the first time any replica applies it (the journal checkers' model). */
  onFirstApply: (node: NodeId, e: Entry, result: Result) => void = () => {};
  /** Hears of a reset of the peers: which (index, term) stay committed from now on. */
  onRebase: (survives: (index: number, term: number) => boolean) => void = () => {};
  /** What a survivor had committed when it was reset: each must stay committed as it was. */
  private readonly keptByReset: { index: number; term: number; data: Uint8Array; by: NodeId; byFiat: boolean }[] = [];
  /** Acknowledged writes that only the lost majority held (a reset's price, reported, not a violation). */
  lostAckedByReset = 0;
  maxCommittedIndex = 0;
  /** How often each quorum rule was checked (a checker that never runs proves nothing). */
  readonly counts = { elections: 0, commits: 0, jointCommits: 0, promotions: 0, resets: 0 };

  constructor(private readonly now: () => number) {}

  violate(msg: string): void {
    if (this.violations.length < 50) this.violations.push(`t=${this.now().toFixed(1)}ms ${msg}`);
  }

  /** Every replica applies the same command at each index, and its state machine answers it the same. */
  onApply(node: NodeId, e: Entry, result: Result): void {
    const data = dataKey(e.data);
    const key = resultKey(result);
    const prev = this.committed.get(e.index);
    if (!prev) {
      this.committed.set(e.index, { term: e.term, data, result: key, by: node });
      if (e.index > this.maxCommittedIndex) this.maxCommittedIndex = e.index;
      this.onFirstApply(node, e, result);
    } else {
      if (prev.term !== e.term || !same(prev.data, data)) {
        this.violate(
          `state machine safety: ${node} applied (${e.index}, t${e.term}, ${data.length} bytes) but ${prev.by} applied (t${prev.term}, ${prev.data.length} bytes) there`,
        );
      } else if (prev.result !== key) {
        this.violate(
          `state divergence: ${node} answered the command at ${e.index} ${key}, ${prev.by} answered ${prev.result}`,
        );
      }
    }
    const ack = this.acked.get(e.index);
    if (ack && (ack.term !== e.term || !same(ack.data, data))) {
      this.violate(
        `acknowledged write lost: index ${e.index} was acknowledged as one command (t${ack.term}) but ${node} applied another (t${e.term})`,
      );
    }
  }

  /**
   * A node became leader of `term` under `conf`. Election safety; leader completeness (every committed entry
   * is in its log or under its snapshot); and its votes: the voters whose durable state shows a vote for it
   * in `term` (or a later term: they can no longer vote in it) form a quorum of `conf`. The leader's own vote
   * counts even before it is durable: a single voter wins at once, and commits nothing until it is.
   */
  onLeader(
    node: NodeId,
    term: number,
    conf: ConfState,
    firstIndex: number,
    lastIndex: number,
    termAt: (i: number) => number | undefined,
    durable: (id: NodeId) => DurableState | undefined,
    checkVotes: boolean,
  ): void {
    const prev = this.leaders.get(term);
    if (prev !== undefined && prev !== node)
      this.violate(`election safety: ${prev} and ${node} both leaders in term ${term}`);
    this.leaders.set(term, node);
    if (checkVotes) {
      this.counts.elections++;
      const voted = (id: NodeId) => {
        if (id === node) return true;
        const d = durable(id);
        return d !== undefined && (d.hard.term > term || (d.hard.term === term && d.hard.vote === node));
      };
      if (!isJointQuorum(conf, voted)) {
        const votes = [...new Set([...conf.voters, ...conf.votersOutgoing])].filter(voted);
        this.violate(
          `vote quorum: ${node} leads term ${term} but only {${votes.join(',')}} hold a durable vote for it; configuration ${confText(conf)}`,
        );
      }
    }
    const first = firstIndex;
    for (const [index, c] of this.committed) {
      if (index < first) continue;
      // Committed by a leader of this term or a later one (unknown, as for a reset's entries: always checked).
      if ((this.firstCommitTerm.get(index) ?? 0) >= term) continue;
      if (index > lastIndex) {
        this.violate(`leader completeness: ${node} (term ${term}) lacks committed index ${index} (last ${lastIndex})`);
        break;
      }
      const t = termAt(index);
      if (t !== c.term) {
        this.violate(
          `leader completeness: ${node} (term ${term}) has t${t} at committed index ${index}, committed t${c.term}`,
        );
        break;
      }
    }
  }

  /**
   * A leader's commit index moved to `index` (of `term`): that is an entry of the leader's own term, and the
   * voters whose disks hold it form a quorum of the configuration in force (either of `confs`: the one before
   * the step that committed, or after).
   */
  onCommit(
    leader: NodeId,
    leaderTerm: number,
    index: number,
    term: number,
    confs: readonly ConfState[],
    durable: (id: NodeId) => DurableState | undefined,
  ): void {
    this.counts.commits++;
    for (let i = this.commitMarkedTo + 1; i <= index; i++) this.firstCommitTerm.set(i, leaderTerm);
    this.commitMarkedTo = Math.max(this.commitMarkedTo, index);
    // Figure 8: counting replicas commits only an entry of the leader's own term (earlier ones follow it).
    if (term !== leaderTerm)
      this.violate(
        `commit rule: ${leader} (term ${leaderTerm}) committed ${index} of term ${term} by counting replicas`,
      );
    if (confs.some((c) => c.votersOutgoing.length > 0)) this.counts.jointCommits++;
    const holds = (id: NodeId) => durable(id)?.holds(index, term) === true;
    if (confs.some((c) => isJointQuorum(c, holds))) return;
    const c = confs[confs.length - 1]!;
    const holders = [...new Set([...c.voters, ...c.votersOutgoing, ...c.learners])].filter(holds);
    this.violate(
      `commit quorum: ${leader} committed ${index} (t${term}) held durably by {${holders.join(',')}} only; configuration ${confText(c)}`,
    );
  }

  /** A learner or a non-member campaigned or led: only voters may. */
  onCampaign(node: NodeId, state: string, conf: ConfState): void {
    if (!conf.voters.includes(node) && !conf.votersOutgoing.includes(node))
      this.violate(`${node} is ${state} but not a voter of its configuration ${confText(conf)}`);
  }

  /** A leader proposed promoting learner `id` to voter: the learner must have acknowledged something first. */
  onPromotion(leader: NodeId, id: NodeId, index: number, acknowledged: boolean): void {
    this.counts.promotions++;
    if (!acknowledged)
      this.violate(`catch-up: ${leader} promotes learner ${id} (entry ${index}) that never acknowledged anything`);
  }

  onAck(index: number, term: number, data: Uint8Array): void {
    const d = dataKey(data);
    const prev = this.acked.get(index);
    if (prev && (prev.term !== term || !same(prev.data, d)))
      this.violate(`two different writes acknowledged at index ${index}`);
    this.acked.set(index, { term, data: d });
    if (index > this.maxAckedIndex) this.maxAckedIndex = index;
    const c = this.committed.get(index);
    if (c && (c.term !== term || !same(c.data, d)))
      this.violate(`acknowledged write at ${index} differs from the committed entry`);
  }

  /**
   * Reset-peers: `survivor`, whose log is `entries` (after its snapshot at firstIndex - 1) and which had
   * committed up to committedBefore, becomes the truth. What only the lost majority held is forgotten
   * (acknowledged writes among it are counted as lost: the price of a reset). Every entry of the survivor's
   * log must stay committed as it was, to the end of the run: up to committedBefore a quorum had committed
   * it, past that the reset commits it. Leaders of later terms belong to the abandoned history.
   */
  onReset(
    survivor: NodeId,
    survivorTerm: number,
    committedBefore: number,
    firstIndex: number,
    entries: readonly Entry[],
  ): void {
    this.counts.resets++;
    const logged = new Map(entries.map((e) => [e.index, e]));
    const lastIndex = firstIndex + entries.length - 1;
    const survives = (index: number, term: number) =>
      index < firstIndex || (index <= lastIndex && logged.get(index)!.term === term);
    for (const [index, c] of [...this.committed]) {
      if (survives(index, c.term)) continue;
      if (index <= committedBefore)
        this.violate(
          `reset: ${survivor} had committed ${index} but its log holds t${logged.get(index)?.term} there, not the committed t${c.term}`,
        );
      this.committed.delete(index);
    }
    for (const [index, a] of [...this.acked]) {
      if (survives(index, a.term)) continue;
      this.acked.delete(index);
      this.lostAckedByReset++;
    }
    for (const e of entries)
      if (e.data.byteLength > 0 && e.type === EntryType.Normal)
        this.keptByReset.push({
          index: e.index,
          term: e.term,
          data: dataKey(e.data),
          by: survivor,
          byFiat: e.index > committedBefore,
        });
    for (const t of [...this.leaders.keys()]) if (t > survivorTerm) this.leaders.delete(t);
    // The survivor's log is the history now: what it commits by fiat has no first-commit term (always checked),
    // and indexes past its log are committed afresh.
    for (let i = committedBefore + 1; i <= this.commitMarkedTo; i++) this.firstCommitTerm.delete(i);
    this.commitMarkedTo = Math.min(this.commitMarkedTo, lastIndex);
    this.maxCommittedIndex = Math.max(0, ...this.committed.keys());
    this.maxAckedIndex = Math.max(0, ...this.acked.keys());
    this.onRebase(survives);
  }

  /** Log matching: where two durable logs hold the same (index, term), they are identical up to there. */
  checkLogMatching(logs: { id: NodeId; log: LogStorage }[], withData: boolean): void {
    for (let a = 0; a < logs.length; a++) {
      for (let b = a + 1; b < logs.length; b++) {
        const la = logs[a]!;
        const lb = logs[b]!;
        const lo = Math.max(la.log.firstIndex(), lb.log.firstIndex());
        const hi = Math.min(la.log.lastIndex(), lb.log.lastIndex());
        if (lo > hi) continue;
        let matched = false;
        for (let i = hi; i >= lo; i--) {
          const ta = la.log.term(i);
          const tb = lb.log.term(i);
          if (!matched) {
            if (ta === tb) matched = true;
            else continue;
          }
          if (ta !== tb) {
            this.violate(
              `log matching: ${la.id} and ${lb.id} agree at a later index but differ at ${i} (t${ta} vs t${tb})`,
            );
            break;
          }
          if (!withData) continue;
          const ea = la.log.entries(i, i + 1, Infinity)[0]!;
          const eb = lb.log.entries(i, i + 1, Infinity)[0]!;
          if (!same(ea.data, eb.data) || ea.type !== eb.type) {
            this.violate(`log matching: ${la.id} and ${lb.id} hold different entries at (${i}, t${ta})`);
            break;
          }
        }
      }
    }
  }

  /** At the end: every acknowledged write is committed as acknowledged; so is what a reset survivor had committed. */
  checkAcked(appliedBy: (index: number) => boolean): void {
    for (const [index, a] of this.acked) {
      const c = this.committed.get(index);
      if (!c) {
        if (appliedBy(index)) continue;
        this.violate(`acknowledged write at ${index} (t${a.term}) was never applied anywhere`);
      } else if (c.term !== a.term || !same(c.data, a.data)) {
        this.violate(`acknowledged write at ${index} (t${a.term}) lost: t${c.term} was committed there`);
      }
    }
    for (const k of this.keptByReset) {
      const c = this.committed.get(k.index);
      const what = k.byFiat ? 'held (and the reset committed)' : 'had committed';
      if (!c) this.violate(`reset: ${k.by} ${what} (${k.index}, t${k.term}) but it was never applied`);
      else if (c.term !== k.term || !same(c.data, k.data))
        this.violate(`reset: ${k.by} ${what} (${k.index}, t${k.term}) but t${c.term} was applied there`);
    }
  }
}
