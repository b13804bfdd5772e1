// The journal state machine's snapshots: save, restart from a snapshot plus replay (byte-identical files),
// and a follower fetching and installing a leader's snapshot (reusing files it already has).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { qjournal } from '../../../../src/gen/proto.js';
import { encodeRecords } from '../../../../src/edit-records.js';
import { EntryType } from '../../../../src/raft/types.js';
import type { Entry, SnapshotMeta } from '../../../../src/raft/types.js';
import { JournalStateMachine } from '../../../../journalnode/state/journal-state-machine.js';
import { APPLY_MAX_JOURNALS, journalLimitOf } from '../../../../journalnode/state/commands.js';
import { ApplyInterrupted } from '../../../../src/replica/env.js';
import type { SnapshotSource, StateMachineOptions } from '../../../../journalnode/state/journal-state-machine.js';
import { nodeFileSystem } from '../../../../src/storage/node-file-system.js';

const pb = qjournal.journal;
const ns = { namespaceId: 7, clusterId: 'CID-1', blockPoolId: 'BP-1' };
const quiet = { info() {}, warn() {}, error() {}, debug() {} };
const conf = { voters: ['n1'], votersOutgoing: [], learners: [] };

function entry(index: number, cmd: qjournal.journal.ICommand): Entry {
  return { index, term: 1, type: EntryType.Normal, data: pb.Command.encode(cmd).finish() };
}

function writes(jid: string, firstTxId: number, n: number): qjournal.journal.ICommand {
  return {
    jid,
    appendRecords: {
      epoch: 1,
      segmentTxid: 1,
      firstTxid: firstTxId,
      count: n,
      records: encodeRecords(
        firstTxId,
        Array.from({ length: n }, (_, i) => Buffer.from(`e${firstTxId + i}`)),
      ),
    },
  };
}

function opts(dataDir: string, source: SnapshotSource | null = null): StateMachineOptions {
  return {
    fileSystem: nodeFileSystem,
    dataDir,
    cacheBytesPerJournal: 1 << 20,
    maxSnapshotChunkBytes: 64,
    keepSnapshots: 2,
    source,
    logger: quiet,
    checkInvariants: true,
  };
}

function fresh(dir: string, source: SnapshotSource | null = null): JournalStateMachine {
  JournalStateMachine.bootstrap(opts(dir), { index: 1, term: 1, conf, peers: [{ id: 'n1', address: 'x:1' }] });
  return JournalStateMachine.open(opts(dir, source));
}

const save = (stateMachine: JournalStateMachine, meta: SnapshotMeta) =>
  new Promise<void>((resolve, reject) => stateMachine.saveSnapshot(meta, (e) => (e ? reject(e) : resolve())));

function filesOf(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  if (!fs.existsSync(dir)) return out;
  for (const n of fs.readdirSync(dir).sort()) out[n] = fs.readFileSync(path.join(dir, n)).toString('hex');
  return out;
}

// Commands of one journal: what a snapshot captures (head), and what is applied after it (tail).
const head: qjournal.journal.ICommand[] = [
  { jid: 'ns1', format: { nsInfo: ns } },
  { jid: 'ns1', newEpoch: { nsInfo: ns, writerId: 'nn1' } },
  { jid: 'ns1', startSegment: { epoch: 1, txid: 1, layoutVersion: -64 } },
  writes('ns1', 1, 5),
];
const tail: qjournal.journal.ICommand[] = [
  writes('ns1', 6, 3),
  { jid: 'ns1', finalizeSegment: { epoch: 1, firstTxid: 1, lastTxid: 8 } },
  { jid: 'ns1', startSegment: { epoch: 1, txid: 9, layoutVersion: -64 } },
  writes('ns1', 9, 2),
];

// Set by the hooks of the outer describe: a fresh directory per test.
let root: string;

describe('journal state machine snapshots', () => {
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-stateMachine-'));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  describe('restart from its own snapshot', restart);
  describe('install from the leader', installFromLeader);
});

function restart(): void {
  it('restart = newest snapshot + replay of the log: the same state and byte-identical files', async () => {
    const dir = path.join(root, 'a');
    const stateMachine = fresh(dir);
    let index = 1;
    stateMachine.apply(head.map((c) => entry(++index, c)));
    await save(stateMachine, { index, term: 1, conf });
    const snapIndex = index;
    stateMachine.apply(tail.map((c) => entry(++index, c)));
    const want = filesOf(path.join(dir, 'journals', 'ns1'));
    const wantState = JSON.stringify(stateMachine.journal('ns1')!.state());
    stateMachine.close();

    const again = JournalStateMachine.open(opts(dir));
    expect(again.snapshotMeta.index).to.equal(snapIndex);
    expect(again.journal('ns1')!.lastTxId, 'back at the snapshot').to.equal(5);
    let i = snapIndex;
    again.apply(tail.map((c) => entry(++i, c)));
    expect(JSON.stringify(again.journal('ns1')!.state())).to.equal(wantState);
    expect(filesOf(path.join(dir, 'journals', 'ns1'))).to.deep.equal(want);
    again.close();
  });

  it('a corrupt finalized segment is reported when first read, naming the file', async () => {
    const dir = path.join(root, 'c');
    const stateMachine = fresh(dir);
    let index = 1;
    stateMachine.apply([...head, ...tail].map((c) => entry(++index, c)));
    await save(stateMachine, { index, term: 1, conf });
    stateMachine.close();
    const jdir = path.join(dir, 'journals', 'ns1');
    const fin = fs.readdirSync(jdir).find((n) => !n.includes('inprogress'))!;
    const file = path.join(jdir, fin);
    // Segment files and the snapshot share inodes: damage in place is damage in both.
    const b = fs.readFileSync(file);
    b[b.length - 3]! ^= 0x55;
    fs.writeFileSync(file, b);
    const third = JournalStateMachine.open(opts(dir));
    expect(() => third.journal('ns1')!.readEdits(1, 100, 1 << 20, true)).to.throw(
      /edits_0+1-0+8 is corrupt at byte \d+/,
    );
    third.close();
  });
}

