// The demo's three attempts from the outside, each refused and shown as it happens: a client with no
// certificate asking for a node's status (401), a client holding only the reader role trying to take the
// journal over from the active master (newEpoch, 403), and a writer of another journal trying the same (403:
// certificates are scoped to journals). What the demo prints is what the nodes answered.

import fs from 'node:fs';
import path from 'node:path';
import { QuorumJournalManager } from '../../libqjm/index.js';
import { QjmError } from '../errors.js';
import { HttpPools } from '../http-pool.js';
import type { LocalCluster } from '../local-cluster.js';
import type { TlsOption } from '../security/client-tls.js';

export interface Refusals {
  anonymous: string;
  wrongRole: string;
  wrongJournal: string;
  /** Every attempt was refused with the code expected of it. */
  ok: boolean;
}

/** GET /status with no client certificate (the CA is trusted, so the TLS part succeeds). */
async function anonymousStatus(cluster: LocalCluster, address: string): Promise<string> {
  const http = new HttpPools({
    connectTimeoutMs: 2000,
    tls: { ca: fs.readFileSync(path.join(cluster.certsDir!, 'ca.crt')) },
  });
  try {
    const res = await http.request(address, 'GET', '/status', null, 5000);
    const code = (JSON.parse(res.body.toString()) as { code?: string }).code ?? 'no error code';
    return `HTTP ${res.status} ${code}`;
  } finally {
    await http.close();
  }
}

/** recoverUnfinalizedSegments (a new epoch: it would fence the active master) with the given certificate. */
async function takeover(
  cluster: LocalCluster,
  jid: string,
  ns: { namespaceId: number; clusterId: string; blockPoolId: string },
  tls: TlsOption | undefined,
): Promise<string> {
  const q = new QuorumJournalManager({
    journalId: jid,
    peers: cluster.clientPeers,
    writerId: 'intruder',
    nsInfo: ns,
    ...(tls ? { tls } : {}),
    retry: { deadlineMs: 2000 },
  });
  try {
    await q.recoverUnfinalizedSegments();
    return 'ACCEPTED (this must never happen)';
  } catch (e) {
    return e instanceof QjmError ? e.code : String(e);
  } finally {
    await q.close();
  }
}

export async function tryRefusals(
  cluster: LocalCluster,
  jid: string,
  ns: { namespaceId: number; clusterId: string; blockPoolId: string },
  say: (s: string) => void,
): Promise<Refusals> {
  const address = cluster.addresses[0]!;
  const anonymous = await anonymousStatus(cluster, address);
  say(`a client with no certificate asks ${address} for /status: ${anonymous}`);
  const wrongRole = await takeover(cluster, jid, ns, cluster.tls('reader'));
  say(`a client holding only the reader role tries to take over journal ${jid} (newEpoch): refused with ${wrongRole}`);
  const other = `${jid}-other`;
  const wrongJournal = await takeover(cluster, jid, ns, await cluster.addUser('other-master', ['writer'], [other]));
  say(`a writer whose certificate names only journal ${other} tries to take over ${jid}: refused with ${wrongJournal}`);
  return {
    anonymous,
    wrongRole,
    wrongJournal,
    ok:
      anonymous === 'HTTP 401 QJM_ERR_UNAUTHENTICATED' &&
      wrongRole === 'QJM_ERR_FORBIDDEN' &&
      wrongJournal === 'QJM_ERR_FORBIDDEN',
  };
}
