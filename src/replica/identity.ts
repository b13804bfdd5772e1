// A node's identity, as the replica driver enforces it before anything reaches the Raft core: every member is
// bound to the storage it was added with (a batch from another storage under its id is refused, so its votes
// and acknowledgements never count, and a node whose configuration binds its id to another storage does not
// campaign); the reset generation (a node of an older generation that the newer one left out stands down for
// good); and a floor (a follower whose disk lost entries it had acknowledged does not campaign, and votes only
// for a candidate past the floor, until its log holds its leader's log that far). Rules only, over the state the
// replica hands in: the JournalNode's transport and the simulator deliver batches and notices through the
// replica, and what is recorded is made durable through an IdentityStore. ARCHITECTURE.md argues the design.

import { QjmError } from '../errors.js';
import type { Logger } from '../logger.js';
import type { RawNode } from '../raft/raw-node.js';
import { confMembers, makeMessage, MessageType, StateType } from '../raft/types.js';
import type { Message, NodeId, Peer, SnapshotMeta } from '../raft/types.js';
import type { PeerDirectory } from './peer-directory.js';
import { EMPTY_IDENTITY } from './env.js';
import type { Floor, IdentityRecord, IdentityStore, StandDown } from './env.js';

export type { Floor, IdentityRecord, IdentityStore, StandDown } from './env.js';

/** Who sent a batch, as its envelope says (MessageBatch: from, storage_id, generation). */
export interface BatchEnvelope {
  from: NodeId;
  storageId: string;
  generation: number;
}

export const NOTICE_KINDS = ['reset-away', 'storage-mismatch', 'stood-down'] as const;
export type NoticeKind = (typeof NOTICE_KINDS)[number];

/** Why a node refused a peer's batch: what the refused node needs to know about itself (IdentityNotice). */
export interface IdentityNotice {
  kind: NoticeKind;
  clusterId: string;
  /** The refusing node's generation. */
  generation: number;
  /** storage-mismatch: the storage the refusing node's configuration binds the sender's id to. */
  expectedStorageId: string;
  /** reset-away: the members of the newer generation. */
  members: NodeId[];
}

export type IdentityVerdict = { ok: true } | { ok: false; reason: string; notice: IdentityNotice | null };

export interface IdentityOptions {
  /** This node's storage id ('' turns the storage checks off: a simulator or a test without identities). */
  storageId: string;
  clusterId: string;
  /** Where peers dial this node, for the repair commands it names ('' when unknown). */
  selfAddress?: string;
  /** The record as last saved. */
  record?: IdentityRecord;
  store?: IdentityStore;
  /** Wall-clock time for what it records (default: the replica's clock). */
  nowMs?: () => number;
}

/** What the gate reads of the replica at each call. */
export interface GateContext {
  raw: RawNode;
  directory: PeerDirectory;
  role: StateType;
}

/** A node's standing; 'uninitialized' is a node waiting for its cluster to form (it has no replica yet). */
export type IdentityState =
  | 'member'
  | 'joining'
  | 'not-member'
  | 'below-floor'
  | 'storage-mismatch'
  | 'stood-down'
  | 'uninitialized';

export interface IdentityStatus {
  state: IdentityState;
  storageId: string;
  generation: number;
  /** The storage this node's configuration binds its id to ('' when none). */
  boundTo: string;
  problem: string | null;
  repair: string | null;
  standDown: StandDown | null;
  floor: Floor | null;
  /** Peers whose batches this node refused, and why (the newest reason per peer). */
  refused: { id: NodeId; reason: string; count: number; atMs: number }[];
  /** Peers that refused this node's batches, and why. */
  refusedBy: { id: NodeId; kind: NoticeKind; detail: string; atMs: number }[];
}

/** What formation records for a node the cluster names as a member bound to no storage (formed before bindings). */
export const UNBOUND = '-';

/** Peers remembered in each of `refused`, `refusedBy` and the storages heard: far above any cluster. */
const MAX_REMEMBERED = 64;

