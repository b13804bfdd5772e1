// The start most real-process tests share: the cluster running with a leader, a writer (with the cluster's
// writer certificate) that formatted the journal, fenced every earlier writer and opened the next segment;
// and the hook that destroys a test's cluster, keeping its logs when the test failed.

import { QuorumJournalManager } from '../../libqjm/index.js';
import type { EditLogOutputStream, NamespaceInfo, QjmOptions } from '../../libqjm/index.js';
import type { LocalCluster } from '../../src/local-cluster.js';

export interface OpenedWriter {
  q: QuorumJournalManager;
  out: EditLogOutputStream;
  epoch: number;
  /** The journal's last txid before this segment (it starts at lastTxId + 1). */
  lastTxId: number;
}

export async function startWriting(
  c: LocalCluster,
  ns: NamespaceInfo,
  o: Partial<QjmOptions> & { format?: boolean } = {},
): Promise<OpenedWriter> {
  const { format = true, ...opts } = o;
  await c.waitForLeader();
  const q = new QuorumJournalManager({
    journalId: 'ns1',
    peers: c.addresses,
    writerId: 'nn1',
    nsInfo: ns,
    ...(c.certsDir === null ? {} : { tls: c.tls('writer') }),
    ...opts,
  });
  if (format) await q.format(ns);
  const { epoch, lastTxId } = await q.recoverUnfinalizedSegments();
  const out = await q.startLogSegment(lastTxId + 1, -64);
  return { q, out, epoch, lastTxId };
}

/** An afterEach hook: destroys the test's cluster, keeping its logs (and saying where) when the test failed. */
export function destroyCluster(cluster: () => LocalCluster | undefined): (this: Mocha.Context) => Promise<void> {
  return async function (this: Mocha.Context) {
    const c = cluster();
    if (!c) return;
    const failed = this.currentTest?.state === 'failed';
    await c.destroy(failed);
    if (failed) console.log(`    cluster logs kept in ${c.root}`);
  };
}
