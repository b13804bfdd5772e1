// A node with mutual TLS closes a connection that never finishes its handshake within tlsHandshakeTimeoutMs,
// and one that finishes it but sends no request within firstRequestTimeoutMs; a client that asks in time is
// served. Both are counted (qjournal_http_refused_total).

import fs from 'node:fs';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { expect } from 'chai';
import { createCa, createNodeCert } from '../../../../src/security/certs.js';
import { startSingleNode } from '../../../support/single-node.js';
import type { JournalNode } from '../../../../journalnode/journal-node.js';

const closedWithin = (s: net.Socket) =>
  new Promise<number>((resolve) => {
    const t0 = Date.now();
    s.on('error', () => {});
    s.once('close', () => resolve(Date.now() - t0));
  });

describe('connection deadlines (mutual TLS)', function () {
  this.timeout(30_000);
  let certsDir: string;
  let node: JournalNode;
  let dir: string;
  let port: number;
  before(async () => {
    certsDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-certs-'));
    await createCa({ certsDir });
    await createNodeCert({ certsDir }, 'n1', ['127.0.0.1', 'localhost']);
    ({ node, dir } = await startSingleNode({ certsDir, tlsHandshakeTimeoutMs: 300, firstRequestTimeoutMs: 300 }));
    port = (node.app.server.address() as AddressInfo).port;
  });
  after(async () => {
    await node.stop();
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(certsDir, { recursive: true, force: true });
  });
  const refusals = async (reason: string) => {
    const m = new RegExp(`qjournal_http_refused_total\\{[^}]*reason="${reason}"[^}]*\\} (\\d+)`).exec(
      await node.metrics.text(),
    );
    return m ? Number(m[1]) : 0;
  };

  it('no handshake within tlsHandshakeTimeoutMs: closed', async () => {
    const s = net.connect(port, '127.0.0.1');
    const ms = await closedWithin(s);
    expect(ms).to.be.within(200, 3000);
    expect(await refusals('tls_handshake_timeout')).to.be.at.least(1);
  });

  it('a handshake but no request within firstRequestTimeoutMs: closed; a request in time is served', async () => {
    const ca = fs.readFileSync(path.join(certsDir, 'ca.crt'), 'utf8');
    const quiet = tls.connect({ port, host: '127.0.0.1', ca });
    await new Promise((r) => quiet.once('secureConnect', r));
    const ms = await closedWithin(quiet);
    expect(ms).to.be.within(200, 3000);
    expect(await refusals('first_request_timeout')).to.be.at.least(1);
    const asks = tls.connect({ port, host: '127.0.0.1', ca });
    await new Promise((r) => asks.once('secureConnect', r));
    asks.write('GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n');
    const answer = await new Promise<string>((r) => asks.once('data', (d) => r(d.toString())));
    expect(answer).to.match(/^HTTP\/1.1 200/);
    await new Promise((r) => setTimeout(r, 600));
    expect(asks.destroyed, 'kept open past the deadline once it asked').to.equal(false);
    asks.destroy();
  });
});