function remember<V>(m: Map<NodeId, V>, id: NodeId, v: V): void {
  if (!m.has(id) && m.size >= MAX_REMEMBERED) m.delete(m.keys().next().value!);
  m.set(id, v);
}

export class IdentityGate {
  private record: IdentityRecord;
  private generationValue: number;
  /** Leader only: followers whose log fell below what they had acknowledged, and the floor each was told. */
  private readonly lost = new Map<NodeId, Floor>();
  /** Follower with a floor: an entry of its leader's log at or past the floor, cleared once it is durable here. */
  private clearAt: Floor | null = null;
  /** The storage each member's batches come from: a learner is bound to it when it is promoted. */
  private readonly heard = new Map<NodeId, string>();
  private readonly refused = new Map<NodeId, { reason: string; count: number; atMs: number }>();
  private readonly refusedBy = new Map<NodeId, { kind: NoticeKind; detail: string; atMs: number }>();
  private saving = false;
  private unsaved = false;

  constructor(
    private readonly selfId: NodeId,
    private readonly options: IdentityOptions,
    generation: number,
    private readonly hooks: {
      logger: Logger;
      nowMs(): number;
      /** This node stood down: the replica stops leading and fails what waits. */
      onStandDown(sd: StandDown): void;
      /** The record could not be made durable. */
      onFatal(err: Error): void;
      /** The replica's state, read at each call. */
      context(): GateContext;
    },
  ) {
    this.record = { ...EMPTY_IDENTITY, ...(options.record ?? {}) };
    this.generationValue = generation;
  }

  get generation(): number {
    return this.generationValue;
  }

  get storageId(): string {
    return this.options.storageId;
  }

  get standingDown(): StandDown | null {
    return this.record.standDown;
  }

  get floor(): Floor | null {
    return this.record.floor;
  }

  // ---------------------------------------------------------------- batches in

  /** Whether a batch from `env.from` may reach the core; a refusal says why and what to tell the sender. */
  admit(env: BatchEnvelope): IdentityVerdict {
    const c = this.hooks.context();
    const sd = this.record.standDown;
    if (sd) return this.refuse(env.from, `this node stood down: ${sd.detail}`, this.notice('stood-down'));
    if (env.generation < this.generationValue) {
      const bound = c.directory.storageOf(env.from);
      const member = c.directory.isMember(env.from) && (bound === '' || bound === env.storageId);
      return this.refuse(
        env.from,
        `generation ${env.generation} is older than this cluster's generation ${this.generationValue} (reset-peers)`,
        member ? null : { ...this.notice('reset-away'), members: confMembers(c.raw.conf()) },
      );
    }
    if (env.generation > this.generationValue) {
      // A node still joining (no configuration yet, nothing of its own) takes the generation of the members it
      // joined: it was added after a reset it learned nothing of, and the leader's snapshot brings it anyway.
      if (confMembers(c.raw.conf()).length === 0 && c.directory.isMember(env.from)) {
        this.hooks.logger.info(
          { from: env.from, generation: env.generation },
          'joining a cluster of a newer generation',
        );
        this.generationValue = env.generation;
      } else
        return this.refuse(
          env.from,
          `generation ${env.generation} is newer than this node's ${this.generationValue}: a reset-peers this node did not take part in`,
          null,
        );
    }
    const bound = c.directory.storageOf(env.from);
    if (this.options.storageId !== '' && bound !== '' && env.storageId !== bound)
      return this.refuse(
        env.from,
        `storage ${env.storageId || '(none)'} is not the storage ${bound} the configuration binds ${env.from} to`,
        { ...this.notice('storage-mismatch'), expectedStorageId: bound },
      );
    if (env.storageId !== '' && c.directory.isMember(env.from)) remember(this.heard, env.from, env.storageId);
    return { ok: true };
  }

