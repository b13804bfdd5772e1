// Journal data is hostile to the terminal that shows it: a writer id, a cluster id and records carrying ESC
// sequences, C1 controls, bidirectional overrides and line breaks (one forging an "all nodes healthy" row)
// reach qjm status, segments, tail and dump escaped, and their --json output parses to the very values.

import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { hasRawControl } from '../../support/raw-control.js';
import { QuorumJournalManager } from '../../../libqjm/index.js';
import { runQjm } from '../../../src/cli/qjm.js';
import { freePorts } from '../../../src/local-cluster.js';
import { startSingleNode } from '../../support/single-node.js';
import type { JournalNode } from '../../../journalnode/journal-node.js';

const FORGED = '| n1 | leader | all nodes healthy |';
const WRITER = `nn1\u001b[2J\u001b[H\n${FORGED}\u009b2J`;
const CLUSTER = `CID\u001b]0;pwned\u0007\u202eevil`;
const RECORDS = [`op\u001b[31mred\u001b[0m`, `\n${FORGED}`, `del\u007f csi\u009b1A`, 'mv "/a b" /c\\"d'];

async function qjm(args: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runQjm(args, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('qjm output of hostile journal data', function () {
  this.timeout(30_000);
  let node: JournalNode;
  let dir: string;
  let peers: string;

  before(async () => {
    // Listening where the configuration says it is: clients follow the members a node names.
    peers = `127.0.0.1:${(await freePorts(1))[0]}`;
    ({ node, dir } = await startSingleNode({ listen: peers, peers: [{ id: 'n1', address: peers }] }));
    const nsInfo = { namespaceId: 1, clusterId: CLUSTER, blockPoolId: 'BP' };
    const q = new QuorumJournalManager({ journalId: 'evil', peers: [peers], writerId: WRITER, nsInfo });
    try {
      await q.format(nsInfo);
      const { lastTxId } = await q.recoverUnfinalizedSegments();
      const out = await q.startLogSegment(lastTxId + 1, -64);
      for (const r of RECORDS) out.write(Buffer.from(r));
      await out.flush();
    } finally {
      await q.close();
    }
  });
  after(async () => {
    await node.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const human: [string, string[]][] = [
    ['status', ['status']],
    ['segments', ['segments', '--jid', 'evil']],
    ['tail', ['tail', '--jid', 'evil']],
  ];
  for (const [what, args] of human) {
    it(`${what}: every control character escaped, no forged line`, async () => {
      const r = await qjm([...args, '--peers', peers, '--insecure']);
      expect(r.code, r.err).to.equal(0);
      expect(hasRawControl(r.out + r.err), r.out).to.equal(false);
      expect(r.out.split('\n').some((l) => l.startsWith(FORGED))).to.equal(false);
    });
  }

  it('status shows the writer escaped; tail shows each record escaped on its own line', async () => {
    const status = await qjm(['status', '--peers', peers, '--insecure']);
    expect(status.out).to.include('nn1\\x1b[2J\\x1b[H\\x0a| n1 | leader | all nodes healthy |\\u009b2J');
    const tail = await qjm(['tail', '--jid', 'evil', '--peers', peers, '--insecure']);
    expect(tail.out.split('\n')).to.deep.equal([
      `1\t${Buffer.byteLength(RECORDS[0]!)}\top\\u001b[31mred\\u001b[0m`,
      `2\t${Buffer.byteLength(RECORDS[1]!)}\t\\n${FORGED}`,
      `3\t${Buffer.byteLength(RECORDS[2]!)}\tdel\\u007f csi\\u009b1A`,
      // Quotes as they are; a backslash doubled, so that it cannot pass for an escape.
      `4\t${Buffer.byteLength(RECORDS[3]!)}\tmv "/a b" /c\\\\"d`,
    ]);
  });

  it('dump of the segment file: records escaped', async () => {
    const jdir = path.join(dir, 'journals', 'evil');
    const file = path.join(jdir, fs.readdirSync(jdir)[0]!);
    const r = await qjm(['dump', file]);
    expect(r.code, r.err).to.equal(0);
    expect(hasRawControl(r.out + r.err)).to.equal(false);
    expect(r.out).to.include('del\\u007f csi\\u009b1A');
    expect(r.out).to.include('\tmv "/a b" /c\\\\"d\n');
  });

  it('--json: no raw control character, and the values parse back exactly', async () => {
    const status = await qjm(['status', '--json', '--peers', peers, '--insecure']);
    expect(hasRawControl(status.out)).to.equal(false);
    const reports = (
      JSON.parse(status.out) as {
        nodes: { status: { journals: Record<string, { writerId: string; clusterId: string }> } }[];
      }
    ).nodes;
    expect(reports[0]!.status.journals.evil!.writerId).to.equal(WRITER);
    expect(reports[0]!.status.journals.evil!.clusterId).to.equal(CLUSTER);
    const segs = await qjm(['segments', '--jid', 'evil', '--json', '--peers', peers, '--insecure']);
    expect(hasRawControl(segs.out)).to.equal(false);
    expect((JSON.parse(segs.out) as { segments: unknown[] }).segments.length).to.equal(1);
  });
});
