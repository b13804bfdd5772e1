// A node's files are its own: every directory it creates is 0700 and every file 0600 (segments, the Raft log
// and metadata, snapshots and their hard links, the lock), whatever the umask; a data directory made
// world-readable by hand is tightened at start.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { QuorumJournalManager } from '../../../libqjm/index.js';
import { freePorts } from '../../../src/local-cluster.js';
import { startSingleNode } from '../../support/single-node.js';

/** Every path under dir (dir included) whose group or other bits are set, with its mode. */
function notPrivate(dir: string): string[] {
  const out: string[] = [];
  const visit = (p: string) => {
    const st = fs.lstatSync(p);
    if ((st.mode & 0o077) !== 0) out.push(`${path.relative(dir, p) || '.'} ${(st.mode & 0o777).toString(8)}`);
    if (st.isDirectory()) for (const n of fs.readdirSync(p)) visit(path.join(p, n));
  };
  visit(dir);
  return out;
}

function countFiles(dir: string): number {
  let n = 0;
  for (const e of fs.readdirSync(dir, { withFileTypes: true, recursive: true })) if (e.isFile()) n++;
  return n;
}

describe('data directory modes', function () {
  this.timeout(30_000);
  let umask: number;
  before(() => {
    // A permissive umask, as many systems have: the node's own modes must be what keeps its files private.
    umask = process.umask(0o022);
  });
  after(() => process.umask(umask));

  it('directories 0700, files 0600: segments, the log, metadata, snapshots, the lock', async () => {
    const address = `127.0.0.1:${(await freePorts(1))[0]}`;
    const { node, dir } = await startSingleNode({ listen: address, peers: [{ id: 'n1', address }] });
    try {
      const ns = { namespaceId: 1, clusterId: 'C', blockPoolId: 'B' };
      const q = new QuorumJournalManager({ journalId: 'ns1', peers: [address], writerId: 'w', nsInfo: ns });
      await q.format(ns);
      for (let seg = 0; seg < 2; seg++) {
        const { lastTxId } = await q.recoverUnfinalizedSegments();
        const out = await q.startLogSegment(lastTxId + 1, -64);
        for (let i = 0; i < 5; i++) out.write(Buffer.from(`e${i}`));
        const last = await out.flush();
        if (seg === 0) await q.finalizeLogSegment(lastTxId + 1, last);
      }
      await q.close();
      await new Promise<void>((resolve, reject) => node.replica.takeSnapshot((e) => (e ? reject(e) : resolve())));
    } finally {
      await node.stop();
    }
    try {
      expect(countFiles(dir), 'the directory holds segments, log, metadata, snapshots').to.be.above(8);
      expect(notPrivate(dir)).to.deep.equal([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a world-readable data directory is tightened at start, whatever it holds', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-modes-'));
    fs.chmodSync(dir, 0o755);
    fs.mkdirSync(path.join(dir, 'stray'), { mode: 0o755 });
    fs.writeFileSync(path.join(dir, 'stray', 'notes'), 'x', { mode: 0o644 });
    fs.chmodSync(path.join(dir, 'stray'), 0o755);
    fs.chmodSync(path.join(dir, 'stray', 'notes'), 0o644);
    const { node, dir: unused } = await startSingleNode({ dataDir: dir });
    try {
      expect(notPrivate(dir)).to.deep.equal([]);
    } finally {
      await node.stop();
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(unused, { recursive: true, force: true });
    }
  });
});
