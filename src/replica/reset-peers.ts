// Reset-peers (braft's reset_peers) as the driver runs it, for when a majority is lost for good: this node's
// whole log is declared committed and applied, the new configuration — this node alone, bound to its storage,
// in a new reset generation — is forced, and a snapshot at a no-op of a new term makes it durable (a restart
// loads it from there). The node takes no peer input meanwhile. The others join it afresh: a node of the old
// generation that reaches it stands down (identity.ts).

import type { RawNode } from '../raft/raw-node.js';
import type { ConfState, NodeId, Peer } from '../raft/types.js';
import type { QjmError } from '../errors.js';
import type { Callback } from './client-waits.js';

export interface ResetResult {
  /** The index of the snapshot that holds the forced configuration. */
  index: number;
  /** This node's commit index before the reset: entries up to it were committed by a quorum. */
  committedBefore: number;
  /** Its last index before the reset: entries in (committedBefore, lastIndexBefore] were committed by fiat. */
  lastIndexBefore: number;
  /** The term of that last entry. */
  lastTermBefore: number;
}

export interface ResetContext {
  raw: RawNode;
  /** Nothing queued for or in flight to the disk; no snapshot being fetched, installed or saved. */
  idle: boolean;
  appliedIndex: number;
  /** The log is about to be committed by fiat: (committedIndex, lastIndex] had no quorum's word. */
  committingByFiat(committedIndex: number, lastIndex: number): void;
  /** The configuration was forced: the address book becomes `peers`. */
  forced(peers: readonly Peer[]): void;
  /** Saves a snapshot at the applied index carrying the current configuration; cb once durable. */
  saveSnapshot(cb: Callback<number>): void;
}

export class PeersReset {
  private phase: 'drain' | 'apply' | 'persist' | 'save' = 'drain';
  private committedBefore = 0;
  private lastIndexBefore = 0;
  private lastTermBefore = 0;
  private forcedIndex = 0;
  private finished = false;

  constructor(
    readonly peers: readonly Peer[],
    private readonly cb: Callback<ResetResult>,
  ) {}

  get done(): boolean {
    return this.finished;
  }

  private get conf(): ConfState {
    return { voters: this.peers.map((p) => p.id).sort(), votersOutgoing: [], learners: [] };
  }

  fail(e: QjmError): void {
    this.finish(e);
  }

  private finish(e: QjmError | null, r?: ResetResult): void {
    if (this.finished) return;
    this.finished = true;
    this.cb(e, r);
  }

  /**
   * Moves the reset forward as far as the disk and the state machine allow (after each Ready turn and tick).
   * Returns true when it moved to a new phase (the driver then has a Ready to process).
   */
  advance(c: ResetContext): boolean {
    const raw = c.raw;
    switch (this.phase) {
      case 'drain':
        // Every entry must be durable before it is committed, and nothing may replace the log meanwhile.
        if (!c.idle || raw.stableIndex() !== raw.lastIndex()) return false;
        this.committedBefore = raw.committedIndex();
        this.lastIndexBefore = raw.lastIndex();
        this.lastTermBefore = raw.termAt(this.lastIndexBefore) ?? 0;
        c.committingByFiat(this.committedBefore, this.lastIndexBefore);
        raw.forceCommitLog();
        this.phase = 'apply';
        return true;
      case 'apply':
        if (c.appliedIndex < raw.lastIndex()) return false;
        raw.forceConfiguration(this.conf);
        c.forced(this.peers);
        this.forcedIndex = raw.lastIndex();
        this.phase = 'persist';
        return true;
      case 'persist':
        // Applied means durable: the no-op and the new term are on disk.
        if (c.appliedIndex < this.forcedIndex || !c.idle) return false;
        this.phase = 'save';
        c.saveSnapshot((e, index) => {
          if (e) return this.finish(e);
          this.finish(null, {
            index: index!,
            committedBefore: this.committedBefore,
            lastIndexBefore: this.lastIndexBefore,
            lastTermBefore: this.lastTermBefore,
          });
        });
        return true;
      case 'save':
        return false;
    }
  }
}

/** Why `peers` cannot be forced on node `self`, or null. */
export function resetProblem(self: NodeId, peers: readonly Peer[]): string | null {
  if (peers.length === 0) return 'the new configuration has no voters';
  if (new Set(peers.map((p) => p.id)).size !== peers.length) return 'a peer is named twice';
  if (!peers.some((p) => p.id === self))
    return `the new configuration must include this node (${self}): reset the node that is to survive`;
  // Every other node is of the old generation: as a voter it could never vote in the new one (it stands down
  // on the survivor's word), so the survivor alone could not be elected. Others join afresh (add-peer).
  if (peers.length > 1)
    return `the new configuration must be this node alone (${self}): the other survivors join it afresh once it leads (wipe them, start them with --join, qjm add-peer)`;
  return null;
}
