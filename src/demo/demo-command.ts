// The demo's command line, one spec for both ways to run it: `npm start [-- --serve]` (src/demo/main.ts) and
// `qjm demo [--serve]`. Kept apart from demo.ts so that qjm loads the demo itself only when it runs.

import type { CommandSpec } from '../command-line.js';

export const DEMO_COMMAND = {
  name: 'qjm demo',
  summary: 'The HA demo (same as npm start): an active master, a tailing standby, and a failover.',
  flags: {
    'data-dir': {
      type: 'string',
      description:
        "where the demo keeps its nodes, certificates and journal (default ./demo-data); wiped at start, so it must be absent, empty, or a demo's own",
    },
    serve: {
      type: 'boolean',
      description:
        'then keep the cluster, its dashboard, the masters and a steady load running until Ctrl-C or SIGTERM',
    },
  },
} as const satisfies CommandSpec;