  /**
   * The messages of an admitted batch (or of a delivery without an envelope) that may reach the core: a node
   * that stood down hears nothing; one that may not vote drops vote requests, one that may not campaign a
   * leadership transfer; floor notices are handled here; a leader watches acknowledgements for lost disks.
   */
  inbound(messages: readonly Message[], out: Message[]): Message[] {
    const c = this.hooks.context();
    if (this.record.standDown) return [];
    const mayVote = this.mayVote();
    const mayCampaign = this.mayCampaign();
    const kept: Message[] = [];
    for (const m of messages) {
      switch (m.type) {
        case MessageType.Floor:
          this.hearFloor(m, c);
          continue;
        case MessageType.Vote:
        case MessageType.PreVote:
          if (!mayVote && !this.votesPastFloor(m)) continue;
          break;
        case MessageType.TimeoutNow:
          if (!mayCampaign) continue;
          break;
        case MessageType.AppResp:
          if (c.role === StateType.Leader) this.watchAck(m, c, out);
          break;
        case MessageType.App:
          if (this.record.floor) this.noteLeaderEntry(m, c);
          break;
      }
      kept.push(m);
    }
    return kept;
  }

  /**
   * A node may grant votes: it did not stand down, owes no floor, and is of a configuration (a joining node has
   * none yet). Even bound to another storage: whether its vote counts is the candidate's to judge (admit: its
   * configuration's binding), and a node re-added with this storage may not have applied the change yet — a
   * crash before it did — while the quorum that would commit it needs its vote.
   */
  mayVote(): boolean {
    const r = this.record;
    return !r.standDown && !r.floor && confMembers(this.hooks.context().raw.conf()).length > 0;
  }

  /**
   * A node below its floor grants a vote only to a candidate whose log is at least as up to date as the floor
   * entry (then the core compares it with its own log too): as a node whose disk still held what it had
   * acknowledged would. Without it, a cluster whose leader is gone could not elect one while it needs this
   * node's vote (found by the simulator: five voters, two disks replaced, one restored, no leader ever again).
   */
  private votesPastFloor(m: Message): boolean {
    const r = this.record;
    const f = r.floor;
    if (r.standDown || !f || confMembers(this.hooks.context().raw.conf()).length === 0) return false;
    return m.logTerm > f.term || (m.logTerm === f.term && m.index >= f.index);
  }

  /**
   * A node may campaign (and so, a follower, count election time): it did not stand down, owes no floor, and
   * is the storage its configuration binds its id to (a node catching up passes through older configurations
   * that bind its id to the storage it replaced: it is a learner then, and waits).
   */
  mayCampaign(): boolean {
    return !this.record.standDown && !this.record.floor && this.boundElsewhere() === '';
  }

  /** The other storage this node's id is bound to: by its configuration, or as formation found ('' when none). */
  private boundElsewhere(): string {
    const bound = this.hooks.context().directory.storageOf(this.selfId);
    if (this.options.storageId !== '' && bound !== '' && bound !== this.options.storageId) return bound;
    return this.record.boundElsewhere;
  }

  // ---------------------------------------------------------------- floors

  /**
   * Leader: an append rejected with a hint below what the follower had acknowledged means its disk lost
   * acknowledged entries (a restored older copy). It is told its floor now and at every tick until it
   * acknowledges that far again.
   */
  private watchAck(m: Message, c: GateContext, out: Message[]): void {
    const floor = this.lost.get(m.from);
    if (!m.reject) {
      if (floor && m.index >= floor.index) {
        this.lost.delete(m.from);
        this.hooks.logger.info({ peer: m.from, floor: floor.index }, 'follower holds its floor again');
      }
      return;
    }
    const match = c.raw.followerProgress(m.from)?.match ?? 0;
    if (m.rejectHint >= match || match === 0) return;
    const term = c.raw.termAt(match);
    if (term === undefined) return;
    const f = { index: match, term };
    if (!floor || floor.index < f.index) this.lost.set(m.from, f);
    this.hooks.logger.error(
      { peer: m.from, acknowledged: match, logEndsAt: m.rejectHint },
      'follower lost entries it had acknowledged (its data directory restored from an older copy, or its disk lost writes): telling it its floor; it does not vote until it holds them again',
    );
    out.push(this.floorMessage(m.from, this.lost.get(m.from)!, c));
  }

