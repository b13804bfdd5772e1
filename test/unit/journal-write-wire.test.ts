// The journal write request by hand against the generated codec: the header the writer puts in front of its
// records makes a WriteRequest that decodes to what it says, and the leader's reading of a request finds the
// command's own bytes, the expected term, skips what it does not know and refuses what it cannot trust.

import { expect } from 'chai';
import { qjournal } from '../../src/gen/proto.js';
import { encodeRecords } from '../../src/edit-records.js';
import {
  journalHeaderRoom,
  MalformedWriteRequestError,
  putJournalHeader,
  readWriteRequest,
} from '../../src/journal-write-wire.js';

const pb = qjournal.journal;

describe('journal write request on the wire', () => {
  describe('putJournalHeader', () => {
    const cases = [
      { jid: 'ns1', epoch: 1, segmentTxId: 1, firstTxId: 1, count: 1 },
      {
        jid: 'x'.repeat(128),
        epoch: 2 ** 53 - 1,
        segmentTxId: 2 ** 53 - 1,
        firstTxId: 2 ** 53 - 1,
        count: 2 ** 32 - 1,
      },
      { jid: 'a.b-c_d', epoch: 300, segmentTxId: 129, firstTxId: 16_384, count: 127 },
    ];
    for (const c of cases) {
      it(`decodes as the WriteRequest it describes: ${JSON.stringify(c).slice(0, 90)}`, () => {
        const records = encodeRecords(c.firstTxId, [Buffer.from('one'), Buffer.from('two')]);
        const room = journalHeaderRoom(c.jid);
        const buf = Buffer.alloc(room + records.byteLength);
        records.copy(buf, room);
        const start = putJournalHeader(buf, room, { ...c, recordsBytes: records.byteLength });
        expect(start, 'the header fits its room').to.be.at.least(0);
        const r = pb.WriteRequest.decode(buf.subarray(start));
        const op = r.command!.appendRecords!;
        expect([
          r.command!.jid,
          Number(op.epoch),
          Number(op.segmentTxid),
          Number(op.firstTxid),
          op.count,
        ]).to.deep.equal([c.jid, c.epoch, c.segmentTxId, c.firstTxId, c.count]);
        expect(Buffer.from(op.records!).equals(records)).to.equal(true);
        expect(Number(r.expectedTerm)).to.equal(0);
      });
    }
  });

  describe('readWriteRequest', () => {
    const command = { jid: 'ns1', startSegment: { epoch: 3, txid: 7, layoutVersion: -64 } };
    const commandBytes = Buffer.from(pb.Command.encode(command).finish());

    it("finds the command's own bytes and the expected term", () => {
      const body = Buffer.from(pb.WriteRequest.encode({ command, expectedTerm: 2 ** 40 }).finish());
      const r = readWriteRequest(body);
      expect(Buffer.from(r.commandBytes!).equals(commandBytes)).to.equal(true);
      expect(r.commandBytes!.buffer, 'a view of the body, not a copy').to.equal(body.buffer);
      expect(r.expectedTerm).to.equal(2 ** 40);
    });

    it('skips fields it does not know, of every wire type; no command is null', () => {
      const unknown = Buffer.from([
        (9 << 3) | 0,
        0x96,
        0x01,
        (10 << 3) | 1,
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        8,
        (11 << 3) | 2,
        2,
        0xaa,
        0xbb,
        (12 << 3) | 5,
        1,
        2,
        3,
        4,
      ]);
      const withCommand = Buffer.concat([unknown, pb.WriteRequest.encode({ command }).finish()]);
      expect(Buffer.from(readWriteRequest(withCommand).commandBytes!).equals(commandBytes)).to.equal(true);
      expect(readWriteRequest(unknown)).to.deep.equal({ commandBytes: null, expectedTerm: 0 });
    });

    it('refuses a command given twice, a field past the end, a varint past the end, field number 0', () => {
      const once = Buffer.from(pb.WriteRequest.encode({ command }).finish());
      for (const [what, body] of [
        ['twice', Buffer.concat([once, once])],
        ['past the end', once.subarray(0, once.byteLength - 1)],
        ['varint', Buffer.from([(2 << 3) | 0, 0x80])],
        ['field 0', Buffer.from([0x00, 0x01])],
      ] as const) {
        expect(() => readWriteRequest(body), what).to.throw(MalformedWriteRequestError);
      }
    });
  });
});
