import { expect } from 'chai';
import { applyConfChange, validateConfChange } from '../../../src/raft/confchange.js';
import { decodeConfChange, encodeConfChange } from '../../../src/transport/raft-codec.js';
import { ConfChangeOp } from '../../../src/raft/types.js';
import type { ConfChange, ConfState } from '../../../src/raft/types.js';

const peer = (id: string) => ({ id, address: `127.0.0.1:${8000 + id.charCodeAt(1)}` });
const change = (op: ConfChangeOp, id: string) => ({ op, peer: peer(id) });
const base: ConfState = { voters: ['n1', 'n2', 'n3'], votersOutgoing: [], learners: [] };

describe('configuration changes', () => {
  it('round-trips through the wire encoding', () => {
    const cc: ConfChange = {
      changes: [change(ConfChangeOp.AddVoter, 'n4'), change(ConfChangeOp.Remove, 'n1')],
      leaveJoint: false,
    };
    expect(decodeConfChange(encodeConfChange(cc))).to.deep.equal(cc);
  });

  it('a voter change enters a joint configuration; leave-joint leaves it', () => {
    const joint = applyConfChange(base, {
      changes: [change(ConfChangeOp.AddVoter, 'n4'), change(ConfChangeOp.Remove, 'n1')],
      leaveJoint: false,
    });
    expect(joint).to.deep.equal({ voters: ['n2', 'n3', 'n4'], votersOutgoing: ['n1', 'n2', 'n3'], learners: [] });
    expect(validateConfChange(joint, { changes: [change(ConfChangeOp.AddVoter, 'n5')], leaveJoint: false })).to.match(
      /joint/,
    );
    const left = applyConfChange(joint, { changes: [], leaveJoint: true });
    expect(left).to.deep.equal({ voters: ['n2', 'n3', 'n4'], votersOutgoing: [], learners: [] });
  });

  it('a learner change does not enter joint; promoting a learner does', () => {
    const withLearner = applyConfChange(base, { changes: [change(ConfChangeOp.AddLearner, 'n4')], leaveJoint: false });
    expect(withLearner.votersOutgoing).to.deep.equal([]);
    expect(withLearner.learners).to.deep.equal(['n4']);
    const promoted = applyConfChange(withLearner, {
      changes: [change(ConfChangeOp.AddVoter, 'n4')],
      leaveJoint: false,
    });
    expect(promoted.learners).to.deep.equal([]);
    expect(promoted.voters).to.deep.equal(['n1', 'n2', 'n3', 'n4']);
    expect(promoted.votersOutgoing).to.deep.equal(['n1', 'n2', 'n3']);
  });

  describe('validation', () => {
    const table: [string, ConfChange, RegExp | null][] = [
      [
        'add an existing voter',
        { changes: [change(ConfChangeOp.AddVoter, 'n1')], leaveJoint: false },
        /already a voter/,
      ],
      ['remove a stranger', { changes: [change(ConfChangeOp.Remove, 'n9')], leaveJoint: false }, /not a member/],
      ['demote a voter', { changes: [change(ConfChangeOp.AddLearner, 'n2')], leaveJoint: false }, /remove it/],
      [
        'name a peer twice',
        { changes: [change(ConfChangeOp.AddVoter, 'n4'), change(ConfChangeOp.Remove, 'n4')], leaveJoint: false },
        /twice/,
      ],
      [
        'remove every voter',
        { changes: ['n1', 'n2', 'n3'].map((id) => change(ConfChangeOp.Remove, id)), leaveJoint: false },
        /no voters/,
      ],
      ['leave when not joint', { changes: [], leaveJoint: true }, /not in a joint/],
      ['empty change (the confirmation of a leave)', { changes: [], leaveJoint: false }, null],
      ['add a voter', { changes: [change(ConfChangeOp.AddVoter, 'n4')], leaveJoint: false }, null],
    ];
    for (const [name, cc, want] of table) {
      it(name, () => {
        const got = validateConfChange(base, cc);
        if (want === null) expect(got).to.equal(null);
        else expect(got).to.match(want);
      });
    }
  });
});
