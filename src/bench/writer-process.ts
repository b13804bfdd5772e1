// A stand-in active master for W3(b): recovers the journal (fencing the previous writer), then streams
// records until it is killed. Tells its parent once it is writing.
import { QuorumJournalManager } from '../../libqjm/index.js';

const [peers, writerId] = process.argv.slice(2);
const q = new QuorumJournalManager({
  journalId: 'bench',
  peers: peers!.split(','),
  writerId: writerId!,
  nsInfo: { namespaceId: 1, clusterId: 'CID-bench', blockPoolId: 'BP-bench' },
});
const { lastTxId } = await q.recoverUnfinalizedSegments();
const out = await q.startLogSegment(lastTxId + 1, -64);
const rec = Buffer.alloc(128, 0x35);
process.send?.('writing');
for (;;) {
  for (let i = 0; i < 500; i++) if (!out.write(rec)) await out.drain();
  await out.flush();
}
