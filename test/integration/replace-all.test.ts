// Every node of a running cluster replaced while one writer streams: n1..n3 become n4..n6, one change-peers
// at a time (the new node started with --join, the old one stopped after): first the leader, removed while
// it leads; then a leader moved away first (transfer-leader); then a follower. The writer, started against
// n1..n3 only, never fails (it follows the members its answers name), and a reader seeded the same way reads
// every txid the writer was told is durable, after each change and at the end. The stall each change causes
// (the longest gap between acknowledgements around it) is printed: OPERATIONS.md quotes it.

import { expect } from 'chai';
import { QuorumJournalManager } from '../../libqjm/index.js';
import { LocalCluster } from '../../src/local-cluster.js';
import { waitFor } from '../support/async.js';
import { destroyCluster, startWriting } from '../support/cluster-writer.js';
import { runQjm } from '../support/qjm-process.js';

const ns = { namespaceId: 99, clusterId: 'CID-replace', blockPoolId: '' };
/** Records per flush: the writer's steady trickle of small batches. */
const RECORDS_PER_FLUSH = 10;

const ORIGINALS = ['n1', 'n2', 'n3'];

interface Change {
  old: string;
  replacement: string;
  how: 'leader removed while leading' | 'leader moved away first' | 'follower';
  startMs: number;
  endMs: number;
}

/** The longest time between two acknowledgements that overlaps [fromMs, toMs]. */
function longestGapMs(ackMs: readonly number[], fromMs: number, toMs: number): number {
  let gap = 0;
  for (let i = 1; i < ackMs.length; i++)
    if (ackMs[i]! >= fromMs && ackMs[i - 1]! <= toMs) gap = Math.max(gap, ackMs[i]! - ackMs[i - 1]!);
  return gap;
}

/** Reads txids fromTxId..toTxId through `q` (a reader that asks any node), checking each record; returns the last txid read. */
async function readBack(q: QuorumJournalManager, fromTxId: number, toTxId: number): Promise<number> {
  let txid = fromTxId - 1;
  if (toTxId < fromTxId) return txid;
  for await (const e of q.readEdits({ fromTxId, inProgressOk: true })) {
    txid++;
    expect(e.txid).to.equal(txid);
    expect(Buffer.from(e.record).toString()).to.equal(`e${txid}`);
    if (txid === toTxId) break;
  }
  expect(txid, `txids ${fromTxId}..${toTxId} read back`).to.equal(toTxId);
  return txid;
}

