// A follower's reading of a refused snapshot chunk: only a well-formed PURGED refusal (the leader replaced the
// snapshot) is typed, so that the fetch moves to the newest one; anything else a peer answers fails the fetch.

import { expect } from 'chai';
import { PurgedError } from '../../../../src/errors.js';
import type { HttpPools } from '../../../../src/http-pool.js';
import type { PeerDirectory } from '../../../../src/replica/peer-directory.js';
import { PeerSnapshotSource } from '../../../../journalnode/peers/snapshot-http.js';

function chunkAnswered(status: number, body: string | Buffer): Promise<Error | null> {
  const clients = {
    request: async () => ({ status, body: Buffer.isBuffer(body) ? body : Buffer.from(body) }),
  } as unknown as HttpPools;
  const directory = { addressOf: () => '127.0.0.1:1' } as unknown as PeerDirectory;
  const source = new PeerSnapshotSource({ clients, directory, requestTimeoutMs: 1000 }).forPeer('n1');
  return new Promise((resolve) =>
    source.chunk(7, { jid: 'ns1', file: 'f', sizeBytes: 10, crc32: 0 }, 0, 4, (e) => resolve(e)),
  );
}

describe('a refused snapshot chunk, as the follower reads it', () => {
  it('410 QJM_ERR_PURGED is a PurgedError: the fetch moves to the newest snapshot', async () => {
    const e = await chunkAnswered(410, JSON.stringify({ code: 'QJM_ERR_PURGED', message: 'snapshot 7 is not held' }));
    expect(e).to.be.instanceOf(PurgedError);
    expect(e!.message).to.match(/peer n1: chunk ns1\/f@0/);
  });

  for (const [what, status, body] of [
    ['410 with another code', 410, JSON.stringify({ code: 'QJM_ERR_UNAVAILABLE' })],
    ['410 with a body that is not JSON', 410, 'QJM_ERR_PURGED'],
    ['410 with JSON null', 410, 'null'],
    ['410 with the code past the bytes read', 410, `{"pad":"${'x'.repeat(5000)}","code":"QJM_ERR_PURGED"}`],
    ['503 claiming PURGED', 503, JSON.stringify({ code: 'QJM_ERR_PURGED' })],
    ['an empty 500', 500, ''],
  ] as const) {
    it(`${what} is a plain error: the fetch fails`, async () => {
      const e = await chunkAnswered(status, body);
      expect(e).to.be.instanceOf(Error);
      expect(e).not.to.be.instanceOf(PurgedError);
      expect(e!.message).to.equal(`peer n1: chunk ns1/f@0: ${status}`);
    });
  }
});
