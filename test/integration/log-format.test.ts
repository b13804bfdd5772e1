// A JournalNode started by hand in a terminal logs for a person; started by a supervisor, or into a file or
// a pipe, it logs pino's JSON lines. Run for real: the node under a pseudo-terminal (util-linux `script`),
// and with its stdout a pipe.

import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { freePorts, JOURNALNODE_MAIN } from '../../src/local-cluster.js';
import { waitFor } from '../support/async.js';

function hasScript(): boolean {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Runs one insecure node (a throw-away test on loopback) until it has logged `until`; its output. */
async function nodeOutput(opts: { tty: boolean; extra?: string[] }, until: RegExp): Promise<string> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-logfmt-'));
  const [port] = await freePorts(1);
  const args = [
    JOURNALNODE_MAIN,
    ...['--id', 'n1', '--listen', `127.0.0.1:${port}`, '--data', path.join(dir, 'n1')],
    ...['--peers', `n1=127.0.0.1:${port}`, '--insecure', ...(opts.extra ?? [])],
  ];
  const quoted = [process.execPath, ...args].map((a) => `'${a}'`).join(' ');
  const child = opts.tty
    ? spawn('script', ['-qfec', quoted, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout!.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr!.on('data', (b: Buffer) => (out += b.toString()));
  try {
    await waitFor(() => until.test(out), { timeoutMs: 20_000, what: `the node to log ${until}:\n${out}` });
    return out;
  } finally {
    // Under `script` the node is a grandchild: signal it (not `script`, whose hang-up would race the stop)
    // by its data directory, then let `script` end on its own.
    const nodePids = (): number[] => {
      try {
        return execFileSync('pgrep', ['-f', path.join(dir, 'n1')], { encoding: 'utf8' })
          .split('\n')
          .map(Number)
          .filter((pid) => pid > 0 && pid !== child.pid);
      } catch {
        return []; // exit 1: no such process left
      }
    };
    for (const pid of nodePids()) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // gone meanwhile
      }
    }
    await waitFor(() => nodePids().length === 0, {
      timeoutMs: 30_000,
      what: `the node to stop after SIGTERM; its output:\n${out}`,
    });
    child.kill('SIGTERM');
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('journalnode log format', function () {
  this.timeout(60_000);

  it('stdout a pipe: one JSON object a line', async () => {
    const out = await nodeOutput({ tty: false }, /journalnode started/);
    const first = out.split('\n').find((l) => l.trim() !== '')!;
    expect(() => JSON.parse(first), first).to.not.throw();
  });

  it('stdout a terminal: lines for a person (time, level, message), not JSON', async function () {
    if (!hasScript()) this.skip();
    const out = await nodeOutput({ tty: true }, /journalnode started/);
    const lines = out.split(/\r?\n/).filter((l) => l.trim() !== '');
    expect(lines.length).to.be.greaterThan(0);
    for (const l of lines) expect(/^\{.*"msg"/.test(l.trim()), `a JSON record: ${l}`).to.equal(false);
    // pino-pretty's line: [HH:MM:SS.mmm] LEVEL (name): message, colours around the level and message.
    // biome-ignore lint/suspicious/noControlCharactersInRegex: the terminal's colour codes are part of the line
    expect(out.replace(/\x1b\[[0-9;]*m/g, '')).to.match(
      /^\[\d\d:\d\d:\d\d\.\d{3}\] INFO \(journalnode\): journalnode started/m,
    );
  });

  it('--logFormat json at a terminal keeps JSON (for a collector that reads a pty)', async function () {
    if (!hasScript()) this.skip();
    const out = await nodeOutput({ tty: true, extra: ['--logFormat', 'json'] }, /journalnode started/);
    const first = out.split(/\r?\n/).find((l) => l.trim() !== '')!;
    expect(() => JSON.parse(first), first).to.not.throw();
  });
});
