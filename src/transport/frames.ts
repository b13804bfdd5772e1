// The framing of a peer stream: a long-lived HTTP request body carrying length-prefixed frames,
// [u32 BE length][length bytes], each frame one MessageBatch; a frame of length 0 is a keepalive. The reader
// checks every length against its bound before it keeps a byte of the frame, and holds no more than the
// bytes that actually arrived (a header claiming 4 GiB allocates nothing).

export const FRAME_HEADER_BYTES = 4;

/** A keepalive: an empty frame. */
export const KEEPALIVE_FRAME: Uint8Array = new Uint8Array(FRAME_HEADER_BYTES);

const EMPTY = Buffer.alloc(0);

/** A copy in a buffer of its own (not a slice of node's shared pool, which would keep 8 KiB alive). */
function copyOf(chunk: Buffer, off: number, n: number): Buffer {
  const b = Buffer.allocUnsafeSlow(n);
  chunk.copy(b, 0, off, off + n);
  return b;
}

export class FrameTooLargeError extends Error {
  override name = 'FrameTooLargeError';
  constructor(
    readonly frameBytes: number,
    readonly maxFrameBytes: number,
  ) {
    super(`a frame of ${frameBytes} bytes is over the limit of ${maxFrameBytes}`);
  }
}

/**
 * Splits a byte stream into frames. A frame spread over chunks is joined once it is complete; one that arrived
 * within a chunk is handed on as a view of it when it is most of the chunk, else copied out: what is decoded
 * from a frame (entry data) is kept for a while, and must not keep a whole network read alive with it.
 */
export class FrameReader {
  private readonly header = Buffer.alloc(FRAME_HEADER_BYTES);
  private headerHave = 0;
  /** The length of the frame being read, or -1 between frames. */
  private need = -1;
  private parts: Buffer[] = [];
  private have = 0;

  constructor(private readonly maxFrameBytes: number) {}

  /** True when a frame (or its header) has started and not finished: a stream that ends here was cut. */
  get midFrame(): boolean {
    return this.headerHave > 0 || this.need >= 0;
  }

  /** Feeds a chunk: calls onFrame for each whole frame, in order. Throws FrameTooLargeError past the bound. */
  push(chunk: Buffer, onFrame: (frame: Buffer) => void): void {
    let off = 0;
    while (off < chunk.byteLength) {
      if (this.need < 0) {
        if (this.headerHave === 0 && chunk.byteLength - off >= FRAME_HEADER_BYTES) {
          this.need = chunk.readUInt32BE(off);
          off += FRAME_HEADER_BYTES;
        } else {
          const n = Math.min(FRAME_HEADER_BYTES - this.headerHave, chunk.byteLength - off);
          chunk.copy(this.header, this.headerHave, off, off + n);
          this.headerHave += n;
          off += n;
          if (this.headerHave < FRAME_HEADER_BYTES) return;
          this.need = this.header.readUInt32BE(0);
          this.headerHave = 0;
        }
        if (this.need > this.maxFrameBytes) throw new FrameTooLargeError(this.need, this.maxFrameBytes);
        if (this.need === 0) {
          this.need = -1;
          onFrame(EMPTY);
          continue;
        }
      }
      const take = Math.min(this.need - this.have, chunk.byteLength - off);
      if (this.have === 0 && take === this.need) {
        onFrame(2 * take >= chunk.byteLength ? chunk.subarray(off, off + take) : copyOf(chunk, off, take));
      } else {
        this.parts.push(chunk.subarray(off, off + take));
        this.have += take;
        if (this.have < this.need) return;
        const frame = Buffer.concat(this.parts, this.need);
        this.parts = [];
        this.have = 0;
        onFrame(frame);
      }
      off += take;
      this.need = -1;
    }
  }
}
