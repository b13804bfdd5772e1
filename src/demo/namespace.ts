// A toy NameNode namespace for the demo: directories and files held in memory, changed only by edits
// (mkdir, create, rename, delete), each of which the active master journals before it acknowledges.
// The standby applies the same edits; identical edit histories give identical digests.

import crypto from 'node:crypto';

export type NsOp =
  | { op: 'mkdir'; path: string }
  | { op: 'create'; path: string; size: number }
  | { op: 'rename'; src: string; dst: string }
  | { op: 'delete'; path: string };

export function encodeOp(op: NsOp): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(op));
}

export function decodeOp(b: Uint8Array): NsOp {
  return JSON.parse(new TextDecoder().decode(b)) as NsOp;
}

const parent = (p: string) => p.slice(0, Math.max(1, p.lastIndexOf('/')));

/** How large randomOp lets the namespace grow. */
export interface NamespaceLimits {
  maxFiles: number;
  maxDirs: number;
}

const UNLIMITED: NamespaceLimits = { maxFiles: Infinity, maxDirs: Infinity };

export class Namespace {
  readonly dirs = new Set<string>(['/']);
  readonly files = new Map<string, number>();
  lastTxId = 0;

  /** Whether the op applies to the current namespace (the master checks before journaling it). */
  valid(options: NsOp): boolean {
    switch (options.op) {
      case 'mkdir':
        return !this.dirs.has(options.path) && !this.files.has(options.path) && this.dirs.has(parent(options.path));
      case 'create':
        return !this.dirs.has(options.path) && !this.files.has(options.path) && this.dirs.has(parent(options.path));
      case 'rename':
        return (
          this.files.has(options.src) &&
          !this.files.has(options.dst) &&
          !this.dirs.has(options.dst) &&
          this.dirs.has(parent(options.dst))
        );
      case 'delete':
        return this.files.has(options.path);
    }
  }

  apply(options: NsOp, txid: number): void {
    if (txid !== this.lastTxId + 1) throw new Error(`namespace: edit ${txid} after ${this.lastTxId}`);
    if (!this.valid(options)) throw new Error(`namespace: edit ${txid} does not apply: ${JSON.stringify(options)}`);
    switch (options.op) {
      case 'mkdir':
        this.dirs.add(options.path);
        break;
      case 'create':
        this.files.set(options.path, options.size);
        break;
      case 'rename':
        this.files.set(options.dst, this.files.get(options.src)!);
        this.files.delete(options.src);
        break;
      case 'delete':
        this.files.delete(options.path);
        break;
    }
    this.lastTxId = txid;
  }

  digest(): string {
    const h = crypto.createHash('sha256');
    for (const d of [...this.dirs].sort()) h.update(`d ${d}\n`);
    for (const [f, n] of [...this.files].sort((a, b) => (a[0] < b[0] ? -1 : 1))) h.update(`f ${f} ${n}\n`);
    return h.digest('hex').slice(0, 16);
  }

  /**
   * A random valid op, like a busy client's: mostly creates, some mkdirs, renames and deletes. Past
   * `limits` the namespace stops growing: no mkdir past maxDirs, and past maxFiles deletes take the place of
   * creates and renames (a demo left running for days keeps a flat memory).
   */
  randomOp(rand: () => number, seq: number, limits: NamespaceLimits = UNLIMITED): NsOp {
    const dirs = [...this.dirs];
    const files = [...this.files.keys()];
    const full = files.length >= limits.maxFiles;
    const r = rand();
    if (r < 0.1 && dirs.length < limits.maxDirs)
      return { op: 'mkdir', path: `${dirs[Math.floor(rand() * dirs.length)]!.replace(/\/$/, '')}/d${seq}` };
    if ((r < 0.75 && !full) || files.length === 0)
      return {
        op: 'create',
        path: `${dirs[Math.floor(rand() * dirs.length)]!.replace(/\/$/, '')}/f${seq}`,
        size: Math.floor(rand() * (1 << 20)),
      };
    const f = files[Math.floor(rand() * files.length)]!;
    if (r < 0.9 && !full)
      return { op: 'rename', src: f, dst: `${dirs[Math.floor(rand() * dirs.length)]!.replace(/\/$/, '')}/r${seq}` };
    return { op: 'delete', path: f };
  }
}
