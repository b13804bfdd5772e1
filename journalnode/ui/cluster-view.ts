// The whole cluster on one page: the node serving the dashboard gathers every member's /status and /activity
// through its own peer HTTP client (the one that carries this node's certificate to its peers) and returns
// the aggregate. Bounded: each peer answers within peerTimeoutMs or is shown unreachable; one gathering per
// history length at a time, shared by every viewer that asks within cacheMs, so N viewers cost what one does.

import type { HttpPools } from '../../src/http-pool.js';
import { checkNodeStatus } from '../../src/node-status.js';
import type { MemberJson, NodeStatusJson } from '../../src/node-status.js';
import type { ActivityJson } from '../observe/activity.js';
import type { NodeEvent } from '../observe/events.js';
import type { HistoryJson } from '../observe/history.js';

export interface MemberView {
  id: string;
  address: string;
  role: MemberJson['role'] | 'not a member';
  reachable: boolean;
  /** Why the node's answer is missing (unreachable, timed out, a bad answer). */
  error: string | null;
  status: NodeStatusJson | null;
  history: HistoryJson | null;
  /** The node's clock minus the serving node's, as far as one request can tell (event times differ by it). */
  clockOffsetMs: number | null;
}

/** An event as the page shows it: recorded by one node, or by every node listed (the same key). */
export interface ClusterEvent extends NodeEvent {
  nodes: string[];
}

export interface ClusterJson {
  servedBy: string;
  nowMs: number;
  clusterId: string;
  /** The leader in the highest term any reachable member reports; null while there is none. */
  leader: string | null;
  term: number;
  members: MemberView[];
  /** Newest last. */
  events: ClusterEvent[];
}

export interface ClusterViewOptions {
  selfId: string;
  /** This node's own status and activity (read in-process, never over HTTP). */
  local(historyS: number): { status: NodeStatusJson; activity: ActivityJson };
  clients: HttpPools;
  peerTimeoutMs: number;
  cacheMs: number;
  maxEvents: number;
}

/** The history lengths a viewer may ask for: everything (first load) or the newest seconds (each poll). */
export const HISTORY_CHOICES_S = [10, 60, 600] as const;

function checkActivity(body: unknown, id: string): ActivityJson {
  const a = body as Partial<ActivityJson> | null;
  const h = a?.history as Partial<HistoryJson> | undefined;
  const columns = h && [h.t, h.txns, h.fsyncs, h.fsyncP50Ms, h.fsyncP99Ms];
  if (
    typeof a !== 'object' ||
    a === null ||
    a.id !== id ||
    typeof a.nowMs !== 'number' ||
    !Array.isArray(a.events) ||
    !columns ||
    !columns.every((c) => Array.isArray(c) && c.length === h.t!.length)
  ) {
    throw new Error('not a JournalNode /activity answer');
  }
  return a as ActivityJson;
}

/** Reachability events kept by the view itself (a member that dies records nothing of its own death). */
const MAX_REACH_EVENTS = 50;

export class ClusterView {
  /** Per history length: the gathering in flight, or the last one and when it finished. */
  private readonly gatherings = new Map<number, { done: boolean; atMs: number; result: Promise<ClusterJson> }>();
  /** Whether each member answered the last gathering, and the events of the changes seen (bounded ring). */
  private readonly reachable = new Map<string, boolean>();
  private readonly reachEvents: NodeEvent[] = [];
  private reachSeq = 0;

  constructor(private readonly options: ClusterViewOptions) {}

  /** The aggregate with the newest historyS seconds of each node's history (rounded up to a choice). */
  gather(historyS: number): Promise<ClusterJson> {
    const h = HISTORY_CHOICES_S.find((c) => c >= historyS) ?? HISTORY_CHOICES_S[HISTORY_CHOICES_S.length - 1];
    const last = this.gatherings.get(h);
    if (last && (!last.done || Date.now() - last.atMs < this.options.cacheMs)) return last.result;
    const g = { done: false, atMs: 0, result: this.collect(h) };
    const settle = () => {
      g.done = true;
      g.atMs = Date.now();
    };
    g.result.then(settle, settle);
    this.gatherings.set(h, g);
    return g.result;
  }

  private async getJson(address: string, path: string): Promise<unknown> {
    const t = this.options.peerTimeoutMs;
    const r = await this.options.clients.request(address, 'GET', path, null, t, AbortSignal.timeout(t));
    if (r.status !== 200) throw new Error(`HTTP ${r.status}`);
    return JSON.parse(r.body.toString('utf8')) as unknown;
  }

