// The simulated network between the nodes: per-message loss, duplication, delay and spikes (the mix's, calm
// outside the fault phase and while a restored node owes its floor), cuts and partitions, and delivery as the
// JournalNode's peer transport does it: each batch in its envelope (sender, storage id, generation), judged by
// the receiver's identity rules before anything reaches it, a refusal answered to the incarnation that sent it.
// Nothing a node sent or was sent before its data directory was replaced or restored arrives after.

import { MessageType } from '../../src/raft/types.js';
import type { Message, NodeId } from '../../src/raft/types.js';
import type { BatchEnvelope, IdentityNotice } from '../../src/replica/replica.js';
import type { SimCluster } from './cluster.js';
import { CALM_NET } from './mixes.js';
import type { SimNode } from './sim-node.js';

/** Traced even without --trace-messages: what a reader needs to follow elections. */
const ELECTION_MESSAGES = new Set([
  MessageType.PreVote,
  MessageType.PreVoteResp,
  MessageType.Vote,
  MessageType.VoteResp,
  MessageType.TimeoutNow,
]);

export type NetParams = typeof CALM_NET;

export class SimNetwork {
  private readonly blocked = new Set<string>();
  private net: NetParams = { ...CALM_NET };
  /** The network of the fault phase (kept calm while a restored node owes its floor). */
  private faultNet: NetParams = { ...CALM_NET };

  constructor(private readonly c: SimCluster) {}

  isBlocked(from: NodeId, to: NodeId): boolean {
    return this.blocked.has(`${from}>${to}`);
  }

  /** The fault phase begins: the mix's loss, duplication and delays. */
  faultPhase(net: NetParams): void {
    this.faultNet = { ...net };
    this.net = { ...net };
  }

  /** A restored node paid its debt: the fault phase's network again, if it is not over. */
  resume(): void {
    if (this.c.inFaultPhase) this.net = { ...this.faultNet };
  }

  /** Every cut and partition ends (the next fault may draw new ones). */
  clearCuts(): void {
    this.blocked.clear();
  }

  heal(): void {
    this.blocked.clear();
    this.net = { ...CALM_NET };
    this.c.trace('HEAL network');
  }

  delay(): number {
    const [lo, hi] = this.net.delayMs;
    const rng = this.c.rng;
    let delay = lo + rng.next() * (hi - lo);
    if (this.net.spikeChance > 0 && rng.chance(this.net.spikeChance))
      delay += this.net.spikeMs[0] + rng.next() * (this.net.spikeMs[1] - this.net.spikeMs[0]);
    return delay;
  }

  /** Cuts both directions between two groups. */
  partition(a: NodeId[], b: NodeId[]): void {
    for (const x of a)
      for (const y of b) {
        this.blocked.add(`${x}>${y}`);
        this.blocked.add(`${y}>${x}`);
      }
    this.c.trace(`PARTITION [${a.join(',')}] | [${b.join(',')}]`);
  }

  cutOneWay(from: NodeId, to: NodeId): void {
    this.blocked.add(`${from}>${to}`);
    this.c.trace(`CUT ${from} -> ${to}`);
  }

  /** What a replica's transport sends: each message in its own batch, with its sender's envelope. */
  send(msgs: Message[]): void {
    const c = this.c;
    for (const m of msgs) {
      const from = c.nodes.get(m.from);
      if (!from?.alive || !from.replica) continue;
      // The batch's envelope, as the JournalNode's transport frames it: sender, its storage, its generation.
      const env: BatchEnvelope = { from: from.id, storageId: from.storageId, generation: from.replica.generation };
      c.observeSend(from, m);
      this.transmit(m, env);
      if (this.net.duplicate > 0 && c.rng.chance(this.net.duplicate)) this.transmit(m, env);
      c.maybeCrashAfterSend(from, m);
    }
  }

  private traced(m: Message): boolean {
    const o = this.c.opts;
    return o.traceMessages === true || (o.trace !== undefined && ELECTION_MESSAGES.has(m.type));
  }

  private transmit(m: Message, env: BatchEnvelope): void {
    const c = this.c;
    if (this.isBlocked(m.from, m.to) || (this.net.loss > 0 && c.rng.chance(this.net.loss))) {
      if (this.traced(m)) c.trace(`drop ${MessageType[m.type]} ${m.from}->${m.to}`);
      return;
    }
    const copy: Message = { ...m, entries: [...m.entries] };
    // A data directory replaced or restored takes the machine down for long: what was in flight is gone.
    const epochs = this.dataDirEpochs(copy);
    c.q.schedule(this.delay(), () => {
      const to = c.nodes.get(copy.to);
      if (!to?.running || this.isBlocked(copy.from, copy.to) || this.dataDirEpochs(copy) !== epochs) return;
      if (this.traced(copy))
        c.trace(
          `${MessageType[copy.type]} ${copy.from}->${copy.to} t${copy.term} i${copy.index} n${copy.entries.length} c${copy.commit}${copy.reject ? ' reject' : ''}`,
        );
      const replica = to.replica!;
      c.guarded(to, () => {
        // As the JournalNode's stream route: the identity verdict first; a refusal answers the sender.
        const verdict = replica.admitBatch(env);
        if (!verdict.ok) {
          if (verdict.notice) this.answerRefusal(to, env.from, verdict.notice);
          return;
        }
        c.identityChecks.admitted(to, copy, env);
        replica.receive([copy], env);
      })();
    });
  }

  private dataDirEpochs(m: Message): string {
    const nodes = this.c.nodes;
    return `${nodes.get(m.from)?.dataDirEpoch}:${nodes.get(m.to)?.dataDirEpoch}`;
  }

  /** `by` refused a batch of `to`'s: the refusal reaches the incarnation that sent it (its stream's answer). */
  private answerRefusal(by: SimNode, to: NodeId, notice: IdentityNotice): void {
    const c = this.c;
    const sender = c.nodes.get(to);
    if (!sender?.running) return;
    const inc = sender.incarnation;
    c.q.schedule(this.delay(), () => {
      if (!sender.running || sender.incarnation !== inc || this.isBlocked(by.id, to)) return;
      if (c.opts.traceMessages) c.trace(`${by.id} refused ${to}'s batch: ${notice.kind}`);
      const replica = sender.replica!;
      c.guarded(sender, () => replica.hearNotice(by.id, notice))();
    });
  }
}
