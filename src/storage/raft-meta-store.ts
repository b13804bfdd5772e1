// The durable Raft metadata of a node (<data>/raft/raft_meta): term, vote and the commit hint, plus the
// storage id, cluster id and node id fixed at format (and, while a new cluster forms, that it forms and the
// configuration it formed with). Written crash-atomically: a temporary file, fsync,
// rename over the old one, fsync of the directory. A damaged file is an error, never a silent reset: that
// would forget a vote.

import path from 'node:path';
import zlib from 'node:zlib';
import { qjournal } from '../gen/proto.js';
import type { HardState, Peer } from '../raft/types.js';
import type { FileHandle, FileSystem } from './file-system.js';
import { frameRecord, mkdirDurableSync, replaceFileSync, writeAllSync } from './files.js';

const MAGIC = Buffer.from('QJRM', 'latin1');
const FILE = 'raft_meta';

export interface RaftMetaRecord {
  hardState: HardState;
  storageId: string;
  clusterId: string;
  nodeId: string;
  /** Started with --peers on an empty directory: the cluster is not formed yet (no bootstrap snapshot). */
  forming?: boolean;
  /** The configuration the cluster was formed with, with each member's storage id (empty: joined, or older). */
  initialPeers?: Peer[];
}

export class MetaFileError extends Error {
  override name = 'MetaFileError';
}

function encode(m: RaftMetaRecord): Buffer {
  const body = Buffer.from(
    qjournal.raft.RaftMeta.encode({
      hardState: m.hardState,
      storageId: m.storageId,
      clusterId: m.clusterId,
      nodeId: m.nodeId,
      forming: m.forming ?? false,
      initialPeers: m.initialPeers ?? [],
    }).finish(),
  );
  return frameRecord(MAGIC, body);
}

function decode(buf: Buffer, file: string): RaftMetaRecord {
  if (buf.byteLength < 12 || !buf.subarray(0, 4).equals(MAGIC))
    throw new MetaFileError(`${file}: not a Raft metadata file`);
  const len = buf.readUInt32BE(4);
  if (12 + len !== buf.byteLength)
    throw new MetaFileError(`${file}: length ${len} does not match the file (${buf.byteLength - 12} bytes)`);
  const body = buf.subarray(12);
  if (zlib.crc32(body) !== buf.readUInt32BE(8))
    throw new MetaFileError(
      `${file}: CRC mismatch: the Raft metadata (term and vote) is damaged; repair this node from its peers`,
    );
  const m = qjournal.raft.RaftMeta.decode(body);
  const hs = m.hardState;
  return {
    hardState: { term: Number(hs?.term ?? 0), vote: hs?.vote ?? '', commit: Number(hs?.commit ?? 0) },
    storageId: m.storageId,
    clusterId: m.clusterId,
    nodeId: m.nodeId,
    forming: m.forming,
    initialPeers: m.initialPeers.map((p) => ({
      id: p.id ?? '',
      address: p.address ?? '',
      storageId: p.storageId ?? '',
    })),
  };
}

export class MetaStore {
  private current: RaftMetaRecord;

  private constructor(
    private readonly fileSystem: FileSystem,
    readonly dir: string,
    meta: RaftMetaRecord,
  ) {
    this.current = meta;
  }

  get file(): string {
    return path.join(this.dir, FILE);
  }

  /** The metadata of a formatted directory, or null when there is none yet. */
  static open(fileSystem: FileSystem, dir: string): MetaStore | null {
    const file = path.join(dir, FILE);
    fileSystem.unlink(`${file}.tmp`); // an interrupted write never replaced the real file
    if (!fileSystem.stat(file)) return null;
    return new MetaStore(fileSystem, dir, decode(fileSystem.readFile(file), file));
  }

  /** First format of a directory (synchronous, durable). */
  static create(fileSystem: FileSystem, dir: string, meta: RaftMetaRecord): MetaStore {
    mkdirDurableSync(fileSystem, dir);
    const s = new MetaStore(fileSystem, dir, meta);
    s.saveSync(meta);
    return s;
  }

  get meta(): RaftMetaRecord {
    return this.current;
  }

  saveSync(meta: RaftMetaRecord): void {
    replaceFileSync(this.fileSystem, this.file, encode(meta));
    this.current = meta;
  }

  /** Durable write without blocking the event loop; `meta` is current once done reports success. */
  save(meta: RaftMetaRecord, done: (err: Error | null) => void): void {
    const tmp = `${this.file}.tmp`;
    const bytes = encode(meta);
    let file: FileHandle;
    try {
      file = this.fileSystem.open(tmp, 'w+');
    } catch (e) {
      return done(e as Error);
    }
    try {
      // All of it or an error: a short write (a full disk) must never be renamed over the good file.
      writeAllSync(file, bytes, 0);
    } catch (e) {
      file.close();
      return done(e as Error);
    }
    file.sync((e1) => {
      file.close();
      if (e1) return done(e1);
      try {
        this.fileSystem.rename(tmp, this.file);
      } catch (e2) {
        return done(e2 as Error);
      }
      this.fileSystem.fsyncPath(this.dir, (e3) => {
        if (!e3) this.current = meta;
        done(e3);
      });
    });
  }
}
