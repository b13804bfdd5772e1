// What a Replica needs from the world, as interfaces: the durable log, the state machine, the transport and
// a clock. The JournalNode wires disks and HTTP; the simulator wires simulated ones, so the seeded
// simulation exercises this very driver. Everything is callback-based: with a synchronous environment the
// whole replica runs deterministically in one thread.

import type { LogStorage } from '../raft/log.js';
import type { Entry, HardState, Message, NodeId, SnapshotMeta } from '../raft/types.js';

export interface ReplicaLog extends LogStorage {
  /** The hard state loaded at start. */
  initialHardState(): HardState;
  /**
   * Makes `entries` durable (first truncating the log from entries[0].index when that is at or below the
   * last index) and, when given, the hard state (before the entries); calls done once all of it is on
   * stable storage. The replica never issues a write before the previous one is done. After a resource
   * shortage (isResourceShortage) the same write is issued again, and must then complete it.
   */
  write(hardState: HardState | null, entries: Entry[], done: (err: Error | null) => void): void;
  /** A snapshot is durable: snapshotMeta() returns it from now on; entries up to compactTo may be dropped. */
  snapshotSaved(meta: SnapshotMeta, compactTo: number): void;
  /**
   * Starts the log anew right after a snapshot being installed: from now on the view is an empty log after
   * meta (firstIndex = meta.index + 1, term(meta.index) = meta.term, snapshotMeta() = meta). Nothing changes
   * on disk yet: the snapshot image is not durable at this point.
   */
  beginReset(meta: SnapshotMeta): void;
  /**
   * The snapshot image is durable: drop the old entries from stable storage; done once durable. Until a
   * crash-restart sees this, the log on disk still holds the old entries, and loading must discard a log
   * that does not hold the snapshot's (index, term). Never overlaps a write.
   */
  commitReset(meta: SnapshotMeta, done: (err: Error | null) => void): void;
}

/** A snapshot image fetched from a peer and staged, not yet installed. */
export interface StagedSnapshot {
  readonly meta: SnapshotMeta;
}

/**
 * Whether an error is the environment running short of something that comes back by itself — file
 * descriptors (EMFILE: this process's; ENFILE: the system's) — rather than a failing disk. The replica never
 * stops for good on one: it retries what was interrupted after a backoff (a write, an apply, a snapshot).
 */
export function isResourceShortage(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return code === 'EMFILE' || code === 'ENFILE';
}

/**
 * Thrown by ReplicaStateMachine.apply when a resource shortage (isResourceShortage) stopped it: `results`
 * are those of the entries it applied, in order; the entry after them took no effect (or one that applying it
 * again repeats exactly), and neither did any after it. The replica applies the rest later.
 */
export class ApplyInterrupted<R> extends Error {
  override name = 'ApplyInterrupted';
  constructor(
    readonly results: R[],
    override readonly cause: Error,
  ) {
    super(`applying stopped after ${results.length} entries: ${cause.message}`);
  }
}

export interface ReplicaStateMachine<R> {
  /**
   * Applies committed command entries (normal entries with data), in order, and returns each entry's result
   * for the node that proposed it. Deterministic: every replica reaches the same state. A resource shortage
   * throws ApplyInterrupted (the rest is applied later); any other error stops the replica (a failing disk).
   */
  apply(entries: readonly Entry[]): R[];
  /**
   * Saves an image of the state as of meta.index (the last applied index when called) durably. Later entries
   * may be applied while the save is in flight; the image must not include them.
   */
  saveSnapshot(meta: SnapshotMeta, done: (err: Error | null) => void): void;
  /**
   * Fetches the image described by meta (or a newer one) from peer `from` into a staging area. A failure of
   * this node's own storage while staging (a sync that failed) is reported marked by storageFailure(): the
   * replica stops then, since what that sync covered is lost whatever a later sync says; any other failure
   * (the peer, the network) is fetched again.
   */
  fetchSnapshot(from: NodeId, meta: SnapshotMeta, done: (err: Error | null, staged?: StagedSnapshot) => void): void;
  /**
   * Replaces the whole state with a staged image, durably. After a resource shortage (isResourceShortage) it
   * is called again with the same image, and must then complete the install.
   */
  installSnapshot(staged: StagedSnapshot, done: (err: Error | null) => void): void;
  /** Drops a staged image that will not be installed. */
  discardSnapshot(staged: StagedSnapshot): void;
}

export interface ReplicaTransport {
  /**
   * Sends messages to their `to` peers; best effort (Raft tolerates loss, duplication and reordering). What is
   * sent in one turn may leave together at its end (the peer transport's frame per turn).
   */
  send(messages: Message[]): void;
}

export interface ReplicaClock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Runs fn after the current input is handled, so inputs arriving together are processed as one batch. */
  defer(fn: () => void): void;
}

/** Marks `err` as a failure of the node's own storage (see ReplicaStateMachine.fetchSnapshot). */
export function storageFailure(err: Error): Error {
  return Object.assign(err, { storageFailed: true });
}

export function isStorageFailure(err: unknown): boolean {
  return (err as { storageFailed?: unknown } | null)?.storageFailed === true;
}

// ---------------------------------------------------------------- identity (identity.ts)

export interface StandDown {
  /** Why: 'reset-away', a reset-peers whose generation leaves this node out (the only reason there is). */
  reason: 'reset-away';
  /** The generation that left this node out. */
  generation: number;
  /** The node whose word it was. */
  by: NodeId;
  atMs: number;
  detail: string;
}

/** An entry of the leader's log: (index, term). */
export interface Floor {
  index: number;
  term: number;
}

/** What a node records about its own standing (NodeIdentity in proto/raft.proto). */
export interface IdentityRecord {
  standDown: StandDown | null;
  floor: Floor | null;
  /** Formation found the cluster binding this node's id to this other storage: it waits to be re-added. */
  boundElsewhere: string;
}

export const EMPTY_IDENTITY: IdentityRecord = { standDown: null, floor: null, boundElsewhere: '' };

export interface IdentityStore {
  /** Replaces the record durably; done once it is on stable storage. */
  save(record: IdentityRecord, done: (err: Error | null) => void): void;
}
