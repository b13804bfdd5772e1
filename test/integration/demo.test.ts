// The main job stays working: a short run of the demo must end with identical namespaces, the fenced old
// active refused, an anonymous and a wrong-role client refused, and nothing left running.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { expect } from 'chai';
import { runDemo } from '../../src/demo/demo.js';

/** Command lines of running processes that mention `needle` (pgrep exits 1 when none does). */
export function processesMatching(needle: string): string {
  try {
    return execFileSync('pgrep', ['-af', '--', needle], { encoding: 'utf8' });
  } catch (e) {
    if ((e as { status?: number }).status === 1) return '';
    throw e;
  }
}

describe('the demo (npm start)', function () {
  this.timeout(120_000);
  it('the process check sees a running process (so the check below can fail)', () => {
    expect(processesMatching('mocha')).to.not.equal('');
  });

  it('fails over, fences the old active, survives a JournalNode kill, and ends with identical namespaces', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-demo-'));
    const lines: string[] = [];
    try {
      const code = await runDemo({ dataDir: dir, phase1S: 2, phase2S: 6, opsPerSecond: 500, log: (l) => lines.push(l) });
      const out = lines.join('\n');
      expect(code, out).to.equal(0);
      expect(out).to.match(/refused with QJM_ERR_FENCED/);
      expect(out).to.match(/a client with no certificate asks .* for \/status: HTTP 401 QJM_ERR_UNAUTHENTICATED/);
      expect(out).to.match(/reader role tries to take over .*: refused with QJM_ERR_FORBIDDEN/);
      expect(out).to.match(/security\s+\| mutual TLS, roles enforced/);
      expect(fs.readdirSync(path.join(dir, 'certs')).sort(), 'the demo\'s certificates').to.include.members(['ca.crt', 'node.n1.crt', 'client.writer.crt']);
      expect(out).to.match(/namespaces\s+\| IDENTICAL/);
      expect(out).to.match(/writes acknowledged again after \d+ ms/);
      expect(out).to.match(/nothing left running/);
      expect(processesMatching(dir), 'no JournalNode of the demo still runs').to.equal('');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
