// The dashboard port's Host rule: the names and addresses it was given answer, anything else (a page of
// another site whose name was made to resolve to this machine) is refused; forged and malformed headers too.

import os from 'node:os';
import { expect } from 'chai';
import { hostChecker, hostOfHeader } from '../../../../journalnode/ui/host-check.js';

describe('dashboard Host check', () => {
  const REBINDING = [
    'rebind.attacker.example:9485',
    'rebind.attacker.example',
    '127.0.0.1.attacker.example:9485',
    'localhost.attacker.example',
    'attacker.example:9485@localhost',
    'localhost@attacker.example',
    'localhost:9485/x',
    'localhost:',
    'localhost:abc',
    'localhost:9485 ',
    ' localhost',
    'local host',
    '[::1',
    '[::1]x',
    '',
    'x'.repeat(10_000),
  ];

  it('loopback: its address, localhost in every form, any port; nothing else', () => {
    const ok = hostChecker('127.0.0.1:9485', []);
    for (const h of [
      '127.0.0.1:9485',
      '127.0.0.1',
      'localhost:9485',
      'LocalHost',
      'localhost.',
      '[::1]:9485',
      'localhost:1',
    ])
      expect(ok(h), h).to.equal(true);
    for (const h of [...REBINDING, '127.0.0.2', '10.0.0.1']) expect(ok(h), h.slice(0, 40)).to.equal(false);
    expect(ok(undefined), 'no Host header').to.equal(false);
  });

  it('a given address or name: that one and the names given besides, not localhost', () => {
    const ok = hostChecker('10.0.0.5:9485', ['dash.example', 'Proxy.Example']);
    for (const h of ['10.0.0.5:9485', 'dash.example', 'dash.example:443', 'proxy.example'])
      expect(ok(h), h).to.equal(true);
    for (const h of [...REBINDING, 'localhost:9485', '127.0.0.1', 'example', 'dash.example.attacker.example'])
      expect(ok(h), h.slice(0, 40)).to.equal(false);
    const named = hostChecker('jn1.example:9485', []);
    expect([named('jn1.example:9485'), named('JN1.EXAMPLE'), named('localhost')]).to.deep.equal([true, true, false]);
  });

  it('a wildcard: localhost and every address of this machine, no name', () => {
    const ok = hostChecker('0.0.0.0:9485', []);
    const addresses = Object.values(os.networkInterfaces())
      .flatMap((l) => l ?? [])
      .map((i) => (i.family === 'IPv6' ? `[${i.address.split('%')[0]}]` : i.address));
    for (const h of ['localhost:9485', ...addresses.map((a) => `${a}:9485`)]) expect(ok(h), h).to.equal(true);
    for (const h of REBINDING) expect(ok(h), h.slice(0, 40)).to.equal(false);
    expect(hostChecker('[::]:9485', [])('[::1]:9485')).to.equal(true);
  });

  it('the host of a header: name, IPv4, bracketed IPv6, with or without a port; null when malformed', () => {
    expect(['a.example:1', 'A.Example', '10.0.0.1:80', '[::1]:80', '[fe80::1]'].map(hostOfHeader)).to.deep.equal([
      'a.example',
      'a.example',
      '10.0.0.1',
      '::1',
      'fe80::1',
    ]);
    for (const h of ['a b', 'a:b:c', '[::1', 'a@b', 'a:123456']) expect(hostOfHeader(h), h).to.equal(null);
  });
});
