// The tailing reader for W4: follows the journal from a txid and notes when each record arrives (wall-clock
// ms, comparable across processes on one machine). On 'report' with a list of txids, answers their times.
import { QuorumJournalManager } from '../../libqjm/index.js';

const [peers, from] = process.argv.slice(2);
const q = new QuorumJournalManager({ journalId: 'bench', peers: peers!.split(','), writerId: 'tail-reader' });
const first = Number(from);
let arrivals = new Float64Array(1 << 20);
process.on('message', (m) => {
  if (m === 'report') {
    const out: [number, number][] = [];
    for (let i = 0; i < arrivals.length; i++) if (arrivals[i]! > 0) out.push([first + i, arrivals[i]!]);
    process.send?.(out);
  }
});
setTimeout(() => process.send?.('tailing'), 300);
for await (const e of q.readEdits({ fromTxId: first, inProgressOk: true, follow: true, waitMs: 2000 })) {
  const i = e.txid - first;
  if (i >= arrivals.length) {
    const grown = new Float64Array(arrivals.length * 2);
    grown.set(arrivals);
    arrivals = grown;
  }
  arrivals[i] = performance.timeOrigin + performance.now();
}
