// The main job stays working: a short run of the demo must end with identical namespaces, the fenced old
// active refused, an anonymous, a wrong-role and a wrong-journal client refused, and nothing left running; `--serve` keeps it
// running with its dashboard until SIGINT, which stops every node and exits 0.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { execFileSync, spawn } from 'node:child_process';
import { expect } from 'chai';
import { demoDirRefusal, runDemo } from '../../src/demo/demo.js';
import type { ClusterJson } from '../../journalnode/ui/cluster-view.js';
import { waitFor } from '../support/async.js';
import { REPO_ROOT } from '../support/repo-root.js';

/** What `npm start` runs once it has built. */
const DEMO_MAIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', 'src', 'demo', 'main.js');

/** Command lines of running processes that mention `needle` (pgrep exits 1 when none does). */
function processesMatching(needle: string): string {
  try {
    return execFileSync('pgrep', ['-af', '--', needle], { encoding: 'utf8' });
  } catch (e) {
    if ((e as { status?: number }).status === 1) return '';
    throw e;
  }
}

/** The dashboard's aggregate, or null while the page does not answer. */
async function clusterView(url: string): Promise<ClusterJson | null> {
  try {
    const res = await fetch(`${url}ui/cluster`);
    return res.ok ? ((await res.json()) as ClusterJson) : null;
  } catch {
    return null;
  }
}

/**
 * `npm start -- --serve --data-dir DIR` in a process group of its own, as a terminal or a supervisor runs it:
 * resolves once the active master writes, with a way to signal npm alone or the whole group (a Ctrl-C).
 */
