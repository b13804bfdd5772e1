// The real file system tells a full disk from a failed sync: a write that runs out of space is a full disk the
// replica waits out (isDiskFull), while every sync failure is marked as the storage failing for good
// (storageFailure), so that not even an ENOSPC from fsync is ever retried and trusted (the fsync-gate rule).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { isDiskFull, isStorageFailure } from '../../../src/replica/env.js';
import { nodeFileSystem } from '../../../src/storage/node-file-system.js';

describe('the node file system, on a full disk and a failed sync', () => {
  it('a write that finds no space (/dev/full) is a full disk, not a storage failure', function () {
    if (!fs.existsSync('/dev/full')) this.skip();
    const file = nodeFileSystem.open('/dev/full', 'r+');
    try {
      let thrown: unknown = null;
      try {
        file.write(Buffer.alloc(16), 0, 16, 0);
      } catch (e) {
        thrown = e;
      }
      expect((thrown as NodeJS.ErrnoException).code).to.equal('ENOSPC');
      expect(isDiskFull(thrown)).to.equal(true);
      expect(isStorageFailure(thrown)).to.equal(false);
    } finally {
      file.close();
    }
  });

  it('every failed sync (fsync and fdatasync, sync and async) is marked a storage failure, never a full disk', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-nfs-'));
    try {
      const closedHandle = () => {
        const h = nodeFileSystem.open(path.join(dir, 'f'), 'w+');
        h.close();
        return h;
      };
      const thrownBy = (fn: () => void): unknown => {
        try {
          fn();
        } catch (e) {
          return e;
        }
        return null;
      };
      const failures: unknown[] = [
        thrownBy(() => closedHandle().datasyncSync()),
        thrownBy(() => closedHandle().syncSync()),
        await new Promise((r) => closedHandle().datasync(r)),
        await new Promise((r) => closedHandle().sync(r)),
      ];
      for (const e of failures) {
        expect(e, 'a sync on a closed descriptor fails').to.be.instanceOf(Error);
        expect(isStorageFailure(e)).to.equal(true);
        // Even when the code says the device is full: a sync's failure is never a full disk to wait out.
        Object.assign(e as Error, { code: 'ENOSPC' });
        expect(isDiskFull(e)).to.equal(false);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
