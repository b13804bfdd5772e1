// qjm cert create-client and list, in-process: a writer or reader certificate must name its journals
// (--journal), an admin's names none, and the list shows which journals each certificate may use.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { runQjm } from '../../../src/cli/qjm.js';

async function qjm(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runQjm(argv, { out: (l) => out.push(l), err: (l) => err.push(l) });
  return { code, out: out.join('\n'), err: err.join('\n') };
}

describe('qjm cert: journals', function () {
  this.timeout(20_000);
  let dir: string;

  beforeEach(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-cert-cli-'));
    expect((await qjm(['cert', 'create-ca', '--certs-dir', dir])).code).to.equal(0);
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('a writer or reader without --journal is refused (exit 2, saying how); nothing is written', async () => {
    for (const role of ['writer', 'reader', 'writer,reader']) {
      const r = await qjm(['cert', 'create-client', 'nn1', '--role', role, '--certs-dir', dir]);
      expect(r.code, role).to.equal(2);
      expect(r.err, role).to.include(
        `a ${role} certificate must name the journals it may use: --journal JID[,JID] (an admin certificate spans every journal)`,
      );
    }
    const admin = await qjm([
      'cert',
      'create-client',
      'ops',
      '--role',
      'admin',
      '--journal',
      'ns1',
      '--certs-dir',
      dir,
    ]);
    expect(admin.code).to.equal(1);
    expect(admin.err).to.match(/an admin certificate spans every journal: leave --journal out/);
    const bad = await qjm([
      'cert',
      'create-client',
      'nn1',
      '--role',
      'writer',
      '--journal',
      'ns1,..',
      '--certs-dir',
      dir,
    ]);
    expect([bad.code, bad.err]).to.satisfy(([c, e]: [number, string]) => c !== 0 && /bad journal id "\.\."/.test(e));
    expect(fs.readdirSync(dir).sort()).to.deep.equal(['ca.crt', 'ca.key']);
  });

  it('list shows each certificate journals: the ones named, all for an admin, - for a node', async () => {
    const ok = async (argv: string[]) =>
      expect((await qjm([...argv, '--certs-dir', dir])).code, argv.join(' ')).to.equal(0);
    await ok(['cert', 'create-client', 'nn1', '--role', 'writer', '--journal', 'ns1, ns2']);
    await ok(['cert', 'create-client', 'nn2', '--role', 'writer', '--journal', 'ns1']);
    await ok(['cert', 'create-client', 'ops', '--role', 'admin']);
    await ok(['cert', 'create-node', 'n1', '127.0.0.1']);
    const r = await qjm(['cert', 'list', '--certs-dir', dir]);
    expect(r.code).to.equal(0);
    const cells = (line: string) => line.split('|').map((c) => c.trim());
    const rows = r.out
      .split('\n')
      .filter((l) => l.startsWith('|'))
      .map(cells);
    expect(rows[0]!.slice(1, 6)).to.deep.equal(['FILE', 'SUBJECT', 'ROLES', 'JOURNALS', 'SANS']);
    const row = (file: string) => rows.find((c) => c[1] === file)!.slice(3, 6);
    expect(row('client.nn1.crt')).to.deep.equal(['writer', 'ns1,ns2', '-']);
    expect(row('client.nn2.crt')).to.deep.equal(['writer', 'ns1', '-']);
    expect(row('client.ops.crt')).to.deep.equal(['admin', 'all', '-']);
    expect(row('node.n1.crt')).to.deep.equal(['peer', '-', 'IP:127.0.0.1']);
    const json = JSON.parse((await qjm(['cert', 'list', '--certs-dir', dir, '--json'])).out) as {
      file: string;
      principal: { journals?: string[] } | null;
    }[];
    expect(json.find((c) => c.file.endsWith('client.nn1.crt'))!.principal!.journals).to.deep.equal(['ns1', 'ns2']);
  });
});
