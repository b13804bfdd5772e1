// The one HTTP client of qjournal (libqjm to JournalNodes, and JournalNodes to each other): keep-alive
// undici pools per address, driven through undici's low-level dispatch API — no stream per response body,
// which is most of a small exchange's CPU — with explicit connect, header and body timeouts and an abort
// signal. With TLS material it dials https:// with a client certificate and checks the server's against the
// CA (and the caller's own rule: a JournalNode expects the peer id it meant to reach); setTls() swaps the
// material for new connections (certificate rotation), open ones keep theirs.
//
// Streams (openStream: one long-lived request whose body the caller keeps writing, the peer transport's) go
// through node's own HTTP/1.1 client instead, one connection per address, reused by the next stream in
// order: measured on this machine (scripts/stream-transport-probe.mjs), undici's streamed request bodies
// cost about 45% more CPU per MB than node's chunked writes.

import http from 'node:http';
import https from 'node:https';
import type { PeerCertificate } from 'node:tls';
import { checkServerIdentity, TLSSocket } from 'node:tls';
import { buildConnector, Pool } from 'undici';
import { splitHostPort } from './ids.js';
import type { Dispatcher } from 'undici';

/**
 * The one TLS version qjournal speaks, dialing and serving: every client is ours, and TLS 1.3 has no
 * renegotiation (a TLS 1.2 connection could change its certificate after the one its caller was taken from).
 */
export const TLS_VERSION = 'TLSv1.3' as const;

/** What a TLS client presents and trusts (PEM). Without cert and key it is an anonymous TLS client. */
export interface ClientTls {
  ca: string | Buffer;
  cert?: string | Buffer;
  key?: string | Buffer;
  /** A check of the server's certificate beyond the CA and the host name: the problem, or null. */
  verifyServer?: (address: string, cert: PeerCertificate) => string | null;
}

export interface HttpResponse {
  status: number;
  body: Buffer;
  /** The response headers the pool was asked to keep (keepHeaders), by lower-case name, when present. */
  headers?: Record<string, string>;
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

/** One long-lived request whose body the caller keeps writing to. */
export interface OutboundStream {
  /** Writes the chunks, in order; false when the caller should wait for onDrain before writing more. */
  write(chunks: readonly Uint8Array[]): boolean;
  /** Ends the body: the server answers, and the connection goes to the next stream to this address. */
  end(): void;
  /** Cuts the connection now; no handler is called after this. */
  destroy(): void;
}

export interface StreamHandlers {
  /** The server answered: after end(), or early when it refused the stream. Its status and (the start of) its body. */
  onResponse(status: number, body: Buffer): void;
  /** The connection failed, or stayed silent for idleTimeoutMs. */
  onError(err: HttpError): void;
  /** What write() returned false for has been handed to the socket. */
  onDrain(): void;
}

/** How much of a stream's answer is kept: it is a refusal's message, or nothing. */
const STREAM_ANSWER_BYTES = 64 << 10;

/**
 * How a connection to `address` is dialed with `tls`: its client certificate, and the server's checked against
 * the CA, then the host name, then the caller's own rule (verifyServer). The pools and the streams both use it.
 */
function tlsDialOptions(tls: ClientTls, address: string) {
  return {
    ca: tls.ca,
    ...(tls.cert && tls.key ? { cert: tls.cert, key: tls.key } : {}),
    rejectUnauthorized: true,
    minVersion: TLS_VERSION,
    maxVersion: TLS_VERSION,
    checkServerIdentity: (host: string, cert: PeerCertificate): Error | undefined => {
      const wrongHost = checkServerIdentity(host, cert);
      if (wrongHost) return wrongHost;
      const problem = tls.verifyServer?.(address, cert) ?? null;
      return problem ? Object.assign(new Error(problem), { code: 'ERR_TLS_SERVER_REFUSED' }) : undefined;
    },
  };
}

const EMPTY = Buffer.alloc(0);
const CONNECT_ERRORS = new Set([
  'ECONNREFUSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
]);

export class HttpPools {
  private readonly pools = new Map<string, Pool>();
  private closed = false;

  private tls: ClientTls | null;
  /** Bumped by setTls: a pool's connector rebuilds itself when its generation is behind. */
  private tlsGeneration = 0;

  /** The node:http agent of each address's streams, with the TLS generation it was built with. */
  private readonly streamAgents = new Map<string, { generation: number; agent: http.Agent }>();

  constructor(
    private readonly options: {
      connectTimeoutMs: number;
      connections?: number;
      tls?: ClientTls;
      keepHeaders?: readonly string[];
    },
  ) {
    this.tls = options.tls ?? null;
  }

  /** Whether this client speaks TLS (and so checks every server it reaches). */
  get secure(): boolean {
    return this.tls !== null;
  }