function installFromLeader(): void {
  it("a follower fetches the leader's snapshot in chunks, reusing a finalized segment it already has", async () => {
    const leaderDir = path.join(root, 'leader');
    const leader = fresh(leaderDir);
    let index = 1;
    sm_apply(leader, [...head, ...tail]);
    function sm_apply(stateMachine: JournalStateMachine, cmds: qjournal.journal.ICommand[]) {
      stateMachine.apply(cmds.map((c) => entry(++index, c)));
    }
    await save(leader, { index, term: 1, conf, peers: [{ id: 'n1', address: 'x:1' }] });
    const leaderFiles = filesOf(path.join(leaderDir, 'journals', 'ns1'));

    let chunks = 0;
    const source: SnapshotSource = () => ({
      manifest(minIndex, cb) {
        const m = leader.snapshots.newest()!;
        expect(m.index).to.be.at.least(minIndex);
        setImmediate(() => cb(null, m.manifest));
      },
      chunk(idx, f, offset, length, cb) {
        chunks++;
        const bytes = leader.snapshots.readChunk(idx, f.jid, f.file, offset, length);
        setImmediate(() => cb(null, bytes));
      },
    });
    const followerDir = path.join(root, 'follower');
    const follower = fresh(followerDir, source);
    // The follower already holds the finalized segment (as a follower that fell behind would).
    const fin = Object.keys(leaderFiles).find((n) => !n.includes('inprogress'))!;
    fs.mkdirSync(path.join(followerDir, 'journals', 'ns1'), { recursive: true });
    fs.copyFileSync(path.join(leaderDir, 'journals', 'ns1', fin), path.join(followerDir, 'journals', 'ns1', fin));

    const staged = await new Promise<Parameters<JournalStateMachine['installSnapshot']>[0]>((resolve, reject) =>
      follower.fetchSnapshot('n1', { index, term: 1, conf }, (e, s) => (e ? reject(e) : resolve(s!))),
    );
    expect(staged.meta.index).to.equal(index);
    const inProgressBytes = leader.journal('ns1')!.inProgress!.sizeBytes;
    expect(chunks, 'only the in-progress segment was transferred, in 64-byte chunks').to.equal(
      Math.ceil(inProgressBytes / 64),
    );
    await new Promise<void>((resolve, reject) => follower.installSnapshot(staged, (e) => (e ? reject(e) : resolve())));
    expect(follower.snapshotMeta.index).to.equal(index);
    expect(JSON.stringify(follower.journal('ns1')!.state())).to.equal(JSON.stringify(leader.journal('ns1')!.state()));
    expect(filesOf(path.join(followerDir, 'journals', 'ns1'))).to.deep.equal(leaderFiles);
    leader.close();
    follower.close();
  });
}

describe('journal state machine: commands validated before they were proposed', () => {
  let root: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-stateMachine-'));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  it('the very bytes a route validated apply from its decoding; equal bytes in another object are decoded and checked', () => {
    const stateMachine = fresh(path.join(root, 'a'));
    const format = entry(2, { jid: 'ns1', format: { nsInfo: ns } });
    // What the route says these bytes are (a journal it names differently) wins for this object: proof that
    // they are not decoded again.
    stateMachine.knowValidated(
      format.data,
      pb.Command.decode(pb.Command.encode({ jid: 'other', format: { nsInfo: ns } }).finish()),
    );
    expect(stateMachine.apply([format]).map((r) => r.code)).to.deep.equal([pb.ErrorCode.OK]);
    expect(stateMachine.allJournals().map((j) => j.jid)).to.deep.equal(['other']);
    // The same bytes in a copy (as a follower receives them) are decoded: journal ns1.
    const copy = { ...format, index: 3, data: Uint8Array.from(format.data) };
    expect(stateMachine.apply([copy]).map((r) => r.code)).to.deep.equal([pb.ErrorCode.OK]);
    expect(
      stateMachine
        .allJournals()
        .map((j) => j.jid)
        .sort(),
    ).to.deep.equal(['ns1', 'other']);
    // Garbage in a copy is still refused at apply, as every replica refuses it.
    const garbage = { ...format, index: 4, data: Uint8Array.from([0xff, 0xff, 0xff]) };
    expect(stateMachine.apply([garbage]).map((r) => r.code)).to.deep.equal([pb.ErrorCode.INVALID_ARGUMENT]);
  });
});

