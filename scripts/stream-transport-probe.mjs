// Compares the two ways a long-lived peer stream can run on this machine, with the same length-prefixed
// frames, between two processes over loopback (mutual TLS unless PLAIN=1): an HTTP/1.1 POST whose chunked
// request body carries the frames (undici client, node:http(s) server), and an HTTP/2 stream (node:http2
// on both sides). Each process streams to the other, as two JournalNodes do: A sends, B answers every frame
// with a 32-byte frame on its own stream back. Reports the round trip of a small frame (W1's shape) and the
// throughput of 2 MB frames with two in flight (W2's shape), with the CPU both processes used.
// h1 is undici's client (libqjm's and the nodes'), h1n node's own http client.
// Usage: [PLAIN=1] [ROUNDS=5] node scripts/stream-transport-probe.mjs [both|h1,h1n,h2] [SECONDS]
import { fork } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import http2 from 'node:http2';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { Client } from 'undici';

const PLAIN = process.env.PLAIN === '1';
const HERE = fileURLToPath(import.meta.url);
const H2_WINDOW_BYTES = 8 << 20;

function frame(payload) {
  const b = Buffer.allocUnsafe(4 + payload.byteLength);
  b.writeUInt32BE(payload.byteLength, 0);
  payload.copy(b, 4);
  return b;
}

/** Parses frames out of chunks; calls onFrame(buf) per whole frame. */
function deframer(onFrame) {
  let pending = [];
  let have = 0;
  let need = -1;
  return (chunk) => {
    pending.push(chunk);
    have += chunk.byteLength;
    for (;;) {
      if (need < 0) {
        if (have < 4) return;
        const all = pending.length === 1 ? pending[0] : Buffer.concat(pending);
        pending = [all];
        need = all.readUInt32BE(0) + 4;
      }
      if (have < need) return;
      const all = pending.length === 1 ? pending[0] : Buffer.concat(pending);
      onFrame(all.subarray(4, need));
      const rest = all.subarray(need);
      pending = rest.byteLength ? [rest] : [];
      have = rest.byteLength;
      need = -1;
    }
  };
}

// ---------------------------------------------------------------- one side (a child process)

async function side(kind, role, certs) {
  const tls = PLAIN
    ? null
    : {
        ca: fs.readFileSync(path.join(certs, 'ca.crt')),
        cert: fs.readFileSync(path.join(certs, `node.${role}.crt`)),
        key: fs.readFileSync(path.join(certs, `node.${role}.key`)),
      };
  let onFrame = () => {};
  // The server: frames arriving from the other side.
  let server;
  if (kind !== 'h2') {
    const handler = (req, res) => {
      req.on(
        'data',
        deframer((f) => onFrame(f)),
      );
      req.on('end', () => res.end());
    };
    server = tls
      ? https.createServer({ ...tls, requestCert: true, rejectUnauthorized: true }, handler)
      : http.createServer(handler);
    server.requestTimeout = 0;
  } else {
    // Flow-control windows large enough for a 2 MB frame in flight twice (the default 64 KiB would make
    // HTTP/2 wait for WINDOW_UPDATEs many times per frame).
    const settings = { initialWindowSize: H2_WINDOW_BYTES };
    server = tls
      ? http2.createSecureServer({ ...tls, requestCert: true, rejectUnauthorized: true, settings })
      : http2.createServer({ settings });
    server.on('session', (s) => s.setLocalWindowSize(H2_WINDOW_BYTES));
    server.on('stream', (stream) => {
      stream.respond({ ':status': 200 });
      stream.on(
        'data',
        deframer((f) => onFrame(f)),
      );
    });
  }
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  process.send({ port: server.address().port });
  const peerPort = await new Promise((r) => process.once('message', (m) => r(m.peerPort)));
  // The client: this side's stream to the other.
  let write;
  if (kind === 'h1n') {
    // node's own HTTP/1.1 client: a chunked request body written frame by frame.
    const agent = new (tls ? https : http).Agent({ keepAlive: true, maxSockets: 1 });
    const req = (tls ? https : http).request({
      host: '127.0.0.1',
      port: peerPort,
      method: 'POST',
      path: '/s',
      agent,
      ...(tls ? { ...tls, servername: 'localhost' } : {}),
      headers: { 'content-type': 'application/octet-stream' },
    });
    req.on('error', (e) => console.error(role, e));
    req.flushHeaders();
    write = (b) => req.write(b);
  } else if (kind === 'h1') {
    const client = new Client(`${tls ? 'https' : 'http'}://127.0.0.1:${peerPort}`, {
      connect: tls ? { ...tls, servername: 'localhost' } : undefined,
      pipelining: 1,
    });
    const body = new PassThrough({ highWaterMark: 4 << 20 });
    client.dispatch(
      {
        method: 'POST',
        path: '/s',
        body,
        headersTimeout: 0,
        bodyTimeout: 0,
        headers: { 'content-type': 'application/octet-stream' },
      },
      {
        onConnect() {},
        onError(e) {
          console.error(role, e);
        },
        onHeaders() {
          return true;
        },
        onData() {
          return true;
        },
        onComplete() {},
        onUpgrade() {},
      },
    );
    write = (b) => body.write(b);
  } else {
    const session = http2.connect(`${tls ? 'https' : 'http'}://127.0.0.1:${peerPort}`, {
      ...(tls ? { ...tls, servername: 'localhost' } : {}),
      settings: { initialWindowSize: H2_WINDOW_BYTES },
    });
    session.on('connect', () => session.setLocalWindowSize(H2_WINDOW_BYTES));
    const stream = session.request({ ':method': 'POST', ':path': '/s' }, { endStream: false });
    write = (b) => stream.write(b);
  }
  const small = frame(Buffer.alloc(32, 1));
  if (role === 'b') {
    onFrame = () => write(small);
    return;
  }
  // A: drives the test once told to.
  const { test, seconds, bytes } = await new Promise((r) => process.once('message', r));
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  const lat = [];
  let moved = 0;
  await new Promise((resolve) => {
    if (test === 'rtt') {
      const payload = frame(Buffer.alloc(bytes, 2));
      let sentAt = 0;
      onFrame = () => {
        lat.push(performance.now() - sentAt);
        if (performance.now() > end) return resolve();
        sentAt = performance.now();
        write(payload);
      };
      sentAt = performance.now();
      write(payload);
    } else {
      const payload = frame(Buffer.alloc(bytes, 3));
      let inFlight = 0;
      const pump = () => {
        while (inFlight < 2 && performance.now() < end) {
          inFlight++;
          write(payload);
        }
        if (inFlight === 0) resolve();
      };
      onFrame = () => {
        inFlight--;
        moved += bytes;
        pump();
      };
      pump();
    }
  });
  const wall = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  lat.sort((x, y) => x - y);
  process.send({
    wall,
    cpuMs: (cpu.user + cpu.system) / 1000,
    p50Ms: lat[Math.floor(lat.length / 2)],
    p99Ms: lat[Math.floor(lat.length * 0.99)],
    count: lat.length,
    mbPerSec: moved / wall / 1e6,
  });
}

