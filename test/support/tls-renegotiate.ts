// The renegotiation attack from a test: tls-renegotiate.c (a TLS 1.2 client on the system's OpenSSL 3, which
// can change its certificate between handshakes where node's client cannot) built once per test run with the
// C compiler the native dependencies already need, then run against a server.

import { execFile, execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { REPO_ROOT } from './repo-root.js';

export type RenegotiationOutcome =
  | 'handshake-refused'
  | 'renegotiation-refused'
  | 'answer'
  | 'no-answer'
  | 'cannot-run';

export interface Identity {
  cert: string;
  key: string;
}

let built: string | null = null;

function binary(): string {
  if (built) return built;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qjournal-reneg-'));
  const out = path.join(dir, 'tls-renegotiate');
  execFileSync('cc', ['-O1', '-o', out, path.join(REPO_ROOT, 'test', 'support', 'tls-renegotiate.c'), '-ldl'], {
    stdio: 'pipe',
  });
  built = out;
  return out;
}

/**
 * Handshakes with `first`, renegotiates presenting `second`, then sends `method path` with an empty body.
 * Resolves with what happened and the helper's line (the HTTP status line when answered).
 */
export function renegotiateThenRequest(
  address: { host: string; port: number },
  first: Identity,
  second: Identity,
  method: 'GET' | 'POST',
  urlPath: string,
): Promise<{ outcome: RenegotiationOutcome; detail: string }> {
  const args = [address.host, String(address.port), first.cert, first.key, second.cert, second.key, method, urlPath];
  return new Promise((resolve, reject) => {
    execFile(binary(), args, { encoding: 'utf8', timeout: 20_000 }, (err, stdout) => {
      const line = stdout.trim();
      const space = line.indexOf(' ');
      const outcome = (space < 0 ? line : line.slice(0, space)) as RenegotiationOutcome;
      if (outcome === 'cannot-run' || line === '') return reject(new Error(`tls-renegotiate: ${line || err?.message}`));
      resolve({ outcome, detail: line.slice(space + 1) });
    });
  });
}
