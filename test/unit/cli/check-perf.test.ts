// qjm check perf's reading of a node's /metrics: the fdatasync quantiles of the last minute, every value checked
// (it is a node's answer).

import { expect } from 'chai';
import { fsyncQuantilesMs } from '../../../src/cli/check-perf.js';

const METRICS = `# HELP qjournal_log_fsync_60s_seconds fdatasync latency of Raft log appends, percentiles over the last 60 s
# TYPE qjournal_log_fsync_60s_seconds summary
qjournal_log_fsync_60s_seconds{quantile="0.5",node="n1"} 0.0117
qjournal_log_fsync_60s_seconds{quantile="0.9",node="n1"} 0.015
qjournal_log_fsync_60s_seconds{quantile="0.99",node="n1"} 0.0252
qjournal_log_fsync_60s_seconds_sum{node="n1"} 0.0235
qjournal_log_fsync_300s_seconds{quantile="0.5",node="n1"} 9
qjournal_log_fsync_300s_seconds{quantile="0.99",node="n1"} 9
`;

describe('qjm check perf', () => {
  it("reads the last minute's fdatasync p50 and p99 (ms) from a node's /metrics, and only those", () => {
    const q = fsyncQuantilesMs(METRICS);
    expect(q.p50Ms).to.be.closeTo(11.7, 1e-9);
    expect(q.p99Ms).to.be.closeTo(25.2, 1e-9);
  });

  it('no sync in the window, a missing metric, garbage or an absurd value: none, never a number made up', () => {
    const cases: [string, string][] = [
      ['NaN (no sync)', METRICS.replace(/\} 0\.0252/, '} NaN').replace(/\} 0\.0117/, '} NaN')],
      ['no such metric', 'qjournal_something_else 1\n'],
      ['garbage', 'qjournal_log_fsync_60s_seconds{quantile="0.99"} lots\n'],
      ['negative', 'qjournal_log_fsync_60s_seconds{quantile="0.99",node="n1"} -1\n'],
      ['a day or more', 'qjournal_log_fsync_60s_seconds{quantile="0.99",node="n1"} 1e9\n'],
      ['the wrong window', 'qjournal_log_fsync_300s_seconds{quantile="0.99",node="n1"} 0.1\n'],
      ['a look-alike quantile', 'qjournal_log_fsync_60s_seconds{quantile="0x99",node="n1"} 0.1\n'],
    ];
    for (const [what, text] of cases) expect(fsyncQuantilesMs(text).p99Ms, what).to.equal(null);
  });
});
