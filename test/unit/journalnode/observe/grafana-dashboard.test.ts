// docs/grafana-dashboard.json and docs/OPERATIONS.md against a node's real /metrics: every metric a panel or a
// variable queries is exported, and every metric exported is documented.

import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import type { JournalNode } from '../../../../journalnode/journal-node.js';
import { startSingleNode } from '../../../support/single-node.js';
import { REPO_ROOT } from '../../../support/repo-root.js';

const ROOT = REPO_ROOT;

/** Metric name to type, from the exposition's # TYPE lines. */
function exported(text: string): Map<string, string> {
  const types = new Map<string, string>();
  for (const m of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(m[1]!, m[2]!);
  return types;
}

/** The qjournal metric names in PromQL expressions that `types` does not export (a histogram's or summary's series count as it). */
function unexported(exprs: string[], types: Map<string, string>): string[] {
  const missing = new Set<string>();
  for (const e of exprs) {
    for (const [name] of e.matchAll(/\bqjournal_[a-z0-9_]+/g)) {
      const base = name.replace(/_(bucket|sum|count)$/, '');
      const ok = types.has(name) || (base !== name && ['histogram', 'summary'].includes(types.get(base) ?? ''));
      if (!ok) missing.add(name);
    }
  }
  return [...missing];
}

/** Every query string in the dashboard: panel targets and template variables. */
function queries(v: unknown, out: string[] = []): string[] {
  if (Array.isArray(v)) for (const x of v) queries(x, out);
  else if (typeof v === 'object' && v !== null) {
    for (const [k, x] of Object.entries(v)) {
      if ((k === 'expr' || k === 'query' || k === 'definition') && typeof x === 'string') out.push(x);
      else queries(x, out);
    }
  }
  return out;
}

describe('Grafana dashboard and metrics docs', () => {
  let node: JournalNode;
  let dir: string;
  let types: Map<string, string>;

  before(async () => {
    ({ node, dir } = await startSingleNode());
    types = exported((await node.app.inject({ url: '/metrics' })).body);
  });
  after(async () => {
    await node.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('the checker flags a name no node exports', () => {
    expect(
      unexported(
        ['rate(qjournal_raft_elections_total[5m])', 'histogram_quantile(0.9, qjournal_rpc_seconds_bucket)'],
        types,
      ),
    ).to.deep.equal([]);
    expect(unexported(['rate(qjournal_no_such_thing_total[5m])', 'qjournal_raft_term_count'], types)).to.deep.equal([
      'qjournal_no_such_thing_total',
      'qjournal_raft_term_count',
    ]);
  });

  it('every metric docs/grafana-dashboard.json queries is exported by /metrics', () => {
    const dash = JSON.parse(fs.readFileSync(path.join(ROOT, 'docs', 'grafana-dashboard.json'), 'utf8')) as {
      panels: { title: string; targets: { expr: string }[] }[];
    };
    expect(dash.panels.length).to.be.greaterThan(10);
    for (const p of dash.panels) expect(p.targets.length, p.title).to.be.greaterThan(0);
    const exprs = queries(dash);
    expect(exprs.join('\n')).to.match(/qjournal_log_fsync_3600s_seconds/);
    expect(unexported(exprs, types)).to.deep.equal([]);
  });

  it('every qjournal metric /metrics exports is in the metrics table of docs/OPERATIONS.md', () => {
    const ops = fs.readFileSync(path.join(ROOT, 'docs', 'OPERATIONS.md'), 'utf8');
    const names = [...types.keys()].filter((n) => n.startsWith('qjournal_') && !n.startsWith('qjournal_process_'));
    expect(names.length).to.be.greaterThan(25);
    expect(names.filter((n) => !ops.includes(`\`${n}\``))).to.deep.equal([]);
  });
});
