// The simulator's fault mixes: what the network, the disks and the operator do to a run. Named mixes aim at
// one concern each; the swarm mix is drawn from the seed (each fault kind on or off, its rates drawn), so
// that faults which mask each other in a fixed mix meet in some seeds and not in others (swarm testing).
// The faults of the data directory at restart (replaced by an empty one; restored from an older copy) are the
// datadir mix's, drawn in swarm, and on in any mix with --data-dir-faults (never with a reset of the peers).

import { Prng } from '../../src/prng.js';

export interface FaultMix {
  name: string;
  /** Network during the fault phase. */
  loss: number;
  duplicate: number;
  delayMs: [number, number];
  spikeChance: number;
  spikeMs: [number, number];
  partitions: boolean;
  asymmetric: boolean;
  partial: boolean;
  crashes: boolean;
  slowDisk: boolean;
  expectedTerm: boolean;
  /** A crashed node comes back after this long, ms [min, max). */
  restartMs: [number, number];
  /** Faults strike every [min, max) ms during the fault phase. */
  faultEveryMs: [number, number];
  /**
   * Chance, per acknowledgement, vote or append a node sends (and per write a leader acknowledges to a
   * client), that it crashes right after sending it; powerLoss is the share of those crashes that take
   * every node down at the same instant (a rack losing power), the others take the sender alone.
   */
  crashAfterSend: number;
  powerLoss: number;
  /** Chance a snapshot chunk request fails, and that a chunk arrives corrupted (the CRC must catch it). */
  chunkLoss: number;
  chunkCorrupt: number;
  /** Chance, per chunk written, that the installing node crashes there. */
  crashMidInstall: number;
  /** The operator: membership changes, leadership transfers, and one reset-peers after a lost majority. */
  membership: boolean;
  transfers: boolean;
  resetPeers: boolean;
  /** The operator acts every [min, max) ms. */
  operatorEveryMs: [number, number];
  /** At a crash, unsynced sectors may survive whole or torn (else every unsynced sector is lost). */
  tornSectors: boolean;
  /** Windows in which a node's syncs fail with EIO (the node must stop; it restarts after a machine reset). */
  syncErrors: boolean;
  /** Windows in which a node's disk is full (ENOSPC on writes that need new space). */
  diskFull: boolean;
  /**
   * Latent sector errors: sectors that were durable read back flipped or fail (one node per run). Its own
   * switch: a node stops on them until repair from peers exists.
   */
  rot: boolean;
  /**
   * At restarts, a data directory replaced by an empty one (the operator re-adds the node later) or restored from
   * an older copy (where a leader can see it): disk-faults.ts. Not in runs that reset the peers.
   */
  dataDirFaults: boolean;
}

/** The network outside the fault phase. */
export const CALM_NET = {
  loss: 0,
  duplicate: 0,
  delayMs: [0.2, 2] as [number, number],
  spikeChance: 0,
  spikeMs: [0, 0] as [number, number],
};

const base: FaultMix = {
  name: '',
  ...CALM_NET,
  partitions: false,
  asymmetric: false,
  partial: false,
  crashes: false,
  slowDisk: false,
  expectedTerm: true,
  restartMs: [30, 800],
  faultEveryMs: [100, 600],
  crashAfterSend: 0,
  powerLoss: 0,
  chunkLoss: 0,
  chunkCorrupt: 0,
  crashMidInstall: 0,
  membership: false,
  transfers: false,
  resetPeers: false,
  operatorEveryMs: [150, 600],
  tornSectors: false,
  syncErrors: false,
  diskFull: false,
  rot: false,
  dataDirFaults: false,
};

