// The leader's comparison of the replicas over time: an alarm is raised with a warning naming the node and the
// file, kept while the difference lasts, cleared with a line saying why once the node agrees again; a node that
// does not answer keeps its alarms (it is not judged); a node that stops leading clears its alarms saying so;
// a follower compares nothing.

import { expect } from 'chai';
import { IntegrityMonitor } from '../../../../journalnode/integrity/integrity-monitor.js';
import type { IntegrityReportJson } from '../../../../src/integrity.js';

function report(node: string, crc32 = 7): IntegrityReportJson {
  return {
    node,
    appliedIndex: 100,
    digest: 'd',
    checkpoints: [],
    logTerms: [],
    segments: [{ jid: 'ns1', file: 'edits_1-9', firstTxId: 1, lastTxId: 9, sizeBytes: 900, crc32 }],
    segmentsLeftOut: 0,
    damage: [],
  };
}

describe('integrity monitor (the leader comparing the replicas)', () => {
  const lines: { level: string; msg: string }[] = [];
  const logger = {
    debug() {},
    info: (_f: object, msg: string) => lines.push({ level: 'info', msg }),
    warn: (_f: object, msg: string) => lines.push({ level: 'warn', msg }),
    error() {},
  };
  let leader = true;
  let reports: Record<string, IntegrityReportJson | Error>;
  const monitor = () =>
    new IntegrityMonitor({
      selfId: 'n1',
      isLeader: () => leader,
      members: () => ['n1', 'n2', 'n3'],
      localReport: () => report('n1'),
      fetchReport: (peer, cb) => {
        const r = reports[peer]!;
        if (r instanceof Error) cb(r);
        else cb(null, r);
      },
      intervalMs: 1000,
      clock: { now: () => 5, schedule: () => () => {} },
      logger,
    });

  beforeEach(() => {
    lines.length = 0;
    leader = true;
    reports = { n2: report('n2'), n3: report('n3') };
  });

  it('raises an alarm naming the node and the file, keeps it, and clears it saying why', () => {
    const m = monitor();
    reports.n3 = report('n3', 8);
    m.checkNow();
    expect(m.status().alarms.map((a) => [a.kind, a.node, a.file, a.range])).to.deep.equal([
      ['segment', 'n3', 'edits_1-9', 'journal ns1 txids 1-9'],
    ]);
    expect(lines).to.deep.equal([{ level: 'warn', msg: 'integrity alarm: n3 differs from the majority in edits_1-9' }]);
    m.checkNow();
    expect(m.status().alarms).to.have.length(1);
    expect(lines).to.have.length(1);
    reports.n3 = report('n3');
    m.checkNow();
    expect(m.status().alarms).to.deep.equal([]);
    expect(lines[1]).to.deep.equal({
      level: 'info',
      msg: 'integrity alarm cleared: n3 agrees with the majority again',
    });
  });

  it('a node that does not answer keeps its alarm, and is listed as unreachable', () => {
    const m = monitor();
    reports.n3 = report('n3', 8);
    m.checkNow();
    reports.n3 = new Error('ECONNREFUSED');
    m.checkNow();
    expect(m.status().alarms.map((a) => a.node)).to.deep.equal(['n3']);
    expect(m.status().unreachable).to.deep.equal([{ node: 'n3', reason: 'ECONNREFUSED' }]);
  });

  it('a peer that answers as another node is not taken for it', () => {
    const m = monitor();
    reports.n3 = report('n2', 8);
    m.checkNow();
    expect(m.status().alarms).to.deep.equal([]);
    expect(m.status().unreachable).to.deep.equal([{ node: 'n3', reason: 'answered as n2' }]);
  });

  it('stopping leading clears the alarms, saying so; a follower compares nothing', () => {
    const m = monitor();
    reports.n3 = report('n3', 8);
    m.checkNow();
    leader = false;
    m.checkNow();
    expect(m.status().alarms).to.deep.equal([]);
    expect(lines[1]!.msg).to.match(/integrity alarms cleared: this node no longer leads/);
    m.checkNow();
    expect(m.status().checkedAtMs).to.equal(0);
  });
});
