// One JournalNode in this process, on a fresh data directory, elected leader of its single-member cluster:
// for tests that inject requests into its apps (app.inject) rather than run processes.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { DEFAULTS, validateConfig } from '../../journalnode/config.js';
import type { JournalNodeConfig } from '../../journalnode/config.js';
import { buildJournalNode } from '../../journalnode/journal-node.js';
import type { JournalNode } from '../../journalnode/journal-node.js';
import { waitFor } from './async.js';

/** Starts the node; `dir` is its data directory (the caller removes it after node.stop()). */
export async function startSingleNode(
  over: Partial<JournalNodeConfig> = {},
): Promise<{ node: JournalNode; dir: string }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-node-'));
  const config = validateConfig({
    ...DEFAULTS,
    id: 'n1',
    listen: '127.0.0.1:0',
    dataDir: dir,
    peers: [{ id: 'n1', address: '127.0.0.1:1' }],
    electionTimeoutMs: 100,
    logLevel: 'silent',
    // Requests are injected (app.inject): no socket, no TLS. Security has tests of its own.
    ...(over.certsDir ? {} : { insecure: true }),
    ...over,
  });
  const node = await buildJournalNode(config, { logger: pino({ level: 'silent' }) });
  await node.start();
  await waitFor(() => node.replica.isLeader, { timeoutMs: 5000, what: 'a single node elects itself' });
  return { node, dir };
}
