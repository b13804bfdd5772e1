// HTTP clients to peers (undici pools with keep-alive, explicit connect and request timeouts): Raft message
// batches and snapshot transfer. One pool per peer address.

import { Pool } from 'undici';

export interface HttpResult {
  status: number;
  body: Buffer;
}

export class PeerClients {
  private readonly pools = new Map<string, Pool>();

  constructor(private readonly connectTimeoutMs: number) {}

  pool(address: string): Pool {
    let p = this.pools.get(address);
    if (!p) {
      p = new Pool(`http://${address}`, {
        connections: 4,
        pipelining: 1,
        connectTimeout: this.connectTimeoutMs,
        keepAliveTimeout: 30_000,
        keepAliveMaxTimeout: 600_000,
      });
      this.pools.set(address, p);
    }
    return p;
  }

  async request(address: string, method: 'GET' | 'POST', path: string, body: Uint8Array | null, timeoutMs: number): Promise<HttpResult> {
    const res = await this.pool(address).request({
      method,
      path,
      headers: body ? { 'content-type': 'application/x-protobuf' } : {},
      body: body ? Buffer.from(body.buffer, body.byteOffset, body.byteLength) : null,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    });
    const chunks: Buffer[] = [];
    for await (const c of res.body) chunks.push(c as Buffer);
    return { status: res.statusCode, body: chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) };
  }

  async close(): Promise<void> {
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.destroy().catch(() => {})));
  }
}
