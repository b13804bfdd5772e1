// A digest of the applied journal state: every journal's epochs, writer, last txid and segments (each with its
// size and the CRC of its bytes as written), in journal-id order. Every replica that applied the same commands
// holds the same state, so the same digest at the same Raft index; replicas compare them to prove they agree
// (integrity reports, `qjm check`). It covers the segments' bytes through their CRCs, which are kept as the
// bytes are appended: computing it reads no file.

import { createHash } from 'node:crypto';
import type { JournalStateData } from '../../src/journal-state.js';

/** A checkpoint is recorded after applying each entry whose index is a multiple of this. */
export const DIGEST_EVERY_ENTRIES = 1024;
/** Checkpoints kept (the oldest dropped first): enough for a lagging replica to share some with the others. */
export const DIGEST_CHECKPOINTS_KEPT = 16;

export interface StateDigest {
  index: number;
  /** 16 hex digits of SHA-256 over the state. */
  digest: string;
}

export function stateDigest(journals: readonly JournalStateData[]): string {
  const h = createHash('sha256');
  for (const j of [...journals].sort((a, b) => (a.jid < b.jid ? -1 : a.jid > b.jid ? 1 : 0))) {
    const ns = j.nsInfo;
    h.update(
      JSON.stringify([
        j.jid,
        j.formatted,
        Number(ns.namespaceId ?? 0),
        ns.clusterId ?? '',
        ns.blockPoolId ?? '',
        j.promisedEpoch,
        j.lastWriterEpoch,
        j.writerId,
        j.epochRequestId,
        j.lastTxId,
      ]),
    );
    for (const s of j.segments)
      h.update(
        `|${s.firstTxId},${s.lastTxId},${s.inProgress ? 1 : 0},${s.sizeBytes},${s.crc32 >>> 0},${s.layoutVersion}`,
      );
    h.update('\n');
  }
  return h.digest('hex').slice(0, 16);
}
