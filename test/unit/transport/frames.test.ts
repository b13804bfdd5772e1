// The framing of peer streams: frames cut anywhere by the network come out whole and in order, keepalives
// are empty frames, a length past the bound is refused before a byte of the frame is kept, and a stream cut
// mid-frame says so.

import { expect } from 'chai';
import { FRAME_HEADER_BYTES, FrameReader, FrameTooLargeError, KEEPALIVE_FRAME } from '../../../src/transport/frames.js';

function frame(payload: Buffer): Buffer {
  const h = Buffer.alloc(FRAME_HEADER_BYTES);
  h.writeUInt32BE(payload.byteLength);
  return Buffer.concat([h, payload]);
}

/** Feeds `bytes` cut at the given offsets; the frames that came out, as strings. */
function read(bytes: Buffer, cuts: number[], max = 1 << 20): { frames: string[]; reader: FrameReader } {
  const reader = new FrameReader(max);
  const frames: string[] = [];
  let from = 0;
  for (const to of [...cuts, bytes.byteLength]) {
    reader.push(bytes.subarray(from, to), (f) => frames.push(f.toString()));
    from = to;
  }
  return { frames, reader };
}

describe('FrameReader', () => {
  const stream = Buffer.concat([
    frame(Buffer.from('one')),
    Buffer.from(KEEPALIVE_FRAME),
    frame(Buffer.from('second frame')),
    Buffer.from(KEEPALIVE_FRAME),
  ]);

  it('frames in one chunk, keepalives as empty frames', () => {
    const { frames, reader } = read(stream, []);
    expect(frames).to.deep.equal(['one', '', 'second frame', '']);
    expect(reader.midFrame).to.equal(false);
  });

  it('the same frames however the chunks are cut (every single cut, and every byte alone)', () => {
    for (let cut = 1; cut < stream.byteLength; cut++)
      expect(read(stream, [cut]).frames, `cut at ${cut}`).to.deep.equal(['one', '', 'second frame', '']);
    const everyByte = Array.from({ length: stream.byteLength - 1 }, (_, i) => i + 1);
    expect(read(stream, everyByte).frames).to.deep.equal(['one', '', 'second frame', '']);
  });

  it('a truncated stream: what arrived of the last frame is held back, and midFrame says so', () => {
    for (const end of [2, FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + 2]) {
      const { frames, reader } = read(
        Buffer.concat([frame(Buffer.from('one')), frame(Buffer.from('cut off')).subarray(0, end)]),
        [],
      );
      expect(frames, `ends after ${end} bytes of the second frame`).to.deep.equal(['one']);
      expect(reader.midFrame).to.equal(true);
    }
  });

  it('a length over the bound is refused as soon as the header is complete', () => {
    const header = Buffer.alloc(FRAME_HEADER_BYTES);
    header.writeUInt32BE(1001);
    const reader = new FrameReader(1000);
    expect(() => reader.push(Buffer.concat([header, Buffer.alloc(10)]), () => expect.fail('no frame'))).to.throw(
      FrameTooLargeError,
      /1001 bytes is over the limit of 1000/,
    );
    expect(
      () => new FrameReader(1000).push(frame(Buffer.alloc(1000)), () => {}),
      'exactly the bound is fine',
    ).to.not.throw();
  });

  it('a frame claiming 4 GiB allocates nothing: refused at its header', () => {
    const header = Buffer.from([0xff, 0xff, 0xff, 0xff]);
    const reader = new FrameReader(17 << 20);
    const before = process.memoryUsage().arrayBuffers;
    expect(() => reader.push(header.subarray(0, 3), () => {})).to.not.throw();
    expect(() => reader.push(header.subarray(3), () => {})).to.throw(FrameTooLargeError, /4294967295 bytes/);
    expect(process.memoryUsage().arrayBuffers - before, 'bytes allocated').to.be.below(1 << 20);
  });

  it('a small frame in a large read is copied out (it must not keep the read alive); a frame that is most of its read is a view', () => {
    const small = frame(Buffer.from('tiny'));
    const chunk = Buffer.concat([small, Buffer.from(KEEPALIVE_FRAME), frame(Buffer.alloc(200, 1))]);
    const got: Buffer[] = [];
    new FrameReader(1 << 20).push(chunk, (f) => got.push(f));
    expect(got[0]!.toString()).to.equal('tiny');
    expect(got[0]!.buffer, 'the small frame is a copy').to.not.equal(chunk.buffer);
    expect(got[0]!.buffer.byteLength, 'of its own size').to.equal(4);
    expect(got[2]!.buffer, 'the large one is a view').to.equal(chunk.buffer);
  });

  it('memory held for a frame grows only with the bytes that arrived', () => {
    const reader = new FrameReader(64 << 20);
    const header = Buffer.alloc(FRAME_HEADER_BYTES);
    header.writeUInt32BE(64 << 20);
    const before = process.memoryUsage().arrayBuffers;
    reader.push(Buffer.concat([header, Buffer.alloc(100)]), () => expect.fail('no frame yet'));
    expect(process.memoryUsage().arrayBuffers - before).to.be.below(1 << 20);
    expect(reader.midFrame).to.equal(true);
  });
});
