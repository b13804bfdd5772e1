// The faults of the simulated disks a mix switches on, injected during the fault phase: windows in which a
// node's syncs fail with EIO or its disk is full, latent sector errors (rot) in the durable bytes of one node,
// and a data directory replaced by an empty one or restored from an older copy at a restart. Healing ends
// every window; rot stays (a node stopped by it stays down until repaired).

import type { Prng } from '../../src/prng.js';
import type { SimCluster } from './cluster.js';
import type { SimNode } from './sim-node.js';
import type { DurableImage } from './sim-file-system.js';
import { isJointQuorum } from './checker.js';
import { ProgressState } from '../../src/raft/progress.js';
import { durableHardState, PATHS } from './sim-storage.js';

export class DiskFaultInjector {
  readonly counts = { eioWindows: 0, fullWindows: 0, rot: 0, stops: 0, wiped: 0, restored: 0 };
  /** The one node whose disk rots, drawn at the first rot. */
  private rotVictim: SimNode | null = null;
  /** The newest copy of each node's data directory (a backup), for the restored-from-an-older-copy fault. */
  private readonly copies = new Map<string, DurableImage>();
  private readonly windows = new Set<SimNode>();

  constructor(
    private readonly c: SimCluster,
    private readonly rng: Prng,
  ) {}

  get total(): number {
    const k = this.counts;
    return k.eioWindows + k.fullWindows + k.rot + k.wiped + k.restored;
  }

  /** The disk-fault actions the fault step picks among (with the network's and the crashes'). */
  actions(): (() => void)[] {
    const mix = this.c.opts.mix;
    const out: (() => void)[] = [];
    if (this.c.identityChecks.quiet) return out;
    if (mix.syncErrors) out.push(() => this.window('eio'));
    if (mix.diskFull) out.push(() => this.window('full'));
    if (mix.rot && !mix.resetPeers) out.push(() => this.rot());
    return out;
  }

  start(): void {
    if (!this.c.opts.mix.dataDirFaults) return;
    // Backups taken now and then: a restore brings one of them back.
    const backup = () => {
      if (!this.c.inFaultPhase) return;
      const n = this.c.nodes.get(this.rng.pick(this.c.ids));
      if (n?.serviceable && !needsRepair(n)) this.copies.set(n.id, n.fs.durableImage());
      this.c.q.schedule(this.rng.int(100, 600), backup);
    };
    this.c.q.schedule(this.rng.int(100, 600), backup);
  }

  /** A node's syncs fail, or its disk is full, for a while. */
  private window(kind: 'eio' | 'full'): void {
    const node = this.c.nodes.get(this.rng.pick(this.c.ids));
    if (!node?.serviceable || this.windows.has(node)) return;
    this.windows.add(node);
    const ms = this.rng.int(20, 300);
    if (kind === 'eio') {
      this.counts.eioWindows++;
      node.fs.faults.syncEio = 0.05 + this.rng.next() * 0.5;
    } else {
      this.counts.fullWindows++;
      node.fs.faults.full = true;
    }
    this.c.trace(`DISK ${node.id}: ${kind === 'eio' ? 'syncs fail with EIO' : 'full (ENOSPC)'} for ${ms} ms`);
    this.c.q.schedule(ms, () => this.end(node));
  }

  private end(node: SimNode): void {
    node.fs.faults = { syncEio: 0, full: false };
    this.windows.delete(node);
  }

  /**
   * A durable sector of one node rots: of its Raft log or metadata, or of a journal segment file its snapshots
   * hold (a finalized segment, or the prefix of the in-progress one a snapshot recorded). Not in the last write
   * of the log's in-progress segment: damage there cannot be told from a torn write (log-recovery.ts), and the
   * node's recovery takes it for one, as documented; anywhere else it must be found.
   */
  private rot(): void {
    this.rotVictim ??= this.c.nodes.get(this.rng.pick(this.c.ids)) ?? null;
    const node = this.rotVictim;
    if (!node?.running) return;
    const journalData = this.rng.chance(0.5);
    let where: string | null = null;
    for (let attempt = 0; attempt < 5 && where === null; attempt++)
      where = node.fs.rotSector(this.rng, (files) =>
        journalData ? this.journalTarget(node, files) : this.raftTarget(node, files),
      );
    if (where === null) return;
    this.counts.rot++;
    this.c.trace(`ROT ${node.id}: ${where}`);
  }

  private raftTarget(node: SimNode, files: { path: string; sizeBytes: number }[]) {
    const log = node.diskLog!;
    const tail = log.locate(log.lastIndex());
    const raft = files.filter((f) => f.path.startsWith(`${PATHS.raft}/`) && f.sizeBytes > 0);
    if (raft.length === 0) return null;
    const f = this.rng.pick(raft);
    if (!f.path.includes('log_inprogress_')) return f.path;
    if (tail?.file !== f.path) return null;
    return { path: f.path, belowBytes: tail.offsetBytes + tail.frameBytes - this.c.tornWriteBytes };
  }

