// The simulator's disk (test/sim/sim-file-system.ts) for unit tests: completions on setImmediate, no latency,
// an operator-made /data directory. Storage tests use it to crash a disk at a chosen point.

import { Prng } from '../../src/prng.js';
import { SimFileSystem } from '../sim/sim-file-system.js';

export function attachImmediate(fs: SimFileSystem, seed = 1): void {
  fs.attach({ schedule: (_ms, fn) => setImmediate(fn), latencyMs: () => 0, rng: new Prng(seed) });
}

/** A simulated disk with a durable, empty /data. */
export function immediateDisk(label = 'd', seed = 1): SimFileSystem {
  const fs = new SimFileSystem(label);
  attachImmediate(fs, seed);
  fs.mkdirp('/data');
  fs.fsyncPathSync('/');
  return fs;
}
