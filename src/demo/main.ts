// `npm start` (`npm start -- --serve` to keep it running): runs the demo (see demo.ts) and exits with its
// verdict; 2 for flags it does not know.
import { helpText, parseCommand, usageError, UsageError } from '../command-line.js';
import { DEMO_COMMAND } from './demo-command.js';
import { runDemo } from './demo.js';

function parse() {
  try {
    return parseCommand(DEMO_COMMAND, process.argv.slice(2));
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(usageError(DEMO_COMMAND, e.message));
    return null;
  }
}

const parsed = parse();
if (!parsed) process.exitCode = 2;
else if (parsed.help) console.log(helpText(DEMO_COMMAND));
else process.exitCode = await runDemo({ serve: parsed.flags.serve, dataDir: parsed.flags['data-dir'] });
