// qjm purge: deletes the finalized segments that end below a txid, under the current writer's epoch, within the
// retention floor the leader reports (the newest finalized segment, minTxnsRetained, recent readers); --dry-run
// says what would go, --force goes past the floor (admin, confirmed).

import { QuorumJournalManager } from '../../libqjm/index.js';
import type { SegmentDescriptor } from '../../libqjm/index.js';
import type { CommandSpec, FlagValues } from '../command-line.js';
import { QjmError } from '../errors.js';
import { confirmDestruction } from './confirm.js';
import { adminClient, CONNECT, JID, JSON_OUT, qjmOptions, YES } from './connect.js';
import type { CliIo } from './connect.js';

export const PURGE = {
  name: 'qjm purge',
  summary:
    "Delete the finalized segments that end below a txid (under the current writer's epoch), within the retention floor.",
  flags: {
    ...CONNECT,
    jid: JID,
    'min-txid': { type: 'uint', required: true, valueName: 'TXID', description: 'the first txid to keep' },
    'dry-run': { type: 'boolean', description: 'say what would be deleted and what the floor keeps; delete nothing' },
    force: {
      type: 'boolean',
      description:
        'go past the retention floor (the newest finalized segment, minTxnsRetained, recent readers); admin; asks first',
    },
    yes: YES,
    json: JSON_OUT,
  },
} as const satisfies CommandSpec;

const rangeOf = (segs: readonly SegmentDescriptor[]) =>
  segs.length === 0
    ? 'none'
    : `${segs.length} segment(s), txids ${segs[0]!.firstTxId}-${segs[segs.length - 1]!.lastTxId}`;

export async function cmdPurge(f: FlagValues<typeof PURGE>, io: CliIo): Promise<number> {
  const jid = f.jid;
  const minTxId = f['min-txid'];
  const q = new QuorumJournalManager({ journalId: jid, ...qjmOptions(f, io) });
  const admin = adminClient(f, io);
  try {
    // Purging needs no fencing: it acts under the current writer's epoch and touches only finalized segments.
    for (let attempt = 0; ; attempt++) {
      const st = await q.getJournalState();
      if (!st.formatted) throw new QjmError('NOT_FORMATTED', `journal ${jid} is not formatted`);
      const finalized = st.segments.filter((s) => !s.inProgress);
      const asked = finalized.filter((s) => s.lastTxId < minTxId);
      const floor = st.retention.fromTxId > 0 ? st.retention.fromTxId : Number.MAX_SAFE_INTEGER;
      const allowed = asked.filter((s) => s.lastTxId < floor);
      const pastFloor = asked.filter((s) => s.lastTxId >= floor);
      const doomed = f.force ? asked : allowed;
      if (f['dry-run'] || (pastFloor.length > 0 && !f.force) || doomed.length === 0) {
        return purgePlanOnly(f, io, {
          jid,
          minTxId,
          floor: st.retention,
          doomed,
          pastFloor,
          finalized: finalized.length,
        });
      }
      if (f.force && pastFloor.length > 0) {
        const what = `qjm purge --force deletes ${rangeOf(pastFloor)} of journal ${jid} that the retention floor keeps (${st.retention.reason}); a standby behind them must then be rebuilt`;
        await confirmDestruction(io.ask, { what, token: jid, yes: f.yes });
      }
      let purged: { purgedBelowTxId: number };
      try {
        purged = await admin.purgeAtEpoch(jid, st.promisedEpoch, minTxId, f.force);
      } catch (e) {
        if (e instanceof QjmError && e.errorName === 'FENCED' && attempt < 3) continue; // a writer took over meanwhile
        throw e;
      }
      const gone = doomed.filter((s) => s.lastTxId < purged.purgedBelowTxId);
      io.out(
        f.json
          ? JSON.stringify({ ok: true, purged: gone, purgedBelowTxId: purged.purgedBelowTxId })
          : `purged ${rangeOf(gone)} of journal ${jid} (every finalized segment ending below txid ${purged.purgedBelowTxId})`,
      );
      return 0;
    }
  } finally {
    await q.close();
    await admin.close();
  }
}

/** --dry-run, nothing to purge, or a request past the floor without --force: says what would go, deletes nothing. */
function purgePlanOnly(
  f: FlagValues<typeof PURGE>,
  io: CliIo,
  p: {
    jid: string;
    minTxId: number;
    floor: { fromTxId: number; reason: string };
    doomed: SegmentDescriptor[];
    pastFloor: SegmentDescriptor[];
    /** How many finalized segments the journal holds. */
    finalized: number;
  },
): number {
  const refused = !f['dry-run'] && !f.force && p.pastFloor.length > 0;
  if (f.json) {
    io.out(
      JSON.stringify({
        ok: !refused,
        dryRun: f['dry-run'],
        wouldPurge: p.doomed,
        keptByFloor: p.pastFloor,
        retention: p.floor,
      }),
    );
  } else if (p.doomed.length === 0 && p.pastFloor.length === 0) {
    // Nothing asked for: say why, rather than a plan of nothing (a journal no writer has written yet, typically).
    io.out(
      p.finalized === 0
        ? `journal ${p.jid} holds no finalized segment yet: nothing to purge (a purge deletes finalized segments only; the master finalizes one each time it rolls its edit log)`
        : `no finalized segment of journal ${p.jid} ends below txid ${p.minTxId}: nothing to purge`,
    );
  } else {
    io.out(`${f['dry-run'] ? 'would purge' : 'to purge'}: ${rangeOf(p.doomed)} of journal ${p.jid}`);
    if (p.pastFloor.length > 0) {
      io.out(`kept by the retention floor (txid ${p.floor.fromTxId}: ${p.floor.reason}): ${rangeOf(p.pastFloor)}`);
    }
  }
  if (!refused) return 0;
  const within =
    p.doomed.length > 0 ? `qjm purge --jid ${p.jid} --min-txid ${p.floor.fromTxId} purges what the floor allows; ` : '';
  io.err(
    `qjm purge: refused: --min-txid ${p.minTxId} reaches past the retention floor (${p.floor.reason}); nothing was deleted. ${within}--force goes past it (admin, asks first)`,
  );
  return 4;
}
