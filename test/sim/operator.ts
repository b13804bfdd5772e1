// The simulated operator, acting through the replica's own API the way qjm does: membership changes with
// changePeers (add, remove, replace, the leader included, several at once through one joint configuration),
// single raw steps (a learner that stays one, a learner dropped), leadership transfers, and once per run,
// if the mix says so, the majority-lost emergency: a majority destroyed for good, the survivor with the
// longest log reset to a one-node configuration, fresh nodes added back. New nodes start the way a
// JournalNode started with --join does (empty, at index 0, in no configuration), sometimes only after the
// change naming them began. Removed nodes are stopped for good once their removal is committed.

import type { Prng } from '../../src/prng.js';
import { ConfChangeOp, confMembers } from '../../src/raft/types.js';
import type { ConfState, NodeId, Peer } from '../../src/raft/types.js';
import type { SimCluster, SimNode } from './cluster.js';
import { memberList } from '../../journalnode/http/routes-admin.js';
import { newcomerProblem, replaceSteps } from '../../src/cli/replace-node.js';
import { simPeer, statusOf } from './sim-data-dir.js';
import { needsRepair } from './disk-faults.js';

/** A call in flight on one incarnation of a node: it ends with its callback, or with the node's crash. */
interface InFlight {
  node: SimNode;
  incarnation: number;
}

const MAX_JOINERS = 8;

function peer(id: NodeId): Peer {
  return simPeer(id);
}

/**
 * A node being added, as `qjm add-peer` adds it: bound to the storage it reports when it answers (else unbound:
 * it is bound, when promoted, to the storage it caught up on).
 */
function newcomer(n: SimNode): Peer {
  const st = statusOf(n);
  return simPeer(n.id, st && !newcomerProblem(n.id, st) ? st.storageId : undefined);
}

export class SimOperator {
  private changing: InFlight | null = null;
  private transferring: InFlight | null = null;
  /** Nodes to stop once no live node's configuration names them any more. */
  private readonly reap = new Set<NodeId>();
  private joiners = 0;
  private resetAtMs = Infinity;
  private reset: { survivor: SimNode; calling: InFlight | null; done: boolean; regrown: boolean } | null = null;
  /** Nodes whose disk was replaced, with when the operator gets to each (a random later time). */
  private readonly repairs = new Map<SimNode, number>();

  constructor(
    private readonly c: SimCluster,
    private readonly rng: Prng,
  ) {}

  start(): void {
    const mix = this.c.opts.mix;
    if (!mix.membership && !mix.transfers && !mix.resetPeers && !mix.dataDirFaults) return;
    if (mix.resetPeers) this.resetAtMs = this.rng.int(300, Math.max(400, this.c.opts.faultMs / 2));
    const loop = () => {
      // New work only in the fault phase; a reset and the nodes added after it are seen through to the end.
      if (this.c.q.now > this.c.opts.faultMs + this.c.opts.livenessMs) return;
      this.step();
      const [lo, hi] = mix.operatorEveryMs;
      this.c.q.schedule(lo + this.rng.next() * (hi - lo), loop);
    };
    this.c.q.schedule(this.rng.int(100, 300), loop);
  }

  /** A membership change is in flight (a node being added may be waited for until it catches up). */
  get changeInFlight(): boolean {
    return this.stillRunning(this.changing) !== null;
  }

  private stillRunning(f: InFlight | null): InFlight | null {
    return f?.node.alive && f.node.incarnation === f.incarnation ? f : null;
  }

  private step(): void {
    const c = this.c;
    this.changing = this.stillRunning(this.changing);
    this.transferring = this.stillRunning(this.transferring);
    this.reapRemoved();
    // Repairs first, also after the fault phase: a node waiting to be re-added is a member that must converge.
    if (this.repairs.size > 0) return this.repairDue();
    if (c.identityChecks.quiet) return;
    if (!this.reset && c.q.now >= this.resetAtMs) this.loseMajority();
    if (this.reset) {
      if (!this.reset.done) this.driveReset();
      else if (!this.reset.regrown) this.regrow();
      return;
    }
    if (!c.inFaultPhase) return;
    const mix = c.opts.mix;
    const actions: (() => void)[] = [];
    if (mix.membership && !this.changing) actions.push(() => this.changeMembership());
    if (mix.transfers && !this.transferring) actions.push(() => this.transfer());
    if (actions.length > 0) this.rng.pick(actions)();
  }

