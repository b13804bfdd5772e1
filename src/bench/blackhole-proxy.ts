// A TCP proxy in front of one JournalNode that can cut its traffic the way a partition does (the benchmark's
// link measurements and the integration tests): cut() resets every connection through it and swallows every
// connection opened while it lasts (accepted, never answered, its bytes never delivered: a connection dialed
// into a partition, whose handshake never completes); heal() lets new connections through again, but the
// swallowed ones stay dead, as a half-open connection does until someone notices.

import net from 'node:net';
import { splitHostPort } from '../ids.js';

export class BlackholeProxy {
  private cutNow = false;
  private readonly live = new Set<net.Socket>();
  private readonly swallowed = new Set<net.Socket>();

  private constructor(
    private readonly server: net.Server,
    readonly address: string,
  ) {}

  /** A proxy on a free loopback port that forwards to `target` (host:port). */
  static async start(target: string): Promise<BlackholeProxy> {
    const { host, port } = splitHostPort(target);
    let proxy: BlackholeProxy | null = null;
    const server = net.createServer((client) => proxy!.accept(client, host, port));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port: own } = server.address() as net.AddressInfo;
    proxy = new BlackholeProxy(server, `127.0.0.1:${own}`);
    return proxy;
  }

  get isCut(): boolean {
    return this.cutNow;
  }

  /** Connections swallowed so far (dialed during a cut). */
  get swallowedConnections(): number {
    return this.swallowed.size;
  }

  private accept(client: net.Socket, host: string, port: number): void {
    client.on('error', () => {});
    if (this.cutNow) {
      // Dialed into the partition: held open, read from never, answered never.
      client.pause();
      this.swallowed.add(client);
      client.on('close', () => this.swallowed.delete(client));
      return;
    }
    const upstream = net.connect(port, host);
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    client.pipe(upstream);
    upstream.pipe(client);
    this.live.add(client);
    client.on('close', () => this.live.delete(client));
  }

  /** The partition begins: every connection through the proxy is reset; new ones are swallowed. */
  cut(): void {
    this.cutNow = true;
    for (const c of this.live) c.resetAndDestroy();
  }

  /** The partition heals: new connections go through; the ones swallowed meanwhile stay dead. */
  heal(): void {
    this.cutNow = false;
  }

  async close(): Promise<void> {
    for (const c of [...this.live, ...this.swallowed]) c.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
