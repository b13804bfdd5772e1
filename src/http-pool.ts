// The one HTTP client of qjournal (libqjm to JournalNodes, and JournalNodes to each other): keep-alive
// undici pools per address, driven through undici's low-level dispatch API — no stream per response body,
// which is most of a small exchange's CPU — with explicit connect, header and body timeouts and an abort
// signal.

import { Pool } from 'undici';
import type { Dispatcher } from 'undici';

export interface HttpResponse {
  status: number;
  body: Buffer;
}

export class HttpError extends Error {
  override name = 'HttpError';
  constructor(
    message: string,
    /** The request may have reached the server (the answer was lost): its outcome is unknown. */
    readonly maybeSent: boolean,
    readonly code: string,
  ) {
    super(message);
  }
}

const EMPTY = Buffer.alloc(0);
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

export class HttpPools {
  private readonly pools = new Map<string, Pool>();
  private closed = false;

  constructor(private readonly o: { connectTimeoutMs: number; connections?: number }) {}

  private pool(address: string): Pool {
    let p = this.pools.get(address);
    if (!p) {
      p = new Pool(`http://${address}`, {
        connections: this.o.connections ?? 4,
        pipelining: 1,
        connectTimeout: this.o.connectTimeoutMs,
        keepAliveTimeout: 30_000,
        keepAliveMaxTimeout: 600_000,
      });
      this.pools.set(address, p);
    }
    return p;
  }

  /** One request; rejects with HttpError on a network failure, resolves with any HTTP status. */
  request(address: string, method: 'GET' | 'POST', path: string, body: Uint8Array | null, timeoutMs: number, signal?: AbortSignal): Promise<HttpResponse> {
    if (this.closed) return Promise.reject(new HttpError('the HTTP client is closed', false, 'CLOSED'));
    return new Promise<HttpResponse>((resolve, reject) => {
      let status = 0;
      let sent = false;
      let abort: ((err?: Error) => void) | null = null;
      const chunks: Buffer[] = [];
      let settled = false;
      const onAbort = () => abort?.(new HttpError(`${method} ${path}: aborted`, sent, 'ABORTED'));
      const finish = (err: Error | null) => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        if (err) {
          const code = (err as { code?: string }).code ?? err.name;
          if (err instanceof HttpError) reject(err);
          else reject(new HttpError(`${address}: ${code}: ${err.message}`, sent && !CONNECT_ERRORS.has(code), code));
          return;
        }
        resolve({ status, body: chunks.length === 0 ? EMPTY : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks) });
      };
      if (signal?.aborted) return finish(new HttpError(`${method} ${path}: aborted`, false, 'ABORTED'));
      signal?.addEventListener('abort', onAbort, { once: true });
      const handler: Dispatcher.DispatchHandler = {
        onConnect(a) {
          abort = a;
        },
        onError(err) {
          finish(err);
        },
        onUpgrade() {},
        onHeaders(statusCode) {
          sent = true;
          status = statusCode;
          return true;
        },
        onData(chunk) {
          chunks.push(chunk);
          return true;
        },
        onComplete() {
          finish(null);
        },
        onBodySent() {
          sent = true;
        },
      };
      this.pool(address).dispatch(
        {
          method,
          path,
          headers: body ? { 'content-type': 'application/x-protobuf' } : {},
          body: body ? Buffer.from(body.buffer, body.byteOffset, body.byteLength) : null,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        },
        handler,
      );
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.destroy().catch(() => {})));
  }
}
