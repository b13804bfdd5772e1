// Recent cluster events as this node saw them — elections, leader changes, leadership transfers, membership
// changes applied, fenced writers, snapshot installs, storage failures — in a bounded ring (the oldest are
// dropped first). The dashboard merges every node's ring: an event every replica applies (a membership
// change, a fenced writer) carries the same key on every node, so it shows once.

import { assert } from '../../src/assert.js';
import { NONE, StateType } from '../../src/raft/types.js';
import type { NodeId } from '../../src/raft/types.js';
import type { ReplicaListener } from '../../src/replica/replica.js';

export type EventKind =
  | 'election'
  | 'leader'
  | 'transfer'
  | 'membership'
  | 'fenced'
  | 'snapshot-install'
  | 'storage-failure'
  // Seen by the dashboard's gathering, not by Raft: a member stopped answering, or answers again.
  | 'unreachable'
  | 'reachable';

export interface NodeEvent {
  /** Increasing per node: a reader tells new events from ones it has seen. */
  seq: number;
  atMs: number;
  node: NodeId;
  kind: EventKind;
  /** The Raft term the event belongs to; null for events of the state machine. */
  term: number | null;
  message: string;
  /** Identical on every node that records the same cluster event; null for events only this node sees. */
  key: string | null;
}

/** What the events also count (Prometheus counters). */
export interface EventCounters {
  electionStarted(): void;
  leaderChanged(): void;
}

export interface NodeEventsOptions {
  node: NodeId;
  capacity: number;
  /**
   * Entries up to here were applied before this process started (the commit index it restarts with): their
   * replay at start-up is history, not news, so it records no event.
   */
  replayedThroughIndex: number;
  counters: EventCounters;
}

const list = (ids: readonly string[]) => (ids.length ? [...ids].sort().join(', ') : 'none');

export class NodeEvents {
  private readonly ring: NodeEvent[] = [];
  private seq = 0;
  private lead: NodeId = NONE;
  private role: StateType = StateType.Follower;
  /** The last term this node campaigned in. */
  private campaignTerm = 0;
  private conf: { voters: string; learners: string } | null = null;

  constructor(private readonly options: NodeEventsOptions) {
    assert(options.capacity > 0, 'event ring: capacity must be positive');
  }

  private add(kind: EventKind, term: number | null, message: string, key: string | null = null): void {
    this.ring.push({ seq: ++this.seq, atMs: Date.now(), node: this.options.node, kind, term, message, key });
    if (this.ring.length > this.options.capacity) this.ring.shift();
  }

  /** The newest `max` events, oldest first. */
  recent(max: number): NodeEvent[] {
    return this.ring.slice(Math.max(0, this.ring.length - max));
  }

  /** The replica's events, for its listener (merge with other listeners through combineListeners). */
  listener(): ReplicaListener {
    return {
      onRoleChange: (state, lead, term) => this.roleChanged(state, lead, term),
      onConfigurationApplied: (index, voters, learners) => this.configurationApplied(index, voters, learners),
      onLeaderTransfer: (to, term) => this.add('transfer', term, `${this.options.node} hands leadership to ${to}`),
      onFatal: (err) => this.add('storage-failure', null, `${this.options.node} stopped serving: ${err.message}`),
    };
  }

  private roleChanged(state: StateType, lead: NodeId, term: number): void {
    const wasLeader = this.role === StateType.Leader;
    // A node that wins at once is seen leading without being seen as a candidate: a new term either way.
    if ((state === StateType.Candidate || state === StateType.Leader) && term > this.campaignTerm) {
      this.campaignTerm = term;
      this.options.counters.electionStarted();
      this.add('election', term, `${this.options.node} started an election`);
    }
    this.role = state;
    if (wasLeader && state !== StateType.Leader)
      this.add('leader', term, `${this.options.node} stepped down${lead !== NONE ? `; ${lead} leads` : ''}`);
    if (lead === NONE || lead === this.lead) return;
    this.lead = lead;
    this.options.counters.leaderChanged();
    // Only the new leader records its election: one event per change, however many nodes watch it.
    if (lead === this.options.node) this.add('leader', term, `${lead} became leader`, `leader:${term}`);
  }

  private configurationApplied(index: number, voters: readonly string[], learners: readonly string[]): void {
    const now = { voters: list(voters), learners: list(learners) };
    const before = this.conf;
    this.conf = now;
    if (before === null || (before.voters === now.voters && before.learners === now.learners)) return;
    if (index <= this.options.replayedThroughIndex) return;
    this.add(
      'membership',
      null,
      `configuration at index ${index}: voters ${now.voters}; learners ${now.learners}`,
      `membership:${index}`,
    );
  }

  /** A newEpoch applied at Raft index `index` (the state machine's hook). */
  newEpoch(
    jid: string,
    epoch: number,
    writerId: string,
    fenced: { epoch: number; writerId: string } | null,
    index: number,
  ): void {
    if (fenced === null || index <= this.options.replayedThroughIndex) return;
    this.add(
      'fenced',
      null,
      `journal ${jid}: writer ${writerId || '?'} (epoch ${epoch}) fenced ${fenced.writerId || '?'} (epoch ${fenced.epoch})`,
      `fenced:${jid}:${epoch}`,
    );
  }

  snapshotInstalled(index: number): void {
    this.add('snapshot-install', null, `${this.options.node} installed the leader's snapshot at index ${index}`);
  }
}

/** One listener that calls each of `listeners` in turn. */
export function combineListeners(...listeners: ReplicaListener[]): ReplicaListener {
  return {
    onRoleChange: (...a) => {
      for (const l of listeners) l.onRoleChange?.(...a);
    },
    onConfigurationApplied: (...a) => {
      for (const l of listeners) l.onConfigurationApplied?.(...a);
    },
    onLeaderTransfer: (...a) => {
      for (const l of listeners) l.onLeaderTransfer?.(...a);
    },
    onFatal: (...a) => {
      for (const l of listeners) l.onFatal?.(...a);
    },
  };
}
