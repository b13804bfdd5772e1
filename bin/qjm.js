#!/usr/bin/env node
import { runQjm } from '../dist/src/cli/qjm.js';

const code = await runQjm(process.argv.slice(2), { out: (l) => console.log(l), err: (l) => console.error(l) });
process.exitCode = code;
