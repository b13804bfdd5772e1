// The event ring: which replica transitions become events (and count as elections / leader changes), that the
// replay of old entries at start-up is not news, the bound, and the dashboard's merge of every node's events.

import { expect } from 'chai';
import { NodeEvents } from '../../../../journalnode/observe/events.js';
import type { NodeEvent } from '../../../../journalnode/observe/events.js';
import { mergeEvents } from '../../../../journalnode/ui/cluster-view.js';
import { NONE, StateType } from '../../../../src/raft/types.js';

function node(id = 'n1', o: { capacity?: number; replayedThroughIndex?: number } = {}) {
  const counts = { elections: 0, leaderChanges: 0 };
  const ev = new NodeEvents({
    node: id,
    capacity: o.capacity ?? 100,
    replayedThroughIndex: o.replayedThroughIndex ?? 0,
    counters: { electionStarted: () => counts.elections++, leaderChanged: () => counts.leaderChanges++ },
  });
  return {
    ev,
    l: ev.listener(),
    counts,
    seen: () => ev.recent(100).map((e) => `${e.kind}@${e.term ?? '-'}: ${e.message}`),
  };
}

describe('node events', () => {
  it('a campaign that wins: one election and one leader event; a quick win not seen as a candidate counts too', () => {
    const { l, counts, seen } = node();
    l.onRoleChange!(StateType.PreCandidate, NONE, 1);
    l.onRoleChange!(StateType.Candidate, NONE, 2);
    l.onRoleChange!(StateType.Leader, 'n1', 2);
    l.onRoleChange!(StateType.Follower, 'n2', 3);
    l.onRoleChange!(StateType.Leader, 'n1', 4);
    expect(seen()).to.deep.equal([
      'election@2: n1 started an election',
      'leader@2: n1 became leader',
      'leader@3: n1 stepped down; n2 leads',
      'election@4: n1 started an election',
      'leader@4: n1 became leader',
    ]);
    expect(counts).to.deep.equal({ elections: 2, leaderChanges: 3 });
  });

  it("a follower counts leader changes but records no other node's election (that node records it)", () => {
    const { l, counts, seen } = node('n3');
    l.onRoleChange!(StateType.Follower, 'n1', 1);
    l.onRoleChange!(StateType.Follower, NONE, 2);
    l.onRoleChange!(StateType.Follower, 'n2', 2);
    l.onRoleChange!(StateType.Follower, 'n2', 2);
    expect(seen()).to.deep.equal([]);
    expect(counts).to.deep.equal({ elections: 0, leaderChanges: 2 });
  });

  it('membership: a change applied is an event keyed by its index; the replay of older changes at start-up is not', () => {
    const { l, seen, ev } = node('n1', { replayedThroughIndex: 10 });
    l.onConfigurationApplied!(5, ['n1', 'n2', 'n3'], []);
    l.onConfigurationApplied!(8, ['n1', 'n2', 'n3'], ['n4']);
    l.onConfigurationApplied!(9, ['n1', 'n2', 'n3'], ['n4']);
    l.onConfigurationApplied!(12, ['n4', 'n1', 'n2', 'n3'], []);
    expect(seen()).to.deep.equal(['membership@-: configuration at index 12: voters n1, n2, n3, n4; learners none']);
    expect(ev.recent(1)[0]!.key).to.equal('membership:12');
  });

  it('fenced writers, transfers, snapshot installs and storage failures', () => {
    const { ev, l, seen } = node('n2', { replayedThroughIndex: 3 });
    ev.newEpoch('ns1', 1, 'nn1', null, 4);
    ev.newEpoch('ns1', 2, 'nn2', { epoch: 1, writerId: 'nn1' }, 3);
    ev.newEpoch('ns1', 3, 'nn1', { epoch: 2, writerId: 'nn2' }, 7);
    l.onLeaderTransfer!('n3', 5);
    ev.snapshotInstalled(40);
    l.onFatal!(new Error('ENOSPC: no space left on device'));
    expect(seen()).to.deep.equal([
      'fenced@-: journal ns1: writer nn1 (epoch 3) fenced nn2 (epoch 2)',
      'transfer@5: n2 hands leadership to n3',
      "snapshot-install@-: n2 installed the leader's snapshot at index 40",
      'storage-failure@-: n2 stopped serving: ENOSPC: no space left on device',
    ]);
  });

  it('the ring keeps the newest events only', () => {
    const { ev } = node('n1', { capacity: 3 });
    for (let i = 1; i <= 5; i++) ev.snapshotInstalled(i);
    expect(ev.recent(10).map((e) => e.seq)).to.deep.equal([3, 4, 5]);
    expect(ev.recent(2).map((e) => e.seq)).to.deep.equal([4, 5]);
  });

  it('merge: one row per keyed event with every node that saw it, in time order, newest kept', () => {
    const e = (node: string, seq: number, atMs: number, key: string | null): NodeEvent => ({
      seq,
      atMs,
      node,
      kind: 'membership',
      term: null,
      message: `${node}#${seq}`,
      key,
    });
    const merged = mergeEvents(
      [
        [e('n1', 1, 100, 'membership:7'), e('n1', 2, 300, null)],
        [e('n2', 1, 90, 'membership:7'), e('n2', 2, 200, null)],
        [e('n3', 1, 110, 'membership:7')],
      ],
      10,
    );
    expect(merged.map((m) => [m.message, m.nodes.join(','), m.atMs])).to.deep.equal([
      ['n1#1', 'n1,n2,n3', 90],
      ['n2#2', 'n2', 200],
      ['n1#2', 'n1', 300],
    ]);
    expect(
      mergeEvents([[e('n1', 1, 1, null), e('n1', 2, 2, null), e('n1', 3, 3, null)]], 2).map((m) => m.seq),
    ).to.deep.equal([2, 3]);
  });
});