// ---------------------------------------------------------------- the driver

function cpuMsOf(pid) {
  const f = fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
}

async function runOne(kind, seconds, certs, test, bytes) {
  const a = fork(HERE, ['--side', kind, 'a', certs]);
  const b = fork(HERE, ['--side', kind, 'b', certs]);
  const port = (p) => new Promise((r) => p.once('message', (m) => r(m.port)));
  const [pa, pb] = await Promise.all([port(a), port(b)]);
  a.send({ peerPort: pb });
  b.send({ peerPort: pa });
  await new Promise((r) => setTimeout(r, 300));
  const bCpu0 = cpuMsOf(b.pid);
  a.send({ test, seconds, bytes });
  const r = await new Promise((res) => a.once('message', res));
  const peerCpuMs = cpuMsOf(b.pid) - bCpu0;
  a.kill();
  b.kill();
  return { ...r, peerCpuMs };
}

if (process.argv[2] === '--side') {
  await side(process.argv[3], process.argv[4], process.argv[5]);
} else {
  const which = process.argv[2] ?? 'both';
  const seconds = Number(process.argv[3] ?? 5);
  const certs = fs.mkdtempSync(path.join(os.tmpdir(), 'probe-certs-'));
  const { createCa, createNodeCert } = await import('../dist/src/security/certs.js');
  await createCa({ certsDir: certs });
  for (const id of ['a', 'b']) await createNodeCert({ certsDir: certs }, id, ['127.0.0.1', 'localhost']);
  const kinds = which === 'both' ? ['h1', 'h1n', 'h2'] : which.split(',');
  const rounds = Number(process.env.ROUNDS ?? 5);
  const results = new Map(kinds.map((k) => [k, []]));
  // Interleaved rounds, medians reported: the machine is shared and noisy.
  for (let round = 0; round < rounds; round++) {
    for (const kind of kinds) {
      if (round === 0) await runOne(kind, 2, certs, 'rtt', 200); // warm-up
      const rtt = await runOne(kind, seconds, certs, 'rtt', 200);
      const tp = await runOne(kind, seconds, certs, 'throughput', 2 << 20);
      const cpuUs = (r, n) => ((r.cpuMs + r.peerCpuMs) * 1000) / n;
      results.get(kind).push({
        p50Ms: rtt.p50Ms,
        p99Ms: rtt.p99Ms,
        rttCpuUs: cpuUs(rtt, rtt.count),
        mbPerSec: tp.mbPerSec,
        cpuUsPerMb: cpuUs(tp, tp.mbPerSec * tp.wall),
      });
    }
  }
  const med = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
  for (const [kind, rs] of results) {
    const m = (k) => med(rs.map((r) => r[k]));
    console.log(
      `${kind}${PLAIN ? ' (plain)' : ' (mutual TLS)'}, median of ${rs.length}: 200-byte frame round trip p50 ${m('p50Ms').toFixed(3)} ms, p99 ${m('p99Ms').toFixed(3)} ms, ` +
        `CPU ${m('rttCpuUs').toFixed(1)} us per round trip (both sides); 2 MB frames ${m('mbPerSec').toFixed(0)} MB/s, CPU ${m('cpuUsPerMb').toFixed(0)} us per MB (both sides)`,
    );
  }
  fs.rmSync(certs, { recursive: true, force: true });
}
