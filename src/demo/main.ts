// `npm start`: runs the demo (see demo.ts) and exits with its verdict.
import { runDemo } from './demo.js';

process.exitCode = await runDemo({});
