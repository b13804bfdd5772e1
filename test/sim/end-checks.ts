// The checks at the end of a run, after the quiet phase: every member applied the same index and holds the
// same journals and segment files, byte for byte; every journal holds every committed txid from the first one
// purges leave (read back through the member's own segment files).

import zlib from 'node:zlib';
import { iterateRecords } from '../../src/edit-records.js';
import type { Journal } from '../../journalnode/state/journal.js';
import type { Checker } from './checker.js';
import type { JournalChecker } from './journal-checker.js';
import { faultExplains } from './sim-node.js';
import type { SimNode } from './sim-node.js';
import { PATHS } from './sim-storage.js';

/** Every member at the same applied index, with the same journals and files. */
export function checkConvergence(checker: Checker, members: SimNode[], settledAfterMs: number): void {
  const applied = members.map((n) => ({
    id: n.id,
    applied: n.replica?.appliedIndex ?? -1,
    state: n.running ? stateDigest(n) : '',
  }));
  const max = Math.max(...applied.map((a) => a.applied));
  const behind = applied.filter((a) => a.applied !== max);
  if (behind.length > 0) {
    checker.violate(
      `convergence: after ${Math.round(settledAfterMs)} ms of quiet, applied indexes differ: ${applied.map((a) => `${a.id}=${a.applied}`).join(' ')}`,
    );
    return;
  }
  const states = new Map(applied.map((a) => [a.state, a.id]));
  if (states.size > 1)
    checker.violate(
      `convergence: same applied index ${max} but different journals or segment files: ${[...states.values()].join(' vs ')}`,
    );
}

/**
 * Repair converges: no running member still holds a rotten sector in a journal file or a snapshot (its scrubber
 * found it and a copy its peers agree on was written over it, or the file went away).
 */
export function checkRepaired(checker: Checker, members: SimNode[]): void {
  for (const n of members) {
    if (!n.running) continue;
    const left = [...n.fs.rottenFiles(PATHS.journals), ...n.fs.rottenFiles(PATHS.snapshots)];
    if (left.length === 0) continue;
    const open = n.integrity?.registry.openRecords().map((r) => `${r.file} ${r.state}${r.note ? ` (${r.note})` : ''}`);
    checker.violate(
      `repair did not converge on ${n.id}: ${left.map((f) => `${f.path} (${f.sectors} rotten sector${f.sectors > 1 ? 's' : ''})`).join(', ')}; open damage: ${open?.join('; ') || 'none'}`,
    );
  }
}

/** Every member holds every committed txid of every journal from the first one purges leave, byte for byte. */
export function checkJournals(checker: Checker, journals: JournalChecker, members: SimNode[]): void {
  for (const n of members) {
    if (!n.running) continue;
    for (const jid of journals.journalIds) {
      const j = n.storage!.stateMachine.journal(jid);
      if (!j) {
        if (journals.lastTxId(jid) > 0) checker.violate(`${n.id}: journal ${jid} is missing`);
        continue;
      }
      try {
        journals.checkHeld(n.id, jid, readAll(j));
      } catch (e) {
        if (!faultExplains(n, e))
          checker.violate(`${n.id}: journal ${jid} cannot be read back: ${(e as Error).message}`);
      }
    }
  }
}

/** A journal read from its first held txid to its last, through its own segment files. */
function readAll(j: Journal) {
  const records: { txid: number; data: Buffer }[] = [];
  let next = j.firstHeldTxId();
  const firstTxId = next;
  while (next <= j.lastTxId) {
    const got = j.readEdits(next, 1000, 64 << 10, true);
    if (got.count === 0) break;
    for (const r of iterateRecords(got.frames)) records.push({ txid: r.txid, data: Buffer.from(r.data) });
    next = got.firstTxId + got.count;
  }
  return { firstTxId, lastTxId: j.lastTxId, records };
}

/** A node's journals (their state) and segment files (names and bytes, as on its disk, no fault applied). */
function stateDigest(n: SimNode): string {
  const parts: string[] = [];
  for (const j of n.storage!.stateMachine.allJournals().sort((a, b) => (a.jid < b.jid ? -1 : 1))) {
    const { segments, ...fields } = j.state();
    parts.push(JSON.stringify(fields), JSON.stringify(segments.map((s) => [s.file, s.sizeBytes, s.crc32])));
    const dir = `${PATHS.journals}/${j.jid}`;
    for (const name of n.fs.readdir(dir)) {
      const bytes = n.fs.currentBytes(`${dir}/${name}`);
      parts.push(`${name}:${bytes ? zlib.crc32(bytes) : 'none'}`);
    }
  }
  return parts.join('|');
}
