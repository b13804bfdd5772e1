// A stalled disk for the availability script, loaded into a JournalNode process with `node --import`: while
// a file named after the node exists in QJ_DISK_STALL_DIR, the process's fdatasync calls are held (the write
// was issued, it does not finish, as on a disk that stalls) and they go on once the file is removed. A process
// started without QJ_DISK_STALL_DIR, or without --id, is left as it is.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** This module's file, for `node --import` (with QJ_DISK_STALL_DIR in the node's environment). */
export const DISK_STALL_PRELOAD = fileURLToPath(import.meta.url);

/** How often a held fdatasync looks whether the stall ended. */
const POLL_MS = 5;

/** The file whose presence stalls node `id`'s disk. */
export function stallFileOf(dir: string, id: string): string {
  return path.join(dir, `${id}.stall`);
}

function holdDatasyncWhile(flag: string): void {
  const original = fs.fdatasync;
  const held = (): boolean => fs.existsSync(flag);
  const patched = (fd: number, done: fs.NoParamCallback): void => {
    if (!held()) return original(fd, done);
    const poll = setInterval(() => {
      if (held()) return;
      clearInterval(poll);
      original(fd, done);
    }, POLL_MS);
  };
  fs.fdatasync = patched as typeof fs.fdatasync;
}

const dir = process.env.QJ_DISK_STALL_DIR;
const idAt = process.argv.indexOf('--id');
const id = idAt >= 0 ? process.argv[idAt + 1] : undefined;
if (dir && id) holdDatasyncWhile(stallFileOf(dir, id));
