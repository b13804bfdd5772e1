// The simulator's checkers at the journal's level, beside the Raft ones (checker.ts). A model of every journal
// is built from the commands as they first apply (every replica must apply the same command with the same
// result at each index: checker.ts): the committed records by txid, the epochs, the segments. Against it:
// - every flush a writer saw acknowledged survives: its txids read back with the same bytes, at the end, on
//   every member, after every fault (unless a purge the writer asked for removed them);
// - every read returns exactly committed records: contiguous from where it asked, each the committed bytes
//   of its txid, never one that no replica applied; a linearizable read sees every txid acknowledged before
//   it started;
// - a fenced writer never adds a txid: a journal command is applied with success only under the newest epoch
//   a newEpoch established before its index;
// - at the end every member holds the same segment files, byte for byte.

import { qjournal } from '../../src/gen/proto.js';
import { iterateRecords } from '../../src/edit-records.js';
import type { Entry, NodeId } from '../../src/raft/types.js';

const pb = qjournal.journal;
type Result = qjournal.journal.ICommandResult;

interface SegmentModel {
  first: number;
  last: number | null;
}

interface JournalModel {
  /** Committed records by txid (the bytes of each record's data). */
  records: Map<number, Buffer>;
  lastTxId: number;
  /** Raft index and epoch of every newEpoch applied, in index order. */
  epochs: { index: number; epoch: number }[];
  segments: SegmentModel[];
  /** Txids whose flush a writer saw acknowledged (their bytes are in records), and the newest of them. */
  acked: Set<number>;
  maxAcked: number;
}

export interface Violations {
  violate(msg: string): void;
}

/** One record as a read returned it. */
export interface ReadRecord {
  txid: number;
  data: Buffer;
}

export class JournalChecker {
  private journals = new Map<string, JournalModel>();
  /** Every successful command as it first applied, by index: the model is their fold (rebuilt after a reset). */
  private readonly commands = new Map<
    number,
    { node: NodeId; e: Entry; cmd: qjournal.journal.Command; result: Result }
  >();
  /** Acknowledged txids a reset of the peers forgot (its price, reported, not a violation). */
  lostAckedByReset = 0;
  readonly counts = { commands: 0, fencedRefusals: 0, acked: 0, reads: 0, linearizableReads: 0, readRecords: 0 };

  constructor(private readonly out: Violations) {}

  private model(jid: string): JournalModel {
    let m = this.journals.get(jid);
    if (!m) {
      m = { records: new Map(), lastTxId: 0, epochs: [], segments: [], acked: new Set(), maxAcked: 0 };
      this.journals.set(jid, m);
    }
    return m;
  }

  get journalIds(): string[] {
    return [...this.journals.keys()];
  }

  lastTxId(jid: string): number {
    return this.journals.get(jid)?.lastTxId ?? 0;
  }

  /** The newest acknowledged txid of a journal (what a linearizable read started now must see). */
  maxAcked(jid: string): number {
    return this.journals.get(jid)?.maxAcked ?? 0;
  }

  /** The first time any replica applies index e.index: the command and its result enter the model. */
  onFirstApply(node: NodeId, e: Entry, result: Result): void {
    let cmd: qjournal.journal.Command;
    try {
      cmd = pb.Command.decode(e.data);
    } catch {
      return; // not a command (the state machine answered it with an error)
    }
    this.counts.commands++;
    if ((result.code ?? 0) === pb.ErrorCode.FENCED) this.counts.fencedRefusals++;
    if ((result.code ?? 0) !== pb.ErrorCode.OK) return;
    this.commands.set(e.index, { node, e, cmd, result });
    this.fold(node, e, cmd, result);
  }

  /**
   * Reset-peers made one survivor's log the history: commands that did not survive leave the model, and
   * acknowledged txids they carried are counted as the reset's price.
   */
  rebase(survives: (index: number, term: number) => boolean): void {
    const acked = new Map<string, Set<number>>();
    for (const [jid, m] of this.journals) acked.set(jid, m.acked);
    this.journals = new Map();
    for (const [index, c] of [...this.commands].sort((a, b) => a[0] - b[0])) {
      if (!survives(index, c.e.term)) {
        this.commands.delete(index);
        continue;
      }
      this.fold(c.node, c.e, c.cmd, c.result);
    }
    for (const [jid, txids] of acked) {
      const m = this.model(jid);
      for (const t of txids) {
        if (!m.records.has(t)) {
          this.lostAckedByReset++;
          continue;
        }
        m.acked.add(t);
        m.maxAcked = Math.max(m.maxAcked, t);
      }
    }
  }

  private fold(node: NodeId, e: Entry, cmd: qjournal.journal.Command, result: Result): void {
    const m = this.model(cmd.jid);
    const n = (v: number | null | undefined) => Number(v ?? 0);
    if (cmd.newEpoch) {
      const epoch = n(result.epoch);
      const prev = m.epochs[m.epochs.length - 1]?.epoch ?? 0;
      if (epoch < prev)
        this.out.violate(`journal ${cmd.jid}: newEpoch at ${e.index} gave epoch ${epoch} after ${prev}`);
      if (epoch > prev) m.epochs.push({ index: e.index, epoch });
    } else if (cmd.appendRecords) {
      this.applyRecords(node, e, cmd.jid, cmd.appendRecords, m);
    } else if (cmd.startSegment) {
      const open = m.segments[m.segments.length - 1];
      if (open && open.last === null) m.segments.pop(); // an empty open segment replaced
      m.segments.push({ first: n(cmd.startSegment.txid), last: null });
    } else if (cmd.finalizeSegment) {
      const seg = m.segments.find((s) => s.first === n(cmd.finalizeSegment!.firstTxid));
      if (seg) seg.last = n(cmd.finalizeSegment.lastTxid);
    } else if (cmd.dropSegment) {
      m.segments = m.segments.filter((s) => s.first !== n(cmd.dropSegment!.firstTxid));
    } else if (cmd.purge) {
      const min = n(cmd.purge.minTxidToKeep);
      m.segments = m.segments.filter((s) => s.last === null || s.last >= min);
    } else if (cmd.format) {
      if (m.lastTxId > 0) this.out.violate(`journal ${cmd.jid}: formatted at ${e.index} while holding txids`);
    }
  }

