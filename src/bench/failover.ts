// W3(a): time from kill -9 of the leader JournalNode, under a steady writer, until writes are acknowledged
// again (by the new leader). One fresh 3-node cluster per run of trials; the killed node is restarted
// between trials.

import { LocalCluster } from '../local-cluster.js';
import { QuorumJournalManager } from '../../libqjm/index.js';
import { waitFor } from '../wait-for.js';

export interface FailoverResult {
  electionTimeoutMs: number;
  trialsMs: number[];
  medianMs: number;
  maxMs: number;
}

const ns = { namespaceId: 1, clusterId: 'CID-bench', blockPoolId: 'BP-bench' };

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

export async function measureLeaderFailover(opts: {
  trials: number;
  electionTimeoutMs: number;
  log?: (s: string) => void;
}): Promise<FailoverResult> {
  const c = await LocalCluster.create({
    nodes: 3,
    electionTimeoutMs: opts.electionTimeoutMs,
    logLevel: 'warn',
    journals: ['ns1'],
  });
  const trialsMs: number[] = [];
  try {
    c.startAll();
    await c.waitForLeader(30_000);
    const q = new QuorumJournalManager({
      journalId: 'ns1',
      peers: c.clientPeers,
      writerId: 'bench',
      nsInfo: ns,
      requestTimeoutMs: 1000,
      writeTimeoutMs: 60_000,
      tls: c.tls('writer'),
    });
    await q.format(ns);
    await q.recoverUnfinalizedSegments();
    const out = await q.startLogSegment(1, -64);
    const rec = Buffer.alloc(128, 7);
    for (let t = 0; t < opts.trials; t++) {
      const leader = await c.waitForLeader(30_000);
      // Steady load: one record per flush, back to back.
      let stop = false;
      let killedAt = 0;
      let firstAckAfterKill = 0;
      const writer = (async () => {
        while (!stop) {
          out.write(rec);
          await out.flush();
          const now = performance.now();
          if (killedAt > 0 && firstAckAfterKill === 0) firstAckAfterKill = now;
        }
      })();
      await new Promise((r) => setTimeout(r, 300));
      killedAt = performance.now();
      const killed = c.kill(leader);
      await waitFor(() => firstAckAfterKill > 0, {
        timeoutMs: 60_000,
        intervalMs: 5,
        what: 'the first acknowledged write after the kill',
      });
      stop = true;
      await writer;
      await killed;
      const ms = firstAckAfterKill - killedAt;
      trialsMs.push(ms);
      opts.log?.(`  trial ${t + 1}: leader ${leader} killed, writes acknowledged again after ${ms.toFixed(0)} ms`);
      c.start(leader);
      await c.waitForLeader(30_000);
    }
    await q.close();
  } finally {
    await c.destroy();
  }
  return {
    electionTimeoutMs: opts.electionTimeoutMs,
    trialsMs,
    medianMs: median(trialsMs),
    maxMs: Math.max(...trialsMs),
  };
}

// `node dist/src/bench/failover.js [trials] [electionTimeoutMs]`
if (import.meta.url === `file://${process.argv[1]}`) {
  const trials = Number(process.argv[2] ?? 10);
  const et = Number(process.argv[3] ?? 1000);
  const r = await measureLeaderFailover({ trials, electionTimeoutMs: et, log: (s) => console.log(s) });
  console.log(
    `kill -9 of the leader -> first acknowledged write: median ${r.medianMs.toFixed(0)} ms, max ${r.maxMs.toFixed(0)} ms over ${trials} trials (electionTimeoutMs ${et})`,
  );
}
