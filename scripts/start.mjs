#!/usr/bin/env node
// `npm start`: the main job — the HA demo (src/demo/demo.ts) — after building it. One process from npm's
// point of view: npm runs this file directly (no `a && b` shell in between), so a SIGTERM npm forwards, or the
// terminal's Ctrl-C, reaches the demo itself, which stops everything it started, in order, and exits 0.
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const built = spawnSync(process.execPath, [path.join(root, 'scripts', 'build.mjs')], { stdio: 'inherit' });
if (built.status !== 0) process.exit(built.status ?? 1);
await import('../dist/src/demo/main.js');
