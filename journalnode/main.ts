// The journalnode process: parse flags (cli-args.ts), open the data directory, listen, and on SIGTERM/SIGINT
// drain in-flight writes and exit cleanly; on SIGHUP reload the certificates. Exit codes: 0 clean stop,
// 1 failure at run time or a port that cannot be bound (before anything is written), 2 bad flags or certificates
// (none chosen, unreadable, not this CA's), 3 data directory locked or unusable.

import { helpText, usageError, UsageError } from '../src/command-line.js';
import { JOURNALNODE_COMMAND, parseJournalNodeArgs } from './cli-args.js';
import { ConfigError } from './config.js';
import { buildJournalNode, DataDirError } from './journal-node.js';
import { DataDirLockedError } from '../src/data-dir-lock.js';
import { CertificateError } from '../src/security/cert-files.js';
import { PRIVATE_UMASK } from '../src/file-modes.js';
import { PortUnavailableError } from './port-reservation.js';

async function main(): Promise<void> {
  // Whatever the process creates without an explicit mode is private too (files 0600, directories 0700).
  process.umask(PRIVATE_UMASK);
  let args: ReturnType<typeof parseJournalNodeArgs>;
  try {
    args = parseJournalNodeArgs(process.argv.slice(2));
  } catch (e) {
    if (e instanceof UsageError || e instanceof ConfigError) {
      console.error(usageError(JOURNALNODE_COMMAND, e.message));
      process.exit(2);
    }
    throw e;
  }
  if (args.help) {
    console.log(helpText(JOURNALNODE_COMMAND));
    return;
  }
  const { config } = args;
  let node: Awaited<ReturnType<typeof buildJournalNode>>;
  try {
    node = await buildJournalNode(config);
  } catch (e) {
    if (e instanceof CertificateError || e instanceof ConfigError) {
      console.error(`journalnode: ${e.message}`);
      process.exit(2);
    }
    if (e instanceof PortUnavailableError) {
      console.error(`journalnode: ${e.message}; the data directory was left as it was`);
      process.exit(1);
    }
    if (e instanceof DataDirLockedError || e instanceof DataDirError) {
      console.error(`journalnode: ${e.message}`);
      process.exit(3);
    }
    console.error(`journalnode: cannot open ${config.dataDir}: ${(e as Error).message}`);
    process.exit(3);
  }
  try {
    await node.start();
  } catch (e) {
    console.error(`journalnode: cannot listen on ${config.listen}: ${(e as Error).message}`);
    await node.stop().catch(() => {});
    process.exit(1);
  }
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    node.logger.info({ signal }, 'shutting down');
    node.stop().then(
      () => process.exit(0),
      (e: Error) => {
        node.logger.error({ error: e.message }, 'unclean shutdown');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGHUP', () => {
    try {
      node.reloadTls();
    } catch (e) {
      node.logger.error(
        { error: (e as Error).message },
        'SIGHUP: the certificates were not reloaded; the ones in use stay',
      );
    }
  });
  process.on('uncaughtException', (e) => {
    node.logger.fatal({ error: e.message, stack: e.stack }, 'uncaught exception: exiting');
    process.exit(1);
  });
}

void main();