  /** Closes every connection to `address` (its server is no longer the one expected there); new ones redial. */
  forget(address: string): void {
    const p = this.pools.get(address);
    this.pools.delete(address);
    if (p) void p.destroy().catch(() => {});
    this.streamAgents.get(address)?.agent.destroy();
    this.streamAgents.delete(address);
  }

  /** New TLS material for connections opened from now on (a pool speaks TLS from its creation or never). */
  setTls(tls: ClientTls): void {
    if (!this.tls) throw new Error('this HTTP client was built without TLS');
    this.tls = tls;
    this.tlsGeneration++;
  }

  private pool(address: string): Pool {
    let p = this.pools.get(address);
    if (!p) {
      p = new Pool(`${this.tls ? 'https' : 'http'}://${address}`, {
        connections: this.options.connections ?? 4,
        pipelining: 1,
        connectTimeout: this.options.connectTimeoutMs,
        keepAliveTimeout: 30_000,
        keepAliveMaxTimeout: 600_000,
        ...(this.tls ? { connect: this.tlsConnector(address) } : {}),
      });
      this.pools.set(address, p);
    }
    return p;
  }

  /** Dials with the current TLS material, verifying the server: the CA, the host name, then verifyServer. */
  private tlsConnector(address: string): buildConnector.connector {
    let built: { generation: number; connect: buildConnector.connector } | null = null;
    return (opts, callback) => {
      if (!built || built.generation !== this.tlsGeneration) {
        const tls = this.tls!;
        const connect = buildConnector({ ...tlsDialOptions(tls, address), timeout: this.options.connectTimeoutMs });
        built = { generation: this.tlsGeneration, connect };
      }
      // TLS 1.3 has no renegotiation; refused on the socket too, so no server could ever start one.
      built.connect(opts, (err, socket) => {
        if (socket && socket instanceof TLSSocket) socket.disableRenegotiation();
        if (err) callback(err, null);
        else callback(null, socket!);
      });
    };
  }

  /** One request; rejects with HttpError on a network failure, resolves with any HTTP status. */
  request(
    address: string,
    method: 'GET' | 'POST',
    path: string,
    body: Uint8Array | null,
    timeoutMs: number,
    signal?: AbortSignal,
  ): Promise<HttpResponse> {
    if (this.closed) return Promise.reject(new HttpError('the HTTP client is closed', false, 'CLOSED'));
    const what = { address, method, path, tls: this.tls !== null, keepHeaders: this.options.keepHeaders };
    return new Promise<HttpResponse>((resolve, reject) => {
      const response = new ResponseCollector(what, signal, resolve, reject);
      if (!response.started()) return;
      this.pool(address).dispatch(
        {
          method,
          path,
          headers: body ? { 'content-type': 'application/x-protobuf' } : {},
          body: body ? Buffer.from(body.buffer, body.byteOffset, body.byteLength) : null,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        },
        response.handler,
      );
    });
  }

  /** One connection per address for its streams, kept alive so a stream's successor follows it in order. */
  private streamAgent(address: string): http.Agent {
    const current = this.streamAgents.get(address);
    if (current && current.generation === this.tlsGeneration) return current.agent;
    // New TLS material: a new agent for new connections; the old one's connection ends with its stream.
    const o = { keepAlive: true, maxSockets: 1, timeout: 30_000 };
    const agent = this.tls ? new https.Agent(o) : new http.Agent(o);
    this.streamAgents.set(address, { generation: this.tlsGeneration, agent });
    return agent;
  }

