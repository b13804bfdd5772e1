// The journalnode process: parse flags (SPEC 3.1), open the data directory, listen, and on SIGTERM/SIGINT
// drain in-flight writes and exit cleanly. Exit codes: 0 clean stop, 1 failure at run time, 2 bad flags,
// 3 data directory locked or unusable.

import { ConfigError, parseArgs } from './config.js';
import { buildJournalNode, DataDirError } from './journal-node.js';
import { DataDirLockedError } from '../src/data-dir-lock.js';

const USAGE = `usage: journalnode --id n1 --listen 127.0.0.1:8485 --data ./data/n1 \\
                   --peers n1=127.0.0.1:8485,n2=127.0.0.1:8486,n3=127.0.0.1:8487 [--config file.json]
       journalnode --id n4 --listen 127.0.0.1:8488 --data ./data/n4 --join 127.0.0.1:8485   (then: qjm add-peer)
  --peers is the initial configuration, used only when the data directory is empty.
  --join joins a running cluster from an empty data directory; --advertise sets the address peers dial.
  Any setting of GET /flags can also be given as --<name> <value> (e.g. --electionTimeoutMs 500).`;

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(USAGE);
    return;
  }
  let config;
  try {
    config = parseArgs(argv);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`journalnode: ${e.message}\n${USAGE}`);
      process.exit(2);
    }
    throw e;
  }
  let node;
  try {
    node = await buildJournalNode(config);
  } catch (e) {
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
  process.on('uncaughtException', (e) => {
    node.logger.fatal({ error: e.message, stack: e.stack }, 'uncaught exception: exiting');
    process.exit(1);
  });
}

void main();
