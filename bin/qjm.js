#!/usr/bin/env node
import readline from 'node:readline/promises';
import { runQjm } from '../dist/src/cli/qjm.js';

// Destructive commands confirm at a terminal; without one (a script, a pipe) they need --yes.
const ask =
  process.stdin.isTTY && process.stderr.isTTY
    ? async (question) => {
        const rl = readline.createInterface({ input: process.stdin, output: process.stderr });
        try {
          return await rl.question(question);
        } finally {
          rl.close();
        }
      }
    : undefined;

const code = await runQjm(process.argv.slice(2), { out: (l) => console.log(l), err: (l) => console.error(l), ask });
process.exitCode = code;
