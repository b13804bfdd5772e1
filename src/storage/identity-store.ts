// A node's record of its own standing (<data>/raft/identity): whether it stood down for good and why, the
// floor a restored disk must reach again, and a storage binding formation found elsewhere (NodeIdentity in
// proto/raft.proto). A file of its own beside raft_meta, which the log rewrites with every term and vote: the
// two never race. Replaced crash-atomically (temporary file, fsync, rename, fsync of the directory); a damaged
// file stops the node, since forgetting a stand-down would let a reset-away node vote again.

import path from 'node:path';
import { qjournal } from '../gen/proto.js';
import { EMPTY_IDENTITY } from '../replica/env.js';
import type { IdentityRecord, IdentityStore } from '../replica/env.js';
import type { FileSystem } from './file-system.js';
import { frameRecord, replaceFileSync, unframeRecord } from './files.js';

const MAGIC = Buffer.from('QJID', 'latin1');
const FILE = 'identity';

export class IdentityFileError extends Error {
  override name = 'IdentityFileError';
}

export function encodeIdentity(r: IdentityRecord): Buffer {
  const body = qjournal.raft.NodeIdentity.encode({
    standDown: r.standDown,
    floorIndex: r.floor?.index ?? 0,
    floorTerm: r.floor?.term ?? 0,
    boundElsewhere: r.boundElsewhere,
  }).finish();
  return frameRecord(MAGIC, body);
}

export function decodeIdentity(buf: Buffer, file: string): IdentityRecord {
  const body = unframeRecord(buf, MAGIC);
  if (body === 'magic') throw new IdentityFileError(`${file}: not an identity record`);
  if (typeof body === 'string')
    throw new IdentityFileError(
      `${file}: damaged (${body}): it may record that this node stood down; repair the node from its peers`,
    );
  const m = qjournal.raft.NodeIdentity.decode(body);
  const sd = m.standDown;
  const reason = sd?.reason === 'reset-away' ? sd.reason : null;
  if (sd && !reason) throw new IdentityFileError(`${file}: unknown stand-down reason ${JSON.stringify(sd.reason)}`);
  return {
    standDown:
      sd && reason
        ? {
            reason,
            generation: Number(sd.generation),
            by: sd.by ?? '',
            atMs: Number(sd.atMs),
            detail: sd.detail ?? '',
          }
        : null,
    floor: Number(m.floorIndex) > 0 ? { index: Number(m.floorIndex), term: Number(m.floorTerm) } : null,
    boundElsewhere: m.boundElsewhere,
  };
}

export class FileIdentityStore implements IdentityStore {
  constructor(
    private readonly fileSystem: FileSystem,
    readonly dir: string,
  ) {}

  get file(): string {
    return path.join(this.dir, FILE);
  }

  /** The record as last saved; the empty one when none was. */
  load(): IdentityRecord {
    this.fileSystem.unlink(`${this.file}.tmp`);
    if (!this.fileSystem.stat(this.file)) return { ...EMPTY_IDENTITY };
    return decodeIdentity(this.fileSystem.readFile(this.file), this.file);
  }

  saveSync(record: IdentityRecord): void {
    replaceFileSync(this.fileSystem, this.file, encodeIdentity(record));
  }

  /**
   * Rare (a stand-down, a floor set or cleared) and small: written synchronously, reported once the file
   * system's next callback arrives (never during the call), so the simulator's clock orders it as the node's.
   */
  save(record: IdentityRecord, done: (err: Error | null) => void): void {
    let err: Error | null = null;
    try {
      this.saveSync(record);
    } catch (e) {
      err = e as Error;
    }
    this.fileSystem.fsyncPath(this.dir, (e) => done(err ?? e));
  }
}