  private async member(
    m: MemberJson | { id: string; address: string; role: MemberView['role'] },
    historyS: number,
  ): Promise<{ view: MemberView; events: NodeEvent[] }> {
    const down = (error: string): { view: MemberView; events: NodeEvent[] } => ({
      view: { ...m, reachable: false, error, status: null, history: null, clockOffsetMs: null },
      events: [],
    });
    if (m.id === this.options.selfId) {
      const { status, activity } = this.options.local(historyS);
      return {
        view: { ...m, reachable: true, error: null, status, history: activity.history, clockOffsetMs: 0 },
        events: activity.events,
      };
    }
    if (!m.address) return down('no address known');
    const sentAt = Date.now();
    try {
      const [status, activity] = await Promise.all([
        this.getJson(m.address, '/status').then(checkNodeStatus),
        this.getJson(m.address, `/activity?historyS=${historyS}&events=100`).then((b) => checkActivity(b, m.id)),
      ]);
      if (status.id !== m.id) return down(`${m.address} answers as ${status.id}`);
      const clockOffsetMs = Math.round(activity.nowMs - (sentAt + Date.now()) / 2);
      return {
        view: { ...m, reachable: true, error: null, status, history: activity.history, clockOffsetMs },
        events: activity.events,
      };
    } catch (e) {
      const err = e as Error & { code?: string };
      return down(
        err.name === 'TimeoutError' ? `timed out after ${this.options.peerTimeoutMs} ms` : (err.code ?? err.message),
      );
    }
  }

  private async collect(historyS: number): Promise<ClusterJson> {
    const self = this.options.local(0).status;
    const members: (MemberJson | { id: string; address: string; role: MemberView['role'] })[] = [...self.peers];
    if (!members.some((m) => m.id === self.id)) members.push({ id: self.id, address: '', role: 'not a member' });
    const answers = await Promise.all(members.map((m) => this.member(m, historyS)));
    this.noteReachability(answers.map((a) => a.view));
    let leader: string | null = null;
    let term = 0;
    for (const { view } of answers) {
      const s = view.status;
      if (!s) continue;
      if (s.term > term) {
        term = s.term;
        leader = null;
      }
      if (s.term === term && s.state === 'leader') leader = s.id;
    }
    return {
      servedBy: self.id,
      nowMs: Date.now(),
      clusterId: self.clusterId,
      leader,
      term,
      members: answers.map((a) => a.view),
      events: mergeEvents([...answers.map((a) => a.events), this.reachEvents], this.options.maxEvents),
    };
  }

  /**
   * A member that stops answering cannot record that it died: the view does, when a member that answered
   * the last gathering does not answer this one (and again when it comes back). A member never seen to
   * answer is not news.
   */
  private noteReachability(views: MemberView[]): void {
    for (const v of views) {
      const before = this.reachable.get(v.id);
      this.reachable.set(v.id, v.reachable);
      if (before === undefined || before === v.reachable) continue;
      const atMs = Date.now();
      this.reachEvents.push({
        seq: ++this.reachSeq,
        atMs,
        node: this.options.selfId, // who saw it: the node gathering the view
        kind: v.reachable ? 'reachable' : 'unreachable',
        term: null,
        message: v.reachable ? `${v.id} answers again` : `${v.id} stopped answering (${v.error})`,
        key: null,
      });
      if (this.reachEvents.length > MAX_REACH_EVENTS) this.reachEvents.shift();
    }
    for (const id of [...this.reachable.keys()]) if (!views.some((v) => v.id === id)) this.reachable.delete(id);
  }
}

/** Every node's events as one list, newest last: an event several nodes recorded (same key) appears once. */
export function mergeEvents(perNode: NodeEvent[][], max: number): ClusterEvent[] {
  const byKey = new Map<string, ClusterEvent>();
  const out: ClusterEvent[] = [];
  for (const events of perNode) {
    for (const e of events) {
      const seen = e.key === null ? undefined : byKey.get(e.key);
      if (seen) {
        if (!seen.nodes.includes(e.node)) seen.nodes.push(e.node);
        seen.atMs = Math.min(seen.atMs, e.atMs);
        continue;
      }
      const c: ClusterEvent = { ...e, nodes: [e.node] };
      if (e.key !== null) byKey.set(e.key, c);
      out.push(c);
    }
  }
  out.sort((a, b) => a.atMs - b.atMs || a.node.localeCompare(b.node) || a.seq - b.seq);
  return out.slice(Math.max(0, out.length - max));
}
