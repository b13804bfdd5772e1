// The simulated journal clients, following the journal protocol as libqjm does (QuorumJournalManager,
// EditLogOutputStream, readEdits) through the real command encoding: requests are WriteRequest bytes
// (src/journal-write-wire.ts frames a batch's header in front of its records, src/edit-records.ts frames the
// records), and a node handles them as its write route does (the command's own bytes read out of the request,
// decoded, validated with the node's limits, proposed; the leader applies from that decoding).
//
// Writers: one active at a time per journal; a standby takes over now and then (newEpoch fences the active
// one, then the in-progress segment is finalized at its last txid, or dropped when empty), then segments are
// started, written in batches of a few records and finalized, and old ones purged. One request in flight per
// writer, retried with the same bytes while the outcome is unknown, as libqjm retries. Readers: plain reads of
// edits from any node, and linearizable ones (a ReadIndex round first).

import { qjournal } from '../../src/gen/proto.js';
import { encodeRecords, iterateRecords } from '../../src/edit-records.js';
import { QjmError } from '../../src/errors.js';
import { journalHeaderRoom, putJournalHeader, readWriteRequest } from '../../src/journal-write-wire.js';
import { journalStateFromProto } from '../../src/journal-state.js';
import type { Prng } from '../../src/prng.js';
import type { NodeId } from '../../src/raft/types.js';
import type { Replica } from '../../src/replica/replica.js';
import type { Settings } from '../../src/settings.js';
import { validateCommand } from '../../journalnode/state/commands.js';
import type { JournalStateMachine } from '../../journalnode/state/journal-state-machine.js';
import type { JournalChecker, ReadRecord } from './journal-checker.js';

const pb = qjournal.journal;
type Result = qjournal.journal.ICommandResult;
type WriteOutcome = { index: number; term: number; value: Result };

/** A node as a client reaches it: running, with its replica and its state machine. */
export interface ClientTarget {
  id: NodeId;
  replica: Replica<Result>;
  stateMachine: JournalStateMachine;
}

/** What the clients need of the simulated cluster. */
export interface ClientWorld {
  now(): number;
  schedule(delayMs: number, fn: () => void): void;
  rng: Prng;
  settings: Settings;
  /** Nodes that exist (up or down). */
  ids(): NodeId[];
  running(id: NodeId): ClientTarget | undefined;
  /** False once the clients must stop (the quiet phase). */
  clientsOn(): boolean;
  /** True while faults strike (writers take journals over from each other only then). */
  inFaultPhase(): boolean;
  /** Resets of the peers so far: one may have forgotten what a writer wrote (its commands then fail). */
  resets(): number;
  /** With the mix's switch: some writes carry the term the writer last saw (TERM_MISMATCH when stale). */
  expectedTerm: boolean;
  journals: JournalChecker;
  /** Every write a node acknowledged (Raft index, term, the command's bytes). */
  acknowledged(node: NodeId, out: WriteOutcome, commandBytes: Uint8Array): void;
  violate(msg: string): void;
  /** A read failed on a node: expected only where a fault damaged its disk. */
  readFailed(node: NodeId, err: Error): void;
  trace(line: string): void;
}

const NS_INFO = { namespaceId: 7, clusterId: 'sim-cluster', blockPoolId: 'bp-1', ctime: 1 };

/**
 * What journalnode/http/routes-qjm.ts does with a write request: the command's own bytes read out of the
 * body, decoded, validated with the node's limits, refused unless the node leads, proposed as those bytes
 * (the leader applies them from this decoding).
 */
export function handleWriteRequest(
  node: ClientTarget,
  settings: Settings,
  body: Uint8Array,
  cb: (err: QjmError | Error | null, out?: WriteOutcome, commandBytes?: Uint8Array) => void,
): void {
  let commandBytes: Uint8Array;
  let expectedTerm: number;
  let cmd: qjournal.journal.Command;
  try {
    const parts = readWriteRequest(body);
    if (!parts.commandBytes) throw new Error('command is required');
    commandBytes = parts.commandBytes;
    expectedTerm = parts.expectedTerm;
    cmd = pb.Command.decode(commandBytes);
    validateCommand(cmd, settings);
  } catch (e) {
    return cb(e as Error);
  }
  if (!node.replica.isLeader)
    return cb(new QjmError('NOT_LEADER', `${node.id} is not the leader`, node.replica.leaderDetails()));
  node.stateMachine.knowValidated(commandBytes, cmd);
  node.replica.propose(commandBytes, expectedTerm > 0 ? expectedTerm : undefined, (err, res) =>
    err ? cb(err) : cb(null, res!, commandBytes),
  );
}

