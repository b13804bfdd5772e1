// What a replica whose disk filled shows and reads: its status (the free space at the last probe, where,
// the headroom it waits for), the words /status, /healthz and refusals use for it, and the probe of the free
// space. The phase itself, entered and left, is the replica's (replica.ts).

import type { QjmError } from '../errors.js';
import type { Logger } from '../logger.js';
import { qjmError as err } from './client-waits.js';
import type { DiskSpace } from './env.js';

/** A node waiting for space on a disk that filled (the disk-full phase). */
export interface DiskFullStatus {
  /** Bytes free at the last probe (null when it could not be read). */
  freeBytes: number | null;
  /** Where (the data directory). */
  path: string;
  /** Free bytes it waits for (the diskFullHeadroomBytes setting). */
  headroomBytes: number;
  sinceMs: number;
  /** The write that failed. */
  error: string;
}

/** "N bytes free at <path>", the words /status, /healthz and the refusals use for a full disk. */
export function diskFullText(d: Pick<DiskFullStatus, 'freeBytes' | 'path'>): string {
  const free = d.freeBytes === null ? 'unknown' : String(d.freeBytes);
  return `${free} bytes free at ${d.path || 'the data directory'}`;
}

/** What a client is told by a node whose disk is full: busy (retry, or go to another node), and why. */
export function diskFullRefusal(d: DiskFullStatus, leader: { leaderId?: string; leaderAddress?: string }): QjmError {
  return err(
    'BUSY',
    `this node's disk is full (${diskFullText(d)}): it takes no writes until ${d.headroomBytes} bytes are free`,
    leader,
  );
}

/** The free space now; null when it cannot be read (the next probe tries again); without a DiskSpace, plenty. */
export function freeBytesAt(space: DiskSpace | undefined, logger: Logger): number | null {
  if (!space) return Number.MAX_SAFE_INTEGER;
  try {
    return space.freeBytes();
  } catch (e) {
    logger.warn({ error: (e as Error).message, path: space.path }, 'could not read the free space');
    return null;
  }
}
