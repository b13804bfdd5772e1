// What this node observes of itself, in one place: the hooks of the state machine, the log and the replica
// feed the metrics, the event ring (events.ts) and the per-second history (history.ts). The ring and the
// history are served as JSON at GET /activity — on the main port, where a peer's dashboard gathers them, and
// on the read-only dashboard port.

import type { FastifyInstance } from 'fastify';
import { QjmError } from '../../src/errors.js';
import type { NodeId } from '../../src/raft/types.js';
import type { ReplicaListener } from '../../src/replica/replica.js';
import { History } from './history.js';
import type { HistoryJson } from './history.js';
import { NodeEvents } from './events.js';
import type { NodeEvent } from './events.js';
import type { StateMachineOptions } from '../state/journal-state-machine.js';
import type { NodeMetrics } from './metrics.js';

export interface ActivityJson {
  id: NodeId;
  /** This node's clock when it answered (history and events carry times of the same clock). */
  nowMs: number;
  history: HistoryJson;
  events: NodeEvent[];
}

/** Upper bounds of GET /activity's query: the history ring's length and the event ring's. */
export const MAX_HISTORY_S = 600;
export const MAX_EVENTS = 256;

export class NodeActivity {
  readonly events: NodeEvents;
  readonly history = new History(MAX_HISTORY_S);

  constructor(
    readonly id: NodeId,
    private readonly metrics: NodeMetrics,
    /** The commit index the node restarted with: the replay of entries up to it records no event. */
    replayedThroughIndex: number,
  ) {
    this.events = new NodeEvents({ node: id, capacity: MAX_EVENTS, replayedThroughIndex, counters: metrics });
  }

  /** The state machine's observers. */
  stateMachineHooks(): Pick<StateMachineOptions, 'onRecordsAppended' | 'onNewEpoch' | 'onSnapshotInstalled'> {
    return {
      onRecordsAppended: (jid, txns, bytes, lastTxId, index) => {
        this.metrics.recordsAppended(jid, txns, bytes, lastTxId, index);
        this.history.txnsApplied(txns);
      },
      onNewEpoch: (jid, epoch, writerId, fenced, index) => this.events.newEpoch(jid, epoch, writerId, fenced, index),
      onSnapshotInstalled: (index) => this.events.snapshotInstalled(index),
    };
  }

  /** The Raft log's observer of each fdatasync. */
  fsynced(ms: number): void {
    this.metrics.fsynced(ms);
    this.history.fsynced(ms);
  }

  /** The replica's observer. */
  listener(): ReplicaListener {
    return this.events.listener();
  }

  /** Starts sampling the history once a second. */
  start(): void {
    this.history.start();
  }

  stop(): void {
    this.history.stop();
  }

  json(historyS: number, events: number): ActivityJson {
    return {
      id: this.id,
      nowMs: Date.now(),
      history: this.history.recent(historyS),
      events: this.events.recent(events),
    };
  }
}

/** A query parameter as an integer in [0, max]; absent: the default; anything else: an error message. */
export function intParam(q: unknown, name: string, max: number, dflt: number): number | string {
  const raw = (q as Record<string, unknown> | undefined)?.[name];
  if (raw === undefined) return dflt;
  const n = typeof raw === 'string' && /^\d{1,9}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= 0 && n <= max)) return `${name} must be an integer from 0 to ${max}`;
  return n;
}

/** GET /activity?historyS=N&events=M: the newest N seconds of history (default all) and M events (default 100). */
export function registerActivityRoute(app: FastifyInstance, activity: NodeActivity): void {
  app.get('/activity', async (req, reply) => {
    const historyS = intParam(req.query, 'historyS', MAX_HISTORY_S, MAX_HISTORY_S);
    const events = intParam(req.query, 'events', MAX_EVENTS, 100);
    const bad = [historyS, events].find((v) => typeof v === 'string');
    if (bad !== undefined) {
      const e = new QjmError('INVALID_ARGUMENT', bad as string);
      return reply.code(e.httpStatus).send(e.jsonBody());
    }
    return activity.json(historyS as number, events as number);
  });
}
