// The simulated state machine's files, shaped like a journal's so that snapshot transfer means what it means
// in the server: commands are appended to an in-progress segment file, which is finalized (renamed
// edits_<first>-<last>, immutable from then on) every segmentTxns commands; only the newest keepSegments
// finalized files are kept (a purge). A snapshot names each file with its size and CRC; a follower reuses
// the files it already has and fetches the rest in chunks, through the server's own fetch loop.

import zlib from 'node:zlib';
import { segmentNaming } from '../../src/segment-name.js';

const naming = segmentNaming('edits', 19);

/** One file as a snapshot holds it: immutable bytes. */
export interface FileImage {
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly crc32: number;
}

interface LiveFile {
  name: string;
  first: number;
  /** An in-progress file's buffer is longer than sizeBytes; bytes below sizeBytes never change. */
  buf: Uint8Array;
  sizeBytes: number;
  inProgress: boolean;
  /** Finalized files only. */
  crc32?: number;
}

export interface FileLayout {
  /** Commands per finalized segment. */
  segmentTxns: number;
  /** Finalized segments kept. */
  keepSegments: number;
}

export class SimFiles {
  private files: LiveFile[] = [];
  private lastTxid = 0;

  constructor(private readonly layout: FileLayout) {}

  /** The files as a snapshot image holds them. */
  static restore(layout: FileLayout, images: readonly FileImage[], lastTxid: number): SimFiles {
    const f = new SimFiles(layout);
    f.lastTxid = lastTxid;
    for (const im of images) {
      const parsed = naming.parse(im.name);
      if (!parsed) throw new Error(`sim files: bad file name ${im.name}`);
      const inProgress = parsed.last === null;
      const buf = inProgress ? Uint8Array.from(im.bytes) : im.bytes;
      // Only a finalized file's CRC stays true: an in-progress one grows.
      f.files.push({
        name: im.name,
        first: parsed.first,
        buf,
        sizeBytes: im.bytes.byteLength,
        inProgress,
        ...(inProgress ? {} : { crc32: im.crc32 }),
      });
    }
    return f;
  }

  append(txid: number, data: Uint8Array): void {
    this.lastTxid = txid;
    let cur = this.files[this.files.length - 1];
    if (!cur?.inProgress) {
      cur = { name: naming.inProgress(txid), first: txid, buf: new Uint8Array(64), sizeBytes: 0, inProgress: true };
      this.files.push(cur);
    }
    const need = cur.sizeBytes + data.byteLength + 1;
    if (need > cur.buf.byteLength) {
      // A new buffer: views handed out of the old one keep their bytes.
      const grown = new Uint8Array(Math.max(need, cur.buf.byteLength * 2));
      grown.set(cur.buf.subarray(0, cur.sizeBytes));
      cur.buf = grown;
    }
    cur.buf.set(data, cur.sizeBytes);
    cur.buf[cur.sizeBytes + data.byteLength] = 0x0a;
    cur.sizeBytes = need;
    if (txid - cur.first + 1 < this.layout.segmentTxns) return;
    const bytes = cur.buf.slice(0, cur.sizeBytes);
    this.files[this.files.length - 1] = {
      name: naming.closed(cur.first, txid),
      first: cur.first,
      buf: bytes,
      sizeBytes: bytes.byteLength,
      inProgress: false,
      crc32: zlib.crc32(bytes),
    };
    const finalized = this.files.length;
    if (finalized > this.layout.keepSegments) this.files.splice(0, finalized - this.layout.keepSegments);
  }

  /** Immutable views of every file (an in-progress file's prefix: its later bytes are not part of it). */
  capture(): FileImage[] {
    return this.files.map((f) => {
      const bytes = f.buf.subarray(0, f.sizeBytes);
      return { name: f.name, bytes, crc32: f.crc32 ?? zlib.crc32(bytes) };
    });
  }

  /** The local copy of `name` when its first sizeBytes bytes have this CRC (what a fetch may reuse). */
  reusable(name: string, sizeBytes: number, crc32: number): Uint8Array | null {
    const f = this.files.find((x) => x.name === name);
    if (!f || f.sizeBytes < sizeBytes) return null;
    const prefix = f.buf.subarray(0, sizeBytes);
    return zlib.crc32(prefix) === crc32 ? prefix : null;
  }

  /** Why these files cannot be the state after `lastTxid` commands, or null: contiguous txids ending there. */
  static problem(images: readonly FileImage[], lastTxid: number): string | null {
    let expectFirst: number | null = null;
    for (let i = 0; i < images.length; i++) {
      const p = naming.parse(images[i]!.name);
      if (!p) return `bad file name ${images[i]!.name}`;
      if (expectFirst !== null && p.first !== expectFirst) return `txid gap before ${images[i]!.name}`;
      if (p.last === null && i !== images.length - 1) return `in-progress file ${images[i]!.name} is not the last`;
      expectFirst = (p.last ?? lastTxid) + 1;
    }
    if (expectFirst !== null && expectFirst !== lastTxid + 1)
      return `files end at txid ${expectFirst - 1}, the state at ${lastTxid}`;
    return null;
  }

  /** One number for every file's name and bytes: replicas at the same applied index must agree. */
  digest(): number {
    let c = 0;
    for (const im of this.capture()) {
      c = zlib.crc32(im.name, c);
      c = zlib.crc32(im.bytes, c);
    }
    return c >>> 0;
  }

  get txid(): number {
    return this.lastTxid;
  }
}
