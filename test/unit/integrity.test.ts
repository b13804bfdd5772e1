// Comparing the replicas' integrity reports: a node whose finalized segment, applied-state digest or log term
// differs from the majority is named with the file and the range; without a majority every holder is named;
// damage a node found is named; nodes that agree (or simply lag) are not. And a report from the network is
// checked before it is compared: malformed, oversized or out-of-range answers are refused.

import { expect } from 'chai';
import { checkIntegrityReport, compareReports, MAX_REPORT_SEGMENTS } from '../../src/integrity.js';
import type { IntegrityReportJson, SegmentHashJson } from '../../src/integrity.js';

const seg = (
  first: number,
  last: number,
  crc32 = 1000 + first,
  sizeBytes = 100 * (last - first + 1),
): SegmentHashJson => ({
  jid: 'ns1',
  file: `edits_${first}-${last}`,
  firstTxId: first,
  lastTxId: last,
  sizeBytes,
  crc32,
});

function report(node: string, over: Partial<IntegrityReportJson> = {}): IntegrityReportJson {
  return {
    node,
    appliedIndex: 5000,
    digest: 'd5000',
    checkpoints: [
      { index: 3072, digest: 'd3072' },
      { index: 4096, digest: 'd4096' },
    ],
    logTerms: [
      { index: 3072, term: 2 },
      { index: 4096, term: 3 },
    ],
    segments: [seg(1, 10), seg(11, 20)],
    segmentsLeftOut: 0,
    damage: [],
    ...over,
  };
}

describe('comparing integrity reports', () => {
  it('replicas that agree: nothing to say', () => {
    expect(compareReports([report('n1'), report('n2'), report('n3')])).to.deep.equal([]);
  });

  it('a lagging replica is not a difference: it shares fewer indexes and segments, all equal', () => {
    const lagging = report('n3', {
      appliedIndex: 4100,
      digest: 'd4100',
      checkpoints: [
        { index: 3072, digest: 'd3072' },
        { index: 4096, digest: 'd4096' },
      ],
      segments: [seg(1, 10)],
    });
    expect(compareReports([report('n1'), report('n2'), lagging])).to.deep.equal([]);
  });

  it('a finalized segment of another size or CRC: that node, the file and the txids, with the majority value', () => {
    const odd = report('n2', { segments: [seg(1, 10), seg(11, 20, 7)] });
    const d = compareReports([report('n1'), odd, report('n3')]);
    expect(d).to.have.length(1);
    expect(d[0]).to.include({ kind: 'segment', node: 'n2', file: 'edits_11-20', range: 'journal ns1 txids 11-20' });
    expect(d[0]!.detail).to.match(/CRC 00000007, the majority has 1000 bytes, CRC 000003f3/);
  });

  it('two holders that disagree: no majority, both named', () => {
    const a = report('n1', { segments: [seg(1, 10, 1)] });
    const b = report('n2', { segments: [seg(1, 10, 2)] });
    const c = report('n3', { segments: [] });
    const d = compareReports([a, b, c]);
    expect(d.map((x) => [x.kind, x.node])).to.deep.equal([
      ['segment', 'n1'],
      ['segment', 'n2'],
    ]);
    expect(d[0]!.detail).to.match(/no majority of the 2 replicas holding it agree/);
  });

  it('a different applied-state digest at a shared index: named once, at the newest index it differs', () => {
    const odd = report('n3', {
      checkpoints: [
        { index: 3072, digest: 'X3072' },
        { index: 4096, digest: 'X4096' },
      ],
      digest: 'X5000',
    });
    const d = compareReports([report('n1'), report('n2'), odd]);
    expect(d).to.deep.equal([
      {
        kind: 'digest',
        node: 'n3',
        file: null,
        range: 'Raft index 5000',
        detail: 'applied-state digest X5000, the majority has d5000',
      },
    ]);
  });

  it('a different term at an applied index (log matching broken): named', () => {
    const odd = report('n1', { logTerms: [{ index: 3072, term: 9 }] });
    const d = compareReports([odd, report('n2'), report('n3')]);
    expect(d.map((x) => [x.kind, x.node, x.range])).to.deep.equal([['log', 'n1', 'Raft index 3072']]);
  });

  it('damage a node found, and nodes that did not answer, are differences of their own', () => {
    const damaged = report('n2', {
      damage: [
        {
          id: 1,
          kind: 'segment',
          file: '/d/journals/ns1/edits_1-10',
          range: 'journal ns1 txids 1-10',
          offsetBytes: 512,
          reason: 'CRC mismatch for txid 4',
          foundBy: 'scrub',
          foundAtMs: 1,
          state: 'repairing',
          note: null,
          changedAtMs: 1,
        },
      ],
    });
    const d = compareReports([report('n1'), damaged], [{ node: 'n3', reason: 'ECONNREFUSED' }]);
    expect(d.map((x) => [x.kind, x.node, x.file])).to.deep.equal([
      ['unreachable', 'n3', null],
      ['damage', 'n2', '/d/journals/ns1/edits_1-10'],
    ]);
    expect(d[1]!.detail).to.equal('segment damaged (CRC mismatch for txid 4 at byte 512), repairing');
  });
});

describe('a report from the network is checked before it is compared', () => {
  const good = () => JSON.parse(JSON.stringify(report('n1'))) as Record<string, unknown>;

  it('a well-formed report passes as it is', () => {
    expect(checkIntegrityReport(good())).to.deep.equal(report('n1'));
  });

  const bad: [string, (r: Record<string, unknown>) => unknown][] = [
    ['not an object', () => 'hello'],
    ['null', () => null],
    ['no node', (r) => ({ ...r, node: '' })],
    ['a negative index', (r) => ({ ...r, appliedIndex: -1 })],
    ['an index past 2^53', (r) => ({ ...r, appliedIndex: 2 ** 60 })],
    ['a fractional index', (r) => ({ ...r, appliedIndex: 1.5 })],
    ['a digest that is not a string', (r) => ({ ...r, digest: 5 })],
    ['a huge string', (r) => ({ ...r, node: 'x'.repeat(100_000) })],
    ['segments not a list', (r) => ({ ...r, segments: {} })],
    [
      'too many segments',
      (r) => ({ ...r, segments: Array.from({ length: MAX_REPORT_SEGMENTS + 1 }, () => seg(1, 2)) }),
    ],
    ['a CRC over 32 bits', (r) => ({ ...r, segments: [{ ...seg(1, 2), crc32: 2 ** 33 }] })],
    ['a segment element that is a string', (r) => ({ ...r, segments: ['x'] })],
    [
      'too many checkpoints',
      (r) => ({ ...r, checkpoints: Array.from({ length: 65 }, (_, i) => ({ index: i, digest: 'd' })) }),
    ],
    ['a damage record of an unknown kind', (r) => ({ ...r, damage: [{ kind: 'disk' }] })],
    ['a log term that is negative', (r) => ({ ...r, logTerms: [{ index: 1, term: -2 }] })],
  ];
  for (const [what, make] of bad)
    it(`refused: ${what}`, () => {
      expect(() => checkIntegrityReport(make(good()))).to.throw(/not an integrity report/);
    });
});
