#!/usr/bin/env node
// Measures what stalled large reads cost a leader: a 3-node cluster (mutual TLS), a journal of --mib MiB of
// edits, then --count connections with the reader certificate that each ask getEdits for --answer-mib MiB
// from txid 1 and never read a byte of the answer. Prints the leader's peak RSS, how /healthz answered
// meanwhile (worst latency, failures) and whether leadership moved. Run after `npm run build`:
//   node scripts/stalled-reads.mjs [--count 500] [--mib 40] [--answer-mib 16] [--hold-s 10] [--max-rss-mb 6000]
// --max-rss-mb stops opening connections once the leader is that large (a node without bounds would take
// the machine's memory).

import { parseArgs } from 'node:util';
import { qjournal } from '../dist/src/gen/proto.js';
import { LocalCluster } from '../dist/src/local-cluster.js';
import {
  memoryMb,
  openStalledReads,
  probeHealth,
  readerMaterial,
  writeLargeJournal,
} from '../dist/test/support/stalled-readers.js';

const { values: a } = parseArgs({
  options: {
    count: { type: 'string', default: '500' },
    mib: { type: 'string', default: '40' },
    'answer-mib': { type: 'string', default: '16' },
    'hold-s': { type: 'string', default: '10' },
    'max-rss-mb': { type: 'string', default: '6000' },
  },
});
const count = Number(a.count);

const c = await LocalCluster.create({ nodes: 3, electionTimeoutMs: 1000 });
c.startAll();
try {
  const leader = c.node(await c.waitForLeader());
  await writeLargeJournal(c, Number(a.mib));
  const before = memoryMb(leader.proc.pid);
  const { term } = await c.status(leader.id);
  const health = probeHealth(c, leader.address);
  const material = readerMaterial(c);
  const body = qjournal.journal.GetEditsRequest.encode({
    jid: 'ns1',
    fromTxid: 1,
    maxBytes: Number(a['answer-mib']) << 20,
    maxTxns: 0,
  }).finish();
  const sockets = [];
  const t0 = Date.now();
  while (sockets.length < count && memoryMb(leader.proc.pid).rssMb < Number(a['max-rss-mb'])) {
    const n = Math.min(25, count - sockets.length);
    sockets.push(
      ...(await openStalledReads({ address: leader.address, tls: material, path: '/qjm/getEdits', body, count: n })),
    );
  }
  const openedS = (Date.now() - t0) / 1000;
  await new Promise((r) => setTimeout(r, Number(a['hold-s']) * 1000));
  const during = memoryMb(leader.proc.pid);
  const st = await c.status(leader.id, 5000);
  const h = await health.stop();
  for (const s of sockets) s.destroy();
  console.log(
    JSON.stringify(
      {
        stalledReads: sockets.length,
        asked: count,
        openedInS: openedS,
        answerMiB: Number(a['answer-mib']),
        journalMiB: Number(a.mib),
        leaderRssBeforeMb: Math.round(before.rssMb),
        leaderPeakRssMb: Math.round(during.peakMb),
        leaderRssDuringMb: Math.round(during.rssMb),
        healthzWorstMs: Math.round(h.worstMs),
        healthzFailures: h.failures,
        leaderMoved: st?.state !== 'leader' || st.term !== term,
      },
      null,
      2,
    ),
  );
} finally {
  await c.stopAll().catch(() => {});
  await c.destroy();
}
