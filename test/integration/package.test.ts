// The package as a user installs it: what `npm pack` ships, and a TypeScript user's strict build against it.
// The files npm would pack are laid out as an installed dependency (node_modules/qjournal) and a small
// program written like README's master and standby snippets is type-checked with `--strict` and without
// `skipLibCheck`, so every declaration the package ships must resolve (the generated protobuf types included).

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { REPO_ROOT } from '../support/repo-root.js';

interface PackFile {
  path: string;
}

function packedFiles(): string[] {
  // --ignore-scripts: packing must not rebuild dist/ under the running tests.
  const out = execFileSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const [pack] = JSON.parse(out) as { files: PackFile[] }[];
  return pack!.files.map((f) => f.path);
}

const CONSUMER = `import { QuorumJournalManager, FencedError } from 'qjournal/libqjm';
import type { EditLogManifest } from 'qjournal/libqjm';

export async function master(peers: string[]): Promise<number> {
  const qjm = new QuorumJournalManager({ journalId: 'ns1', peers, writerId: 'nn1', tls: { certsDir: 'certs', user: 'nn1' } });
  const { lastTxId } = await qjm.recoverUnfinalizedSegments();
  const out = await qjm.startLogSegment(lastTxId + 1, -64);
  out.write(new TextEncoder().encode('mkdir /a'));
  try {
    return await out.flush();
  } catch (e) {
    if (e instanceof FencedError) return -1;
    throw e;
  } finally {
    await qjm.close();
  }
}

export async function standby(peers: string[], applied: number): Promise<EditLogManifest> {
  const qjm = new QuorumJournalManager({ journalId: 'ns1', peers, writerId: 'nn2' });
  for await (const { txid, record } of qjm.readEdits({ fromTxId: applied + 1, inProgressOk: true, follow: false })) {
    applied = txid + record.byteLength * 0;
  }
  return qjm.getEditLogManifest(1, { inProgressOk: true });
}
`;

describe('the package as a user installs it', function () {
  this.timeout(120_000);
  let files: string[];
  before(() => {
    files = packedFiles();
  });

  it('ships the compiled library with every declaration it imports, and not the tests', () => {
    expect(files).to.include('dist/libqjm/index.js');
    expect(files).to.include('dist/libqjm/index.d.ts');
    expect(files, 'the generated protobuf declarations').to.include('dist/src/gen/proto.d.ts');
    expect(files.filter((f) => f.startsWith('dist/test/'))).to.deep.equal([]);
  });

  it('ships every document README links to', () => {
    const readme = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
    const linked = [...readme.matchAll(/\]\((docs\/[^)#\s]+)/g)].map((m) => m[1]!);
    expect(linked.length).to.be.greaterThan(3);
    expect(linked.filter((d) => !files.includes(d))).to.deep.equal([]);
  });

  it('type-checks a strict TypeScript program against it, without skipLibCheck', () => {
    const root = path.join(REPO_ROOT, 'dist', '.pack-check');
    fs.rmSync(root, { recursive: true, force: true });
    const pkgDir = path.join(root, 'node_modules', 'qjournal');
    for (const f of [...files, 'package.json']) {
      fs.mkdirSync(path.dirname(path.join(pkgDir, f)), { recursive: true });
      fs.copyFileSync(path.join(REPO_ROOT, f), path.join(pkgDir, f));
    }
    fs.writeFileSync(path.join(root, 'package.json'), JSON.stringify({ name: 'consumer', type: 'module' }));
    fs.writeFileSync(path.join(root, 'consumer.ts'), CONSUMER);
    const tsc = path.join(REPO_ROOT, 'node_modules', '.bin', 'tsc');
    const args = [
      '--strict',
      '--noEmit',
      '--module',
      'nodenext',
      '--moduleResolution',
      'nodenext',
      '--target',
      'es2022',
    ];
    try {
      execFileSync(tsc, [...args, '--types', 'node', 'consumer.ts'], { cwd: root, encoding: 'utf8', stdio: 'pipe' });
    } catch (e) {
      const out = (e as { stdout?: string }).stdout ?? String(e);
      expect.fail(`tsc --strict failed against the packed files:\n${out}`);
    }
  });
});
