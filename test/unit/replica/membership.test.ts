// The leader-driven membership change (membership.ts): when a learner counts as caught up, and a change that
// waits for a learner that never answers. The seeded simulator runs changes under faults (test/sim/).

import { expect } from 'chai';
import { caughtUp, MembershipChange } from '../../../src/replica/membership.js';
import type { ChangeContext } from '../../../src/replica/membership.js';
import { qjmError } from '../../../src/replica/client-waits.js';
import type { QjmError } from '../../../src/errors.js';
import { MemoryStorage } from '../../../src/raft/memory-storage.js';
import { emptyConf, NONE } from '../../../src/raft/types.js';
import { Harness } from '../../support/harness.js';

const peer = (id: string) => ({ id, address: `sim://${id}` });

describe('membership change', () => {
  it('caughtUp: a learner must have acknowledged something and be within the margin', () => {
    const table: [number | undefined, number, number, boolean][] = [
      // match, lastIndex, margin, caught up
      [undefined, 5, 1000, false], // not tracked (not a member, or this node does not lead)
      [0, 5, 1000, false], // never acknowledged: a short log is no excuse
      [0, 0, 1000, false],
      [1, 5, 1000, true],
      [5, 5, 0, true],
      [4, 5, 0, false],
      [900, 2000, 1000, false],
      [1000, 2000, 1000, true],
    ];
    for (const [match, last, margin, want] of table)
      expect(caughtUp(match, last, margin), `match ${match} last ${last} margin ${margin}`).to.equal(want);
  });

  it('a learner that never acknowledged is not promoted, however short the log; it is once it replicates', () => {
    const h = new Harness(['n1', 'n2', 'n3']);
    h.elect('n1');
    h.propose('n1', 'a');
    h.deliverAll();
    let outcome: QjmError | null | undefined;
    const change = new MembershipChange([peer('n1'), peer('n2'), peer('n3'), peer('n4')], 1e9, 1e9, (e) => {
      outcome = e;
    });
    const leader = h.node('n1');
    const ctx = (): ChangeContext => ({
      raw: leader.raw,
      nowMs: 0,
      catchupMargin: 1000,
      addressOf: (id) => `sim://${id}`,
      bindingOf: () => '',
      refused: (res) => qjmError('INVALID_CONF_CHANGE', res.detail ?? res.error),
    });
    const step = () => {
      change.advance(ctx());
      h.processReady(leader);
      h.deliverAll();
      h.heartbeat('n1');
    };
    // n4 does not exist yet: messages to it are lost, so it never acknowledges.
    for (let i = 0; i < 20; i++) step();
    const conf = leader.raw.conf();
    expect(conf.learners, 'n4 was added as a learner').to.deep.equal(['n4']);
    expect(conf.voters, 'but not promoted: it never acknowledged').to.deep.equal(['n1', 'n2', 'n3']);
    expect(outcome).to.equal(undefined);
    // n4 starts the way a joining JournalNode does: an empty state at index 0, in no configuration.
    h.add('n4', new MemoryStorage(emptyConf()), { term: 0, vote: NONE, commit: 0 });
    for (let i = 0; i < 20 && outcome === undefined; i++) step();
    expect(outcome, 'the change finished').to.equal(null);
    expect(leader.raw.conf().voters).to.deep.equal(['n1', 'n2', 'n3', 'n4']);
    expect(h.appliedData('n4'), 'n4 replicated the log').to.include('a');
  });
});
