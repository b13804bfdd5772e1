// The durable Raft metadata of a node (<data>/raft/raft_meta): term, vote and the commit hint, plus the
// storage id, cluster id and node id fixed at format (and, while a new cluster forms, that it forms and the
// configuration it formed with). Written crash-atomically: a temporary file, fsync,
// rename over the old one, fsync of the directory. A damaged file is an error, never a silent reset: that
// would forget a vote.

import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { qjournal } from '../gen/proto.js';
import type { HardState, Peer } from '../raft/types.js';
import { frameRecord, fsyncPath, replaceFileSync } from './files.js';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '../file-modes.js';

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
    readonly dir: string,
    meta: RaftMetaRecord,
  ) {
    this.current = meta;
  }

  get file(): string {
    return path.join(this.dir, FILE);
  }

  /** The metadata of a formatted directory, or null when there is none yet. */
  static open(dir: string): MetaStore | null {
    const file = path.join(dir, FILE);
    fs.rmSync(`${file}.tmp`, { force: true }); // an interrupted write never replaced the real file
    if (!fs.existsSync(file)) return null;
    return new MetaStore(dir, decode(fs.readFileSync(file), file));
  }

  /** First format of a directory (synchronous, durable). */
  static create(dir: string, meta: RaftMetaRecord): MetaStore {
    fs.mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
    const s = new MetaStore(dir, meta);
    s.saveSync(meta);
    return s;
  }

  get meta(): RaftMetaRecord {
    return this.current;
  }

  saveSync(meta: RaftMetaRecord): void {
    replaceFileSync(this.file, encode(meta));
    this.current = meta;
  }

  /** Durable write without blocking the event loop; `meta` is current once done reports success. */
  save(meta: RaftMetaRecord, done: (err: Error | null) => void): void {
    const tmp = `${this.file}.tmp`;
    const bytes = encode(meta);
    fs.open(tmp, 'w', PRIVATE_FILE_MODE, (err, fd) => {
      if (err) return done(err);
      fs.write(fd, bytes, 0, bytes.byteLength, 0, (e1, written) => {
        // A short write (a full disk) must never be renamed over the good file.
        if (!e1 && written !== bytes.byteLength)
          e1 = new Error(`short write of ${tmp}: ${written} of ${bytes.byteLength} bytes (is the disk full?)`);
        if (e1) return fs.close(fd, () => done(e1));
        fs.fsync(fd, (e2) => {
          fs.close(fd, (e3) => {
            if (e2 || e3) return done(e2 ?? e3);
            fs.rename(tmp, this.file, (e4) => {
              if (e4) return done(e4);
              fsyncPath(this.dir, (e5) => {
                if (!e5) this.current = meta;
                done(e5);
              });
            });
          });
        });
      });
    });
  }
}
