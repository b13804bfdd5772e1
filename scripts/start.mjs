#!/usr/bin/env node
// `npm start`: the main job — the HA demo (src/demo/demo.ts), after the build npm start runs first.
await import('../dist/src/demo/main.js');
