// bin/qjm run as an operator runs it: a process of its own, as one of a local cluster's users, with its
// output and exit code.

import { execFile } from 'node:child_process';
import path from 'node:path';
import type { LocalCluster } from '../../src/local-cluster.js';
import { REPO_ROOT } from './repo-root.js';

/** The repository's bin/ (this file runs from dist/test/support/). */
export const BIN_DIR = path.join(REPO_ROOT, 'bin');

export interface QjmRun {
  code: number;
  out: string;
  err: string;
}

/** bin/qjm with `args`, as `user` of the cluster (its certificate), within timeoutMs. */
export function runQjm(c: LocalCluster, args: string[], user = 'admin', timeoutMs = 120_000): Promise<QjmRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [path.join(BIN_DIR, 'qjm.js'), ...args],
      { timeout: timeoutMs, env: { ...process.env, ...c.qjmEnv(user) } },
      (error, stdout, stderr) => {
        resolve({ code: error ? (typeof error.code === 'number' ? error.code : 1) : 0, out: stdout, err: stderr });
      },
    );
  });
}
