// How qjm reaches the nodes, shared by every command that talks to them: the flags they have in common (the
// nodes, the certificate to act as, the timeout), the libqjm clients built from them, and the retry notices on
// stderr. A command file declares its own flags beside these and never builds a client another way.

import { AdminClient } from '../../libqjm/index.js';
import type { QjmOptions, RetryObserver, TlsOption } from '../../libqjm/index.js';
import { UsageError } from '../command-line.js';
import { parseClientPeers, parsePeers } from '../peers.js';
import type { Peer } from '../peers.js';
import { escapeControls } from '../terminal-text.js';
import type { Ask } from './confirm.js';

export type Out = (line: string) => void;

export interface CliIo {
  out: Out;
  err: Out;
  /** Asks the operator at a terminal (destructive commands confirm there); absent without one. */
  ask?: Ask;
}

// Flags several commands share, declared once.
export const YES = {
  type: 'boolean',
  description: 'confirm a destructive step without being asked (for scripts: there is no terminal to ask at)',
} as const;
export const PEERS = {
  type: 'string',
  required: true,
  env: 'QJM_PEERS',
  valueName: 'HOST:PORT,...',
  description: 'JournalNode addresses: any members, the rest are learned',
} as const;
/** How qjm reaches the nodes: mutual TLS as a client certificate's user, or plain HTTP when asked for. */
export const SECURITY = {
  'certs-dir': {
    type: 'string',
    env: 'QJM_CERTS_DIR',
    valueName: 'DIR',
    description: 'mutual TLS: the certificates directory (ca.crt, client.<user>.crt/.key)',
  },
  user: {
    type: 'string',
    env: 'QJM_USER',
    valueName: 'NAME',
    description: 'the client certificate to act as: DIR/client.<NAME>.crt',
  },
  insecure: { type: 'boolean', description: 'plain HTTP, for nodes started with --insecure (ignores QJM_CERTS_DIR)' },
} as const;
/** Whole seconds, as an operator types them; without it each call keeps its own default (OPERATIONS.md lists them). */
export const TIMEOUT = {
  type: 'uint',
  valueName: 'SECONDS',
  description: 'give up on a call to the cluster after SECONDS of retrying or waiting (default 20; change-peers 120)',
} as const;
export const CONNECT = { peers: PEERS, ...SECURITY, timeout: TIMEOUT } as const;
export const JID = { type: 'string', required: true, valueName: 'ID', description: 'the journal id' } as const;
export const JSON_OUT = { type: 'boolean', description: 'print JSON, for scripts' } as const;

export const NO_CLIENT_CERTIFICATE =
  'no client certificate: give --certs-dir D --user NAME (or set QJM_CERTS_DIR and QJM_USER), or --insecure for nodes started with --insecure';

/** The connection flags every command that talks to the nodes takes (CONNECT). */
export type Connection = {
  peers: string;
  'certs-dir'?: string | undefined;
  user?: string | undefined;
  insecure: boolean;
  timeout?: number | undefined;
};

/** The nodes and how to reach them; refuses (usage, exit 2) when neither TLS nor --insecure was chosen. */
export function connection(f: Connection): { peers: string[]; tls?: TlsOption } {
  const peers = peersOf(f);
  if (f.insecure) return { peers };
  if (!f['certs-dir']) throw new UsageError(NO_CLIENT_CERTIFICATE);
  if (!f.user)
    throw new UsageError(
      '--user NAME is required with --certs-dir (or set QJM_USER): the client certificate to act as',
    );
  return { peers, tls: { certsDir: f['certs-dir'], user: f.user } };
}

/** --timeout in ms (undefined: each call's own default). */
export function timeoutMsOf(f: Connection): number | undefined {
  if (f.timeout === undefined) return undefined;
  if (f.timeout < 1) throw new UsageError('--timeout must be at least 1 (seconds)');
  return f.timeout * 1000;
}

/**
 * Says on stderr what qjm is retrying and why, at most once a second: without it an unreachable cluster
 * looks like a hung command for the whole retry deadline.
 */
export function retryReporter(err: Out, nowMs: () => number = Date.now): RetryObserver {
  let lastMs = -Infinity;
  return (e, remainingMs) => {
    const now = nowMs();
    if (now - lastMs < 1000) return;
    lastMs = now;
    const node = e.details.node;
    const why =
      e.details.networkCode && typeof node === 'string'
        ? `${escapeControls(node)} unreachable (${e.details.networkCode})`
        : `${escapeControls(e.message)} (${e.code})`;
    err(`qjm: ${why}; retrying for ${Math.max(0, Math.ceil(remainingMs / 1000))} s more`);
  };
}

/** libqjm's options for a command: the connection, --timeout as every retry deadline, retries reported. */
export function qjmOptions(f: Connection, io: CliIo): Omit<QjmOptions, 'journalId'> {
  const timeoutMs = timeoutMsOf(f);
  return {
    ...connection(f),
    onRetry: retryReporter(io.err),
    ...(timeoutMs !== undefined
      ? { requestTimeoutMs: Math.min(5000, timeoutMs), writeTimeoutMs: timeoutMs, recoveryTimeoutMs: timeoutMs }
      : {}),
  };
}

export function adminClient(f: Connection, io: CliIo): AdminClient {
  const { peers, tls } = connection(f);
  const timeoutMs = timeoutMsOf(f);
  return new AdminClient(peers, {
    ...(tls ? { tls } : {}),
    onRetry: retryReporter(io.err),
    ...(timeoutMs !== undefined
      ? { requestTimeoutMs: Math.min(3000, timeoutMs), retry: { deadlineMs: timeoutMs } }
      : {}),
  });
}

/** The nodes --peers gives: host:port, or id=host:port (then the node there must be that one). */
export function peersOf(f: { peers: string }): string[] {
  try {
    return parseClientPeers(f.peers).map((p) => (p.id === undefined ? p.address : `${p.id}=${p.address}`));
  } catch (e) {
    throw new UsageError(`--peers: ${(e as Error).message}, e.g. --peers 127.0.0.1:8485,127.0.0.1:8486,127.0.0.1:8487`);
  }
}

export function parsePeersFlag(flag: string, value: string): Peer[] {
  try {
    return parsePeers(value);
  } catch (e) {
    throw new UsageError(`--${flag}: ${(e as Error).message}`);
  }
}
