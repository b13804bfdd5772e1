// Forged input in a member's name (a buggy or compromised peer, or anyone in plain-HTTP mode): structured,
// well-typed but arbitrary Raft messages delivered to a simulated cluster that is serving clients. Such a
// peer can make the cluster disagree (Raft assumes peers follow the protocol), but it must never make a node
// throw: every node's own invariants hold after every step (the replicas run with the invariant checks on),
// and nothing is thrown out of the core, the driver or the state machine.

import { expect } from 'chai';
import fc from 'fast-check';
import { encodeConfChange } from '../../src/transport/raft-codec.js';
import { ConfChangeOp, EntryType, makeMessage, MessageType } from '../../src/raft/types.js';
import type { Entry, Message, NodeId } from '../../src/raft/types.js';
import { MIXES, SimCluster } from './cluster.js';

const IDS = ['n1', 'n2', 'n3'];

interface Forged {
  atMs: number;
  to: NodeId;
  from: NodeId;
  type: MessageType;
  termDelta: number;
  index: number;
  logTermDelta: number;
  commit: number;
  reject: boolean;
  rejectHint: number;
  entries: { type: EntryType; data: Uint8Array; garbageConf: boolean; termDelta: number }[];
  snapshot: { index: number; termDelta: number } | null;
  context: Uint8Array;
}

const forged: fc.Arbitrary<Forged> = fc
  .record({
    atMs: fc.integer({ min: 200, max: 2500 }),
    to: fc.constantFrom(...IDS),
    fromOffset: fc.integer({ min: 1, max: 2 }),
    type: fc.constantFrom(
      ...Object.values(MessageType).filter((v): v is MessageType => typeof v === 'number' && v !== MessageType.None),
    ),
    termDelta: fc.integer({ min: -2, max: 3 }),
    index: fc.integer({ min: 0, max: 400 }),
    logTermDelta: fc.integer({ min: -3, max: 0 }),
    commit: fc.integer({ min: 0, max: 450 }),
    reject: fc.boolean(),
    rejectHint: fc.integer({ min: 0, max: 400 }),
    entries: fc.array(
      fc.record({
        type: fc.constantFrom(EntryType.Normal, EntryType.ConfChange),
        data: fc.uint8Array({ maxLength: 12 }),
        garbageConf: fc.boolean(),
        termDelta: fc.integer({ min: -1, max: 0 }),
      }),
      { maxLength: 4 },
    ),
    snapshot: fc.option(
      fc.record({ index: fc.integer({ min: 1, max: 450 }), termDelta: fc.integer({ min: -2, max: 0 }) }),
      { nil: null },
    ),
    context: fc.uint8Array({ maxLength: 12 }),
  })
  .map((r) => {
    const from = IDS[(IDS.indexOf(r.to) + r.fromOffset) % IDS.length]!;
    return { ...r, from };
  });

/** A message with the given shape, its terms relative to the receiver's current term. */
function materialize(f: Forged, receiverTerm: number): Message {
  const term = Math.max(0, receiverTerm + f.termDelta);
  const logTerm = Math.max(0, Math.min(term, term + f.logTermDelta));
  let prevTerm = logTerm;
  const entries: Entry[] = f.entries.map((e, i) => {
    const t = Math.max(prevTerm, Math.min(term, term + e.termDelta));
    prevTerm = t;
    // A configuration entry: either garbage bytes or a well-formed change that may not fit the configuration.
    const data =
      e.type === EntryType.ConfChange && !e.garbageConf
        ? encodeConfChange({
            changes: [
              {
                op: e.data.byteLength % 3 === 0 ? ConfChangeOp.Remove : ConfChangeOp.AddVoter,
                peer: { id: IDS[e.data.byteLength % 3]!, address: 'sim-x:1' },
              },
            ],
            leaveJoint: e.data.byteLength % 5 === 0,
          })
        : e.data;
    return { term: t, index: f.index + 1 + i, type: e.type, data };
  });
  return makeMessage({
    type: f.type,
    to: f.to,
    from: f.from,
    term,
    logTerm,
    index: f.index,
    commit: f.commit,
    reject: f.reject,
    rejectHint: f.rejectHint,
    context: f.context,
    entries: f.type === MessageType.App ? entries : [],
    snapshot:
      f.type === MessageType.Snap && f.snapshot
        ? {
            index: f.snapshot.index,
            term: Math.max(1, Math.min(term, term + f.snapshot.termDelta)),
            conf: { voters: [...IDS], votersOutgoing: [], learners: [] },
          }
        : null,
  });
}

describe("forged Raft input in a member's name (property)", function () {
  this.timeout(300_000);

  it('arbitrary well-typed messages from members: no node throws, every node keeps its invariants', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1_000_000 }),
        fc.array(forged, { minLength: 1, maxLength: 40 }),
        (seed, msgs) => {
          const c = new SimCluster({
            seed,
            nodes: 3,
            mix: MIXES.calm!,
            faultMs: 3000,
            livenessMs: 3000,
            settleMs: 1000,
          });
          c.bootAll();
          c.startClients(2);
          for (const f of msgs) {
            c.q.schedule(f.atMs, () => {
              const node = c.nodes.get(f.to);
              const replica = node?.replica;
              if (!replica) return;
              replica.receive([materialize(f, replica.term)]);
            });
          }
          // Runs the cluster through the forged input and after it; any exception (an invariant violation
          // included: the replicas check them after every step) fails the property.
          c.runUntil(3000);
          for (const id of IDS) expect(c.nodes.get(id)!.replica, `${id} still runs`).to.not.equal(null);
        },
      ),
      { numRuns: Number(process.env.FORGED_RUNS ?? 60), seed: Number(process.env.FORGED_SEED ?? 20261130) },
    );
  });
});
