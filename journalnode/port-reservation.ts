// The node's ports, bound before it writes anything to its data directory and held while it opens it (a
// forming node's server takes --listen over): a start that cannot bind (a port in use, an address not on this
// host) fails before a storage id, a formation or a joining state is written, and the next start finds the
// directory as it was. A held port serves nothing: a connection that reaches it is reset, so it is held only
// that long (the node may read its log for a while after; a client is refused then, as before any start).
// A port of 0 (an ephemeral port, tests only) is never held: there is nothing to reserve.

import net from 'node:net';
import { splitHostPort } from '../src/ids.js';

export class PortUnavailableError extends Error {
  override name = 'PortUnavailableError';
}

export class PortReservation {
  private readonly held = new Map<string, net.Server>();

  /** Binds every address (host:port) or none: on a failure, what was bound is closed again and the error names the address. */
  static async take(addresses: readonly string[]): Promise<PortReservation> {
    const r = new PortReservation();
    try {
      for (const a of addresses) await r.take(a);
    } catch (e) {
      await r.releaseAll();
      throw e;
    }
    return r;
  }

  /** Binds `address` and holds it. */
  private async take(address: string): Promise<void> {
    const { host, port } = splitHostPort(address);
    if (port === 0 || this.held.has(address)) return;
    const server = net.createServer((socket) => socket.destroy());
    await new Promise<void>((resolve, reject) => {
      server.once('error', (e: NodeJS.ErrnoException) =>
        reject(new PortUnavailableError(`cannot listen on ${address}: ${e.code ?? e.message}${hint(e.code)}`)),
      );
      server.listen({ host, port, exclusive: true }, () => resolve());
    });
    this.held.set(address, server);
  }

  /** Frees `address` for the server about to listen on it. */
  async release(address: string): Promise<void> {
    const server = this.held.get(address);
    if (!server) return;
    this.held.delete(address);
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  async releaseAll(): Promise<void> {
    await Promise.all([...this.held.keys()].map((a) => this.release(a)));
  }
}

function hint(code: string | undefined): string {
  if (code === 'EADDRINUSE')
    return ' (another process listens there: a journalnode already running, or another program)';
  if (code === 'EADDRNOTAVAIL') return ' (no interface of this host has that address: --listen names a local address)';
  if (code === 'EACCES') return ' (a port below 1024 needs privileges)';
  return '';
}
