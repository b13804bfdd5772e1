// Reading committed edits: an async iterator over { txid, record } from any JournalNode. It sticks to one
// node while that node answers and moves to another when it fails. With `follow` it long-polls ("txids after
// N, wait up to T ms") so new edits arrive as soon as they are applied, with no polling period.

import { qjournal } from '../src/gen/proto.js';
import { iterateRecords } from '../src/edit-records.js';
import { QjmError } from '../src/errors.js';
import type { JournalClient } from './journal-client.js';
import { backoffMs, sleep } from './retry-policy.js';

const pb = qjournal.journal;

/** What the reader needs of the client: reads from any node, the leader it knows, and the retry pace. */
export type EditSource = Pick<JournalClient, 'read' | 'routes' | 'retry' | 'leaderNamedBy'>;

export interface ReadEditsOptions {
  fromTxId: number;
  /** Include txids of the in-progress segment (committed ones only, as always). */
  inProgressOk?: boolean;
  /** Keep waiting for new edits instead of ending at the journal's last txid. */
  follow?: boolean;
  /** Confirm the leader's commit index before each read (default: true without follow, false with it). */
  linearizable?: boolean;
  /** Long-poll wait per request in follow mode, ms (default 10 s). */
  waitMs?: number;
  /** Per-request bounds. */
  maxTxnsPerRead?: number;
  maxBytesPerRead?: number;
  /** Stop when this signal aborts (the iterator then returns). */
  signal?: AbortSignal;
}

export interface Edit {
  txid: number;
  record: Uint8Array;
}

/** How long a following reader stays away from a leader it could not reach. */
const LEADER_RETRY_MS = 5000;

export async function* readEdits(
  client: EditSource,
  jid: string,
  options: ReadEditsOptions,
): AsyncGenerator<Edit, void, undefined> {
  let next = options.fromTxId;
  const follow = options.follow === true;
  const linearizable = options.linearizable ?? !follow;
  const waitMs = follow ? (options.waitMs ?? 10_000) : 0;
  let node: string | undefined = client.routes.knownLeader ?? undefined;
  let failures = 0;
  /** Answers in a row that came back empty before their long-poll was over. */
  let earlyEmpty = 0;
  /** When each node last failed us: a named leader that just failed is not worth moving to at once. */
  const failedAt = new Map<string, number>();
  while (!options.signal?.aborted) {
    const body = pb.GetEditsRequest.encode({
      jid,
      fromTxid: next,
      maxTxns: options.maxTxnsPerRead ?? 50_000,
      maxBytes: options.maxBytesPerRead ?? 4 << 20,
      waitMs,
      inProgressOk: options.inProgressOk === true,
      read: { linearizable },
    }).finish();
    let res: qjournal.journal.GetEditsResponse;
    const askedAt = Date.now();
    try {
      const r = await client.read('/qjm/getEdits', body, (b) => pb.GetEditsResponse.decode(b), {
        ...(node ? { node } : {}),
        timeoutMs: waitMs + 5000,
        deadlineMs: node ? 0 : client.retry.deadlineMs,
        ...(options.signal ? { signal: options.signal } : {}),
      });
      node = r.node;
      res = r.response;
      failures = 0;
      // A follower learns that an entry committed only with the leader's next append: a reader following
      // the journal from it sees each batch one batch late. Move to the leader it names (reads of history,
      // without follow, stay where they are).
      const leader = client.leaderNamedBy(node, res.leaderAddress);
      if (follow && leader && leader !== node && Date.now() - (failedAt.get(leader) ?? -Infinity) > LEADER_RETRY_MS)
        node = leader;
    } catch (e) {
      if (options.signal?.aborted) return;
      if (!(e instanceof QjmError) || !e.retriable || !node) throw e;
      // This node failed: try the others (the read above, without a fixed node, rotates through them).
      failedAt.set(node, Date.now());
      node = undefined;
      await sleep(backoffMs(failures++, client.retry));
      continue;
    }
    if (res.count === 0) {
      if (!follow) return;
      // A long-poll that comes back empty long before its wait is over (a node that cannot wait, or one that
      // is moving) is not an invitation to ask again at once: back off, so a follower never spins.
      if (Date.now() - askedAt < waitMs / 2) await sleep(backoffMs(earlyEmpty++, client.retry));
      else earlyEmpty = 0;
      continue;
    }
    earlyEmpty = 0;
    // Every record, the first included, must be the next txid: a node answering from a later txid (or a
    // reader moved to a node missing some) would otherwise leave a silent gap.
    let txid = next;
    for (const r of iterateRecords(res.records)) {
      if (r.txid !== txid)
        throw new QjmError('CORRUPT', `edit stream from ${node}: expected txid ${txid}, got ${r.txid}`);
      yield { txid: r.txid, record: r.data };
      txid++;
    }
    next = txid;
  }
}