  private floorMessage(to: NodeId, f: Floor, c: GateContext): Message {
    return makeMessage({
      type: MessageType.Floor,
      to,
      from: this.selfId,
      term: c.raw.term,
      index: f.index,
      logTerm: f.term,
    });
  }

  /** Follower: its leader says its log fell below what it acknowledged. */
  private hearFloor(m: Message, c: GateContext): void {
    const st = c.raw.status();
    if (m.from !== st.lead || m.term !== st.term || m.index <= 0 || m.logTerm <= 0) return;
    if (this.holds({ index: m.index, term: m.logTerm }, c)) return;
    const cur = this.record.floor;
    if (cur && cur.index >= m.index) return;
    this.record = { ...this.record, floor: { index: m.index, term: m.logTerm } };
    this.clearAt = null;
    this.hooks.logger.error(
      { leader: m.from, floor: m.index, lastIndex: c.raw.lastIndex() },
      'this node acknowledged entries its log no longer holds (a data directory restored from an older copy?): it does not vote or campaign until it holds the leader\u2019s log that far',
    );
    this.persist();
  }

  /** Its durable log holds the entry: by Log Matching, everything up to it is the leader's. */
  private holds(f: Floor, c: GateContext): boolean {
    return c.raw.stableIndex() >= f.index && c.raw.termAt(f.index) === f.term;
  }

  /**
   * An append names an entry of its leader's log (its last entry, or the one before them). A leader of this
   * node's current term or a later one holds every committed entry, also those the floor was set for (in an
   * earlier term): an entry of its log at or past the floor is where the floor clears, once durable here.
   */
  private noteLeaderEntry(m: Message, c: GateContext): void {
    const floor = this.record.floor!;
    const last = m.entries[m.entries.length - 1];
    const at = last ? { index: last.index, term: last.term } : { index: m.index, term: m.logTerm };
    if (at.index < floor.index || m.term < c.raw.term || at.term === 0) return;
    if (!this.clearAt || at.index > this.clearAt.index) this.clearAt = at;
  }

  /** Each tick: a leader repeats the floors it told; a follower clears its floor once it holds its leader's log that far. */
  tick(out: Message[]): void {
    const c = this.hooks.context();
    if (c.role !== StateType.Leader) this.lost.clear();
    else for (const [id, f] of this.lost) out.push(this.floorMessage(id, f, c));
    const floor = this.record.floor;
    const at = this.clearAt;
    if (!floor || !at || !this.holds(at, c)) return;
    // The leader's entry at or past the floor is durable here, so this log is the leader's up to it, and the
    // leader's log holds every committed entry: nothing this node acknowledged and that counted is missing.
    this.clearFloor(`holds the leader's entry ${at.index} (term ${at.term})`);
  }

  private clearFloor(why: string): void {
    this.hooks.logger.info({ floor: this.record.floor }, `floor cleared: this node ${why}; it votes again`);
    this.record = { ...this.record, floor: null };
    this.clearAt = null;
    this.persist();
  }

  // ---------------------------------------------------------------- notices, configurations, snapshots

