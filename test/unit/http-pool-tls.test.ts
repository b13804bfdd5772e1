// The HTTP client's TLS: both of its ways of dialing (the undici pools and the streams on node's client)
// speak TLS 1.3 only, so a server that offers at most TLS 1.2 is never talked to.

import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { HttpPools } from '../../src/http-pool.js';
import type { HttpError } from '../../src/http-pool.js';
import { loadClientTls, loadNodeTls } from '../../src/security/cert-files.js';
import { createCa, createClientCert, createNodeCert } from '../../src/security/certs.js';

describe('HTTP client TLS', function () {
  this.timeout(20_000);
  let dir: string;
  let pools: HttpPools;
  const servers: https.Server[] = [];

  /** An HTTPS server with the node's certificate, speaking the TLS versions given; answers 200 to all. */
  async function serve(maxVersion: 'TLSv1.2' | 'TLSv1.3'): Promise<string> {
    const m = loadNodeTls(dir, 'n1');
    const s = https.createServer({ ...m, requestCert: true, rejectUnauthorized: true, maxVersion }, (req, res) => {
      req.resume();
      req.on('end', () => res.end('ok'));
    });
    servers.push(s);
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    return `127.0.0.1:${(s.address() as { port: number }).port}`;
  }

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qjournal-http-tls-'));
    await createCa({ certsDir: dir });
    await createNodeCert({ certsDir: dir }, 'n1', ['127.0.0.1']);
    await createClientCert({ certsDir: dir }, 'writer', ['writer'], ['ns1']);
    pools = new HttpPools({ connectTimeoutMs: 2000, tls: loadClientTls(dir, 'writer') });
  });
  after(async () => {
    await pools.close();
    for (const s of servers) s.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('requests and streams reach a TLS 1.3 server', async () => {
    const address = await serve('TLSv1.3');
    expect((await pools.request(address, 'GET', '/', null, 5000)).status).to.equal(200);
    const status = await new Promise<number>((resolve, reject) => {
      const s = pools.openStream(address, '/', 'application/octet-stream', 5000, {
        onResponse: (st) => resolve(st),
        onError: reject,
        onDrain: () => {},
      });
      s.write([Buffer.from('frame')]);
      s.end();
    });
    expect(status).to.equal(200);
  });

  it('neither a request nor a stream is sent to a server that speaks at most TLS 1.2', async () => {
    const address = await serve('TLSv1.2');
    let failure: HttpError | null = null;
    await pools.request(address, 'GET', '/', null, 5000).catch((e: HttpError) => (failure = e));
    expect(failure, 'the request was answered').to.not.equal(null);
    expect(failure!.message).to.match(/protocol|version/i);
    const streamFailure = await new Promise<string>((resolve) => {
      const s = pools.openStream(address, '/', 'application/octet-stream', 5000, {
        onResponse: (st) => resolve(`answered ${st}`),
        onError: (e) => resolve(e.message),
        onDrain: () => {},
      });
      s.end();
    });
    expect(streamFailure).to.match(/protocol|version/i);
  });
});
