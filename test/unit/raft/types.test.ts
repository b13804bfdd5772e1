// The core's enums are written by hand in src/raft/types.ts (the core imports no generated code), mirroring
// proto/raft.proto so a core object encodes as it is: every name and number must agree, both ways.

import { expect } from 'chai';
import { qjournal } from '../../../src/gen/proto.js';
import { ConfChangeOp, EntryType, MessageType } from '../../../src/raft/types.js';

/** An enum's names and numbers (TypeScript's numeric enums also map numbers back to names: skipped). */
function members(e: EnumObject): [string, number][] {
  return Object.entries(e).filter((kv): kv is [string, number] => typeof kv[1] === 'number');
}

const upperSnake = (name: string) => name.replace(/([a-z])([A-Z])/g, '$1_$2').toUpperCase();

type EnumObject = Record<string, string | number>;

const TABLE: [string, EnumObject, EnumObject, string][] = [
  ['MessageType', MessageType, qjournal.raft.MessageType as unknown as EnumObject, 'MSG_'],
  ['EntryType', EntryType, qjournal.raft.EntryType as unknown as EnumObject, 'ENTRY_'],
  ['ConfChangeOp', ConfChangeOp, qjournal.raft.ConfChange.Op as unknown as EnumObject, ''],
];

describe('raft types mirror proto/raft.proto', () => {
  for (const [what, core, wire, prefix] of TABLE) {
    it(`${what}: the same names with the same numbers, none missing on either side`, () => {
      const fromCore = members(core).map(([name, n]) => [`${prefix}${upperSnake(name)}`, n]);
      const fromWire = members(wire);
      expect(Object.fromEntries(fromCore)).to.deep.equal(Object.fromEntries(fromWire));
    });
  }
});