type Phase = 'format' | 'recover' | 'start' | 'write' | 'finalize' | 'purge' | 'fenced' | 'idle';

interface Request {
  what: string;
  body: Uint8Array;
  onOk(out: WriteOutcome): void;
}

/** A writer (an active master's journal manager): one request in flight, retried until it has an answer. */
export class JournalWriter {
  private phase: Phase = 'idle';
  private epoch = 0;
  private target: NodeId;
  private believedTerm = 0;
  private inFlight: Request | null = null;
  /** The open segment's first txid, the next txid to write, batches left in this segment. */
  private segmentTxId = 0;
  private nextTxId = 1;
  private batchesLeft = 0;
  /** First txids of the segments this writer finalized, oldest first (what a purge may drop). */
  private finalized: number[] = [];
  private requestSeq = 0;
  private round = 0;
  /** Resets of the peers when this writer took the journal over. */
  private resetsSeen = 0;

  constructor(
    readonly id: string,
    readonly jid: string,
    private readonly world: ClientWorld,
  ) {
    this.target = world.rng.pick(world.ids());
  }

  get active(): boolean {
    return this.phase !== 'idle' && this.phase !== 'fenced';
  }

  /** The first writer formats the journal, then takes it over; `formatted` once the format is acknowledged. */
  format(formatted: () => void): void {
    this.phase = 'format';
    const body = pb.WriteRequest.encode({ command: { jid: this.jid, format: { nsInfo: NS_INFO } } }).finish();
    this.send({
      what: 'format',
      body,
      onOk: () => {
        formatted();
        this.takeOver();
      },
    });
  }

  /** Fences every earlier writer (a new epoch), then finalizes or drops the segment a dead writer left. */
  takeOver(): void {
    this.round++;
    this.phase = 'recover';
    this.resetsSeen = this.world.resets();
    // One request id for every retry of this newEpoch: a retry whose first attempt committed answers the same epoch.
    const requestId = `${this.id}-${++this.requestSeq}`;
    const body = pb.WriteRequest.encode({
      command: { jid: this.jid, newEpoch: { nsInfo: NS_INFO, writerId: this.id, requestId } },
    }).finish();
    this.send({
      what: 'newEpoch',
      body,
      onOk: (out) => {
        this.epoch = Number(out.value.epoch ?? 0);
        const state = journalStateFromProto(out.value.state ?? {});
        this.world.trace(`WRITER ${this.id} holds ${this.jid} at epoch ${this.epoch} (last txid ${state.lastTxId})`);
        this.nextTxId = state.lastTxId + 1;
        this.finalized = state.segments.filter((s) => !s.inProgress).map((s) => s.firstTxId);
        const last = state.segments[state.segments.length - 1];
        if (!last?.inProgress) return this.startSegment();
        if (last.lastTxId >= last.firstTxId) return this.finalize(last.firstTxId, last.lastTxId);
        this.command('dropSegment', { dropSegment: { epoch: this.epoch, firstTxid: last.firstTxId } }, () =>
          this.startSegment(),
        );
      },
    });
  }

  private command(what: string, op: qjournal.journal.ICommand, onOk: (out: WriteOutcome) => void): void {
    const body = pb.WriteRequest.encode({ command: { jid: this.jid, ...op } }).finish();
    this.send({ what, body, onOk });
  }

  private startSegment(): void {
    this.phase = 'start';
    const txid = this.nextTxId;
    this.command('startSegment', { startSegment: { epoch: this.epoch, txid, layoutVersion: -66 } }, () => {
      this.segmentTxId = txid;
      this.batchesLeft = this.world.rng.int(2, 25);
      this.phase = 'write';
      this.writeBatch();
    });
  }