  private leaderNode(): SimNode | undefined {
    const id = this.c.leader();
    return id ? this.c.node(id) : undefined;
  }

  /** A node that joins: created empty, started now or a little after the operator names it. */
  private joiner(): SimNode {
    const n = this.c.createJoiner();
    this.joiners++;
    if (this.rng.chance(0.6)) this.c.boot(n);
    else this.c.q.schedule(this.rng.int(1, 400), () => this.c.restart(n));
    return n;
  }

  private changeMembership(): void {
    const lead = this.leaderNode();
    if (!lead?.replica) return;
    const conf = lead.replica.rawNode.conf();
    if (conf.votersOutgoing.length > 0) return;
    const voters = conf.voters;
    const members = confMembers(conf).length;
    const maxMembers = this.c.initialSize + 2;
    const canAdd = members < maxMembers && this.joiners < MAX_JOINERS;
    const kinds: string[] = ['replace'];
    if (canAdd) kinds.push('add', 'learner');
    if (voters.length > 3) kinds.push('remove');
    if (voters.length >= 3 && canAdd) kinds.push('replace-two');
    if (conf.learners.length > 0) kinds.push('drop-learner');
    const kind = this.rng.pick(kinds);
    if ((kind === 'replace' || kind === 'replace-two') && !canAdd) return;
    const victims = (k: number) => {
      const out: NodeId[] = [];
      // The leader itself is removed about a third of the time.
      if (this.rng.chance(0.3)) out.push(lead.id);
      const others = voters.filter((v) => v !== lead.id).sort(() => this.rng.next() - 0.5);
      while (out.length < k && others.length > 0) out.push(others.pop()!);
      return out;
    };
    switch (kind) {
      case 'add':
        return this.changePeers(lead, conf, [...voters, this.joiner().id]);
      case 'remove': {
        const [v] = victims(1);
        return this.changePeers(
          lead,
          conf,
          voters.filter((x) => x !== v),
        );
      }
      case 'replace': {
        const [v] = victims(1);
        return this.changePeers(lead, conf, [...voters.filter((x) => x !== v), this.joiner().id]);
      }
      case 'replace-two': {
        const vs = victims(2);
        return this.changePeers(lead, conf, [
          ...voters.filter((x) => !vs.includes(x)),
          this.joiner().id,
          this.joiner().id,
        ]);
      }
      case 'learner': {
        const n = this.joiner();
        return this.single(lead, ConfChangeOp.AddLearner, n.id);
      }
      case 'drop-learner': {
        const id = this.rng.pick(conf.learners);
        this.reap.add(id);
        return this.single(lead, ConfChangeOp.Remove, id);
      }
    }
  }

  /** One raw configuration change, proposed as is. */
  private single(lead: SimNode, op: ConfChangeOp, id: NodeId): void {
    this.c.trace(
      `OPERATOR ${op === ConfChangeOp.AddLearner ? 'add learner' : 'remove'} ${id} (single step on ${lead.id})`,
    );
    lead.replica!.proposeConfChange({ changes: [{ op, peer: peer(id) }], leaveJoint: false }, (err) => {
      if (err) this.c.trace(`OPERATOR single step on ${id}: ${err.errorName} ${err.message}`);
    });
  }

  /** Voters as the operator names them: existing ones by id, new ones as add-peer binds them (newcomer). */
  private changePeers(lead: SimNode, conf: ConfState, target: NodeId[]): void {
    const removed = conf.voters.filter((v) => !target.includes(v));
    const peers = target.map((id) => (conf.voters.includes(id) ? peer(id) : newcomer(this.c.node(id))));
    this.propose(lead, conf, peers, (ok) => {
      // The removal is committed: the removed nodes are stopped for good.
      if (ok) for (const id of removed) this.reap.add(id);
    });
  }

