// Connections a node accepts, on all its ports together: each is a file descriptor, and a node whose
// descriptors run out cannot open its own files. So: at most maxConnections in all (never more than the
// process's open-file limit less the descriptors kept for storage and peers), at most maxConnectionsPerAddress
// from one remote address (an IPv6 /64 counts as one), a connection beyond either reset before a byte is read
// or a TLS handshake is begun; and a connection must finish its TLS handshake within tlsHandshakeTimeoutMs
// (the TLS server's own handshakeTimeout, see http-app.ts) and send its first request within
// firstRequestTimeoutMs, or it is closed. A flood that stops leaves nothing behind.

import fs from 'node:fs';
import net from 'node:net';
import type { Server } from 'node:net';
import type { Logger } from '../../src/logger.js';

export interface ConnectionLimits {
  /** Connections open at once on every port the guard watches. */
  maxConnections: number;
  maxConnectionsPerAddress: number;
  firstRequestTimeoutMs: number;
}

export type ConnectionRefusal = 'connections_total' | 'connections_per_address' | 'first_request_timeout';

/** The process's open-file limit (the soft one, as Linux reports it in /proc/self/limits), or null if unknown. */
export function openFileLimit(limitsText?: string): number | null {
  let text = limitsText;
  if (text === undefined) {
    try {
      text = fs.readFileSync('/proc/self/limits', 'utf8');
    } catch {
      return null;
    }
  }
  const m = /^Max open files\s+(\d+|unlimited)\s/m.exec(text);
  if (!m) return null;
  return m[1] === 'unlimited' ? Number.MAX_SAFE_INTEGER : Number(m[1]);
}

/** Below this many descriptors for connections a node could not serve its own peers and clients: refuse to start. */
export const MIN_CONNECTIONS = 64;

/**
 * The bounds in force: maxConnections, and the open-file limit less reservedFileDescriptors, whichever is
 * lower; per address, the setting, and never more than half of that (one address never takes them all).
 * Throws when the limit leaves fewer than MIN_CONNECTIONS (the message says what to raise).
 */
export function effectiveLimits(
  s: {
    maxConnections: number;
    maxConnectionsPerAddress: number;
    reservedFileDescriptors: number;
    firstRequestTimeoutMs: number;
  },
  fileLimit: number | null,
): ConnectionLimits {
  const byFiles = fileLimit === null ? Number.MAX_SAFE_INTEGER : fileLimit - s.reservedFileDescriptors;
  const maxConnections = Math.min(s.maxConnections, byFiles);
  if (maxConnections < MIN_CONNECTIONS)
    throw new Error(
      `the process may open ${fileLimit} files and ${s.reservedFileDescriptors} are kept for storage and peers (reservedFileDescriptors): fewer than ${MIN_CONNECTIONS} would be left for connections. Raise the open-file limit (ulimit -n, systemd LimitNOFILE=) or lower reservedFileDescriptors`,
    );
  return {
    maxConnections,
    maxConnectionsPerAddress: Math.max(1, Math.min(s.maxConnectionsPerAddress, Math.floor(maxConnections / 2))),
    firstRequestTimeoutMs: s.firstRequestTimeoutMs,
  };
}

/** Who a connection counts against: its IPv4 address, or the /64 of its IPv6 address (one host's usual share). */
export function addressKey(remote: string | undefined): string {
  if (!remote) return '?';
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(remote);
  if (v4) return v4[1]!;
  if (net.isIPv4(remote) || !net.isIPv6(remote)) return remote;
  const [head, tail = ''] = remote.split('::') as [string, string?];
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = remote.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  return `${groups
    .slice(0, 4)
    .map((g) => Number.parseInt(g, 16).toString(16))
    .join(':')}::/64`;
}

/** Closes with a reset where the socket is TCP's own (a TLS socket over it is just destroyed). */
function reset(socket: net.Socket): void {
  try {
    socket.resetAndDestroy();
  } catch {
    socket.destroy();
  }
}

