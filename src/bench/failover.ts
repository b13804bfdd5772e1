// W3(a) on its own, for a quick look at failover time: `node dist/src/bench/failover.js [trials]
// [electionTimeoutMs]` runs the benchmark's own measurement (w3LeaderKill in workloads.ts: kill -9 of the
// leader JournalNode under a steady writer, until a write issued after the kill is acknowledged).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { median, w3LeaderKill } from './workloads.js';

if (import.meta.url === `file://${process.argv[1]}`) {
  const trials = Number(process.argv[2] ?? 10);
  const electionTimeoutMs = Number(process.argv[3] ?? 1000);
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-failover-'));
  try {
    const ms = await w3LeaderKill(root, trials, electionTimeoutMs, (s) => console.log(s));
    console.log(
      `kill -9 of the leader -> first acknowledged write: median ${median(ms).toFixed(0)} ms, max ${Math.max(...ms).toFixed(0)} ms over ${trials} trials (electionTimeoutMs ${electionTimeoutMs})`,
    );
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
  }
}
