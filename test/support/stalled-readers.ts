// Clients that ask for much and never read it, on real sockets: each connects (TLS with a client certificate,
// or plain), sends one request, and pauses its socket for good, so the node's answer can only pile up on its
// side. Also the memory of a process as the kernel counts it. Used by the exhaustion tests and by
// scripts/stalled-reads.mjs (which measures a node before and after a change).

import fs from 'node:fs';
import net from 'node:net';
import tls from 'node:tls';

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