export const MIXES: Record<string, FaultMix> = {
  calm: { ...base, name: 'calm' },
  lossy: {
    ...base,
    name: 'lossy',
    loss: 0.15,
    duplicate: 0.05,
    delayMs: [0.2, 5],
    spikeChance: 0.05,
    spikeMs: [20, 120],
    chunkLoss: 0.05,
  },
  partition: { ...base, name: 'partition', partitions: true, loss: 0.02 },
  asymmetric: { ...base, name: 'asymmetric', asymmetric: true },
  partial: { ...base, name: 'partial', partial: true },
  crash: { ...base, name: 'crash', crashes: true, crashMidInstall: 0.02, tornSectors: true },
  // The disk misbehaves: crashes that tear unsynced sectors, syncs that fail, a disk that fills up.
  disk: {
    ...base,
    name: 'disk',
    crashes: true,
    tornSectors: true,
    syncErrors: true,
    diskFull: true,
    restartMs: [5, 300],
  },
  // Latent sector errors under crashes (its own switch: a node that finds one stops until repaired).
  rot: { ...base, name: 'rot', crashes: true, tornSectors: true, rot: true, faultEveryMs: [50, 300] },
  slowdisk: { ...base, name: 'slowdisk', slowDisk: true, delayMs: [0.2, 3] },
  // Crash-restart cycles faster than an election round, with partitions forcing elections, and crashes
  // right after a node acknowledges or votes: what it sent must already be durable.
  crashfast: {
    ...base,
    name: 'crashfast',
    crashes: true,
    partitions: true,
    delayMs: [0.5, 6],
    restartMs: [1, 15],
    faultEveryMs: [15, 80],
    crashAfterSend: 0.01,
    powerLoss: 0.3,
    tornSectors: true,
  },
  // Membership changes and transfers under crashes and partitions.
  membership: {
    ...base,
    name: 'membership',
    membership: true,
    transfers: true,
    crashes: true,
    partitions: true,
    loss: 0.02,
    crashMidInstall: 0.01,
    tornSectors: true,
  },
  // A majority lost for good, the survivor reset, fresh nodes added back; crashes keep going.
  reset: {
    ...base,
    name: 'reset',
    resetPeers: true,
    membership: true,
    crashes: true,
    restartMs: [5, 200],
    chunkLoss: 0.02,
    tornSectors: true,
  },
  // Data directories replaced by empty ones (re-added by the operator with replace-node's steps) or restored
  // from older copies (a leader gives the node its floor), under crashes, partitions and membership changes.
  datadir: {
    ...base,
    name: 'datadir',
    crashes: true,
    tornSectors: true,
    dataDirFaults: true,
    partitions: true,
    loss: 0.02,
    membership: true,
    transfers: true,
    restartMs: [30, 400],
  },
  chaos: {
    ...base,
    name: 'chaos',
    loss: 0.08,
    duplicate: 0.05,
    delayMs: [0.2, 8],
    spikeChance: 0.03,
    spikeMs: [20, 200],
    partitions: true,
    asymmetric: true,
    partial: true,
    crashes: true,
    slowDisk: true,
    crashAfterSend: 0.003,
    powerLoss: 0.2,
    chunkLoss: 0.05,
    chunkCorrupt: 0.02,
    crashMidInstall: 0.01,
    membership: true,
    transfers: true,
    tornSectors: true,
    syncErrors: true,
    diskFull: true,
  },
  swarm: { ...base, name: 'swarm' },
};

/**
 * The mix of a swarm run, drawn from its seed alone (so a seed replays alone): every fault kind is on or off
 * with even odds, and its rates are drawn.
 */