  private applyRecords(
    node: NodeId,
    e: Entry,
    jid: string,
    op: qjournal.journal.IAppendRecordsOp,
    m: JournalModel,
  ): void {
    const epoch = Number(op.epoch ?? 0);
    // The newest epoch established by a newEpoch applied before this index: a writer fenced by it adds nothing.
    let promised = 0;
    for (const x of m.epochs) if (x.index < e.index) promised = x.epoch;
    if (epoch !== promised)
      this.out.violate(
        `fenced writer: journal ${jid}: ${node} applied a batch of epoch ${epoch} at index ${e.index} after epoch ${promised} was established`,
      );
    for (const r of iterateRecords(op.records ?? new Uint8Array(0))) {
      const prev = m.records.get(r.txid);
      if (prev) {
        if (!prev.equals(r.data))
          this.out.violate(`journal ${jid}: txid ${r.txid} applied at ${e.index} with other bytes than before`);
        continue;
      }
      if (r.txid !== m.lastTxId + 1)
        this.out.violate(`journal ${jid}: txid ${r.txid} applied at ${e.index} after ${m.lastTxId} (a gap)`);
      m.records.set(r.txid, Buffer.from(r.data));
      m.lastTxId = Math.max(m.lastTxId, r.txid);
    }
  }

  /** A writer's flush was acknowledged: its records must be the committed ones. */
  onAcked(jid: string, frames: Uint8Array, firstTxId: number, count: number): void {
    const m = this.model(jid);
    let k = 0;
    for (const r of iterateRecords(frames)) {
      const committed = m.records.get(r.txid);
      if (!committed?.equals(r.data))
        this.out.violate(`journal ${jid}: txid ${r.txid} acknowledged but not committed as written`);
      m.acked.add(r.txid);
      m.maxAcked = Math.max(m.maxAcked, r.txid);
      k++;
    }
    this.counts.acked += k;
    if (k !== count || (count > 0 && !m.records.has(firstTxId)))
      this.out.violate(`journal ${jid}: acknowledged batch ${firstTxId}+${count} holds ${k} records`);
  }

  /**
   * A read of `jid` from txid `from` on `node` returned `got`: contiguous from `from`, each record the committed
   * one. A linearizable read also covers every txid acknowledged before it began (mustSee).
   */
  checkRead(
    node: NodeId,
    jid: string,
    from: number,
    got: ReadRecord[],
    linearizable: { mustSee: number; lastTxId: number; inProgressOk: boolean } | null,
  ): void {
    const m = this.model(jid);
    this.counts.reads++;
    this.counts.readRecords += got.length;
    let expect = from;
    for (const r of got) {
      if (r.txid !== expect) {
        this.out.violate(
          `read on ${node}: journal ${jid} from ${from} returned txid ${r.txid} where ${expect} was due`,
        );
        return;
      }
      const committed = m.records.get(r.txid);
      if (!committed) {
        this.out.violate(`read on ${node}: journal ${jid} returned txid ${r.txid}, which no replica applied`);
        return;
      }
      if (!committed.equals(r.data)) {
        this.out.violate(`read on ${node}: journal ${jid} returned other bytes for txid ${r.txid}`);
        return;
      }
      expect++;
    }
    if (!linearizable) return;
    this.counts.linearizableReads++;
    if (linearizable.lastTxId < linearizable.mustSee)
      this.out.violate(
        `linearizable read on ${node}: journal ${jid} holds up to ${linearizable.lastTxId}, but ${linearizable.mustSee} was acknowledged before the read began`,
      );
    else if (linearizable.inProgressOk && from <= linearizable.mustSee && got.length === 0)
      this.out.violate(
        `linearizable read on ${node}: journal ${jid} from ${from} returned nothing, ${linearizable.mustSee} was acknowledged`,
      );
  }

  /** The first txid a journal still holds once every purge applied: what every replica must report. */
  firstHeld(jid: string): number {
    const m = this.model(jid);
    return m.segments[0]?.first ?? m.lastTxId + 1;
  }

  /**
   * At the end, on one member: the journal holds every committed txid from firstHeld on, byte for byte, and
   * every acknowledged one among them (the read is the member's own, through its segment files).
   */
  checkHeld(node: NodeId, jid: string, held: { firstTxId: number; lastTxId: number; records: ReadRecord[] }): void {
    const m = this.model(jid);
    const first = this.firstHeld(jid);
    if (held.lastTxId !== m.lastTxId)
      this.out.violate(`${node}: journal ${jid} ends at txid ${held.lastTxId}, ${m.lastTxId} were committed`);
    if (held.firstTxId !== first)
      this.out.violate(`${node}: journal ${jid} holds txids from ${held.firstTxId}, the purges leave ${first}`);
    this.checkRead(node, jid, first, held.records, null);
    if (held.records.length !== m.lastTxId - first + 1)
      this.out.violate(
        `${node}: journal ${jid} reads back ${held.records.length} txids from ${first}, ${m.lastTxId - first + 1} committed`,
      );
    for (const t of m.acked)
      if (t >= first && t > held.lastTxId)
        this.out.violate(`acknowledged flush lost: ${node}: journal ${jid} lacks acknowledged txid ${t}`);
  }
}