describe('replacing every node', function () {
  this.timeout(90_000);
  let c: LocalCluster;

  afterEach(destroyCluster(() => c));

  it('n1..n3 replaced by n4..n6 one at a time, the leader included, under a streaming writer: it never fails, and every acknowledged txid reads back', async () => {
    c = await LocalCluster.create({ nodes: 3, electionTimeoutMs: 400 });
    c.startAll();
    const retried: string[] = [];
    const w = await startWriting(c, ns, { onRetry: (e) => void retried.push(e.code) });
    const ackMs: number[] = [];
    let acked = w.lastTxId;
    let stopping = false;
    // The first error the writer saw (every retriable one is retried inside flush, so any error is final).
    let writerError: unknown = null;
    const streaming = (async () => {
      let next = w.lastTxId + 1;
      while (!stopping) {
        for (let i = 0; i < RECORDS_PER_FLUSH; i++, next++) w.out.write(Buffer.from(`e${next}`));
        acked = await w.out.flush();
        ackMs.push(performance.now());
      }
    })().catch((e: unknown) => {
      writerError = e ?? new Error('writer failed');
    });
    /** Waits until the writer wrote a few more batches; fails at once with the writer's error if it has one. */
    const writing = (what: string) => {
      const from = acked;
      return waitFor(
        () => {
          if (writerError !== null) throw new Error(`the writer failed ${what}: ${String(writerError)}`);
          return acked >= from + 5 * RECORDS_PER_FLUSH || null;
        },
        { timeoutMs: 30_000, what: `the writer to write on ${what}` },
      );
    };
    await writing('at the start');
    // A reader (a standby tailing the journal) that knows n1..n3 only, like the writer, and reads after each
    // change: reads go to any node, never to a leader that redirects, so it finds the new nodes only through
    // the members its answers name.
    const tailer = new QuorumJournalManager({
      journalId: 'ns1',
      peers: c.addresses,
      writerId: 'standby',
      nsInfo: ns,
      ...(c.certsDir === null ? {} : { tls: c.tls('reader') }),
    });
    let tailed = w.lastTxId;

    const changes: Change[] = [];
    let voters = ['n1', 'n2', 'n3'];
    const live = () =>
      c.nodes
        .filter((x) => x.proc)
        .map((x) => x.address)
        .join(',');
    const transfer = async (to: string) => {
      const r = await runQjm(c, ['transfer-leader', '--peers', live(), '--to', to]);
      expect(r.code, `transfer to ${to}: ${r.err}`).to.equal(0);
    };
    /** One replacement: `old` out, `replacement` (started with --join) in, one change-peers, then `old` stopped. */
    const replace = async (old: string, replacement: string, how: Change['how']) => {
      const startMs = performance.now();
      if (how === 'leader moved away first') await transfer(voters.find((v) => v !== old && !ORIGINALS.includes(v))!);
      await c.addNode(replacement);
      c.start(replacement);
      const next = [...voters.filter((v) => v !== old), replacement];
      const r = await runQjm(c, [
        'change-peers',
        '--peers',
        live(),
        '--new-peers',
        next.map((id) => `${id}=${c.node(id).address}`).join(','),
      ]);
      expect(r.code, `${old} -> ${replacement}: ${r.err}`).to.equal(0);
      expect(await c.stop(old), `${old} stops cleanly`).to.equal(0);
      changes.push({ old, replacement, how, startMs, endMs: performance.now() });
      voters = next;
      await writing(`after ${old} -> ${replacement}`);
      tailed = await readBack(tailer, tailed + 1, acked);
    };

    try {
      // The leader, removed while it leads: it steps down once the change is confirmed, the others elect.
      await replace(await c.waitForLeader(), 'n4', 'leader removed while leading');
      // A leader moved away first (to n4), then replaced: an operator's way to avoid the election.
      const originalLeads = () => c.waitForLeader().then((l) => ORIGINALS.includes(l));
      if (!(await originalLeads())) await transfer(voters.find((v) => ORIGINALS.includes(v))!);
      await replace(await c.waitForLeader(), 'n5', 'leader moved away first');
      // The last original node, as a follower (n4 leads, unless an election moved the leadership back).
      if (await originalLeads()) await transfer('n4');
      await replace(voters.find((v) => ORIGINALS.includes(v))!, 'n6', 'follower');
    } finally {
      // Also on failure: a writer left streaming against a destroyed cluster would retry past the test's end.
      stopping = true;
      await streaming;
    }
    expect(writerError, 'the writer never failed').to.equal(null);

    // The tailer (seeded with n1..n3 only, like the writer) reads the rest: every acknowledged txid.
    tailed = await readBack(tailer, tailed + 1, acked);
    expect(tailed, 'every acknowledged txid reads back').to.equal(acked);
    await tailer.close();
    await w.q.close();

    const stallsMs = changes.map((ch) => longestGapMs(ackMs, ch.startMs, ch.endMs + 1000));
    const gapsMs = ackMs
      .slice(1)
      .map((t, i) => t - ackMs[i]!)
      .sort((a, b) => a - b);
    console.log(
      `    ${acked - w.lastTxId} txids in ${ackMs.length} acknowledgements (median gap ${Math.round(gapsMs[gapsMs.length >> 1]!)} ms); retries seen: ${retried.length ? [...new Set(retried)].join(', ') : 'none'}`,
    );
    for (const [i, ch] of changes.entries()) {
      console.log(
        `    ${ch.old} -> ${ch.replacement} (${ch.how}): change took ${Math.round(ch.endMs - ch.startMs)} ms, longest stall ${Math.round(stallsMs[i]!)} ms`,
      );
    }
  });
});