export function drawSwarmMix(seed: number): FaultMix {
  const r = new Prng(seed ^ 0x5eed5a17);
  const on = () => r.chance(0.5);
  const between = (lo: number, hi: number) => lo + r.next() * (hi - lo);
  const fastRestart = on();
  const m: FaultMix = {
    ...base,
    name: 'swarm',
    loss: on() ? between(0.01, 0.2) : 0,
    duplicate: on() ? between(0.01, 0.1) : 0,
    delayMs: on() ? [0.2, between(2, 10)] : CALM_NET.delayMs,
    spikeChance: on() ? between(0.01, 0.08) : 0,
    spikeMs: [20, between(50, 250)],
    partitions: on(),
    asymmetric: on(),
    partial: on(),
    crashes: on(),
    slowDisk: on(),
    expectedTerm: on(),
    restartMs: fastRestart ? [1, between(5, 30)] : [30, between(100, 800)],
    faultEveryMs: on() ? [15, between(40, 120)] : [100, between(200, 700)],
    crashAfterSend: on() ? between(0.001, 0.02) : 0,
    powerLoss: on() ? between(0.1, 0.6) : 0,
    chunkLoss: on() ? between(0.01, 0.1) : 0,
    chunkCorrupt: on() ? between(0.01, 0.05) : 0,
    crashMidInstall: on() ? between(0.005, 0.05) : 0,
    membership: on(),
    transfers: on(),
    resetPeers: r.chance(0.2),
    operatorEveryMs: [between(50, 200), between(300, 800)],
    tornSectors: on(),
    syncErrors: on(),
    diskFull: on(),
    rot: r.chance(0.25),
    dataDirFaults: false,
  };
  m.dataDirFaults = !m.resetPeers && r.chance(0.5);
  return m;
}

/** The mix a run uses: a named one as it is, the swarm mix drawn from the seed. */
export function mixFor(name: string, seed: number): FaultMix {
  const m = MIXES[name];
  if (!m) throw new Error(`unknown mix ${name}`);
  return name === 'swarm' ? drawSwarmMix(seed) : m;
}

/** The mix's switches, for a failure report: which faults this run had on. */
export function describeMix(m: FaultMix): string {
  const on: string[] = [];
  if (m.loss > 0) on.push(`loss=${m.loss.toFixed(3)}`);
  if (m.duplicate > 0) on.push(`dup=${m.duplicate.toFixed(3)}`);
  if (m.spikeChance > 0) on.push(`spikes=${m.spikeChance.toFixed(3)}`);
  for (const k of [
    'partitions',
    'asymmetric',
    'partial',
    'crashes',
    'slowDisk',
    'membership',
    'transfers',
    'resetPeers',
    'tornSectors',
    'syncErrors',
    'diskFull',
    'rot',
    'dataDirFaults',
  ] as const)
    if (m[k]) on.push(k);
  if (m.crashes) on.push(`restart=${m.restartMs[0]}-${Math.round(m.restartMs[1])}ms`);
  if (m.crashAfterSend > 0)
    on.push(
      `crashAfterSend=${m.crashAfterSend.toFixed(4)}${m.powerLoss > 0 ? ` powerLoss=${m.powerLoss.toFixed(2)}` : ''}`,
    );
  if (m.chunkLoss > 0) on.push(`chunkLoss=${m.chunkLoss.toFixed(3)}`);
  if (m.chunkCorrupt > 0) on.push(`chunkCorrupt=${m.chunkCorrupt.toFixed(3)}`);
  if (m.crashMidInstall > 0) on.push(`crashMidInstall=${m.crashMidInstall.toFixed(3)}`);
  return on.join(' ') || 'calm';
}

/** The command that replays one run, with a trace. */
export function replayCommand(
  r: { seed: number; mix: string; nodes: number },
  o: {
    bug?: string | undefined;
    checks?: string | undefined;
    faultMs?: number | undefined;
    dataDirFaults?: boolean | undefined;
  } = {},
): string {
  const fault = `${o.faultMs !== undefined && o.faultMs !== 3000 ? ` --fault-ms ${o.faultMs}` : ''}${o.dataDirFaults ? ' --data-dir-faults' : ''}`;
  return `npm run sim -- --seed ${r.seed} --mix ${r.mix} --nodes ${r.nodes}${fault}${o.bug ? ` --bug ${o.bug}` : ''}${o.checks && o.checks !== 'all' ? ` --checks ${o.checks}` : ''} --trace`;
}