/** How often a refusal is logged at most: a flood must not flood the log too. */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

export class ConnectionGuard {
  private total = 0;
  private readonly perAddress = new Map<string, number>();
  private readonly firstRequest = new WeakMap<object, NodeJS.Timeout>();
  private lastLogMs = 0;
  private suppressed = 0;

  constructor(
    readonly limits: ConnectionLimits,
    private readonly logger: Logger,
    private readonly onRefused: (reason: ConnectionRefusal) => void = () => {},
  ) {}

  /** Connections open now, in all and from one address (by addressKey). */
  get open(): number {
    return this.total;
  }

  openFrom(key: string): number {
    return this.perAddress.get(key) ?? 0;
  }

  /** Watches every server of the node (all draw on one pool of descriptors). */
  guardAll(servers: { server: Server; tls: boolean }[]): void {
    for (const s of servers) this.guard(s.server, s.tls);
  }

  /**
   * Watches a server before it listens. Its own 'connection' listeners (the TLS layer's, HTTP's) run only for
   * a connection the bounds admit: a refused one is closed before any of them, so it costs no TLS work.
   * `tls`: the HTTP layer sees a connection once its handshake is done ('secureConnection').
   */
  guard(server: Server, tls: boolean): void {
    const inner = server.listeners('connection') as ((s: net.Socket) => void)[];
    server.removeAllListeners('connection');
    server.on('connection', (socket: net.Socket) => {
      if (!this.admit(socket)) return;
      for (const l of inner) l.call(server, socket);
      if (!tls) this.awaitFirstRequest(socket);
    });
    if (tls) server.on('secureConnection', (socket: net.Socket) => this.awaitFirstRequest(socket));
    server.on('request', (req: { socket: object }) => this.clearFirstRequest(req.socket));
  }

  private admit(socket: net.Socket): boolean {
    const key = addressKey(socket.remoteAddress);
    const fromHere = this.perAddress.get(key) ?? 0;
    const reason: ConnectionRefusal | null =
      this.total >= this.limits.maxConnections
        ? 'connections_total'
        : fromHere >= this.limits.maxConnectionsPerAddress
          ? 'connections_per_address'
          : null;
    if (reason) {
      // A reset, not a close: no TIME_WAIT is left on either side, so a flood ties up no ports and no kernel
      // state here once it stops (and its own source ports come back at once).
      reset(socket);
      this.refused(reason, key);
      return false;
    }
    this.total++;
    this.perAddress.set(key, fromHere + 1);
    socket.once('close', () => {
      this.total--;
      const left = (this.perAddress.get(key) ?? 1) - 1;
      if (left > 0) this.perAddress.set(key, left);
      else this.perAddress.delete(key);
    });
    return true;
  }

  private awaitFirstRequest(socket: net.Socket): void {
    const timer = setTimeout(() => {
      this.firstRequest.delete(socket);
      reset(socket);
      this.refused('first_request_timeout', addressKey(socket.remoteAddress));
    }, this.limits.firstRequestTimeoutMs);
    timer.unref();
    this.firstRequest.set(socket, timer);
    socket.once('close', () => this.clearFirstRequest(socket));
  }

  private clearFirstRequest(socket: object): void {
    const timer = this.firstRequest.get(socket);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.firstRequest.delete(socket);
  }

  private refused(reason: ConnectionRefusal, key: string): void {
    this.onRefused(reason);
    const now = Date.now();
    if (now - this.lastLogMs < REFUSAL_LOG_INTERVAL_MS) {
      this.suppressed++;
      return;
    }
    this.logger.warn(
      {
        reason,
        remote: key,
        open: this.total,
        fromThatAddress: this.perAddress.get(key) ?? 0,
        limits: this.limits,
        suppressedSinceLast: this.suppressed,
      },
      'closed a connection to stay within the connection bounds',
    );
    this.lastLogMs = now;
    this.suppressed = 0;
  }
}