  /**
   * Opens a stream: a POST whose chunked body the caller writes frame by frame, for as long as it likes
   * (bounded by the server's request timeout). The server answers when the body ends, or early to refuse it.
   */
  openStream(
    address: string,
    path: string,
    contentType: string,
    idleTimeoutMs: number,
    h: StreamHandlers,
  ): OutboundStream {
    if (this.closed) throw new HttpError('the HTTP client is closed', false, 'CLOSED');
    const { host, port } = splitHostPort(address);
    const tls = this.tls;
    let done = false;
    let ended = false;
    const settle = (f: () => void) => {
      if (done) return;
      done = true;
      f();
    };
    const options: https.RequestOptions = {
      host,
      port,
      method: 'POST',
      path,
      agent: this.streamAgent(address),
      headers: { 'content-type': contentType },
      ...(tls ? tlsDialOptions(tls, address) : {}),
    };
    const req = (tls ? https : http).request(options, (res) => {
      const chunks: Buffer[] = [];
      let kept = 0;
      res.on('data', (c: Buffer) => {
        if (kept < STREAM_ANSWER_BYTES) chunks.push(c);
        kept += c.byteLength;
      });
      res.on('end', () => {
        // An answer before the body ended is a refusal: the rest of the body must not follow on this connection.
        if (!ended) req.destroy();
        settle(() => h.onResponse(res.statusCode ?? 0, Buffer.concat(chunks).subarray(0, STREAM_ANSWER_BYTES)));
      });
      res.on('error', (e) => settle(() => h.onError(new HttpError(`${address}: ${e.message}`, true, 'STREAM_FAILED'))));
    });
    req.setTimeout(idleTimeoutMs, () =>
      req.destroy(Object.assign(new Error(`nothing moved for ${idleTimeoutMs} ms`), { code: 'STREAM_IDLE' })),
    );
    req.on('error', (e: Error & { code?: string }) => {
      const code = e.code ?? e.name;
      settle(() => h.onError(new HttpError(`${address}: ${code}: ${e.message}`, !CONNECT_ERRORS.has(code), code)));
    });
    req.on('drain', () => {
      if (!done) h.onDrain();
    });
    if (tls) req.on('socket', (s) => (s as TLSSocket).disableRenegotiation());
    req.flushHeaders();
    return {
      write(chunks) {
        req.cork();
        let ok = true;
        for (const c of chunks) ok = req.write(c);
        req.uncork();
        return ok;
      },
      end() {
        ended = true;
        req.end();
      },
      destroy() {
        done = true;
        req.destroy();
      },
    };
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const { agent } of this.streamAgents.values()) agent.destroy();
    this.streamAgents.clear();
    const pools = [...this.pools.values()];
    this.pools.clear();
    await Promise.all(pools.map((p) => p.destroy().catch(() => {})));
  }
}

/**
 * One request's answer as undici's dispatch hands it over: the status, the headers asked for, the body's
 * chunks; settled once, by the end of the body, an error, or the caller's abort signal.
 */
class ResponseCollector {
  private status = 0;
  private headers: Record<string, string> | undefined;
  /** The request reached the server (it answered, or its body was sent): a failure may follow an effect. */
  private sent = false;
  private abort: ((err?: Error) => void) | null = null;
  private readonly chunks: Buffer[] = [];
  private settled = false;
  private readonly onAbort = () =>
    this.abort?.(new HttpError(`${this.what.method} ${this.what.path}: aborted`, this.sent, 'ABORTED'));

  constructor(
    private readonly what: {
      address: string;
      method: string;
      path: string;
      tls: boolean;
      keepHeaders?: readonly string[];
    },
    private readonly signal: AbortSignal | undefined,
    private readonly resolve: (r: HttpResponse) => void,
    private readonly reject: (e: Error) => void,
  ) {}

  /** Listens to the abort signal; false (and rejected) when it has already fired. */
  started(): boolean {
    if (this.signal?.aborted) {
      this.finish(new HttpError(`${this.what.method} ${this.what.path}: aborted`, false, 'ABORTED'));
      return false;
    }
    this.signal?.addEventListener('abort', this.onAbort, { once: true });
    return true;
  }

  readonly handler: Dispatcher.DispatchHandler = {
    onConnect: (abort) => {
      this.abort = abort;
    },
    onError: (err) => this.finish(err),
    onUpgrade() {},
    onHeaders: (statusCode, rawHeaders) => {
      this.sent = true;
      this.status = statusCode;
      this.keep(rawHeaders);
      return true;
    },
    onData: (chunk) => {
      this.chunks.push(chunk);
      return true;
    },
    onComplete: () => this.finish(null),
    onBodySent: () => {
      this.sent = true;
    },
  };

  private keep(rawHeaders: Buffer[]): void {
    const keep = this.what.keepHeaders;
    if (!keep) return;
    for (let i = 0; i + 1 < rawHeaders.length; i += 2) {
      const name = rawHeaders[i]!.toString('latin1').toLowerCase();
      if (keep.includes(name)) {
        this.headers ??= {};
        this.headers[name] = rawHeaders[i + 1]!.toString('latin1');
      }
    }
  }

  private finish(err: Error | null): void {
    if (this.settled) return;
    this.settled = true;
    this.signal?.removeEventListener('abort', this.onAbort);
    if (err) return this.reject(this.asHttpError(err));
    const chunks = this.chunks;
    const body = chunks.length === 0 ? EMPTY : chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
    this.resolve(this.headers ? { status: this.status, body, headers: this.headers } : { status: this.status, body });
  }

  private asHttpError(err: Error): HttpError {
    if (err instanceof HttpError) return err;
    const code = (err as { code?: string }).code ?? err.name;
    // A node started with --certs-dir hangs up on plain HTTP before answering: say so.
    const hint =
      !this.what.tls && this.status === 0 && code === 'UND_ERR_SOCKET'
        ? ' (if the node serves HTTPS, started with --certs-dir, connect with TLS)'
        : '';
    const message = `${this.what.address}: ${code}: ${err.message}${hint}`;
    return new HttpError(message, this.sent && !CONNECT_ERRORS.has(code), code);
  }
}