  /** A journal file as a snapshot holds it, within the bytes its manifest recorded. */
  private journalTarget(node: SimNode, files: { path: string; sizeBytes: number }[]) {
    const store = node.storage!.stateMachine.snapshots;
    const held = files.filter((f) => f.path.startsWith(`${PATHS.snapshots}/snap_`) && f.path.includes('/journals/'));
    if (held.length === 0) return null;
    const f = this.rng.pick(held);
    const [, snapDir, , jid, file] = f.path.slice(PATHS.snapshots.length).split('/');
    const index = Number(snapDir?.slice('snap_'.length));
    let sizeBytes: number | undefined;
    try {
      sizeBytes = store
        .manifestOf(index)
        ?.journals.find((j) => j.jid === jid)
        ?.segments.find((s) => s.file === file)?.sizeBytes;
    } catch {
      return null;
    }
    return sizeBytes === undefined ? null : { path: f.path, belowBytes: sizeBytes };
  }

  /** Every window ends (the fault phase is over). */
  heal(): void {
    for (const n of [...this.windows]) this.end(n);
  }

  /**
   * At a restart, when the mix has data-directory faults: the disk replaced by an empty one (the node starts
   * with its usual command line and must wait to be re-added: the operator repairs it later), or restored from
   * an older copy of the same storage (a leader must see it and give it its floor). Only where a quorum of the
   * configuration keeps intact disks without this node (losing more loses data, whatever a protocol does), and
   * a restore only where a leader can detect it: it leads in a term at least the node's, and its match index for
   * the node covers every committed entry the node's disk held. The restored node's debt keeps the cluster quiet
   * until it is paid (identity-checks.ts).
   */
  beforeRestart(node: SimNode): void {
    const mix = this.c.opts.mix;
    if (!mix.dataDirFaults || mix.resetPeers || !this.c.inFaultPhase || this.c.identityChecks.quiet) return;
    if (!this.rng.chance(0.25) || needsRepair(node) || !this.othersIntact(node)) return;
    // Not while a membership change is in flight: it may wait for this very node to catch up on its disk.
    if (this.c.operator.changeInFlight) return;
    const copy = this.copies.get(node.id);
    // A restore where no leader could see it is not made (identity-checks.ts would have nothing to judge).
    if (copy && this.rng.chance(0.6)) return this.restore(node, copy);
    this.counts.wiped++;
    this.c.trace(`DATA DIR ${node.id}: replaced by an empty one`);
    node.diskReplaced('wiped');
    node.fs.wipe();
    this.copies.delete(node.id);
    this.c.operator.repairLater(node);
  }

  /**
   * Without `node`, the intact disks of every configuration a running node holds (the one in force among them)
   * are a quorum of each of its halves (no running node with a configuration: no fault).
   */
  private othersIntact(node: SimNode): boolean {
    const intact = (id: string) => {
      const n = this.c.nodes.get(id);
      // (The node whose disk rots will stop on it, and stay down: it is not counted either.)
      return (
        id !== node.id &&
        n !== undefined &&
        n !== this.rotVictim &&
        n.serviceable &&
        !needsRepair(n) &&
        n.refused === null
      );
    };
    const confs = [...this.c.nodes.values()]
      .filter((n) => n.running)
      .map((n) => n.replica!.rawNode.conf())
      .filter((conf) => conf.voters.length > 0);
    return confs.length > 0 && confs.every((conf) => isJointQuorum(conf, intact));
  }

  private restore(node: SimNode, copy: DurableImage): void {
    const leadId = this.c.leader();
    const lead = leadId ? this.c.nodes.get(leadId) : undefined;
    const held = node.log();
    if (!lead?.running || lead === node || !held) return;
    const raw = lead.replica!.rawNode;
    const index = Math.min(held.lastIndex(), this.c.checker.maxCommittedIndex);
    const progress = raw.raft.progress.get(node.id);
    // An append's answer shows the loss: the leader must be replicating to the node (if it sends it a snapshot
    // instead, the install covers what it lost: identity-checks.ts waits for it).
    if (!progress || progress.state === ProgressState.Snapshot || progress.match < index) return;
    if (raw.term < durableHardState(node.fs).term) return;
    // Every other running node follows that leader in its term, and they are a quorum without this node: the
    // leader keeps leading and reaches the restored node before anyone can ask it for a vote (the copy's term
    // and vote are older too: a vote it gives again in a term it voted in could elect a second leader).
    const others = [...this.c.nodes.values()].filter((n) => n !== node && n.running);
    if (others.some((n) => n.replica!.term !== raw.term || n.replica!.leaderId !== lead.id)) return;
    if (!isJointQuorum(raw.conf(), (id) => others.some((n) => n.id === id))) return;
    this.counts.restored++;
    this.c.trace(`DATA DIR ${node.id}: restored from an older copy (it owes committed entry ${index})`);
    node.diskReplaced('restored');
    node.fs.restoreImage(copy);
    this.c.quietStarted();
    this.c.identityChecks.owe(node, index, raw.termAt(index) ?? 0);
  }
}

/** A node whose disk was replaced and that is not re-added yet. */
export function needsRepair(n: SimNode): boolean {
  return n.wiped || n.replacedStorage !== null;
}
