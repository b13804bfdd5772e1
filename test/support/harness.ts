// A synchronous in-memory cluster for precise Raft tests (etcd's `network`): messages queue up and are
// delivered one by one; links can be cut or filtered; persistence is immediate unless a node holds it.
// Every step is followed by the invariant checks.

import { expect } from 'chai';
import { RawNode } from '../../src/raft/raw-node.js';
import type { Ready } from '../../src/raft/raw-node.js';
import { MemoryStorage } from '../../src/raft/memory-storage.js';
import type { RaftConfig, ReadState } from '../../src/raft/raft.js';
import { captureState, checkInvariants } from '../../src/raft/invariants.js';
import { type MessageType, NONE, StateType } from '../../src/raft/types.js';
import type { ConfChange, ConfState, Entry, HardState, Message, NodeId } from '../../src/raft/types.js';
import { Prng } from '../../src/prng.js';
import { confChangeCodec } from '../../src/transport/raft-codec.js';

export interface HarnessNode {
  id: NodeId;
  raw: RawNode;
  storage: MemoryStorage;
  hard: HardState;
  applied: Entry[];
  reads: ReadState[];
  /** When true, appended entries are stored but not reported durable until flushPersist(). */
  holdPersist: boolean;
  held: { index: number; term: number; msgs: Message[] }[];
}

export function testConfig(id: NodeId, overrides: Partial<RaftConfig> = {}, seed = 1): RaftConfig {
  const rng = new Prng(seed * 7919 + id.charCodeAt(id.length - 1));
  return {
    id,
    electionTicks: 10,
    // The paper's [T, 2T): the core's own tests; nodes use deriveReplicaOptions' narrower range.
    electionJitterTicks: 10,
    heartbeatTicks: 1,
    maxEntriesPerAppend: 64,
    maxAppendBodyBytes: 1 << 20,
    maxInflightAppends: 8,
    maxInflightBytes: 0,
    maxUncommittedBytes: 1 << 30,
    maxApplyBytes: 1 << 30,
    maxPendingReads: 1000,
    applyBatch: 1 << 30,
    snapshotTimeoutTicks: 50,
    preVote: true,
    checkQuorum: true,
    confChangeCodec,
    random: () => rng.next(),
    ...overrides,
  };
}

export class Harness {
  readonly nodes = new Map<NodeId, HarnessNode>();
  readonly queue: Message[] = [];
  /** Directed links that drop everything: "a->b". */
  readonly cut = new Set<string>();
  /** Returns false to drop a message in flight; may also rewrite it (e.g. strip entries). */
  filter: ((m: Message) => boolean) | null = null;
  /** Every message delivered, for counting round trips. */
  readonly delivered: Message[] = [];

  constructor(ids: NodeId[], overrides: Partial<RaftConfig> = {}, perNode: Record<NodeId, Partial<RaftConfig>> = {}) {
    const conf: ConfState = { voters: [...ids], votersOutgoing: [], learners: [] };
    for (const id of ids) {
      const storage = new MemoryStorage(conf);
      this.add(id, storage, { term: 0, vote: NONE, commit: 0 }, { ...overrides, ...(perNode[id] ?? {}) });
    }
  }

  add(id: NodeId, storage: MemoryStorage, hard: HardState, overrides: Partial<RaftConfig> = {}): HarnessNode {
    const raw = new RawNode(testConfig(id, overrides), storage, hard);
    const n: HarnessNode = { id, raw, storage, hard, applied: [], reads: [], holdPersist: false, held: [] };
    this.nodes.set(id, n);
    return n;
  }

  /**
   * Restarts `id` from what its storage holds and the hard state given (as a node that crashed and came back
   * with that term and vote on disk): how a test sets up a term, a vote or a log before a step.
   */
  restart(id: NodeId, hard: HardState, overrides: Partial<RaftConfig> = {}): HarnessNode {
    return this.add(id, this.node(id).storage, hard, overrides);
  }

  node(id: NodeId): HarnessNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  raft(id: NodeId) {
    return this.node(id).raw.raft;
  }

  /** Runs fn against a node, checks invariants, and processes its Ready. */
  private act(id: NodeId, fn: (n: HarnessNode) => void): void {
    const n = this.node(id);
    const before = captureState(n.raw.raft);
    fn(n);
    const violations = checkInvariants(before, n.raw.raft);
    expect(violations, `invariants of ${id}`).to.deep.equal([]);
    this.processReady(n);
  }

  processReady(n: HarnessNode): void {
    for (let guard = 0; n.raw.hasReady(); guard++) {
      if (guard > 1000) throw new Error('ready loop did not settle');
      const rd: Ready = n.raw.ready();
      if (rd.hardState) n.hard = rd.hardState;
      if (rd.entries.length > 0) n.storage.append(rd.entries);
      this.queue.push(...rd.messages);
      for (const e of rd.committedEntries) n.applied.push(e);
      n.reads.push(...rd.readStates);
      n.raw.advance(rd);
      if (rd.snapshotToFetch) this.installSnapshot(n, rd.snapshotToFetch.from);
      const last = rd.entries[rd.entries.length - 1];
      if (n.holdPersist) {
        if (last || rd.persistedMessages.length > 0) {
          const prevHeld = n.held[n.held.length - 1];
          n.held.push({
            index: last?.index ?? prevHeld?.index ?? -1,
            term: last?.term ?? prevHeld?.term ?? -1,
            msgs: rd.persistedMessages,
          });
        }
      } else {
        if (last) n.raw.persisted(last.index, last.term);
        this.queue.push(...rd.persistedMessages);
      }
    }
  }