  /** A peer this node sent to refused its batch and said why (the answer to this node's own traffic). */
  hearNotice(from: NodeId, n: IdentityNotice): void {
    const c = this.hooks.context();
    if (this.record.standDown) return;
    const detail =
      n.kind === 'storage-mismatch'
        ? `binds ${this.selfId} to storage ${n.expectedStorageId}, this node is storage ${this.options.storageId}`
        : n.kind === 'reset-away'
          ? `is of generation ${n.generation} (members ${n.members.join(', ')})`
          : 'stood down';
    remember(this.refusedBy, from, { kind: n.kind, detail, atMs: this.hooks.nowMs() });
    if (n.kind !== 'reset-away') return;
    // Only a member of this node's configuration speaks for the cluster, and only of a newer generation of it
    // that leaves this node out (a node it names with this storage is a member: it is not reset away).
    const why = !c.directory.isMember(from)
      ? `${from} is not a member of this node's configuration`
      : n.clusterId !== this.options.clusterId
        ? `cluster ${n.clusterId} is not this node's`
        : n.generation <= this.generationValue
          ? `generation ${n.generation} is not newer than this node's ${this.generationValue}`
          : n.members.includes(this.selfId)
            ? `generation ${n.generation} names this node`
            : null;
    if (why) {
      this.hooks.logger.warn({ from, generation: n.generation }, `ignoring a reset-away notice: ${why}`);
      return;
    }
    this.standDown({
      reason: 'reset-away',
      generation: n.generation,
      by: from,
      atMs: this.hooks.nowMs(),
      detail: `reset-peers on ${from} made generation ${n.generation} of cluster ${n.clusterId} (members ${n.members.join(', ')}), which leaves this node out`,
    });
  }

  /**
   * The configuration changed (applied, installed, loaded). One that binds this id to this storage ends a
   * mismatch formation found; one that binds it to another storage makes this node wait (boundElsewhere): a
   * node re-added under its id catches up through configurations older than its own binding.
   */
  configurationChanged(): void {
    const bound = this.hooks.context().directory.storageOf(this.selfId);
    const mine = this.options.storageId;
    if (mine === '' || bound === '') return;
    if (bound === mine && this.record.boundElsewhere !== '') {
      this.hooks.logger.info(
        { storageId: mine },
        'the configuration binds this node to its storage: it is a member again',
      );
      this.record = { ...this.record, boundElsewhere: '' };
      this.persist();
    }
  }

  /** A snapshot was installed: its generation is the cluster's (its leader's); a floor it covers is met. */
  installed(meta: SnapshotMeta): void {
    this.generationValue = meta.generation ?? 0;
    const floor = this.record.floor;
    if (floor && meta.index >= floor.index) this.clearFloor(`installed the leader's snapshot at ${meta.index}`);
  }

  /** Reset-peers forced a configuration: a new generation, and this node bound to its own storage in it. */
  forced(peers: readonly Peer[]): Peer[] {
    this.generationValue++;
    return peers.map((p) =>
      p.id === this.selfId && this.options.storageId ? { ...p, storageId: this.options.storageId } : p,
    );
  }

  /** The storage a learner being promoted is bound to: its binding, else the storage its batches come from. */
  bindingFor(id: NodeId): string {
    return this.hooks.context().directory.storageOf(id) || (this.heard.get(id) ?? '');
  }

  /** Why this node takes no client operation, or null. */
  refusal(): QjmError | null {
    const sd = this.record.standDown;
    if (sd)
      return new QjmError('STOOD_DOWN', `${this.selfId} stood down: ${sd.detail}; ${this.repairFor('stood-down')}`);
    if (this.boundElsewhere() !== '')
      return new QjmError(
        'STORAGE_MISMATCH',
        `${this.selfId}: ${this.problemFor('storage-mismatch')}; ${this.repairFor('storage-mismatch')}`,
      );
    return null;
  }

  // ---------------------------------------------------------------- status

  state(): IdentityState {
    const c = this.hooks.context();
    if (this.record.standDown) return 'stood-down';
    if (this.boundElsewhere() !== '') return 'storage-mismatch';
    const members = confMembers(c.raw.conf());
    if (members.length === 0) return 'joining';
    if (this.record.floor) return 'below-floor';
    return members.includes(this.selfId) ? 'member' : 'not-member';
  }