  /** One changePeers call on the leader, as `qjm`'s /admin/changePeers makes it. */
  private propose(lead: SimNode, conf: ConfState, target: Peer[], done: (ok: boolean) => void): void {
    const c = this.c;
    const ids = target.map((p) => (p.storageId ? `${p.id}@${p.storageId}` : p.id));
    c.stats.changes++;
    c.trace(`OPERATOR change-peers on ${lead.id}: [${conf.voters.join(',')}] -> [${ids.join(',')}]`);
    this.changing = { node: lead, incarnation: lead.incarnation };
    lead.replica!.changePeers(target, (err) => {
      this.changing = null;
      if (err) c.trace(`OPERATOR change-peers failed: ${err.errorName} ${err.message}`);
      else c.trace(`OPERATOR change-peers done: [${ids.join(',')}]`);
      done(err === null);
    });
  }

  // ---------------------------------------------------------------- re-adding a replaced disk

  /** `node`'s disk was replaced: the operator re-adds it at a random later time. */
  repairLater(node: SimNode): void {
    if (!this.repairs.has(node)) this.repairs.set(node, this.c.q.now + this.rng.int(50, 800));
  }

  /**
   * The next step of a due repair, as the operator takes it: a node that could not start (started with --join
   * while still a voter, which data-dir.ts refuses) is removed first, then started again; a node that runs on its
   * new disk is re-added by replace-node's steps (replaceSteps: the voters without it, then with it bound to the
   * storage its /status reports); a learner bound to its old disk is removed first (as replace-node says).
   */
  private repairDue(): void {
    const c = this.c;
    for (const [n, at] of [...this.repairs]) {
      if (!n.exists || !needsRepair(n)) this.repairs.delete(n);
      else if (at <= c.q.now && !this.changing) this.repairStep(n);
    }
  }

  private repairStep(n: SimNode): void {
    const c = this.c;
    const lead = this.leaderNode();
    if (!lead?.replica) return;
    const conf = lead.replica.rawNode.conf();
    if (conf.votersOutgoing.length > 0 || lead.replica.rawNode.confChangePending()) return;
    const members = memberList(lead.replica.status());
    const me = members.find((p) => p.id === n.id);
    const again = () => {
      this.repairs.set(n, c.q.now + this.rng.int(20, 200));
    };
    if (me?.role === 'learner') {
      // Unbound, it catches up on its new disk and is bound to it when promoted: nothing to repair. Bound to
      // its old disk, it is refused: removed first, as replace-node says, then added again.
      if (!me.storageId) {
        this.repairs.delete(n);
        return;
      }
      this.single(lead, ConfChangeOp.Remove, n.id);
      return again();
    }
    if (n.refused !== null) {
      if (!me) {
        c.trace(`OPERATOR ${n.id} is no member now: started again (--join)`);
        c.restart(n);
        return again();
      }
      c.trace(`OPERATOR remove-peer ${n.id} (its start was refused: ${n.refused})`);
      return this.propose(
        lead,
        conf,
        members.filter((p) => p.role === 'voter' && p.id !== n.id).map((p) => peer(p.id)),
        again,
      );
    }
    const st = statusOf(n);
    if (st?.state === 'uninitialized' && n.initialPeers) {
      // Formation waits for named nodes that are gone: as replace-node's message says, the operator starts it on
      // an empty directory with --join instead.
      c.trace(`OPERATOR ${n.id} waits for ${n.forming?.join('; ')}: started again on an empty directory with --join`);
      c.rejoin(n);
      return again();
    }
    const problem = st ? newcomerProblem(n.id, st) : 'it does not answer';
    if (problem) {
      c.trace(`OPERATOR cannot re-add ${n.id} yet: ${problem}`);
      return again();
    }
    const steps = replaceSteps(simPeer(n.id), st!.storageId, members);
    c.trace(`OPERATOR replace-node ${n.id} (new storage ${st!.storageId})`);
    this.propose(lead, conf, steps.remove ?? steps.add, (ok) => {
      const now = this.leaderNode();
      if (ok && steps.remove && now?.replica) this.propose(now, now.replica.rawNode.conf(), steps.add, again);
      else again();
    });
  }

  private reapRemoved(): void {
    if (this.reap.size === 0) return;
    // Named by another live node: its removal may not be committed there yet (a removed node itself may
    // never learn of its removal).
    const namedBy = new Map<NodeId, NodeId[]>();
    for (const n of this.c.nodes.values()) {
      if (!n.alive || !n.replica) continue;
      for (const id of confMembers(n.replica.rawNode.conf())) namedBy.set(id, [...(namedBy.get(id) ?? []), n.id]);
    }
    for (const id of [...this.reap]) {
      if ((namedBy.get(id) ?? []).some((by) => by !== id)) continue;
      this.reap.delete(id);
      this.c.destroy(this.c.node(id));
    }
  }

