#!/usr/bin/env node
// `npm start`: the main job. Until the JournalNode server and libqjm exist, say so plainly.
console.log(`qjournal: the Raft core and its simulator are built; the JournalNode server, libqjm and the
HA demo (three JournalNodes, an active master, a tailing standby and a failover) are not built yet.

What runs today:
  npm test                         unit tests, Raft paper tests, scenarios and the seeded simulator
  npm run sim -- --seeds 2000      a longer seeded simulation run`);
