// Snapshot transfer between simulated nodes: a follower's fetch (the state machine's own loop) pulls from the
// peer's own snapshot store (its newest manifest, encoded and decoded as on the wire; chunks read from its
// disk) across the simulated network, with its faults: lost and corrupted chunks, crashes mid-install.

import type { NodeId } from '../../src/raft/types.js';
import { decodeManifest, encodeManifest } from '../../journalnode/state/snapshot-store.js';
import type { ManifestData } from '../../journalnode/state/snapshot-store.js';
import type { FetchSource } from '../../journalnode/state/snapshot-fetch.js';
import type { SimCluster } from './cluster.js';
import type { SimNode } from './sim-node.js';

/**
 * Where `to`'s snapshot fetch pulls from: the peer's own snapshot store (its newest manifest, encoded and
 * decoded as on the wire; chunks read from its disk), across the simulated network with its faults.
 */
export function simSnapshotSource(c: SimCluster, to: SimNode, from: NodeId): FetchSource<ManifestData> {
  const host = c.hostFor(to);
  const rpc = <T>(serve: (src: SimNode) => T, cb: (err: Error | null, v?: T) => void, lossy: boolean) => {
    host.schedule(2 * c.netDelay() + 0.5, () => {
      const src = c.nodes.get(from);
      if (!src?.running || c.isBlocked(from, to.id) || c.isBlocked(to.id, from))
        return cb(new Error(`${from} unreachable`));
      if (lossy && c.inFaultPhase && c.opts.mix.chunkLoss > 0 && c.rng.chance(c.opts.mix.chunkLoss))
        return cb(new Error(`chunk from ${from} lost`));
      let v: T;
      try {
        v = serve(src);
      } catch (e) {
        return cb(e as Error);
      }
      cb(null, v);
    });
  };
  return {
    manifest: (minIndex, cb) =>
      rpc(
        (src) => {
          const newest = src.storage!.stateMachine.snapshots.newest();
          if (!newest || newest.index < minIndex)
            throw new Error(`${from} has no snapshot at ${minIndex} (newest ${newest?.index ?? 'none'})`);
          return decodeManifest(encodeManifest(newest.manifest), `snapshot manifest from ${from}`);
        },
        cb,
        false,
      ),
    chunk: (index, f, offset, length, cb) =>
      rpc(
        (src) => {
          const bytes = src.storage!.stateMachine.snapshots.readChunk(index, f.jid, f.file, offset, length);
          if (
            c.inFaultPhase &&
            bytes.byteLength > 0 &&
            c.opts.mix.chunkCorrupt > 0 &&
            c.rng.chance(c.opts.mix.chunkCorrupt)
          )
            bytes[c.rng.int(0, bytes.byteLength)]! ^= 0x20;
          maybeCrashMidInstall(c, to);
          return bytes;
        },
        cb,
        true,
      ),
  };
}

/** With the mix's odds, a node crashes while it stages a snapshot (after a chunk, before the next). */
function maybeCrashMidInstall(c: SimCluster, node: SimNode): void {
  const rate = c.opts.mix.crashMidInstall;
  if (rate === 0 || !c.inFaultPhase || !c.rng.chance(rate)) return;
  c.q.schedule(0, () => {
    c.trace(`${node.id} crashes in the middle of a snapshot install`);
    c.crashAndRestart(node);
  });
}
