// qjm status: every node the given addresses lead to (cluster-check.ts finds them and names the problems), as a
// table with each follower's lag as the leader sees it, then the journals as the leader sees them; or --json.

import type { FlagValues, CommandSpec } from '../command-line.js';
import type { NodeStatusJson } from '../node-status.js';
import { renderTable } from '../text-table.js';
import { clusterProblems, discoverNodes, referenceLeader } from './cluster-check.js';
import { adminClient, CONNECT, JID, JSON_OUT, timeoutMsOf } from './connect.js';
import type { CliIo } from './connect.js';

export const STATUS = {
  name: 'qjm status',
  summary:
    'Every node (those given, and the members they name): role, term, indexes, errors; the problems seen; the journals as the leader sees them.',
  flags: { ...CONNECT, jid: { ...JID, required: false, description: 'show only this journal' }, json: JSON_OUT },
} as const satisfies CommandSpec;

/** The node's standing when it is not a plain member (stood down, storage mismatch, ...), for the table. */
function standing(s: NodeStatusJson): string {
  const id = s.identity?.state;
  return id && id !== 'member' ? id : '';
}

export async function cmdStatus(f: FlagValues<typeof STATUS>, io: CliIo): Promise<number> {
  const admin = adminClient(f, io);
  try {
    const reports = await discoverNodes(admin, admin.peers, timeoutMsOf(f));
    const problems = clusterProblems(reports);
    if (f.json) {
      io.out(JSON.stringify({ nodes: reports, problems }, null, 2));
    } else {
      // LAG: entries a follower's log is behind the leader's. Only the leader knows it (of the newest
      // generation, then the highest term, if two claim it); '?' when no leader answered.
      const leader = referenceLeader(reports.flatMap((r) => (r.status ? [r.status] : [])));
      const lagOf = (id: string) =>
        !leader ? '?' : id === leader.id ? '-' : String(leader.followers[id]?.lagEntries ?? '?');
      const rows = reports.map(({ endpoint, status: s, error }) => {
        if (!s) return [endpoint, '', '', '', '', '', '', '', '', '', '', error ?? ''];
        const cells = [
          s.id,
          s.state,
          s.term,
          s.leader === s.id,
          s.commitIndex,
          s.appliedIndex,
          s.lastIndex,
          s.snapshotIndex,
        ];
        return [endpoint, ...cells.map(String), lagOf(s.id), standing(s), s.fatal ?? ''];
      });
      io.out(
        renderTable(
          [
            'ENDPOINT',
            'ID',
            'STATE',
            'TERM',
            'IS LEADER',
            'COMMIT',
            'APPLIED',
            'LAST',
            'SNAPSHOT',
            'LAG',
            'STANDING',
            'ERRORS',
          ],
          rows,
        ),
      );
      if (problems.length > 0) io.out(`\nproblems:\n${problems.map((p) => `- ${p}`).join('\n')}`);
      const journals = (leader ?? reports.find((r) => r.status)?.status)?.journals;
      if (journals) {
        const jrows = Object.entries(journals)
          .filter(([name]) => !f.jid || name === f.jid)
          .map(([name, j]) => [
            name,
            String(j.promisedEpoch),
            String(j.lastWriterEpoch),
            j.writerId || '-',
            String(j.lastTxId),
            String(j.segments.length),
            j.segments
              .filter((g) => g.inProgress)
              .map((g) => `${g.firstTxId}-${g.lastTxId}`)
              .join(',') || '-',
          ]);
        if (jrows.length)
          io.out(
            '\n' +
              renderTable(
                ['JOURNAL', 'EPOCH', 'WRITER EPOCH', 'WRITER', 'LAST TXID', 'SEGMENTS', 'IN PROGRESS'],
                jrows,
              ),
          );
      }
    }
    return problems.length > 0 || reports.some((r) => r.error) ? 1 : 0;
  } finally {
    await admin.close();
  }
}