  /** A batch as the output stream frames it: the records, the request's header written in front of them. */
  private writeBatch(): void {
    const rng = this.world.rng;
    // At most 5 records of at most 3000 bytes: under the simulated nodes' maxBatchBytes (sim-settings.ts).
    const count = rng.int(1, 6);
    const records: Buffer[] = [];
    for (let i = 0; i < count; i++) {
      const size = rng.chance(0.1) ? rng.int(600, 3000) : rng.int(8, 300);
      const data = Buffer.alloc(size, (this.nextTxId + i) & 0xff);
      data.write(`${this.id}:${this.round}:${this.nextTxId + i}`, 0, 'latin1');
      records.push(data);
    }
    const first = this.nextTxId;
    const frames = encodeRecords(first, records);
    const room = journalHeaderRoom(this.jid);
    const buf = Buffer.allocUnsafe(room + frames.byteLength);
    frames.copy(buf, room);
    const start = putJournalHeader(buf, room, {
      jid: this.jid,
      epoch: this.epoch,
      segmentTxId: this.segmentTxId,
      firstTxId: first,
      count,
      recordsBytes: frames.byteLength,
    });
    this.send({
      what: `journal ${first}..${first + count - 1}`,
      body: buf.subarray(start),
      onOk: () => {
        this.world.journals.onAcked(this.jid, frames, first, count);
        this.nextTxId = first + count;
        if (--this.batchesLeft <= 0) return this.finalize(this.segmentTxId, this.nextTxId - 1);
        // The master's next flush comes after a little work of its own.
        this.world.schedule(this.world.rng.int(2, 20), () => {
          if (this.phase === 'write' && this.inFlight === null) this.writeBatch();
        });
      },
    });
  }

  private finalize(firstTxId: number, lastTxId: number): void {
    this.phase = 'finalize';
    this.command(
      'finalizeSegment',
      { finalizeSegment: { epoch: this.epoch, firstTxid: firstTxId, lastTxid: lastTxId } },
      () => {
        this.finalized.push(firstTxId);
        this.nextTxId = lastTxId + 1;
        const keep = 2;
        if (this.finalized.length <= keep || !this.world.rng.chance(0.3)) return this.startSegment();
        this.phase = 'purge';
        const min = this.finalized[this.finalized.length - keep]!;
        this.command('purge', { purge: { epoch: this.epoch, minTxidToKeep: min } }, () => {
          this.finalized = this.finalized.filter((f) => f >= min);
          this.startSegment();
        });
      },
    );
  }

  // ---------------------------------------------------------------- one request, retried

  private send(req: Request): void {
    this.inFlight = req;
    this.attempt(req);
  }

  private retry(req: Request, pickAnother: boolean): void {
    if (pickAnother) this.target = this.world.rng.pick(this.world.ids());
    this.world.schedule(this.world.rng.int(2, 20), () => this.attempt(req));
  }

  private attempt(req: Request): void {
    if (this.inFlight !== req || !this.world.clientsOn()) return;
    const node = this.world.running(this.target);
    if (!node) return this.retry(req, true);
    let body = req.body;
    if (this.world.expectedTerm && this.believedTerm > 0 && this.world.rng.chance(0.3)) {
      // The WriteRequest's expected_term field (2) appended after the command.
      body = Buffer.concat([req.body, Buffer.from([2 << 3]), varint(this.believedTerm)]);
    }
    handleWriteRequest(node, this.world.settings, body, (err, out, commandBytes) => {
      if (this.inFlight !== req) return;
      if (err) return this.failed(req, err as QjmError);
      this.world.acknowledged(node.id, out!, commandBytes!);
      this.believedTerm = out!.term;
      this.answered(req, out!);
    });
  }

  private failed(req: Request, err: QjmError): void {
    switch (err.errorName) {
      case 'NOT_LEADER': {
        const hint = err.details?.leaderId;
        if (hint && this.world.ids().includes(hint)) this.target = hint;
        return this.retry(req, !hint);
      }
      case 'TERM_MISMATCH':
        this.believedTerm = 0;
        return this.retry(req, true);
      case 'LEADERSHIP_LOST':
      case 'TIMEOUT':
      case 'BUSY':
        return this.retry(req, false);
      case 'STORAGE_FAILED':
      case 'SHUTTING_DOWN':
      case 'UNAVAILABLE':
      // A node on a replaced disk waiting to be re-added, or one that stood down: another node serves.
      case 'STORAGE_MISMATCH':
      case 'STOOD_DOWN':
        return this.retry(req, true);
      default:
        this.world.violate(`writer ${this.id}: ${req.what} refused ${err.errorName ?? err.name}: ${err.message}`);
        this.inFlight = null;
    }
  }

