// The exclusive lock on a data directory (flock via fs-ext, held for the life of the process): a second
// journalnode on the same directory refuses to start instead of corrupting it.

import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from './file-modes.js';

const require = createRequire(import.meta.url);

export class DataDirLockedError extends Error {
  override name = 'DataDirLockedError';
}

export class DataDirLock {
  private constructor(
    private fd: number | null,
    readonly file: string,
  ) {}

  /** Takes the lock or throws DataDirLockedError naming the holder's pid when it can. */
  static acquire(dataDir: string): DataDirLock {
    const { flockSync } = require('fs-ext') as typeof import('fs-ext');
    fs.mkdirSync(dataDir, { recursive: true, mode: PRIVATE_DIR_MODE });
    const file = path.join(dataDir, 'LOCK');
    const fd = fs.openSync(file, 'a+', PRIVATE_FILE_MODE);
    try {
      flockSync(fd, 'exnb');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      let holder = '';
      try {
        holder = fs.readFileSync(file, 'utf8').trim();
      } catch {
        /* unreadable: no pid to report */
      }
      fs.closeSync(fd);
      if (code === 'EAGAIN' || code === 'EWOULDBLOCK') {
        throw new DataDirLockedError(
          `data directory ${dataDir} is in use by another journalnode process${holder ? ` (pid ${holder})` : ''}: refusing to start`,
        );
      }
      throw e;
    }
    fs.ftruncateSync(fd, 0);
    fs.writeSync(fd, `${process.pid}\n`, 0);
    return new DataDirLock(fd, file);
  }

  release(): void {
    if (this.fd === null) return;
    const { flockSync } = require('fs-ext') as typeof import('fs-ext');
    try {
      flockSync(this.fd, 'un');
    } finally {
      fs.closeSync(this.fd);
      this.fd = null;
    }
  }
}
