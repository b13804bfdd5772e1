// The strict command-line parser, and qjm's use of it in-process: every refusal exits 2 with the command's
// usage line before anything is contacted, and `qjm <command> --help` lists exactly that command's flags.

import { expect } from 'chai';
import { helpText, parseCommand, usageLines, UsageError } from '../../src/command-line.js';
import type { CommandSpec } from '../../src/command-line.js';
import { retryReporter, runQjm } from '../../src/cli/qjm.js';
import { makeError, NotLeaderError } from '../../src/errors.js';
import { thrownMessage } from '../support/expect-throw.js';

const SPEC = {
  name: 'tool cmd',
  summary: 'A command for the tests.',
  flags: {
    peers: { type: 'string', required: true, env: 'TEST_PEERS', description: 'where' },
    'min-txid': { type: 'uint', required: true, valueName: 'TXID', description: 'from' },
    format: { type: 'string', choices: ['text', 'hex'], description: 'how' },
    force: { type: 'boolean', description: 'really' },
  },
} as const satisfies CommandSpec;

const WITH_FILE = {
  name: 'tool dump',
  summary: 'Reads a file.',
  positionals: [{ name: 'FILE', description: 'the file' }],
  flags: {},
} as const satisfies CommandSpec;

function refusal(spec: CommandSpec, argv: string[], env: Record<string, string> = {}): string {
  return thrownMessage(() => parseCommand(spec, argv, env), UsageError, argv.join(' '));
}

