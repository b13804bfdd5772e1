// The retention floor a purge respects: the newest finalized segment, the last minTxnsRetained txids, what
// readers read recently — the lowest of them — and the bound on what it remembers of readers.

import { expect } from 'chai';
import { RecentReads, retentionFloor } from '../../../../journalnode/http/retention.js';
import type { JournalStateData, SegmentState } from '../../../../src/journal-state.js';

const seg = (firstTxId: number, lastTxId: number, inProgress = false): SegmentState => ({
  firstTxId,
  lastTxId,
  inProgress,
  file: '',
  sizeBytes: 0,
  crc32: 0,
  layoutVersion: -64,
});

const journal = (segments: SegmentState[], lastTxId: number): JournalStateData => ({
  jid: 'ns1',
  formatted: true,
  nsInfo: {},
  promisedEpoch: 1,
  lastWriterEpoch: 1,
  writerId: 'nn1',
  lastTxId,
  segments,
  epochRequestId: '',
});

describe('retention floor', () => {
  const j = journal([seg(1, 100), seg(101, 200), seg(201, 300), seg(301, 350, true)], 350);
  const clock = { ms: 1_000_000 };
  const fresh = () => new RecentReads(() => clock.ms);

  const cases: { name: string; minTxnsRetained: number; read?: number; want: number; reason: RegExp }[] = [
    {
      name: 'no other rule: the newest finalized segment stays',
      minTxnsRetained: 0,
      want: 201,
      reason: /newest finalized segment \(201-300\)/,
    },
    {
      name: 'minTxnsRetained reaches further back',
      minTxnsRetained: 200,
      want: 151,
      reason: /the last 200 txids stay/,
    },
    {
      name: 'minTxnsRetained larger than the journal: everything stays',
      minTxnsRetained: 1000,
      want: 1,
      reason: /minTxnsRetained/,
    },
    {
      name: 'a recent reader further back still',
      minTxnsRetained: 200,
      read: 42,
      want: 42,
      reason: /read from txid 42/,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const reads = fresh();
      if (c.read !== undefined) reads.note('ns1', 'nn2@127.0.0.1', c.read);
      const f = retentionFloor(j, { minTxnsRetained: c.minTxnsRetained, readWindowMs: 60_000, reads });
      expect(f.fromTxId).to.equal(c.want);
      expect(f.reason).to.match(c.reason);
    });
  }

  it('a reader seen longer ago than the window no longer holds the journal back', () => {
    const reads = fresh();
    reads.note('ns1', 'nn2@127.0.0.1', 42);
    clock.ms += 61_000;
    expect(retentionFloor(j, { minTxnsRetained: 0, readWindowMs: 60_000, reads }).fromTxId).to.equal(201);
    clock.ms -= 61_000;
  });

  it('a journal with no finalized segment and no rule: nothing holds it back', () => {
    const f = retentionFloor(journal([seg(1, 5, true)], 5), { minTxnsRetained: 0, readWindowMs: 0, reads: fresh() });
    expect(f.fromTxId).to.equal(0);
  });

  it('remembers at most 64 readers per journal: the one seen longest ago makes room', () => {
    const reads = fresh();
    reads.note('ns1', 'oldest', 1);
    for (let i = 0; i < 64; i++) reads.note('ns1', `r${i}`, 1000 + i);
    expect(reads.lowest('ns1', 60_000)?.reader, 'the oldest was dropped').to.equal('r0');
    reads.note('ns1', 'r0', 5000); // seen again: moves to the back, keeps one entry
    expect(reads.lowest('ns1', 60_000)?.fromTxId).to.equal(1001);
  });
});
