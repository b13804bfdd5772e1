// Clients that ask for much and never read it, on real sockets: each connects (TLS with a client certificate,
// or plain), sends one request, and pauses its socket for good, so the node's answer can only pile up on its
// side. With them, what the measurement around them needs: a journal of large records to ask for, a
// /healthz probe, the memory of a process as the kernel counts it. Used by the exhaustion tests and by
// scripts/stalled-reads.mjs (which measures a node before and after a change).

import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import type { LocalCluster } from '../../src/local-cluster.js';
import { startWriting } from './cluster-writer.js';

export interface StalledReadOptions {
  /** host:port of the node. */
  address: string;
  /** The client's certificate material (PEM); null: plain HTTP. */
  tls: { ca: string; cert: string; key: string } | null;
  path: string;
  body: Uint8Array;
  count: number;
  /** Connections opened at once (the rest wait their turn). */
  parallel?: number;
}

/** Opens one connection, sends the request, and stops reading: resolves once the request is written. */
function stalledRequest(o: StalledReadOptions): Promise<net.Socket> {
  const [host, port] = [o.address.slice(0, o.address.lastIndexOf(':')), Number(o.address.split(':').pop())];
  return new Promise((resolve, reject) => {
    const head = `POST ${o.path} HTTP/1.1\r\nHost: ${o.address}\r\nContent-Type: application/x-protobuf\r\nContent-Length: ${o.body.byteLength}\r\n\r\n`;
    const send = (s: net.Socket) => {
      s.write(Buffer.concat([Buffer.from(head, 'latin1'), o.body]), (e) => {
        if (e) return reject(e);
        s.pause();
        resolve(s);
      });
    };
    const s: net.Socket = o.tls
      ? tls.connect({ host, port, ca: o.tls.ca, cert: o.tls.cert, key: o.tls.key, servername: 'localhost' }, () =>
          send(s),
        )
      : net.connect({ host, port }, () => send(s));
    s.once('error', reject);
  });
}

/** Opens `count` stalled requests; every socket stays open (and unread) until the caller destroys it. */
export async function openStalledReads(o: StalledReadOptions): Promise<net.Socket[]> {
  const out: net.Socket[] = [];
  const parallel = o.parallel ?? 50;
  for (let i = 0; i < o.count; i += parallel) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(parallel, o.count - i) }, () => stalledRequest(o).catch(() => null)),
    );
    for (const s of batch) if (s) out.push(s);
  }
  for (const s of out) s.on('error', () => {});
  return out;
}

/** A process's resident memory now and at its peak (VmRSS, VmHWM), in MB. */
export function memoryMb(pid: number): { rssMb: number; peakMb: number } {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const kb = (field: string) => Number(new RegExp(`${field}:\\s+(\\d+) kB`).exec(text)?.[1] ?? Number.NaN);
  return { rssMb: kb('VmRSS') / 1024, peakMb: kb('VmHWM') / 1024 };
}

/** Formats journal ns1 and writes `mib` MiB of 64 KiB records into one finalized segment; returns its last txid. */
export async function writeLargeJournal(c: LocalCluster, mib: number): Promise<number> {
  const ns = { namespaceId: 1, clusterId: 'CID-large', blockPoolId: 'BP' };
  const { q, out, lastTxId } = await startWriting(c, ns, { writerId: 'w' });
  let last = lastTxId;
  try {
    for (let i = 0; i < mib; i++) {
      for (let k = 0; k < 16; k++) out.write(Buffer.alloc(64 << 10, (i + k) % 251));
      last = await out.flush();
    }
    await q.finalizeLogSegment(lastTxId + 1, last);
  } finally {
    await q.close();
  }
  return last;
}

/** The reader certificate of a local cluster, as PEM for openStalledReads. */
export function readerMaterial(c: LocalCluster): { ca: string; cert: string; key: string } {
  const certs = c.certsDir!;
  const read = (f: string) => fs.readFileSync(path.join(certs, f), 'utf8');
  return { ca: read('ca.crt'), cert: read('client.reader.crt'), key: read('client.reader.key') };
}

/** /healthz probed every `everyMs` until stopped: the latencies (ms) and the failures. */
export function probeHealth(
  c: LocalCluster,
  address: string,
  everyMs = 100,
): { stop(): Promise<{ latenciesMs: number[]; worstMs: number; failures: number }> } {
  let running = true;
  const latenciesMs: number[] = [];
  let failures = 0;
  const loop = (async () => {
    while (running) {
      const t0 = performance.now();
      const ok = await c.request(address, 'GET', '/healthz', null, 5000).then(
        (r) => r.status === 200,
        () => false,
      );
      latenciesMs.push(performance.now() - t0);
      if (!ok) failures++;
      await new Promise((r) => setTimeout(r, everyMs));
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { latenciesMs, worstMs: Math.max(0, ...latenciesMs), failures };
    },
  };
}
