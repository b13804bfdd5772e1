// The connection bounds on a real server: in all and per remote address (127.0.0.1 and 127.0.0.2 are two),
// refused connections closed at once, idle ones closed after firstRequestTimeoutMs, a flood leaving nothing
// behind; the bounds sized from the process's open-file limit; addresses counted per IPv4 address or IPv6 /64.

import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { expect } from 'chai';
import {
  addressKey,
  ConnectionGuard,
  effectiveLimits,
  openFileLimit,
} from '../../../../journalnode/http/connection-guard.js';
import type { ConnectionRefusal } from '../../../../journalnode/http/connection-guard.js';
import { waitFor } from '../../../support/async.js';

const quiet = { info() {}, warn() {}, error() {}, debug() {} };

/**
 * A connection from `localAddress` that sends nothing: resolves with it once connected, or once the server
 * reset it (a refused connection can be reset before the client saw its connect complete).
 */
function idle(port: number, localAddress = '127.0.0.1'): Promise<net.Socket> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1', localAddress }, () => resolve(s));
    s.on('error', () => resolve(s));
  });
}

const closed = (s: net.Socket) => new Promise<void>((r) => (s.destroyed ? r() : s.once('close', () => r())));

describe('connection bounds', function () {
  this.timeout(20_000);

  it('the open-file limit is read from /proc/self/limits; the bounds are sized from it', () => {
    const text =
      'Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 4096                 files\n';
    expect(openFileLimit(text)).to.equal(1024);
    expect(openFileLimit('Max open files            unlimited            unlimited            files\n')).to.equal(
      Number.MAX_SAFE_INTEGER,
    );
    expect(openFileLimit('nothing here')).to.equal(null);
    if (process.platform === 'linux') expect(openFileLimit()).to.be.a('number');
    const s = {
      maxConnections: 10_000,
      maxConnectionsPerAddress: 1000,
      reservedFileDescriptors: 512,
      firstRequestTimeoutMs: 5000,
    };
    expect(effectiveLimits(s, 1024)).to.deep.include({ maxConnections: 512, maxConnectionsPerAddress: 256 });
    expect(effectiveLimits(s, 1_048_576)).to.deep.include({ maxConnections: 10_000, maxConnectionsPerAddress: 1000 });
    expect(effectiveLimits(s, null)).to.deep.include({ maxConnections: 10_000 });
    expect(() => effectiveLimits(s, 560)).to.throw(
      /fewer than 64 would be left for connections. Raise the open-file limit/,
    );
  });

  it('addresses: IPv4 as they are (mapped ones too), IPv6 by /64', () => {
    const table: [string | undefined, string][] = [
      ['127.0.0.1', '127.0.0.1'],
      ['::ffff:10.1.2.3', '10.1.2.3'],
      ['2001:db8:1:2:aaaa::1', '2001:db8:1:2::/64'],
      ['2001:db8:1:2:bbbb:cccc:dddd:eeee', '2001:db8:1:2::/64'],
      ['2001:db8::1', '2001:db8:0:0::/64'],
      ['::1', '0:0:0:0::/64'],
      [undefined, '?'],
    ];
    for (const [remote, key] of table) expect(addressKey(remote), String(remote)).to.equal(key);
  });

  it('per address, in all, and the first request deadline; refused ones closed at once, nothing left after', async () => {
    const refusals: ConnectionRefusal[] = [];
    const guard = new ConnectionGuard(
      // The deadline must outlast the setup below on a loaded machine (a full suite beside other work once took
      // over 400 ms to open the sockets, and the deadline closed 127.0.0.2's before they were counted).
      { maxConnections: 6, maxConnectionsPerAddress: 3, firstRequestTimeoutMs: 2000 },
      quiet,
      (r) => refusals.push(r),
    );
    const server = http.createServer((_req, res) => res.end('ok'));
    server.keepAliveTimeout = 10_000;
    guard.guard(server, false);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const port = (server.address() as AddressInfo).port;
    const sockets: net.Socket[] = [];
    try {
      for (let i = 0; i < 4; i++) sockets.push(await idle(port));
      await closed(sockets[3]!);
      await waitFor(() => refusals.length === 1, { timeoutMs: 2000, what: 'the fourth from 127.0.0.1 refused' });
      expect(refusals).to.deep.equal(['connections_per_address']);
      expect(guard.openFrom('127.0.0.1')).to.equal(3);
      // Another address still gets in, up to the total.
      for (let i = 0; i < 3; i++) sockets.push(await idle(port, '127.0.0.2'));
      await waitFor(() => guard.open === 6, { timeoutMs: 2000, what: 'six open' });
      const seventh = await idle(port, '127.0.0.3');
      await closed(seventh);
      expect(refusals.at(-1)).to.equal('connections_total');
      // A connection that sends its request in time is served and kept; the idle ones are closed.
      for (const s of sockets.slice(0, 3)) s.destroy();
      await waitFor(() => guard.open === 3, { timeoutMs: 2000, what: 'three left' });
      const busy = await idle(port);
      busy.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      await waitFor(() => guard.open === 1, { timeoutMs: 6000, what: 'the idle ones closed after the deadline' });
      expect(busy.destroyed, 'the one that asked is still open').to.equal(false);
      expect(refusals.filter((r) => r === 'first_request_timeout').length).to.equal(3);
      busy.destroy();
      await waitFor(() => guard.open === 0, { timeoutMs: 2000, what: 'nothing left' });
      expect(guard.openFrom('127.0.0.1')).to.equal(0);
    } finally {
      for (const s of sockets) s.destroy();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });
});