  private transfer(): void {
    const lead = this.leaderNode();
    if (!lead?.replica) return;
    const conf = lead.replica.rawNode.conf();
    const to = [...new Set([...conf.voters, ...conf.votersOutgoing])].filter((v) => v !== lead.id);
    if (to.length === 0) return;
    const target = this.rng.pick(to);
    this.c.stats.transfers++;
    this.c.trace(`OPERATOR transfer-leader ${lead.id} -> ${target}`);
    this.transferring = { node: lead, incarnation: lead.incarnation };
    lead.replica.transferLeader(target, (err) => {
      this.transferring = null;
      this.c.trace(`OPERATOR transfer to ${target}: ${err ? `${err.errorName} ${err.message}` : 'done'}`);
    });
  }

  // ---------------------------------------------------------------- the majority-lost emergency

  /** A majority of the voters is destroyed; the survivor with the longest durable log is kept, the rest wiped. */
  private loseMajority(): void {
    const c = this.c;
    const conf = c.currentConf();
    if (!conf) return;
    const voters = [...new Set([...conf.voters, ...conf.votersOutgoing])];
    this.resetAtMs = Infinity;
    if (voters.length < 2) return;
    const doomed = [...voters].sort(() => this.rng.next() - 0.5).slice(0, Math.floor(voters.length / 2) + 1);
    const candidates = confMembers(conf)
      .filter((id) => !doomed.includes(id))
      .map((id) => c.node(id))
      .filter((n) => n.serviceable);
    if (candidates.length === 0) return;
    // As qjm reset-peers advises: the node whose log is the most up to date (last term, then last index).
    const rank = (n: SimNode) => {
      const log = n.log();
      const last = log?.lastIndex() ?? 0;
      return [log?.term(last) ?? 0, last] as const;
    };
    const survivor = candidates.reduce((a, b) => {
      const [ta, ia] = rank(a);
      const [tb, ib] = rank(b);
      return tb > ta || (tb === ta && ib > ia) ? b : a;
    });
    c.trace(`LOSE MAJORITY [${doomed.join(',')}] for good; ${survivor.id} survives, every other node is wiped`);
    for (const n of [...c.nodes.values()]) if (n !== survivor) c.destroy(n);
    this.changing = null;
    this.transferring = null;
    this.reap.clear();
    this.reset = { survivor, calling: null, done: false, regrown: false };
  }

  private driveReset(): void {
    const r = this.reset!;
    const s = r.survivor;
    r.calling = this.stillRunning(r.calling);
    if (!s.alive || !s.replica || r.calling) return;
    r.calling = { node: s, incarnation: s.incarnation };
    this.c.trace(`OPERATOR reset-peers on ${s.id} -> [${s.id}]`);
    s.replica.resetPeers([peer(s.id)], (err, res) => {
      r.calling = null;
      if (err) return this.c.trace(`OPERATOR reset-peers failed: ${err.errorName} ${err.message}`);
      r.done = true;
      this.c.stats.resets++;
      this.c.trace(
        `OPERATOR reset-peers done: snapshot ${res!.index}, committed by fiat (${res!.committedBefore}, ${res!.lastIndexBefore}]`,
      );
    });
  }

  /** After a reset: fresh nodes join until the cluster has its initial size again (several in one change). */
  private regrow(): void {
    const r = this.reset!;
    if (this.changing) return;
    const lead = this.leaderNode();
    if (!lead?.replica) return;
    const conf = lead.replica.rawNode.conf();
    if (conf.voters.length >= this.c.initialSize) {
      r.regrown = true;
      return;
    }
    const fresh: NodeId[] = [];
    // Reuse joiners a failed attempt left behind (still learners), else start new ones.
    for (const id of conf.learners)
      if (fresh.length + conf.voters.length < this.c.initialSize && this.c.node(id).exists) fresh.push(id);
    while (conf.voters.length + fresh.length < this.c.initialSize) fresh.push(this.joiner().id);
    this.changePeers(lead, conf, [...conf.voters, ...fresh]);
  }
}