  private installSnapshot(n: HarnessNode, from: NodeId): void {
    const src = this.node(from).storage.snapshotMeta();
    if (n.raw.snapshotFetched(src, true)) {
      n.storage.applySnapshot(src);
      n.applied = [];
      n.raw.restore(src);
    }
  }

  /** Reports held writes as durable and releases the messages that waited for them. */
  flushPersist(id: NodeId): void {
    this.act(id, (n) => {
      const held = n.held;
      n.held = [];
      for (const h of held) {
        if (h.index >= 0) n.raw.persisted(h.index, h.term);
        this.queue.push(...h.msgs);
      }
    });
  }

  tick(id: NodeId, times = 1): void {
    for (let i = 0; i < times; i++) this.act(id, (n) => n.raw.tick());
  }

  tickAll(times = 1): void {
    for (let i = 0; i < times; i++) for (const id of this.nodes.keys()) this.tick(id);
  }

  /** One heartbeat round from `id` (followers learn the commit index from it). */
  heartbeat(id: NodeId): void {
    this.tick(id, this.raft(id).config.heartbeatTicks);
    this.deliverAll();
  }

  campaign(id: NodeId): void {
    this.act(id, (n) => n.raw.campaign());
  }

  propose(id: NodeId, data: string, expectedTerm?: number) {
    let res: ReturnType<RawNode['propose']> | undefined;
    this.act(id, (n) => {
      res = n.raw.propose(new TextEncoder().encode(data), expectedTerm);
    });
    return res!;
  }

  proposeConfChange(id: NodeId, cc: ConfChange) {
    let res: ReturnType<RawNode['proposeConfChange']> | undefined;
    this.act(id, (n) => {
      res = n.raw.proposeConfChange(cc);
    });
    return res!;
  }

  /** Test hook: `id` steps down without a new term, as check-quorum would make it. */
  stepDown(id: NodeId): void {
    this.act(id, (n) => n.raw.raft.stepDownForTest());
  }

  readIndex(id: NodeId, ctx: string): void {
    this.act(id, (n) => n.raw.readIndex(new TextEncoder().encode(ctx)));
  }

  transferLeader(id: NodeId, to: NodeId) {
    let res: { ok: boolean; detail?: string } | undefined;
    this.act(id, (n) => {
      res = n.raw.transferLeader(to);
    });
    return res!;
  }

  /** Advances time: every node ticks once and all messages settle, `ticks` times or until `until` holds. */
  run(ticks: number, until?: () => boolean): number {
    for (let i = 0; i < ticks; i++) {
      if (until?.()) return i;
      this.tickAll();
      this.deliverAll();
    }
    if (until && !until()) throw new Error(`condition not reached within ${ticks} ticks`);
    return ticks;
  }

  /** Delivers queued messages (and those they cause) until none are left. Returns how many were delivered. */
  deliverAll(maxMessages = 100_000): number {
    let count = 0;
    while (this.queue.length > 0) {
      if (++count > maxMessages) throw new Error('message storm: the cluster did not settle');
      const m = this.queue.shift()!;
      this.deliver(m);
    }
    return count;
  }

  deliver(m: Message): void {
    if (this.cut.has(`${m.from}->${m.to}`)) return;
    if (this.filter && !this.filter(m)) return;
    if (!this.nodes.has(m.to)) return;
    this.delivered.push(m);
    this.act(m.to, (n) => n.raw.step(m));
  }

  isolate(id: NodeId): void {
    for (const other of this.nodes.keys()) {
      if (other === id) continue;
      this.cut.add(`${id}->${other}`);
      this.cut.add(`${other}->${id}`);
    }
  }

  heal(): void {
    this.cut.clear();
    this.filter = null;
  }

  /** Drops everything queued (messages lost in flight). */
  dropQueued(): Message[] {
    return this.queue.splice(0, this.queue.length);
  }

  leaders(): NodeId[] {
    return [...this.nodes.values()].filter((n) => n.raw.raft.state === StateType.Leader).map((n) => n.id);
  }

  /** Elects `id` by campaign and delivery; asserts it became leader. */
  elect(id: NodeId): void {
    this.campaign(id);
    this.deliverAll();
    expect(this.raft(id).state, `${id} should lead`).to.equal(StateType.Leader);
  }

  /** Reset-peers on `id` as the driver runs it: commit and apply the whole log, then force `voters`. */
  resetPeers(id: NodeId, voters: NodeId[]): void {
    this.act(id, (n) => n.raw.forceCommitLog());
    this.act(id, (n) => n.raw.forceConfiguration({ voters, votersOutgoing: [], learners: [] }));
  }

  /** Takes a snapshot of `id`'s state machine at its applied index and compacts its log up to it. */
  snapshotAndCompact(id: NodeId, keepEntries = 0): void {
    const n = this.node(id);
    const r = n.raw.raft;
    const index = r.log.applied;
    const term = r.log.term(index)!;
    n.storage.setSnapshot({
      index,
      term,
      conf: { voters: [...r.conf.voters], votersOutgoing: [...r.conf.votersOutgoing], learners: [...r.conf.learners] },
    });
    n.storage.compact(Math.max(n.storage.firstIndex() - 1, index - keepEntries));
  }

  appliedData(id: NodeId): string[] {
    return this.node(id)
      .applied.filter((e) => e.data.byteLength > 0)
      .map((e) => new TextDecoder().decode(e.data));
  }

  countDelivered(type: MessageType, to?: NodeId): number {
    return this.delivered.filter((m) => m.type === type && (to === undefined || m.to === to)).length;
  }
}
