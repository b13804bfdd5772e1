// Three replicas in one thread for replica unit tests: a network that delivers in order unless a node is cut
// off, a clock moved by ticks, log writes that complete at once unless a node's disk is held (then they wait
// until released), and every log line kept.

import { expect } from 'chai';
import { DEFAULT_REPLICA_OPTIONS, Replica } from '../../src/replica/replica.js';
import type { ReplicaOptions } from '../../src/replica/replica.js';
import { memoryReplicaLog, nullStateMachine } from './replica-log.js';
import { MemoryStorage } from '../../src/raft/memory-storage.js';
import type { Message, NodeId, SnapshotMeta } from '../../src/raft/types.js';
import type { Logger } from '../../src/logger.js';

export const IDS = ['n1', 'n2', 'n3'];
export const TICK_MS = 10;

export interface LogLine {
  node: NodeId;
  level: string;
  obj: object;
  msg: string;
}

function recordingLogger(node: NodeId, lines: LogLine[]): Logger {
  const at = (level: string) => (obj: object, msg: string) => void lines.push({ node, level, obj, msg });
  return { info: at('info'), warn: at('warn'), error: at('error'), debug: at('debug') } as Logger;
}

/** Three replicas; n1 is made leader (it alone times out first) before this returns. */
export function replicaCluster(overrides: Partial<ReplicaOptions> = {}) {
  const options: ReplicaOptions = { ...DEFAULT_REPLICA_OPTIONS, tickMs: TICK_MS, ...overrides };
  const conf = { voters: IDS, votersOutgoing: [], learners: [] };
  const boot: SnapshotMeta = { index: 1, term: 1, conf, peers: IDS.map((id) => ({ id, address: `sim://${id}` })) };
  const tasks: (() => void)[] = [];
  const wire: Message[] = [];
  const cut = new Set<NodeId>();
  /** Nodes whose disk is held: their writes wait here until released. */
  const held = new Map<NodeId, (() => void)[]>();
  const lines: LogLine[] = [];
  let now = 0;
  const replicas = new Map<NodeId, Replica<number>>();
  for (const id of IDS) {
    const storage = new MemoryStorage(conf);
    storage.applySnapshot(boot);
    const log = memoryReplicaLog(storage, { term: 1, vote: '', commit: 1 }, (_h, entries, done) => {
      const finish = () => {
        storage.append(entries);
        done(null);
      };
      const hold = held.get(id);
      if (hold) hold.push(finish);
      else tasks.push(finish);
    });
    const r = new Replica<number>(id, options, {
      log,
      stateMachine: nullStateMachine,
      transport: { send: (ms) => void wire.push(...ms) },
      clock: { now: () => now, defer: (fn) => tasks.push(fn) },
      random: () => 0.5,
      logger: recordingLogger(id, lines),
      checkInvariants: true,
    });
    replicas.set(id, r);
    r.start();
  }
  const settle = () => {
    for (let i = 0; i < 100_000 && (tasks.length > 0 || wire.length > 0); i++) {
      if (tasks.length > 0) tasks.shift()!();
      else {
        const m = wire.shift()!;
        if (!cut.has(m.from) && !cut.has(m.to)) replicas.get(m.to)!.receive([m]);
      }
    }
  };
  const tick = (ids: NodeId[] = IDS) => {
    now += TICK_MS;
    for (const id of ids) replicas.get(id)!.tick();
    settle();
  };
  const r = (id: NodeId) => replicas.get(id)!;
  for (let t = 0; t < 100 && !r('n1').isLeader; t++) tick(['n1']);
  expect(r('n1').isLeader).to.equal(true);
  for (let t = 0; t < 3; t++) tick();
  return {
    options,
    r,
    tick,
    settle,
    cut,
    lines,
    now: () => now,
    /** Moves the clock without a tick (a write that takes this long). */
    advance: (ms: number) => {
      now += ms;
    },
    /** Holds a node's disk: its writes from now on wait until release(). */
    hold: (id: NodeId) => void held.set(id, held.get(id) ?? []),
    release: (id: NodeId) => {
      const waiting = held.get(id) ?? [];
      held.delete(id);
      for (const f of waiting) tasks.push(f);
      settle();
    },
    leader: () => IDS.find((id) => r(id).isLeader),
  };
}
