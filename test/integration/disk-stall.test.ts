// A leader whose disk stalls, on real processes with mutual TLS: its fdatasync calls are held
// (src/bench/disk-stall.ts, loaded into each node with `node --import`), and past leaderSyncStallMs it hands
// leadership to a voter holding its whole log, so a write commits under the new leader while the old
// leader's disk is still held; once the disk moves again the old leader follows and catches up.

import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { LocalCluster } from '../../src/local-cluster.js';
import { DISK_STALL_PRELOAD, stallFileOf } from '../../src/bench/disk-stall.js';
import { waitFor } from '../support/async.js';
import { destroyCluster, startWriting } from '../support/cluster-writer.js';

const ns = { namespaceId: 21, clusterId: 'CID-stall', blockPoolId: 'BP-stall' };

/** Starts every node of `c` with the stall loaded, watching `dir` (the environment is read at each spawn). */
function startStallable(c: LocalCluster, dir: string): void {
  const saved = { args: process.env.QJ_NODE_ARGS, dir: process.env.QJ_DISK_STALL_DIR };
  process.env.QJ_NODE_ARGS = `${saved.args ?? ''} --import=${DISK_STALL_PRELOAD}`.trim();
  process.env.QJ_DISK_STALL_DIR = dir;
  try {
    c.startAll();
  } finally {
    for (const [key, value] of [
      ['QJ_NODE_ARGS', saved.args],
      ['QJ_DISK_STALL_DIR', saved.dir],
    ] as const) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  }
}

describe('a leader whose disk stalls', function () {
  this.timeout(120_000);
  let c: LocalCluster | undefined;
  afterEach(destroyCluster(() => c));

  it('hands leadership to a caught-up voter: a write commits under the new leader while its own disk is held', async () => {
    c = await LocalCluster.create({ nodes: 3, electionTimeoutMs: 1000 });
    const stallDir = path.join(c.root, 'stalls');
    fs.mkdirSync(stallDir);
    startStallable(c, stallDir);
    const w = await startWriting(c, ns, { writeTimeoutMs: 60_000 });
    w.out.write(new TextEncoder().encode('before the stall'));
    await w.out.flush();
    const leader = await c.waitForLeader();
    const flag = stallFileOf(stallDir, leader);
    fs.writeFileSync(flag, '');
    try {
      // A write in flight on the stalled leader: its own log write never finishes.
      w.out.write(new TextEncoder().encode('during the stall'));
      const flushed = w.out.flush();
      // Twenty election timeouts: without the hand-over the stalled node keeps leading as long as its disk stalls.
      const next = await c.waitForLeader(20_000, [leader]);
      await flushed;
      const old = (await c.status(leader))!;
      const now = (await c.status(next))!;
      expect(old.state, `${leader} stepped down`).to.not.equal('leader');
      expect(old.diskIndex, `the write committed without ${leader}'s disk`).to.be.below(now.commitIndex);
      await waitFor(() => c!.readLog(leader).includes(`handing leadership to ${next}`), {
        what: `${leader}'s warning naming the node it hands over to`,
      });
    } finally {
      fs.rmSync(flag, { force: true });
    }
    const commit = (await c.status(await c.waitForLeader()))!.commitIndex;
    await waitFor(
      async () => {
        const s = await c!.status(leader);
        return s !== null && s.leader !== null && s.diskIndex >= commit;
      },
      { timeoutMs: 30_000, intervalMs: 20, what: `${leader} following and caught up once its disk moves` },
    );
    await w.q.close();
  });
});
