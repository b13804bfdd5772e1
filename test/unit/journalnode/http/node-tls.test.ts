// The node's TLS guard, against a real HTTPS server built with the node's own server options, the guard and
// the authorization hook: renegotiation is refused even where TLS 1.2 were allowed (the layer beneath TLS 1.3
// only), with a warning naming the remote address; and a connection's principal is the one settled at its
// handshake, whatever the socket reports later.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import { expect } from 'chai';
import Fastify from 'fastify';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { registerAuthorization, settlePrincipal, settledPrincipal } from '../../../../journalnode/http/authz.js';
import { guardTlsConnections, serverTlsOptions } from '../../../../journalnode/http/node-tls.js';
import { loadNodeTls } from '../../../../src/security/cert-files.js';
import { createCa, createClientCert, createNodeCert } from '../../../../src/security/certs.js';
import { renegotiateThenRequest } from '../../../support/tls-renegotiate.js';
import { waitFor } from '../../../support/async.js';

describe('node TLS guard', function () {
  this.timeout(30_000);
  let dir: string;
  let app: FastifyInstance;
  const logged: { msg: string; remote?: string; caller?: string }[] = [];

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qjournal-node-tls-'));
    const ours = path.join(dir, 'ours');
    const evil = path.join(dir, 'evil');
    await createCa({ certsDir: ours });
    await createNodeCert({ certsDir: ours }, 'n1', ['127.0.0.1']);
    await createClientCert({ certsDir: ours }, 'reader', ['reader'], ['ns1']);
    await createCa({ certsDir: evil });
    await createClientCert({ certsDir: evil }, 'admin', ['admin']);
    const logger = pino(
      { level: 'warn' },
      { write: (line: string) => logged.push(JSON.parse(line) as (typeof logged)[number]) },
    );
    // The node's server options with TLS 1.2 let back in: what a weaker listener would be. The guard must hold.
    const options = { ...serverTlsOptions(loadNodeTls(ours, 'n1')), minVersion: 'TLSv1.2' as const };
    app = Fastify({ https: options }) as unknown as FastifyInstance;
    guardTlsConnections(app.server as unknown as TlsServer, logger);
    registerAuthorization(app, 'mutual-tls');
    app.post('/admin/snapshot', async () => 'snapshot taken');
    await app.listen({ host: '127.0.0.1', port: 0 });
  });
  after(async () => {
    await app.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a TLS 1.2 client that renegotiates with a self-made admin certificate is cut, and the attempt logged', async () => {
    const port = (app.server.address() as { port: number }).port;
    const r = await renegotiateThenRequest(
      { host: '127.0.0.1', port },
      { cert: path.join(dir, 'ours', 'client.reader.crt'), key: path.join(dir, 'ours', 'client.reader.key') },
      { cert: path.join(dir, 'evil', 'client.admin.crt'), key: path.join(dir, 'evil', 'client.admin.key') },
      'POST',
      '/admin/snapshot',
    );
    expect(r.outcome, r.detail).to.be.oneOf(['renegotiation-refused', 'no-answer']);
    await waitFor(() => logged.some((l) => /tried to renegotiate/.test(l.msg)), {
      timeoutMs: 5000,
      what: 'the renegotiation warning',
    });
    const warning = logged.find((l) => /tried to renegotiate/.test(l.msg))!;
    expect([warning.remote, warning.caller]).to.deep.equal(['127.0.0.1', 'client reader (reader)']);
  });

  it("a connection's principal is the one settled at its handshake; the socket is not asked again", () => {
    let subject = { CN: 'reader', O: 'qjournal', OU: 'reader' };
    let subjectaltname = 'URI:qjournal://journal/ns1';
    const socket = {
      authorized: true,
      getPeerCertificate: () => ({ subject, subjectaltname }),
    } as unknown as TLSSocket;
    expect(settledPrincipal(socket), 'nothing before the handshake').to.equal(null);
    const first = settlePrincipal(socket);
    expect(first).to.deep.equal({ kind: 'client', name: 'reader', roles: ['reader'], journals: ['ns1'] });
    // What a renegotiation would make the socket report.
    subject = { CN: 'admin', O: 'qjournal', OU: 'admin' };
    subjectaltname = 'URI:qjournal://journal/ns2';
    expect(settlePrincipal(socket)).to.deep.equal(first);
    expect(settledPrincipal(socket)).to.deep.equal(first);
  });
});
