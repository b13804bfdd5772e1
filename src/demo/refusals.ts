// The demo's two attempts from the outside, each refused and shown as it happens: a client with no
// certificate asking for a node's status (401), and a client holding only the reader role trying to take
// the journal over from the active master (newEpoch, 403). What the demo prints is what the nodes answered.

import fs from 'node:fs';
import path from 'node:path';
import { QuorumJournalManager } from '../../libqjm/index.js';
import { QjmError } from '../errors.js';
import { HttpPools } from '../http-pool.js';
import type { LocalCluster } from '../local-cluster.js';

export interface Refusals {
  anonymous: string;
  wrongRole: string;
  /** Both attempts were refused with the code expected of them. */
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

/** recoverUnfinalizedSegments (a new epoch: it would fence the active master) with the reader certificate. */
async function readerTakeover(
  cluster: LocalCluster,
  jid: string,
  ns: { namespaceId: number; clusterId: string; blockPoolId: string },
): Promise<string> {
  const q = new QuorumJournalManager({
    journalId: jid,
    peers: cluster.addresses,
    writerId: 'intruder',
    nsInfo: ns,
    tls: cluster.tls('reader'),
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
  const wrongRole = await readerTakeover(cluster, jid, ns);
  say(`a client holding only the reader role tries to take over journal ${jid} (newEpoch): refused with ${wrongRole}`);
  return {
    anonymous,
    wrongRole,
    ok: anonymous === 'HTTP 401 QJM_ERR_UNAUTHENTICATED' && wrongRole === 'QJM_ERR_FORBIDDEN',
  };
}
