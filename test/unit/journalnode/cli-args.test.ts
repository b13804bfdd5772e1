// The journalnode command line: every setting is a flag of its own name, flags override --config, and
// anything unknown is refused.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { UsageError } from '../../../src/command-line.js';
import { parseJournalNodeArgs } from '../../../journalnode/cli-args.js';
import { ConfigError, DEFAULTS } from '../../../journalnode/config.js';
import type { JournalNodeConfig } from '../../../journalnode/config.js';
import { thrownMessage } from '../../support/expect-throw.js';

const NODE = [
  '--id',
  'n1',
  '--listen',
  '127.0.0.1:8485',
  '--data',
  '/tmp/qj-n1',
  '--peers',
  'n1=127.0.0.1:8485,n2=127.0.0.1:8486,n3=127.0.0.1:8487',
];
const BASE = [...NODE.slice(0, 6), '--insecure', ...NODE.slice(6)];

function config(argv: string[]): JournalNodeConfig {
  const a = parseJournalNodeArgs(argv);
  if (a.help) return expect.fail('help instead of a configuration');
  return a.config;
}

function refused(argv: string[], type: typeof UsageError | typeof ConfigError): string {
  return thrownMessage(() => parseJournalNodeArgs(argv), type, argv.join(' '));
}

describe('journalnode command line', () => {
  it('the node flags and the defaults', () => {
    const c = config(BASE);
    expect(c).to.include({
      id: 'n1',
      listen: '127.0.0.1:8485',
      dataDir: '/tmp/qj-n1',
      advertise: '127.0.0.1:8485',
      electionTimeoutMs: DEFAULTS.electionTimeoutMs,
    });
    expect(c.peers.map((p) => p.id)).to.deep.equal(['n1', 'n2', 'n3']);
  });

  it('every setting is a flag of its own name, typed by its default', () => {
    const c = config([
      ...BASE,
      '--electionTimeoutMs',
      '500',
      '--sync',
      'false',
      '--logLevel',
      'warn',
      '--snapshotLogBytes=65536',
    ]);
    expect(c).to.include({ electionTimeoutMs: 500, sync: false, logLevel: 'warn', snapshotLogBytes: 65536 });
    expect(config([...BASE, '--log-level', 'debug']).logLevel).to.equal('debug');
    for (const name of Object.keys(DEFAULTS))
      expect(() => parseJournalNodeArgs([...BASE, `--${name}`]), name).to.throw(UsageError, /needs a value/);
  });

  it('refuses unknown flags, positionals, repeats and badly typed values', () => {
    expect(refused([...BASE, '--electionTimeout', '500'], UsageError)).to.equal(
      'unknown flag --electionTimeout (did you mean --electionTimeoutMs?)',
    );
    expect(refused([...BASE, '--dataDir', '/x'], UsageError)).to.match(/^unknown flag --dataDir/);
    expect(refused([...BASE, 'extra'], UsageError)).to.match(/unexpected argument "extra"/);
    expect(refused([...BASE, '--id', 'n2'], UsageError)).to.equal('--id is given twice');
    expect(refused([...BASE, '--log-level', 'warn', '--logLevel', 'info'], UsageError)).to.match(/not both/);
    expect(refused([...BASE, '--sync', 'yes'], UsageError)).to.match(/--sync must be true or false/);
    expect(refused([...BASE, '--electionTimeoutMs', 'soon'], UsageError)).to.match(/expected a number/);
    expect(refused([...BASE, '--electionTimeoutMs', '10'], ConfigError)).to.match(/electionTimeoutMs: 10 is outside/);
    expect(refused([...BASE.slice(0, 6), '--peers', 'n1=127.0.0.1:0'], UsageError)).to.match(/invalid --peers: port 0/);
  });

  it('two peers at one address are refused, on the command line and in --config, naming both', () => {
    const twins = 'n1=127.0.0.1:8485,n2=127.0.0.1:8485,n3=127.0.0.1:8487';
    expect(refused([...BASE.slice(0, 7), '--peers', twins], UsageError)).to.equal(
      'invalid --peers: 127.0.0.1:8485 is given to both n1 and n2: every node needs an address of its own (peers dial each one there)',
    );
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-cli-args-'));
    try {
      const file = path.join(dir, 'qjournal.json');
      const peers = [
        { id: 'n1', address: '127.0.0.1:8485' },
        { id: 'n2', address: '127.0.0.1:8486' },
        { id: 'n3', address: '127.0.0.1:8486' },
      ];
      fs.writeFileSync(
        file,
        JSON.stringify({ id: 'n1', listen: '127.0.0.1:8485', dataDir: dir, peers, insecure: true }),
      );
      expect(refused(['--config', file], ConfigError)).to.match(
        /invalid peers: 127\.0\.0\.1:8486 is given to both n2 and n3/,
      );
      fs.writeFileSync(
        file,
        JSON.stringify({ id: 'n1', listen: '127.0.0.1:8485', dataDir: dir, peers: twins, insecure: true }),
      );
      expect(refused(['--config', file], ConfigError)).to.match(/127\.0\.0\.1:8485 is given to both n1 and n2/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('security is chosen, never defaulted: --certs-dir or --insecure, not neither, not both', () => {
    expect(refused(NODE, ConfigError)).to.equal(
      'no certificates: start with --certs-dir D (qjm cert create-ca / create-node), or --insecure to run without TLS',
    );
    expect(config([...NODE, '--certs-dir', '/etc/qj'])).to.include({ certsDir: '/etc/qj', insecure: false });
    expect(config(BASE)).to.include({ certsDir: '', insecure: true });
    expect(refused([...BASE, '--certs-dir', '/etc/qj'], ConfigError)).to.match(
      /--certs-dir .* or --insecure .*, not both/,
    );
    expect(refused([...BASE, '--insecure'], UsageError)).to.equal('--insecure is given twice');
  });

  it('--config file.json: flags override the file; unknown names are refused', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-cli-args-'));
    try {
      const file = path.join(dir, 'qjournal.json');
      fs.writeFileSync(
        file,
        JSON.stringify({
          id: 'n2',
          listen: '127.0.0.1:8486',
          dataDir: '/tmp/qj-n2',
          peers: 'n1=127.0.0.1:8485,n2=127.0.0.1:8486,n3=127.0.0.1:8487',
          electionTimeoutMs: 700,
          keepSnapshots: 3,
          insecure: true,
        }),
      );
      const c = config(['--config', file, '--electionTimeoutMs', '900']);
      expect(c).to.include({ id: 'n2', dataDir: '/tmp/qj-n2', electionTimeoutMs: 900, keepSnapshots: 3 });
      fs.writeFileSync(file, JSON.stringify({ electionTimeout: 700 }));
      expect(refused([...BASE, '--config', file], ConfigError)).to.match(/unknown setting "electionTimeout"/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--ui-allowed-hosts: names the dashboard port also answers; checked; only with --ui-listen', () => {
    const UI = [...BASE, '--ui-listen', '127.0.0.1:9485'];
    expect(config(UI).uiAllowedHosts).to.deep.equal([]);
    expect(config([...UI, '--ui-allowed-hosts', 'dash.example, 10.0.0.5']).uiAllowedHosts).to.deep.equal([
      'dash.example',
      '10.0.0.5',
    ]);
    for (const bad of ['dash.example:80', 'a b', 'http://x', '*.example', 'a_b'])
      expect(refused([...UI, '--ui-allowed-hosts', bad], ConfigError), bad).to.match(
        /^invalid uiAllowedHosts: expected a host name/,
      );
    expect(refused([...BASE, '--ui-allowed-hosts', 'dash.example'], ConfigError)).to.equal(
      'invalid uiAllowedHosts: only with --ui-listen',
    );
  });

  it('--ui-listen: off by default; a host:port of its own, from the command line or the file', () => {
    expect(config(BASE).uiListen).to.equal(null);
    expect(config([...BASE, '--ui-listen', '127.0.0.1:9485']).uiListen).to.equal('127.0.0.1:9485');
    expect(refused([...BASE, '--ui-listen', 'localhost'], ConfigError)).to.match(/^invalid uiListen: /);
    expect(refused([...BASE, '--ui-listen', '127.0.0.1:8485'], ConfigError)).to.match(
      /uiListen: must differ from --listen/,
    );
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-cli-args-'));
    try {
      const file = path.join(dir, 'qjournal.json');
      fs.writeFileSync(file, JSON.stringify({ uiListen: '0.0.0.0:9485' }));
      expect(config([...BASE, '--config', file]).uiListen).to.equal('0.0.0.0:9485');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
