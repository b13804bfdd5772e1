// README.md's operator walkthrough, run as it is written: every ```sh block of the README, in order, as one
// `sh -e` script in a directory of its own (bin/ and dist/ of this checkout beside it, as in a fresh clone after
// `npm ci`), with real JournalNodes on the README's ports. Every command must succeed and show what the README
// says it shows: certificates made (the standby's too), the cluster formed, a master's edits written, segments,
// tail, finalize, dump, purge's floor, check perf, and a node added, one removed, leadership moved.

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { waitFor } from '../support/async.js';
import { REPO_ROOT } from '../support/repo-root.js';

/** The ```sh blocks of README.md, in order, joined into one script. */
function walkthrough(): string {
  const md = fs.readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');
  return [...md.matchAll(/^```sh\n([\s\S]*?)^```$/gm)].map((m) => m[1]!).join('\n');
}

/** Whether nothing listens on 127.0.0.1:port (we can bind it). */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ host: '127.0.0.1', port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/**
 * The script's output by command: `sh -x` echoes each command as "+ command" before it runs; what follows,
 * up to the next one, is its output. The JournalNodes run in the background: their trace line comes whenever
 * their subshell gets to it, and their JSON log lines go into the same file; both are left out.
 */
function outputs(log: string): { command: string; out: string }[] {
  const sections: { command: string; out: string[] }[] = [];
  for (const line of log.split('\n')) {
    if (line.startsWith('{') || line.startsWith('+ node bin/journalnode.js ')) continue;
    if (line.startsWith('+ ')) sections.push({ command: line.slice(2), out: [] });
    else sections[sections.length - 1]?.out.push(line);
  }
  return sections.map((s) => ({ command: s.command, out: s.out.join('\n') }));
}

describe("README's operator walkthrough, verbatim", function () {
  this.timeout(600_000);

  it('runs from a fresh directory: every command succeeds and shows what the README says', async () => {
    const script = walkthrough();
    const ports = [...new Set([...script.matchAll(/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1])))].sort();
    expect(ports, 'the ports the README uses').to.deep.equal([8485, 8486, 8487, 8488]);
    // Another checkout may be running this very test: its nodes hold the ports for a while.
    await waitFor(async () => (await Promise.all(ports.map(portFree))).every(Boolean), {
      timeoutMs: 300_000,
      intervalMs: 1000,
      what: `ports ${ports.join(', ')} free for the README's nodes`,
    });

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-readme-'));
    for (const d of ['bin', 'dist']) fs.symlinkSync(path.join(REPO_ROOT, d), path.join(dir, d));
    fs.writeFileSync(path.join(dir, 'walkthrough.sh'), script);
    const logFile = path.join(dir, 'walkthrough.log');
    const fd = fs.openSync(logFile, 'a');
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const k of ['QJM_PEERS', 'QJM_CERTS_DIR', 'QJM_USER']) delete env[k];
    // A process group of its own: the nodes it starts in the background are stopped with it.
    const sh = spawn('/bin/sh', ['-e', '-x', 'walkthrough.sh'], {
      cwd: dir,
      detached: true,
      stdio: ['ignore', fd, fd],
      env,
    });
    fs.closeSync(fd);
    let passed = false;
    try {
      const code = await new Promise<number | null>((resolve) => sh.on('exit', (c) => resolve(c)));
      const log = fs.readFileSync(logFile, 'utf8');
      expect(code, `the walkthrough failed (log in ${logFile}):\n${log.slice(-6000)}`).to.equal(0);
      const by = (prefix: string) => {
        const s = outputs(log).find((o) => o.command.startsWith(prefix));
        if (!s) return expect.fail(`no command starting with ${JSON.stringify(prefix)} ran`);
        return s.out;
      };
      expect(fs.existsSync(path.join(dir, 'certs', 'client.nn2.crt')), "the standby's certificate").to.equal(true);
      expect(by('node bin/qjm.js format')).to.match(/formatted journal ns1/);
      const status = by('node bin/qjm.js status');
      expect(status.match(/\| leader /g)?.length, status).to.equal(1);
      for (const id of ['n1', 'n2', 'n3']) expect(status).to.match(new RegExp(`\\| ${id} +\\|`));
      expect(by('node dist/examples/active-master.js')).to.match(
        /nn1: wrote txids 1-100 in segments 1-50, 51-100 \(left open\)/,
      );
      expect(by('node bin/qjm.js segments'))
        .to.match(/\| 1 +\| 50 +\| 50 +\| finalized +\|/)
        .and.match(/\| 51 +\| 100 +\| 50 +\| in progress +\|/);
      expect(by('node bin/qjm.js tail').trim().split('\n')).to.deep.equal(
        Array.from({ length: 10 }, (_, i) => `${91 + i}\t${`mkdir /dir${91 + i}`.length}\tmkdir /dir${91 + i}`),
      );
      expect(by('node bin/qjm.js finalize')).to.match(/finalized segment 51-100/);
      expect(by('node bin/qjm.js dump'))
        .to.match(/^1\t11\tcrc ok\tmkdir \/dir1$/m)
        .and.match(/# 50 records, txids 1\.\.50/);
      expect(by('node bin/qjm.js purge --jid'))
        .to.match(/would purge: none of journal ns1/)
        .and.match(/kept by the retention floor \(txid 1: minTxnsRetained: .*\): 1 segment\(s\), txids 1-50/);
      expect(by('node bin/qjm.js check perf')).to.match(/^PASS: /m);
      expect(by('node bin/qjm.js purge --help')).to.match(/^usage: qjm purge /);
      expect(by('node bin/qjm.js add-peer')).to.match(/voters are now n1, n2, n3, n4/);
      expect(by('node bin/qjm.js remove-peer')).to.match(/voters are now n2, n3, n4/);
      expect(by('node bin/qjm.js transfer-leader')).to.match(/leadership transferred to n2/);
      passed = true;
    } finally {
      // Every node the script started, then the directory (kept, with its log, when the test failed).
      try {
        process.kill(-sh.pid!, 'SIGTERM');
      } catch {
        /* the group is gone already */
      }
      await waitFor(async () => (await Promise.all(ports.map(portFree))).every(Boolean), {
        timeoutMs: 30_000,
        what: "the README's nodes to stop",
      }).catch(() => {
        try {
          process.kill(-sh.pid!, 'SIGKILL');
        } catch {
          /* gone */
        }
      });
      if (passed) fs.rmSync(dir, { recursive: true, force: true });
      else console.log(`    walkthrough kept in ${dir}`);
    }
  });
});