describe('command line: one strict parser', () => {
  it('parses typed flags: strings, non-negative integers, booleans, choices', () => {
    const p = parseCommand(SPEC, ['--peers', 'a:1', '--min-txid=5', '--force', '--format', 'hex'], {});
    expect(p).to.deep.equal({
      help: false,
      flags: { peers: 'a:1', 'min-txid': 5, format: 'hex', force: true },
      positionals: [],
    });
    const q = parseCommand(SPEC, ['--min-txid', '0'], { TEST_PEERS: 'b:2' });
    expect(q).to.deep.equal({
      help: false,
      flags: { peers: 'b:2', 'min-txid': 0, format: undefined, force: false },
      positionals: [],
    });
  });

  const refused: [argv: string[], message: RegExp][] = [
    [['--peers', 'a:1', '--min-txid', '5', '--dry-run', 'yes'], /^unknown flag --dry-run$/],
    [['--peers', 'a:1', '--min-txid', '5', '--forse'], /^unknown flag --forse \(did you mean --force\?\)$/],
    [['--peers', 'a:1', '--min-txid', '5', '--force', 'yes'], /^--force takes no value \(got "yes"\)/],
    [['--peers', 'a:1', '--min-txid', '5', '--force=false'], /^--force takes no value/],
    [['--peers', 'a:1', '--min-txid'], /^--min-txid needs a value$/],
    [['--peers', '--min-txid', '5'], /^--peers needs a value \(got "--min-txid"/],
    [['--peers', 'a:1', '--min-txid', '5', 'extra'], /^unexpected argument "extra"/],
    [['--peers', 'a:1', '--min-txid', '-1'], /^--min-txid needs a value/],
    [['--peers', 'a:1', '--min-txid', '1.5'], /^--min-txid must be a non-negative integer, got "1.5"$/],
    [['--peers', 'a:1', '--min-txid', '9007199254740993'], /must be a non-negative integer/],
    [['--peers', 'a:1', '--min-txid', '5', '--format', 'json'], /^--format must be text or hex, got "json"$/],
    [['--peers', 'a:1', '--peers', 'b:2', '--min-txid', '5'], /^--peers is given twice$/],
    [['--min-txid', '5'], /^--peers is required \(or set TEST_PEERS\)$/],
    [['--peers', 'a:1'], /^--min-txid is required$/],
  ];
  for (const [argv, message] of refused) {
    it(`refuses ${argv.join(' ')}`, () => expect(refusal(SPEC, argv)).to.match(message));
  }

  it('a variadic last positional takes one or more', () => {
    const spec = {
      name: 'tool node',
      summary: '',
      flags: {},
      positionals: [
        { name: 'ID', description: '' },
        { name: 'HOST...', description: '', variadic: true },
      ],
    } as const satisfies CommandSpec;
    expect(parseCommand(spec, ['n1', 'a', 'b'], {})).to.deep.equal({
      help: false,
      flags: {},
      positionals: ['n1', 'a', 'b'],
    });
    expect(refusal(spec, ['n1'])).to.equal('missing HOST...');
  });

  it('positionals only where the command declares them', () => {
    expect(parseCommand(WITH_FILE, ['seg'], {})).to.deep.equal({ help: false, flags: {}, positionals: ['seg'] });
    expect(refusal(WITH_FILE, [])).to.equal('missing FILE');
    expect(refusal(WITH_FILE, ['a', 'b'])).to.equal('unexpected argument "b"');
  });

  it('--help and -h win over missing required flags; help lists every flag once', () => {
    expect(parseCommand(SPEC, ['--help'], {})).to.deep.equal({ help: true });
    expect(parseCommand(SPEC, ['-h'], {})).to.deep.equal({ help: true });
    const h = helpText(SPEC);
    for (const flag of ['--peers', '--min-txid TXID', '--format text|hex', '--force', '--help'])
      expect(h).to.include(flag);
    expect(usageLines(SPEC)).to.deep.equal(['tool cmd --peers VALUE --min-txid TXID [--format text|hex] [--force]']);
  });
});

async function qjm(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runQjm(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('qjm: flags per command', () => {
  // 127.0.0.1:1 answers nothing: a command that got past its flags would exit 1 (unreachable), not 2.
  const peers = ['--peers', '127.0.0.1:1'];

  it('an unknown flag is refused with the usage line, exit 2, before any node is contacted', async () => {
    const r = await qjm(['purge', ...peers, '--jid', 'ns1', '--min-txid', '5', '--keep-all', 'yes']);
    expect(r.code).to.equal(2);
    expect(r.err).to.match(
      /^qjm purge: unknown flag --keep-all\nusage: qjm purge --peers HOST:PORT,\.\.\. --jid ID --min-txid TXID \[--certs-dir DIR\] \[--user NAME\] \[--insecure\] \[--timeout SECONDS\] \[--dry-run\] \[--force\] \[--yes\] \[--json\]/,
    );
    const f = await qjm(['finalize', ...peers, '--jid', 'ns1', '--forse', 'yes']);
    expect(f.code).to.equal(2);
    expect(f.err)
      .to.match(/unknown flag --forse \(did you mean --force\?\)/)
      .and.match(/usage: qjm finalize/);
  });

  it('a boolean flag with a value is refused', async () => {
    for (const force of [['--force', 'yes'], ['--force=false']]) {
      const r = await qjm(['finalize', ...peers, '--jid', 'ns1', ...force]);
      expect(r.code, force.join(' ')).to.equal(2);
      expect(r.err).to.match(/--force takes no value/);
    }
  });

  it('a flag of another command is refused', async () => {
    const r = await qjm(['segments', ...peers, '--jid', 'ns1', '--force']);
    expect(r.code).to.equal(2);
    expect(r.err)
      .to.match(/unknown flag --force/)
      .and.match(/usage: qjm segments/);
  });

  it("qjm <command> --help prints that command's flags; qjm --help the commands", async () => {
    const r = await qjm(['purge', '--help']);
    expect(r.code).to.equal(0);
    expect(r.out)
      .to.match(/^usage: qjm purge /)
      .and.match(/--min-txid TXID +the first txid to keep \(required\)/);
    expect(r.out, "tail's flag is not purge's").to.not.match(/--follow/);
    expect((await qjm(['help', 'tail'])).out).to.match(/--follow/);
    const o = await qjm(['--help']);
    expect(o.code).to.equal(0);
    expect(o.out)
      .to.match(/qjm <command> --help/)
      .and.match(/^ {2}purge +Delete/m);
  });

  it('an unknown command exits 2 with the overview', async () => {
    const r = await qjm(['frobnicate']);
    expect(r.code).to.equal(2);
    expect(r.err)
      .to.match(/unknown command "frobnicate"/)
      .and.match(/^ {2}status /m);
  });

  it('without a client certificate or --insecure a command is refused with the fix, exit 2, before any node is contacted', async () => {
    const saved = { dir: process.env.QJM_CERTS_DIR, user: process.env.QJM_USER };
    delete process.env.QJM_CERTS_DIR;
    delete process.env.QJM_USER;
    try {
      const r = await qjm(['segments', ...peers, '--jid', 'ns1']);
      expect(r.code).to.equal(2);
      expect(r.err).to.match(/give --certs-dir D --user NAME \(or set QJM_CERTS_DIR and QJM_USER\), or --insecure/);
      expect((await qjm(['segments', ...peers, '--jid', 'ns1', '--certs-dir', '/nonexistent'])).err).to.match(
        /--user NAME is required with --certs-dir/,
      );
      const missing = await qjm([
        'segments',
        ...peers,
        '--jid',
        'ns1',
        '--certs-dir',
        '/nonexistent',
        '--user',
        'alice',
      ]);
      expect(missing.code, "an unreadable certificate is the caller's to fix").to.equal(2);
      expect(missing.err).to.match(/cannot read the CA certificate \/nonexistent\/ca\.crt/);
      expect(
        (await qjm(['status', ...peers, '--insecure'])).code,
        '--insecure gets as far as the (unreachable) node',
      ).to.equal(1);
    } finally {
      if (saved.dir !== undefined) process.env.QJM_CERTS_DIR = saved.dir;
      if (saved.user !== undefined) process.env.QJM_USER = saved.user;
    }
  });

  it('membership flags naming two peers at one address are refused, exit 2, before any node is contacted', async () => {
    for (const argv of [
      ['change-peers', '--new-peers', 'n1=127.0.0.1:8485,n2=127.0.0.1:8485'],
      ['reset-peers', '--node', '127.0.0.1:8485', '--new-peers', 'n1=127.0.0.1:8485,n2=127.0.0.1:8485', '--yes'],
    ]) {
      const r = await qjm([...argv, ...peers, '--insecure']);
      expect(r.code, argv[0]).to.equal(2);
      expect(r.err, argv[0]).to.match(/--new-peers: 127\.0\.0\.1:8485 is given to both n1 and n2/);
    }
  });

  it('qjm cert create-node takes an ID and one or more HOSTs', async () => {
    expect((await qjm(['cert', 'create-node', '--certs-dir', '/nonexistent', 'n1'])).err).to.match(
      /missing HOST\.\.\./,
    );
    const r = await qjm(['cert', 'create-node', '--certs-dir', '/nonexistent', 'n1', '127.0.0.1', 'localhost']);
    expect(r.code, 'past the arguments: no CA there').to.equal(1);
    expect(r.err).to.match(/create the CA first: qjm cert create-ca/);
  });

  it('--timeout takes whole seconds, at least 1, on every command that talks to the cluster', async () => {
    for (const cmd of [
      'status',
      'segments --jid ns1',
      'tail --jid ns1',
      'change-peers --new-peers n1=127.0.0.1:1',
      'snapshot',
      'transfer-leader',
    ]) {
      const argv = [...cmd.split(' '), ...peers, '--insecure'];
      expect((await qjm([...argv, '--timeout', '0'])).err, cmd).to.match(/--timeout must be at least 1 \(seconds\)/);
      expect((await qjm([...argv, '--timeout', '1.5'])).err, cmd).to.match(/--timeout must be a non-negative integer/);
    }
    expect((await qjm(['segments', '--help'])).out).to.match(
      /--timeout SECONDS +give up on a call to the cluster after SECONDS/,
    );
  });

  it('the retry report: one line a second at most, naming the node and the socket error, and the time left', () => {
    const lines: string[] = [];
    let now = 0;
    const report = retryReporter(
      (l) => lines.push(l),
      () => now,
    );
    const refused = makeError('UNAVAILABLE', '127.0.0.1:1: ECONNREFUSED', {
      node: '127.0.0.1:1',
      networkCode: 'ECONNREFUSED',
    });
    report(refused, 19_990);
    now = 400;
    report(refused, 19_590);
    now = 1000;
    report(new NotLeaderError('127.0.0.1:2: no leader known', { node: '127.0.0.1:2' }), 18_990);
    now = 1500;
    report(refused, 18_490);
    expect(lines).to.deep.equal([
      'qjm: 127.0.0.1:1 unreachable (ECONNREFUSED); retrying for 20 s more',
      'qjm: 127.0.0.1:2: no leader known (QJM_ERR_NOT_LEADER); retrying for 19 s more',
    ]);
  });

  it('qjm dump takes exactly one FILE', async () => {
    expect((await qjm(['dump'])).err).to.match(/missing FILE/);
    expect((await qjm(['dump', 'a', 'b'])).code).to.equal(2);
  });
});
