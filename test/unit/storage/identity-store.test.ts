// A node's record of its own standing (src/storage/identity-store.ts): what is saved reads back, a directory
// without one reads as nothing recorded, and a damaged file stops the node rather than forgetting a stand-down.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { expect } from 'chai';
import { EMPTY_IDENTITY } from '../../../src/replica/env.js';
import type { IdentityRecord } from '../../../src/replica/env.js';
import { encodeIdentity, FileIdentityStore, IdentityFileError } from '../../../src/storage/identity-store.js';
import { qjournal } from '../../../src/gen/proto.js';
import { nodeFileSystem } from '../../../src/storage/node-file-system.js';

describe('identity record file', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-identity-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const full: IdentityRecord = {
    standDown: { reason: 'reset-away', generation: 3, by: 'n1', atMs: 1_700_000_000_000, detail: 'left out' },
    floor: { index: 120, term: 7 },
    boundElsewhere: 'abc123',
  };

  it('reads back what was saved; nothing saved reads as the empty record; an interrupted save leaves no trace', async () => {
    const s = new FileIdentityStore(nodeFileSystem, dir);
    expect(s.load()).to.deep.equal(EMPTY_IDENTITY);
    await new Promise<void>((resolve, reject) => s.save(full, (e) => (e ? reject(e) : resolve())));
    expect(new FileIdentityStore(nodeFileSystem, dir).load()).to.deep.equal(full);
    fs.writeFileSync(path.join(dir, 'identity.tmp'), 'half a write');
    expect(new FileIdentityStore(nodeFileSystem, dir).load()).to.deep.equal(full);
    expect(fs.existsSync(path.join(dir, 'identity.tmp'))).to.equal(false);
    s.saveSync(EMPTY_IDENTITY);
    expect(s.load()).to.deep.equal(EMPTY_IDENTITY);
  });

  const damaged: [string, (b: Buffer) => Buffer][] = [
    ['a flipped body byte', (b) => Buffer.concat([b.subarray(0, 20), Buffer.from([b[20]! ^ 1]), b.subarray(21)])],
    ['cut short', (b) => b.subarray(0, b.byteLength - 3)],
    ['bad magic', (b) => Buffer.concat([Buffer.from('XXXX'), b.subarray(4)])],
    ['shorter than the framing', (b) => b.subarray(0, 8)],
  ];
  for (const [what, damage] of damaged)
    it(`refuses ${what}: the node must not start forgetting that it stood down`, () => {
      fs.writeFileSync(path.join(dir, 'identity'), damage(encodeIdentity(full)));
      expect(() => new FileIdentityStore(nodeFileSystem, dir).load()).to.throw(IdentityFileError);
    });

  it('refuses a stand-down reason it does not know', () => {
    const body = Buffer.from(
      qjournal.raft.NodeIdentity.encode({ standDown: { reason: 'bored', generation: 1, by: 'n1' } }).finish(),
    );
    const good = encodeIdentity(EMPTY_IDENTITY);
    const head = Buffer.from(good.subarray(0, 12));
    head.writeUInt32BE(body.byteLength, 4);
    head.writeUInt32BE(zlib.crc32(body), 8);
    fs.writeFileSync(path.join(dir, 'identity'), Buffer.concat([head, body]));
    expect(() => new FileIdentityStore(nodeFileSystem, dir).load()).to.throw(
      IdentityFileError,
      /unknown stand-down reason/,
    );
  });
});
