// `qjm dump FILE`: one segment file read offline, as a stream of frames a chunk at a time (a file of any size
// costs one chunk of memory, and the largest record), each CRC and txid checked. Only a regular file is read:
// a FIFO, a device (/dev/zero) or a directory is refused before a byte of it is, so dump can neither hang nor
// read without end.

import fs from 'node:fs';
import type { CommandSpec } from '../command-line.js';
import { decodeSegmentHeader, readFrame, RECORD_HEADER_BYTES, SEGMENT_HEADER_BYTES } from '../edit-records.js';
import type { RecordView } from '../edit-records.js';
import { SETTINGS } from '../settings.js';
import { escapeControls } from '../terminal-text.js';

type Out = (line: string) => void;

export const DUMP_FORMATS = ['text', 'hex', 'len'] as const;

export const DUMP = {
  name: 'qjm dump',
  summary: 'Read a segment file offline (like hdfs oev): header, then every record with its CRC checked.',
  positionals: [{ name: 'FILE', description: 'the segment file (edits_... in a journal directory)' }],
  flags: {
    format: { type: 'string', choices: DUMP_FORMATS, description: 'how to print each record (default text)' },
    json: { type: 'boolean', description: 'print JSON, for scripts' },
  },
} as const satisfies CommandSpec;

/** Bytes read from the file at a time; a record larger than this grows the buffer to hold it. */
const CHUNK_BYTES = 1 << 20;
/** No node accepts a larger record: a frame claiming more is damage, not a record to buffer. */
const MAX_RECORD_BYTES = SETTINGS.maxRecordBytes.max;

function describeType(st: fs.Stats): string {
  if (st.isFIFO()) return 'a FIFO';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  if (st.isDirectory()) return 'a directory';
  if (st.isSocket()) return 'a socket';
  return 'not a regular file';
}

/**
 * Opens `file` for reading only if it is a regular file. O_NONBLOCK: opening a FIFO must not wait for a
 * writer; the type is then checked on the descriptor itself, so a file swapped after a look at its name
 * changes nothing. Returns the descriptor and size, or why not.
 */
export function openRegularFile(file: string): { fd: number; sizeBytes: number } | { problem: string } {
  let fd: number;
  try {
    fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK);
  } catch (e) {
    return { problem: (e as Error).message };
  }
  const st = fs.fstatSync(fd);
  if (!st.isFile()) {
    fs.closeSync(fd);
    return { problem: `${describeType(st)}, not a regular file: give a segment file (edits_...)` };
  }
  return { fd, sizeBytes: st.size };
}

/** A file's bytes as a window that slides forward: [start, end) of `buf` holds the file from `fileOffset`. */
class Window {
  buf = Buffer.allocUnsafe(CHUNK_BYTES);
  start = 0;
  end = 0;
  /** The file offset of buf[start]. */
  fileOffset = 0;
  private readPos = 0;

  constructor(
    private readonly fd: number,
    private readonly sizeBytes: number,
  ) {}

  get atEof(): boolean {
    return this.readPos >= this.sizeBytes;
  }

  /** Reads more: at least `need` bytes after start are wanted (the buffer grows to hold them). */
  fill(need: number): void {
    if (this.start > 0) {
      this.buf.copy(this.buf, 0, this.start, this.end);
      this.end -= this.start;
      this.start = 0;
    }
    if (need > this.buf.byteLength) {
      const bigger = Buffer.allocUnsafe(need);
      this.buf.copy(bigger, 0, 0, this.end);
      this.buf = bigger;
    }
    while (this.end < this.buf.byteLength && this.readPos < this.sizeBytes) {
      const n = fs.readSync(this.fd, this.buf, this.end, this.buf.byteLength - this.end, this.readPos);
      if (n === 0) {
        this.readPos = this.sizeBytes; // the file shrank under us: what is here is all there is
        break;
      }
      this.end += n;
      this.readPos += n;
    }
  }

  consume(n: number): void {
    this.start += n;
    this.fileOffset += n;
  }
}

type FrameStep =
  | { kind: 'record'; record: RecordView; offset: number }
  | { kind: 'end' }
  | { kind: 'damage'; line: string };

