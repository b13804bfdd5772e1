// A simulated node's integrity machinery: the shipped NodeIntegrity (scrubber, repairs, the leader's comparison
// of the replicas) over the node's storage, on the simulator's clock, reaching its peers over the simulated
// network: their integrity reports (encoded and checked as on the wire) and their copies of files.

import { checkIntegrityReport } from '../../src/integrity.js';
import { Prng } from '../../src/prng.js';
import type { Logger } from '../../src/logger.js';
import { NodeIntegrity, replicaView } from '../../journalnode/integrity/node-integrity.js';
import type { IntegrityPeers, IntegrityTimings } from '../../journalnode/integrity/node-integrity.js';
import type { ScrubClock } from '../../journalnode/integrity/scrubber.js';
import type { NodeId } from '../../src/raft/types.js';
import type { SimCluster } from './cluster.js';
import type { SimNode } from './sim-node.js';

/** The integrity timings of a simulated node: passes and comparisons every few hundred simulated ms. */
export function simIntegrityTimings(maxChunkBytes: number): IntegrityTimings {
  return {
    scrubBytesPerS: 4 << 20,
    scrubIntervalMs: 200,
    checkIntervalMs: 300,
    maxChunkBytes,
    repairRetryMs: 250,
  };
}

/** The node's integrity machinery, started: it lives as long as the node's incarnation. */
export function startIntegrity(c: SimCluster, node: SimNode, logger: Logger): NodeIntegrity {
  const host = c.hostFor(node);
  const clock: ScrubClock = {
    now: () => c.q.now,
    schedule: (ms, fn) => {
      let live = true;
      host.schedule(ms, () => {
        if (live) fn();
      });
      return () => {
        live = false;
      };
    },
  };
  const replica = node.replica!;
  const storage = node.storage!;
  const integrity = new NodeIntegrity({
    selfId: node.id,
    timings: simIntegrityTimings(c.settings.maxSnapshotChunkBytes),
    fileSystem: node.fs,
    diskLog: storage.diskLog,
    stateMachine: storage.stateMachine,
    replica: replicaView(replica),
    peers: simIntegrityPeers(c, node),
    clock,
    logger,
    hooks: {
      onFound: (r) => c.trace(`${node.id} DAMAGE found (${r.foundBy}): ${r.kind} ${r.file} ${r.range}: ${r.reason}`),
      onChange: (r) => c.trace(`${node.id} DAMAGE ${r.state}: ${r.kind} ${r.file}: ${r.note}`),
    },
  });
  integrity.startupDamage(storage.logDamage);
  integrity.start();
  return integrity;
}

/** A client's read met a damaged segment file: the node's read route reports it so (routes-qjm.ts). */
export function noteReadDamage(node: SimNode, err: Error): void {
  const e = err as Error & { file?: unknown; offset?: unknown; reason?: unknown };
  if (e.name !== 'SegmentCorruptError' || typeof e.file !== 'string') return;
  node.integrity?.readFoundDamage(e.file, typeof e.offset === 'number' ? e.offset : 0, String(e.reason));
}

/**
 * `to`'s requests to its peers' integrity machinery, across the simulated network (its partitions; a round trip
 * of 1-5 ms drawn from a generator of its own, so the integrity traffic leaves the run's other draws as they were).
 */
function simIntegrityPeers(c: SimCluster, to: SimNode): IntegrityPeers {
  const host = c.hostFor(to);
  const rng = new Prng(c.opts.seed * 131 + Number(to.id.slice(1)) * 17 + to.incarnation);
  const rpc = <T>(from: NodeId, serve: (src: SimNode) => T, cb: (err: Error | null, v?: T) => void) => {
    host.schedule(1 + rng.next() * 4, () => {
      const src = c.nodes.get(from);
      if (!src?.running || !src.integrity || c.isBlocked(from, to.id) || c.isBlocked(to.id, from))
        return cb(new Error(`${from} unreachable`));
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
    // As on the wire: JSON, and checked like any answer from the network.
    report: (peer, cb) =>
      rpc(peer, (src) => checkIntegrityReport(JSON.parse(JSON.stringify(src.integrity!.report()))), cb),
    describe: (peer, ref, cb) => rpc(peer, (src) => src.integrity!.describeFile(ref), cb),
    chunk: (peer, ref, offset, length, cb) =>
      rpc(
        peer,
        (src) => {
          const bytes = src.integrity!.readFileChunk(ref, offset, length);
          // A chunk corrupted on the way (the mix's odds): the repair's CRC must catch it.
          if (c.inFaultPhase && c.opts.mix.chunkCorrupt > 0 && rng.chance(c.opts.mix.chunkCorrupt))
            bytes[rng.int(0, bytes.byteLength)]! ^= 0x20;
          return bytes;
        },
        cb,
      ),
  };
}