  status(): IdentityStatus {
    const c = this.hooks.context();
    const state = this.state();
    return {
      state,
      storageId: this.options.storageId,
      generation: this.generationValue,
      boundTo: c.directory.storageOf(this.selfId),
      problem: this.problemFor(state),
      repair: state === 'member' || state === 'joining' ? null : this.repairFor(state),
      standDown: this.record.standDown,
      floor: this.record.floor,
      refused: [...this.refused].map(([id, r]) => ({ id, ...r })),
      refusedBy: [...this.refusedBy].map(([id, r]) => ({ id, ...r })),
    };
  }

  private problemFor(state: IdentityState): string | null {
    const r = this.record;
    const c = this.hooks.context();
    switch (state) {
      case 'stood-down':
        return `stood down for good: ${r.standDown!.detail}`;
      case 'storage-mismatch': {
        const bound = this.boundElsewhere();
        return `its storage is not the one the cluster knows for ${this.selfId}: the configuration binds ${this.selfId} to ${bound === UNBOUND ? 'no storage (a cluster formed before storage bindings)' : `storage ${bound}`}, and this data directory is storage ${this.options.storageId} (a replaced or wiped disk); its votes and acknowledgements do not count and it does not campaign`;
      }
      case 'below-floor':
        return `its log ends below index ${r.floor!.index}, which it had acknowledged (a data directory restored from an older copy, or a disk that lost writes): it does not campaign, and votes only for a candidate whose log reaches past that entry, until it holds the leader's log that far (its last index: ${c.raw.lastIndex()})`;
      case 'not-member':
        return `${this.selfId} is not a member of its own configuration (removed)`;
      default:
        return null;
    }
  }

  private repairFor(state: IdentityState): string | null {
    const address = this.options.selfAddress || 'HOST:PORT';
    switch (state) {
      case 'stood-down': {
        const by = this.record.standDown!.by;
        const members = this.hooks.context().directory.addressOf(by) ?? '<the members>';
        return `repair: stop this node and keep it stopped; to bring it back, wipe its data directory, start it with --join ${members}, then qjm add-peer --peer ${this.selfId}=${address}`;
      }
      case 'storage-mismatch':
        return `repair: qjm replace-node --peer ${this.selfId}=${address} (re-adds ${this.selfId} with this storage: it catches up from a snapshot as a learner, then votes)`;
      case 'below-floor':
        return 'repair: none needed while it catches up; if it stays so, qjm replace-node on an empty data directory';
      case 'not-member':
        return 'repair: stop it (it was removed), or add it back with qjm add-peer';
      default:
        return null;
    }
  }

  // ---------------------------------------------------------------- recording

  private notice(kind: NoticeKind): IdentityNotice {
    return {
      kind,
      clusterId: this.options.clusterId,
      generation: this.generationValue,
      expectedStorageId: '',
      members: [],
    };
  }

  private refuse(from: NodeId, reason: string, notice: IdentityNotice | null): IdentityVerdict {
    const prev = this.refused.get(from);
    remember(this.refused, from, { reason, count: (prev?.count ?? 0) + 1, atMs: this.hooks.nowMs() });
    if (!prev || prev.reason !== reason) this.hooks.logger.warn({ from }, `refusing Raft traffic: ${reason}`);
    return { ok: false, reason, notice };
  }

  private standDown(sd: StandDown): void {
    this.record = { ...this.record, standDown: sd, floor: null };
    this.lost.clear();
    this.hooks.logger.error({ standDown: sd }, `STOOD DOWN for good: ${sd.detail}; ${this.repairFor('stood-down')}`);
    this.persist();
    this.hooks.onStandDown(sd);
  }

  /** Saves the newest record, one save at a time (a change during a save is saved after it). */
  private persist(): void {
    const store = this.options.store;
    if (!store) return;
    if (this.saving) {
      this.unsaved = true;
      return;
    }
    this.saving = true;
    this.unsaved = false;
    store.save({ ...this.record }, (err) => {
      this.saving = false;
      if (err) return this.hooks.onFatal(err);
      if (this.unsaved) this.persist();
    });
  }
}