/** The next frame of the file, reading as needed. */
function nextFrame(w: Window): FrameStep {
  for (;;) {
    if (w.start === w.end && w.atEof) return { kind: 'end' };
    const view = w.buf.subarray(0, w.end);
    const fr = readFrame(view, w.start, MAX_RECORD_BYTES);
    if (fr.ok) {
      const offset = w.fileOffset;
      w.consume(fr.record.next - w.start);
      return { kind: 'record', record: fr.record, offset };
    }
    if (!fr.truncated || w.atEof)
      return {
        kind: 'damage',
        line: `${fr.truncated ? 'torn frame' : 'corrupt frame'} at byte offset ${w.fileOffset}: ${fr.reason}`,
      };
    const have = w.end - w.start;
    const need = have >= RECORD_HEADER_BYTES ? RECORD_HEADER_BYTES + view.readUInt32BE(w.start + 12) : CHUNK_BYTES;
    w.fill(Math.max(need, CHUNK_BYTES));
  }
}

export interface DumpOutput {
  out: Out;
  err: Out;
}

/** A record as a person reads it (`qjm dump`, `qjm tail`): text, hex, or nothing (--format len). */
export function renderRecord(data: Uint8Array, format: string): string {
  if (format === 'hex') return Buffer.from(data).toString('hex');
  if (format === 'len') return '';
  // As a JSON string's contents but for the quotes, which stay as they are (records are often paths and JSON):
  // C0 controls as \n or \uXXXX and backslashes doubled, so the text reads back unambiguously; then DEL, C1
  // and the bidirectional controls, which JSON leaves raw: no byte of a record reaches the terminal as a
  // control. In JSON's escaped text every quote is preceded by the one backslash that escapes it.
  const json = JSON.stringify(Buffer.from(data).toString('utf8')).slice(1, -1);
  return escapeControls(json.replace(/\\"/g, '"'));
}

/** Offline reader of one segment file: header, then each frame with its CRC checked. Returns the exit code. */
export function dumpSegment(file: string, format: string, io: DumpOutput, json: boolean): number {
  const opened = openRegularFile(file);
  if ('problem' in opened) {
    io.err(`qjm dump: ${escapeControls(file)}: ${opened.problem}`);
    return 2;
  }
  const w = new Window(opened.fd, opened.sizeBytes);
  try {
    w.fill(CHUNK_BYTES);
    const h = decodeSegmentHeader(w.buf.subarray(0, w.end));
    if (typeof h === 'string') {
      io.err(`qjm dump: ${file}: ${h}`);
      return 5;
    }
    w.consume(SEGMENT_HEADER_BYTES);
    if (!json)
      io.out(
        `# ${escapeControls(file)}: segment format v${h.version}, layout version ${h.layoutVersion}, first txid ${h.firstTxId}`,
      );
    return dumpFrames(w, h.firstTxId, { file, format, json }, io);
  } finally {
    fs.closeSync(opened.fd);
  }
}

function dumpFrames(
  w: Window,
  firstTxId: number,
  o: { file: string; format: string; json: boolean },
  io: DumpOutput,
): number {
  let count = 0;
  let expect = firstTxId;
  let bytes = 0;
  for (;;) {
    const step = nextFrame(w);
    if (step.kind === 'end') break;
    if (step.kind === 'damage') {
      io.err(`qjm dump: ${o.file}: ${step.line}`);
      if (!o.json) io.out(`# ${count} records read before the damage`);
      return 5;
    }
    const r = step.record;
    const seq = r.txid === expect ? 'ok' : `EXPECTED ${expect}`;
    if (o.json)
      io.out(
        JSON.stringify({
          txid: r.txid,
          length: r.data.byteLength,
          crc: 'ok',
          sequence: seq,
          offset: step.offset,
          record: Buffer.from(r.data).toString('base64'),
        }),
      );
    else
      io.out(
        `${r.txid}\t${r.data.byteLength}\tcrc ok\t${seq === 'ok' ? '' : `${seq}\t`}${renderRecord(r.data, o.format)}`,
      );
    if (r.txid !== expect) {
      io.err(`qjm dump: ${o.file}: txid ${r.txid} at byte offset ${step.offset}, expected ${expect}`);
      return 5;
    }
    expect++;
    count++;
    bytes += r.data.byteLength;
  }
  if (!o.json) io.out(`# ${count} records, txids ${firstTxId}..${expect - 1}, ${bytes} bytes of edits, every CRC ok`);
  return 0;
}
