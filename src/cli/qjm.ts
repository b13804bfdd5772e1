// qjm: the operator's tool, braft_cli's verbs with dashes plus the journal's own. Each command declares the
// flags it takes (src/command-line.ts refuses any other); `qjm <command> --help` lists them. This file is the
// table of commands and the one place errors become exit codes: 0 ok, 1 unreachable / quorum unavailable /
// other failure, 2 usage, 3 not formatted, 4 refused (fenced, already formatted, writer active, out of sync),
// 5 corrupt data (dump). The commands live by concern: journal-commands.ts, purge.ts, status.ts,
// cluster-commands.ts, cert.ts, dump.ts; how they reach the nodes in connect.ts.

import { BENCH_COMMAND, runBenchCommand } from '../bench/bench.js';
import { DEMO_COMMAND } from '../demo/demo-command.js';
import { helpText, parseCommand, usageError, UsageError } from '../command-line.js';
import type { CommandSpec, FlagValues } from '../command-line.js';
import { QjmError } from '../errors.js';
import { escapeControls, terminalSafe } from '../terminal-text.js';
import { CertExistsError } from '../security/certs.js';
import { CertificateError } from '../security/cert-files.js';
import { NotConfirmedError } from './confirm.js';
import { DUMP, dumpSegment } from './dump.js';
import {
  CERT_CREATE_CA,
  CERT_CREATE_CLIENT,
  CERT_CREATE_NODE,
  CERT_LIST,
  cmdCreateCa,
  cmdCreateClient,
  cmdCreateNode,
  cmdList,
} from './cert.js';
import {
  ADD_PEER,
  CHANGE_PEERS,
  CHECK_IMPACT,
  cmdAddPeer,
  cmdAdmin,
  cmdCheckImpact,
  cmdRemovePeer,
  cmdReplaceNode,
  cmdReplacePeers,
  cmdResetPeers,
  REMOVE_PEER,
  REPLACE_NODE,
  RESET_PEERS,
  SNAPSHOT,
  TRANSFER_LEADER,
} from './cluster-commands.js';
import { CHECK_PERF, cmdCheckPerf } from './check-perf.js';
import { timeoutMsOf } from './connect.js';
import type { CliIo } from './connect.js';
import { cmdFinalize, cmdFormat, cmdSegments, cmdTail, FINALIZE, FORMAT, SEGMENTS, TAIL } from './journal-commands.js';
import { cmdPurge, PURGE } from './purge.js';
import { cmdStatus, STATUS } from './status.js';

export { UsageError } from '../command-line.js';
export type { CliIo } from './connect.js';
export { NO_CLIENT_CERTIFICATE, retryReporter } from './connect.js';

function exitCodeFor(e: unknown): number {
  if (e instanceof UsageError) return 2;
  if (e instanceof NotConfirmedError) return 4;
  if (e instanceof CertExistsError) return 4;
  if (e instanceof CertificateError) return 1;
  if (e instanceof QjmError) {
    switch (e.errorName) {
      case 'NOT_FORMATTED':
        return 3;
      case 'FENCED':
      case 'ALREADY_FORMATTED':
      case 'WRITER_ACTIVE':
      case 'OUT_OF_SYNC':
      case 'NAMESPACE_MISMATCH':
      case 'INVALID_CONF_CHANGE':
      case 'CONF_CHANGE_IN_PROGRESS':
      case 'TOO_MANY_JOURNALS':
        return 4;
      case 'CORRUPT':
        return 5;
      case 'INVALID_ARGUMENT':
        return 2;
      default:
        return 1;
    }
  }
  return 1;
}

interface Command {
  spec: CommandSpec;
  /** Parses the flags against the spec (or prints --help), then runs. */
  exec(argv: string[], io: CliIo): Promise<number>;
}

function command<S extends CommandSpec>(
  spec: S,
  run: (f: FlagValues<S>, io: CliIo, positionals: string[]) => Promise<number> | number,
): Command {
  return {
    spec,
    async exec(argv, io) {
      const p = parseCommand(spec, argv);
      if (p.help) {
        io.out(helpText(spec));
        return 0;
      }
      return run(p.flags, io, p.positionals);
    },
  };
}

