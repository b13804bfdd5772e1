// A connection flood, run as a process of its own so that its work does not slow the test that measures the
// node: `node connection-flood.js HOST PORT ATTEMPTS CONCURRENCY LOCAL_ADDRESS`. It opens TCP connections to
// the node from LOCAL_ADDRESS, sends nothing on them (no TLS, no request), keeps CONCURRENCY attempts going
// at once, opens a new one whenever one ends, and stops after ATTEMPTS. An attempt not connected within
// CONNECT_TIMEOUT_MS is given up (a node that cannot keep up with accepting lets the kernel drop SYNs, which
// clients retry for minutes), and so is one still open STALE_MS after it connected (the kernel completes a
// handshake the node never accepts when its accept queue is full, and the client then waits for ever; the
// node closes every connection it does accept within its handshake deadline). Prints a JSON summary.

import net from 'node:net';

const [host, portText, attemptsText, concurrencyText, localAddress] = process.argv.slice(2);
const port = Number(portText);
const attempts = Number(attemptsText);
const concurrency = Number(concurrencyText);

let started = 0;
let ended = 0;
let connected = 0;
let failed = 0;
/** Connections the node closed within 50 ms of accepting them (refused at once), and the rest. */
let closedAtOnce = 0;
let closedLater = 0;
let gaveUp = 0;
let stale = 0;
const CONNECT_TIMEOUT_MS = 3000;
const STALE_MS = 10_000;
const t0 = Date.now();

function one(): void {
  if (started >= attempts) return;
  started++;
  const s = net.connect({ host: host!, port, localAddress: localAddress! });
  let openedAt = 0;
  let givenUp = false;
  const giveUp = setTimeout(() => {
    gaveUp++;
    givenUp = true;
    s.destroy();
  }, CONNECT_TIMEOUT_MS);
  let staleTimer: NodeJS.Timeout | undefined;
  s.on('connect', () => {
    clearTimeout(giveUp);
    connected++;
    openedAt = Date.now();
    staleTimer = setTimeout(() => {
      stale++;
      s.destroy();
    }, STALE_MS);
  });
  s.on('error', () => {
    if (openedAt === 0 && !givenUp) failed++;
  });
  s.on('close', () => {
    clearTimeout(giveUp);
    clearTimeout(staleTimer);
    if (openedAt > 0) {
      if (Date.now() - openedAt < 50) closedAtOnce++;
      else closedLater++;
    }
    ended++;
    if (ended === attempts) done();
    else one();
  });
}

function done(): void {
  process.stdout.write(
    `${JSON.stringify({ attempts, connected, failed, gaveUp, stale, closedAtOnce, closedLater, seconds: (Date.now() - t0) / 1000 })}\n`,
  );
  process.exit(0);
}

for (let i = 0; i < Math.min(concurrency, attempts); i++) one();