  private answered(req: Request, out: WriteOutcome): void {
    const code = out.value.code ?? 0;
    if (code === pb.ErrorCode.OK || (req.what === 'format' && code === pb.ErrorCode.ALREADY_FORMATTED)) {
      this.inFlight = null;
      return req.onOk(out);
    }
    this.inFlight = null;
    if (code === pb.ErrorCode.FENCED) {
      this.phase = 'fenced';
      this.world.trace(`WRITER ${this.id} fenced on ${req.what} (epoch ${this.epoch}, promised ${out.value.epoch})`);
      return;
    }
    this.phase = 'idle';
    if (code === pb.ErrorCode.NOT_FORMATTED && this.world.resets() > 0) {
      // A reset of the peers forgot the journal's format (only the lost majority held it): format it again.
      this.world.trace(`WRITER ${this.id}: ${this.jid} lost its format in a reset; formatting it again`);
      return this.format(() => {});
    }
    if (this.world.resets() > this.resetsSeen) {
      // A reset of the peers forgot part of this writer's history: it stops, as a master whose journal failed.
      this.world.trace(`WRITER ${this.id} stops: ${req.what} answered ${pb.ErrorCode[code]} after a reset`);
      return;
    }
    this.world.violate(
      `writer ${this.id} (epoch ${this.epoch}): ${req.what} answered ${pb.ErrorCode[code]}: ${out.value.message}`,
    );
  }
}

function varint(n: number): Buffer {
  const out: number[] = [];
  let v = n;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return Buffer.from(out);
}

/** A reader of edits: plain reads from any node, linearizable ones after a ReadIndex round. */
export class JournalReader {
  constructor(private readonly world: ClientWorld) {}

  start(): void {
    const loop = () => {
      if (!this.world.clientsOn()) return;
      this.readOnce();
      this.world.schedule(this.world.rng.int(10, 60), loop);
    };
    this.world.schedule(this.world.rng.int(50, 150), loop);
  }

  private readOnce(): void {
    const w = this.world;
    const jids = w.journals.journalIds;
    if (jids.length === 0) return;
    const jid = w.rng.pick(jids);
    const node = w.running(w.rng.pick(w.ids()));
    if (!node) return;
    const last = w.journals.lastTxId(jid);
    const from = w.rng.int(Math.max(1, w.journals.firstHeld(jid) - 2), last + 2);
    if (!w.rng.chance(0.5)) return this.read(node, jid, from, null);
    const mustSee = w.journals.maxAcked(jid);
    const resets = w.resets();
    node.replica.readIndex((err) => {
      if (err) return;
      // A reset of the peers meanwhile may have forgotten what was acknowledged: the read only checks records.
      this.read(node, jid, from, w.resets() === resets ? mustSee : null);
    });
  }

  private read(node: ClientTarget, jid: string, from: number, mustSee: number | null): void {
    const w = this.world;
    const j = node.stateMachine.journal(jid);
    if (!j?.formatted || from < j.firstHeldTxId()) return; // not there yet, or purged (PURGED)
    const maxTxns = w.rng.pick([1, 7, 200]);
    const maxBytes = w.rng.pick([256, 4096, 64 << 10]);
    const inProgressOk = w.rng.chance(0.8);
    let got: ReturnType<typeof j.readEdits>;
    try {
      got = j.readEdits(from, maxTxns, maxBytes, inProgressOk);
    } catch (e) {
      return w.readFailed(node.id, e as Error);
    }
    const records: ReadRecord[] = [];
    for (const r of iterateRecords(got.frames)) records.push({ txid: r.txid, data: Buffer.from(r.data) });
    if (records.length !== got.count)
      w.violate(`read on ${node.id}: ${got.count} records announced, ${records.length} framed`);
    w.journals.checkRead(
      node.id,
      jid,
      from,
      records,
      mustSee === null ? null : { mustSee, lastTxId: j.lastTxId, inProgressOk },
    );
  }
}

/**
 * Two writers per journal (the first formats it and writes; during the fault phase the idle one takes the
 * journal over now and then, fencing the other) and `readers` readers.
 */
export function startJournalClients(world: ClientWorld, jids: readonly string[], readers: number): void {
  for (const jid of jids) {
    const first = new JournalWriter(`${jid}-a`, jid, world);
    const second = new JournalWriter(`${jid}-b`, jid, world);
    let formatted = false;
    world.schedule(world.rng.int(0, 50), () => first.format(() => (formatted = true)));
    const takeOvers = () => {
      if (!world.inFaultPhase() || !world.clientsOn()) return;
      const standby = [first, second].find((w) => !w.active);
      if (standby && formatted && world.rng.chance(0.5)) {
        world.trace(`WRITER ${standby.id} takes ${jid} over`);
        standby.takeOver();
      }
      world.schedule(world.rng.int(200, 1200), takeOvers);
    };
    world.schedule(world.rng.int(300, 900), takeOvers);
  }
  for (let r = 0; r < readers; r++) new JournalReader(world).start();
}