const COMMANDS: Record<string, Command> = {
  status: command(STATUS, cmdStatus),
  'check-impact': command(CHECK_IMPACT, cmdCheckImpact),
  'check perf': command(CHECK_PERF, cmdCheckPerf),
  format: command(FORMAT, cmdFormat),
  segments: command(SEGMENTS, cmdSegments),
  finalize: command(FINALIZE, cmdFinalize),
  purge: command(PURGE, cmdPurge),
  tail: command(TAIL, cmdTail),
  dump: command(DUMP, (f, io, [file]) => dumpSegment(file!, f.format ?? 'text', io, f.json)),
  'add-peer': command(ADD_PEER, cmdAddPeer),
  'remove-peer': command(REMOVE_PEER, cmdRemovePeer),
  'replace-node': command(REPLACE_NODE, cmdReplaceNode),
  'change-peers': command(CHANGE_PEERS, cmdReplacePeers),
  'reset-peers': command(RESET_PEERS, cmdResetPeers),
  'transfer-leader': command(TRANSFER_LEADER, (f, io) =>
    cmdAdmin(f, io, (admin) => admin.transferLeader(f.to ?? '', timeoutMsOf(f))),
  ),
  snapshot: command(SNAPSHOT, (f, io) => cmdAdmin(f, io, (admin) => admin.snapshot(f.node, timeoutMsOf(f)))),
  'cert create-ca': command(CERT_CREATE_CA, (f, io) => cmdCreateCa(f, io.out)),
  'cert create-node': command(CERT_CREATE_NODE, (f, io, pos) => cmdCreateNode(f, io.out, pos)),
  'cert create-client': command(CERT_CREATE_CLIENT, (f, io, pos) => cmdCreateClient(f, io.out, pos)),
  'cert list': command(CERT_LIST, (f, io) => cmdList(f, io.out)),
  bench: command(BENCH_COMMAND, (f) => runBenchCommand(f)),
  demo: command(DEMO_COMMAND, async (f) => {
    const { runDemo } = await import('../demo/demo.js');
    return runDemo({ serve: f.serve, dataDir: f['data-dir'] });
  }),
};

function overview(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((n) => n.length));
  return [
    'qjm — operate a qjournal cluster',
    '',
    'usage: qjm <command> [flags]          qjm <command> --help lists the flags of one command',
    '',
    ...Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(width)}  ${c.spec.summary}`),
    '',
    '--peers may also come from QJM_PEERS; --certs-dir and --user from QJM_CERTS_DIR and QJM_USER (or --insecure',
    'for nodes started with --insecure). Exit codes: 0 ok, 1 failure (unreachable, no quorum), 2 usage,',
    '3 not formatted, 4 refused (fenced, already formatted, writer active, out of sync, file exists), 5 corrupt data.',
  ].join('\n');
}

/**
 * Runs one qjm command. Everything it prints passes through terminalSafe (no control character of any data
 * reaches the terminal raw); values that could carry a line break of their own are escaped where they are
 * put into a line (escapeControls), so journal data can neither forge a line nor move the cursor.
 */
export async function runQjm(argv: string[], terminal: CliIo): Promise<number> {
  const io: CliIo = { out: (l) => terminal.out(terminalSafe(l)), err: (l) => terminal.err(terminalSafe(l)) };
  // `qjm cert <verb>`, `qjm check perf`: one command of two words.
  const [name, ...rest] =
    argv[1] !== undefined && Object.hasOwn(COMMANDS, `${argv[0]} ${argv[1]}`)
      ? [`${argv[0]} ${argv[1]}`, ...argv.slice(2)]
      : argv;
  if (!name || name === 'help' || name === '--help' || name === '-h') {
    // `qjm help purge` is `qjm purge --help`.
    const topic = name === 'help' && rest[0] ? (COMMANDS[rest.join(' ')] ?? COMMANDS[rest[0]]) : undefined;
    if (topic) io.out(helpText(topic.spec));
    else io.out(overview());
    return name ? 0 : 2;
  }
  const cmd = Object.hasOwn(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!cmd) {
    io.err(`qjm: unknown command ${JSON.stringify(name)}\n\n${overview()}`);
    return 2;
  }
  try {
    return await cmd.exec(rest, io);
  } catch (e) {
    const code = exitCodeFor(e);
    if (e instanceof UsageError) io.err(usageError(cmd.spec, e.message));
    else if (e instanceof QjmError) io.err(`qjm ${name}: ${e.code}: ${escapeControls(e.message)}`);
    else io.err(`qjm ${name}: ${escapeControls((e as Error).message)}`);
    return code;
  }
}
