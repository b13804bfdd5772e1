// The one rule for each name qjournal accepts from outside: node ids, journal ids, host:port.

import { expect } from 'chai';
import { checkHostPort, isJournalId, isNodeId, splitHostPort } from '../../src/ids.js';

describe('ids: one rule per name', () => {
  const hostPorts: [input: unknown, use: 'dial' | 'listen', ok: boolean][] = [
    ['127.0.0.1:8485', 'dial', true],
    ['jn1.example:8485', 'dial', true],
    ['[::1]:8485', 'dial', true],
    ['host_1:65535', 'dial', true],
    ['127.0.0.1:0', 'listen', true],
    ['127.0.0.1:0', 'dial', false],
    ['127.0.0.1:65536', 'listen', false],
    ['127.0.0.1:99999', 'dial', false],
    ['127.0.0.1', 'dial', false],
    ['::1:8485', 'dial', false],
    ['a/b:8485', 'dial', false],
    ['a b:8485', 'dial', false],
    [':8485', 'dial', false],
    ['host:', 'dial', false],
    ['host:-1', 'dial', false],
    [8485, 'dial', false],
  ];
  for (const [input, use, ok] of hostPorts) {
    it(`checkHostPort(${JSON.stringify(input)}, ${use}) ${ok ? 'accepts' : 'refuses'}`, () => {
      const problem = checkHostPort(input, use);
      if (ok) expect(problem).to.equal(null);
      else expect(problem).to.be.a('string').and.include(String(input));
    });
  }

  it('node ids: 1-64 characters of [A-Za-z0-9._-]', () => {
    for (const ok of ['n1', 'jn-1.example_a', 'x'.repeat(64)]) expect(isNodeId(ok), ok).to.equal(true);
    for (const bad of ['', 'x'.repeat(65), 'n 1', 'n/1', 'n=1', 7, null])
      expect(isNodeId(bad), String(bad)).to.equal(false);
  });

  it('journal ids: 1-128 characters of [A-Za-z0-9._-], never "." or ".."', () => {
    for (const ok of ['ns1', '...', '.a', 'x'.repeat(128)]) expect(isJournalId(ok), ok).to.equal(true);
    for (const bad of ['', '.', '..', 'x'.repeat(129), 'a/b', '../a', undefined])
      expect(isJournalId(bad), String(bad)).to.equal(false);
  });

  it('splitHostPort drops the brackets of an IPv6 host', () => {
    expect(splitHostPort('[::1]:8485')).to.deep.equal({ host: '::1', port: 8485 });
    expect(splitHostPort('127.0.0.1:0')).to.deep.equal({ host: '127.0.0.1', port: 0 });
  });
});