async function npmStart(dir: string): Promise<{
  npm: ReturnType<typeof spawn>;
  exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  output: () => string;
}> {
  const npm = spawn('npm', ['start', '--', '--serve', '--data-dir', dir], {
    cwd: REPO_ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  npm.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  npm.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    npm.on('exit', (code, signal) => resolve({ code, signal })),
  );
  await waitFor(() => /nn1 is ACTIVE/.test(out), { timeoutMs: 60_000, what: `the demo to start writing:\n${out}` });
  return { npm, exit, output: () => out };
}

describe('npm start under signals, as a terminal and a supervisor send them', function () {
  this.timeout(120_000);
  const cases: { name: string; send: (npm: ReturnType<typeof spawn>) => void }[] = [
    // A supervisor (systemd, docker stop) signals the process it started: npm. npm passes it on to the
    // script, which must be the demo itself and not a shell that dies and leaves the demo running.
    { name: 'SIGTERM to npm alone', send: (npm) => process.kill(npm.pid!, 'SIGTERM') },
    // Ctrl-C: the terminal signals the whole foreground group, and npm forwards its copy a moment later.
    { name: 'Ctrl-C (SIGINT to the process group)', send: (npm) => process.kill(-npm.pid!, 'SIGINT') },
  ];
  for (const c of cases) {
    it(`${c.name}: every JournalNode drains and stops, and npm exits 0`, async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-npm-start-'));
      let started: Awaited<ReturnType<typeof npmStart>> | null = null;
      try {
        started = await npmStart(dir);
        expect(processesMatching(dir), 'the JournalNodes run (so the check below can fail)').to.match(/journalnode/);
        c.send(started.npm);
        const ended = await Promise.race([
          started.exit,
          new Promise<'hung'>((r) => setTimeout(() => r('hung'), 60_000)),
        ]);
        expect(ended, started.output()).to.deep.equal({ code: 0, signal: null });
        expect(started.output()).to.match(/all JournalNodes stopped; nothing left running/);
        expect(processesMatching(dir), 'no JournalNode of the demo still runs').to.equal('');
      } finally {
        if (started && started.npm.exitCode === null) process.kill(-started.npm.pid!, 'SIGKILL');
        for (const line of processesMatching(dir).split('\n').filter(Boolean))
          process.kill(Number(line.split(' ')[0]), 'SIGKILL');
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }

  it('--data-dir refuses a directory the demo did not write (it wipes its directory at start)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-not-demo-'));
    try {
      fs.writeFileSync(path.join(dir, 'precious.txt'), 'keep me');
      expect(demoDirRefusal(dir)).to.match(/holds files the demo did not write/);
      expect(fs.readFileSync(path.join(dir, 'precious.txt'), 'utf8')).to.equal('keep me');
      expect(demoDirRefusal(path.join(dir, 'absent'))).to.equal(null);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the demo (npm start)', function () {
  this.timeout(120_000);
  it('the process check sees a running process (so the check below can fail)', () => {
    expect(processesMatching('mocha')).to.not.equal('');
  });

  it('fails over, fences the old active, survives a JournalNode kill, and ends with identical namespaces', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-demo-'));
    const lines: string[] = [];
    try {
      const code = await runDemo({
        dataDir: dir,
        phase1S: 2,
        phase2S: 6,
        opsPerSecond: 500,
        log: (l) => lines.push(l),
      });
      const out = lines.join('\n');
      expect(code, out).to.equal(0);
      expect(out).to.match(/refused with QJM_ERR_FENCED/);
      expect(out).to.match(/a client with no certificate asks .* for \/status: HTTP 401 QJM_ERR_UNAUTHENTICATED/);
      expect(out).to.match(/reader role tries to take over .*: refused with QJM_ERR_FORBIDDEN/);
      expect(out).to.match(
        /a writer whose certificate names only journal ns1-other tries to take over ns1: refused with QJM_ERR_FORBIDDEN/,
      );
      expect(out).to.match(/security\s+\| mutual TLS, roles and journals enforced/);
      expect(fs.readdirSync(path.join(dir, 'certs')).sort(), "the demo's certificates").to.include.members([
        'ca.crt',
        'node.n1.crt',
        'client.writer.crt',
      ]);
      expect(out).to.match(/namespaces\s+\| IDENTICAL/);
      expect(out).to.match(/writes acknowledged again after \d+ ms/);
      expect(out).to.match(/nothing left running/);
      expect(processesMatching(dir), 'no JournalNode of the demo still runs').to.equal('');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('--serve: prints the dashboard URL, keeps running, purges what the floor lets go; SIGINT stops every JournalNode and exits 0', async function () {
    this.timeout(300_000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-serve-'));
    // The demo keeps its data in ./demo-data: run it from a directory of its own.
    const demo = spawn(process.execPath, ['--enable-source-maps', DEMO_MAIN, '--serve'], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    demo.stdout.on('data', (b: Buffer) => (out += b.toString()));
    demo.stderr.on('data', (b: Buffer) => (out += b.toString()));
    const exit = new Promise<number | null>((resolve) => demo.on('exit', (code) => resolve(code)));
    let exited = false;
    void exit.then(() => (exited = true));
    try {
      const url = await waitFor(() => /dashboard: (http:\/\/127\.0\.0\.1:\d+\/)/.exec(out)?.[1], {
        timeoutMs: 60_000,
        what: `the dashboard's URL in the demo's output:\n${out}`,
      });
      const view = await waitFor(
        async () => {
          const v = await clusterView(url);
          return v?.leader ? v : null;
        },
        { timeoutMs: 20_000, what: `${url}ui/cluster to name a leader` },
      );
      expect(view.members.map((m) => m.id).sort()).to.deep.equal(['n1', 'n2', 'n3']);
      expect(
        view.members.every((m) => m.reachable && m.status?.leader === view.leader),
        JSON.stringify(view.members.map((m) => [m.id, m.error])),
      ).to.equal(true);
      expect(processesMatching(dir), 'the JournalNodes run (so the check below can fail)').to.match(/journalnode/);

      // Serving, the active purges old segments, and with the demo's floor they do go: with the default one
      // (minTxnsRetained 1,000,000) the journal would still start at txid 1, whatever the master asked.
      const from = await waitFor(() => /\| {2}journal from txid (\d+)/.exec(out)?.[1], {
        timeoutMs: 150_000,
        what: `a report of --serve naming where the journal starts:\n${out}`,
      });
      expect(out).to.match(
        /old segments: nn2 purges those more than 5000 txids behind.*minTxnsRetained, set low for the demo/,
      );
      expect(Number(from), out).to.be.greaterThan(1);

      demo.kill('SIGINT');
      const code = await Promise.race([exit, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 45_000))]);
      expect(code, out).to.equal(0);
      expect(out)
        .to.match(/--- SIGINT: .*stop/)
        .and.match(/all JournalNodes stopped; nothing left running\n$/);
      expect(processesMatching(dir), 'no JournalNode of the demo still runs').to.equal('');
      for (const id of ['n1', 'n2', 'n3']) {
        const last = fs
          .readFileSync(path.join(dir, 'demo-data', `${id}.log`), 'utf8')
          .trimEnd()
          .split('\n')
          .pop()!;
        expect((JSON.parse(last) as { msg: string }).msg, `${id} drained and stopped, not killed`).to.equal(
          'journalnode stopped',
        );
      }
    } finally {
      if (!exited) demo.kill('SIGKILL');
      // Whatever a failed run left behind, by process id.
      for (const line of processesMatching(dir).split('\n').filter(Boolean))
        process.kill(Number(line.split(' ')[0]), 'SIGKILL');
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
