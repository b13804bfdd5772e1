// The tailing reader for W4: follows the journal from a txid and notes when each record arrives (wall-clock
// ms, comparable across processes on one machine). On 'report', answers [txid, ms] for every txid received.
// As libqjm reads (it moves to the leader, the freshest node), or pinned to one node ('pin': W4's follower
// variant, long-polling that node only). argv: peers, first txid, 'follow' | 'pin', capacity in txids.
import { qjournal } from '../gen/proto.js';
import { iterateRecords } from '../edit-records.js';
import { QuorumJournalManager } from '../../libqjm/index.js';
import { JournalClient } from '../../libqjm/journal-client.js';

const [peers, from, mode, capacity] = process.argv.slice(2);
const first = Number(from);
// Sized by the bench for the whole run: growing it (a copy of megabytes) would stall the reader mid-run.
let arrivals = new Float64Array(Math.max(1 << 20, Number(capacity ?? 0)));
process.on('message', (m) => {
  if (m === 'report') {
    const out: [number, number][] = [];
    for (let i = 0; i < arrivals.length; i++) if (arrivals[i]! > 0) out.push([first + i, arrivals[i]!]);
    process.send?.(out);
  }
});

/** Notes a record's arrival; the first one (the bench writes it before it measures) means connected and caught up. */
function arrived(txid: number): void {
  if (txid === first) process.send?.('tailing');
  const i = txid - first;
  if (i >= arrivals.length) {
    const grown = new Float64Array(arrivals.length * 2);
    grown.set(arrivals);
    arrivals = grown;
  }
  arrivals[i] = performance.timeOrigin + performance.now();
}

if (mode === 'pin') {
  const node = peers!.split(',')[0]!;
  const client = new JournalClient({ peers: [node] });
  const pb = qjournal.journal;
  for (let next = first; ; ) {
    const body = pb.GetEditsRequest.encode({
      jid: 'bench',
      fromTxid: next,
      maxTxns: 50_000,
      maxBytes: 4 << 20,
      waitMs: 2000,
      inProgressOk: true,
    }).finish();
    const { response } = await client.read('/qjm/getEdits', body, (b) => pb.GetEditsResponse.decode(b), {
      node,
      timeoutMs: 7000,
    });
    for (const r of iterateRecords(response.records)) {
      arrived(r.txid);
      next = r.txid + 1;
    }
  }
} else {
  const q = new QuorumJournalManager({ journalId: 'bench', peers: peers!.split(','), writerId: 'tail-reader' });
  for await (const e of q.readEdits({ fromTxId: first, inProgressOk: true, follow: true, waitMs: 2000 }))
    arrived(e.txid);
}
