// Speaking the peer stream from a test: frames written on a stream opened through the real client
// (HttpPools.openStream), the body ended, and the node's answer — or a raw socket for what no client would send.

import net from 'node:net';
import type { HttpPools } from '../../src/http-pool.js';
import { splitHostPort } from '../../src/ids.js';
import { RAFT_STREAM_CONTENT_TYPE, RAFT_STREAM_PATH } from '../../journalnode/peers/peer-transport.js';
import { encodeBatchFrame } from '../../src/transport/raft-codec.js';
import type { Batch } from '../../src/transport/raft-codec.js';

/** One length-prefixed frame holding `payload` as it is. */
export function rawFrame(payload: Uint8Array): Buffer {
  const h = Buffer.alloc(4);
  h.writeUInt32BE(payload.byteLength);
  return Buffer.concat([h, payload]);
}

/** A batch as the frame a node would write. */
export function batchFrame(b: Batch): Buffer {
  return Buffer.concat(encodeBatchFrame(b).chunks);
}

/** Opens a stream to `address`, writes `frames`, ends it; resolves with the node's answer. */
export function streamOnce(
  client: Pick<HttpPools, 'openStream'>,
  address: string,
  frames: Buffer[],
  idleTimeoutMs = 10_000,
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const s = client.openStream(address, RAFT_STREAM_PATH, RAFT_STREAM_CONTENT_TYPE, idleTimeoutMs, {
      onResponse: (status, body) => resolve({ status, body: body.toString() }),
      onError: reject,
      onDrain() {},
    });
    s.write(frames);
    s.end();
  });
}

/**
 * A stream written by hand on a plain socket (HTTP/1.1, chunked): `bytes` as the body, then either the final
 * chunk (end: true) or nothing more. Resolves with what the node answered and when the socket closed.
 */
export function rawStream(
  address: string,
  bytes: Buffer,
  end: boolean,
): { answer: Promise<{ head: string; closedAtMs: number }>; socket: net.Socket } {
  const { host, port } = splitHostPort(address);
  const socket = net.connect(port, host);
  socket.on('error', () => {});
  socket.write(
    `POST ${RAFT_STREAM_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: ${RAFT_STREAM_CONTENT_TYPE}\r\nTransfer-Encoding: chunked\r\n\r\n`,
  );
  if (bytes.byteLength > 0) {
    socket.write(`${bytes.byteLength.toString(16)}\r\n`);
    socket.write(bytes);
    socket.write('\r\n');
  }
  if (end) socket.write('0\r\n\r\n');
  let head = '';
  const answer = new Promise<{ head: string; closedAtMs: number }>((resolve) => {
    socket.on('data', (d) => (head += d.toString('latin1')));
    socket.on('close', () => resolve({ head, closedAtMs: Date.now() }));
  });
  return { answer, socket };
}
