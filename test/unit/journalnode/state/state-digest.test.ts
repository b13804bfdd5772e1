// The digest of the applied journal state at checkpoint indexes: replicas that applied the same commands hold
// the same digests at the same indexes, whether the commands' indexes fall on a checkpoint or the state is
// carried over one by entries that are not commands, and whether a replica restarted from a snapshot in
// between; a replica that applied something else differs.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { JournalStateMachine } from '../../../../journalnode/state/journal-state-machine.js';
import type { StateMachineOptions } from '../../../../journalnode/state/journal-state-machine.js';
import { DIGEST_EVERY_ENTRIES } from '../../../../journalnode/state/state-digest.js';
import { encodeRecords } from '../../../../src/edit-records.js';
import { qjournal } from '../../../../src/gen/proto.js';
import { EntryType } from '../../../../src/raft/types.js';
import type { Entry } from '../../../../src/raft/types.js';
import { nodeFileSystem } from '../../../../src/storage/node-file-system.js';

const pb = qjournal.journal;
const ns = { namespaceId: 1, clusterId: 'c', blockPoolId: 'b' };
const conf = { voters: ['n1'], votersOutgoing: [], learners: [] };
const quiet = { info() {}, warn() {}, error() {}, debug() {} };
const cmd = (index: number, c: qjournal.journal.ICommand): Entry => ({
  index,
  term: 1,
  type: EntryType.Normal,
  data: pb.Command.encode({ jid: 'ns1', ...c }).finish(),
});

/** Commands at the given indexes (others are not commands: no-ops, configurations): format, epoch, segment, writes. */
function commands(indexes: number[], tweak = ''): Entry[] {
  const [a, b, c, ...rest] = indexes;
  const out = [
    cmd(a!, { format: { nsInfo: ns } }),
    cmd(b!, { newEpoch: { nsInfo: ns, writerId: 'w' } }),
    cmd(c!, { startSegment: { epoch: 1, txid: 1, layoutVersion: -64 } }),
  ];
  for (const [i, index] of rest.entries()) {
    const records = encodeRecords(i + 1, [Buffer.from(`e${i}${tweak}`)]);
    out.push(cmd(index, { appendRecords: { epoch: 1, segmentTxid: 1, firstTxid: i + 1, count: 1, records } }));
  }
  return out;
}

describe('applied-state digests at checkpoint indexes', () => {
  let root: string;
  const opts = (dir: string): StateMachineOptions => ({
    fileSystem: nodeFileSystem,
    dataDir: dir,
    cacheBytesPerJournal: 0,
    maxSnapshotChunkBytes: 4096,
    keepSnapshots: 2,
    source: null,
    logger: quiet,
  });
  const fresh = (id: string) => {
    const dir = path.join(root, id);
    JournalStateMachine.bootstrap(opts(dir), { index: 1, term: 1, conf, peers: [] });
    return JournalStateMachine.open(opts(dir));
  };
  beforeEach(() => {
    root = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-digest-'));
  });
  afterEach(() => fs.rmSync(root, { recursive: true, force: true }));

  const N = DIGEST_EVERY_ENTRIES;
  // Commands around the checkpoints, some right on one, some leaving one to entries that are not commands.
  const indexes = [2, 3, 4, N - 1, N, N + 5, 2 * N - 3, 2 * N + 7, 3 * N + 1];

  it('the same commands give the same checkpoints, also when a checkpoint index is not a command', () => {
    const a = fresh('a');
    const b = fresh('b');
    const entries = commands(indexes);
    a.apply(entries);
    for (const e of entries) b.apply([e]);
    expect(a.digestCheckpoints().map((c) => c.index)).to.deep.equal([N, 2 * N, 3 * N]);
    expect(b.digestCheckpoints()).to.deep.equal(a.digestCheckpoints());
    expect(b.digest()).to.equal(a.digest());
    a.close();
    b.close();
  });

  it('a replica restarted from a snapshot between checkpoints records the later ones the same', async () => {
    const a = fresh('a');
    const entries = commands(indexes);
    a.apply(entries);
    const c = fresh('c');
    const head = entries.filter((e) => e.index <= N + 5);
    c.apply(head);
    await new Promise<void>((res, rej) =>
      c.saveSnapshot({ index: N + 5, term: 1, conf, peers: [] }, (e) => (e ? rej(e) : res())),
    );
    c.close();
    const again = JournalStateMachine.open(opts(path.join(root, 'c')));
    again.apply(entries.filter((e) => e.index > N + 5));
    expect(again.digestCheckpoints()).to.deep.equal(a.digestCheckpoints().filter((x) => x.index > N + 5));
    a.close();
    again.close();
  });

  it('a replica that applied other bytes has other digests from there on', () => {
    const a = fresh('a');
    const d = fresh('d');
    a.apply(commands(indexes));
    d.apply(commands(indexes, 'x'));
    const [a1, a2, a3] = a.digestCheckpoints();
    const [d1, d2, d3] = d.digestCheckpoints();
    // The first checkpoint (index N) already holds the differing records.
    expect(d1!.digest).to.not.equal(a1!.digest);
    expect(d2!.digest).to.not.equal(a2!.digest);
    expect(d3!.digest).to.not.equal(a3!.digest);
    a.close();
    d.close();
  });
});