describe('journal state machine: the journal limit at apply', () => {
  let root: string;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-stateMachine-'));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  it('a format carrying maxJournals creates no journal beyond it; without one, APPLY_MAX_JOURNALS bounds it', () => {
    const stateMachine = fresh(path.join(root, 'a'));
    const fmt = (index: number, jid: string, maxJournals?: number) =>
      entry(index, { jid, format: { nsInfo: ns, ...(maxJournals === undefined ? {} : { maxJournals }) } });
    const codes = (es: Entry[]) => stateMachine.apply(es).map((r) => pb.ErrorCode[r.code ?? 0]);
    expect(codes([fmt(2, 'j1', 2), fmt(3, 'j2', 2), fmt(4, 'j3', 2), fmt(5, 'j1', 2)])).to.deep.equal([
      'OK',
      'OK',
      'TOO_MANY_JOURNALS',
      'OK',
    ]);
    // A larger limit carried by a later leader lets it grow; the fixed maximum caps whatever is carried.
    expect(codes([fmt(6, 'j3', 3)])).to.deep.equal(['OK']);
    expect(journalLimitOf({ maxJournals: 4_000_000_000 })).to.equal(APPLY_MAX_JOURNALS);
    expect(journalLimitOf({})).to.equal(APPLY_MAX_JOURNALS);
    expect(stateMachine.journalCount).to.equal(3);
  });
});

describe('journal state machine: out of file descriptors', () => {
  let root: string;
  const realOpenSync = fs.openSync;
  const realOpen = fs.open;
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-stateMachine-'));
  });
  afterEach(() => {
    fs.openSync = realOpenSync;
    fs.open = realOpen;
    fs.rmSync(root, { recursive: true, force: true });
  });
  const emfile = () => Object.assign(new Error('EMFILE: too many open files'), { code: 'EMFILE' });

  it('an apply that cannot open a segment stops there (ApplyInterrupted, what it applied); applied again later, the state is as if nothing happened', () => {
    const cmds = [...head, ...tail];
    const stateMachine = fresh(path.join(root, 'a'));
    // No descriptor for a new segment file: the third command (startSegment) cannot take effect.
    fs.openSync = ((p: fs.PathLike, ...rest: unknown[]) => {
      if (String(p).includes('edits_inprogress')) throw emfile();
      return (realOpenSync as (...a: unknown[]) => number)(p, ...rest);
    }) as typeof fs.openSync;
    let interrupted: ApplyInterrupted<unknown> | null = null;
    try {
      stateMachine.apply(cmds.map((c, i) => entry(i + 2, c)));
    } catch (e) {
      interrupted = e as ApplyInterrupted<unknown>;
    }
    expect(interrupted).to.be.instanceOf(ApplyInterrupted);
    expect(interrupted!.results.length, 'format and newEpoch applied').to.equal(2);
    fs.openSync = realOpenSync;
    const rest = stateMachine.apply(cmds.slice(2).map((c, i) => entry(i + 4, c)));
    const clean = fresh(path.join(root, 'b'));
    const cleanResults = clean.apply(cmds.map((c, i) => entry(i + 2, c)));
    expect([...interrupted!.results, ...rest]).to.deep.equal(cleanResults);
    expect(stateMachine.journal('ns1')!.state()).to.deep.equal(clean.journal('ns1')!.state());
    expect(filesOf(path.join(root, 'a', 'journals', 'ns1'))).to.deep.equal(
      filesOf(path.join(root, 'b', 'journals', 'ns1')),
    );
  });

  it('a snapshot that runs out of descriptors fails as a shortage, leaves nothing behind, and the next one makes the files durable', async () => {
    const dir = path.join(root, 'a');
    const stateMachine = fresh(dir);
    stateMachine.apply(head.map((c, i) => entry(i + 2, c)));
    const conf1 = { voters: ['n1'], votersOutgoing: [], learners: [] };
    fs.open = ((...args: unknown[]) => {
      const cb = args[args.length - 1] as (e: Error) => void;
      setImmediate(() => cb(emfile()));
    }) as unknown as typeof fs.open;
    const failed = await save(stateMachine, { index: 5, term: 1, conf: conf1 }).then(
      () => null,
      (e: Error & { code?: string }) => e.code,
    );
    fs.open = realOpen;
    expect(failed).to.equal('EMFILE');
    expect(fs.readdirSync(path.join(dir, 'snapshots')).filter((n) => n.startsWith('tmp_'))).to.deep.equal([]);
    expect(
      stateMachine.journal('ns1')!.segments.some((s) => s.dirty),
      'its files still to be made durable',
    ).to.equal(true);
    await save(stateMachine, { index: 5, term: 1, conf: conf1 });
    expect(stateMachine.snapshots.list()[0]).to.equal(5);
    expect(stateMachine.journal('ns1')!.segments.some((s) => s.dirty)).to.equal(false);
  });
});
