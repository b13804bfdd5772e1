// `qjm reset-peers`: the majority-lost emergency, as an operator runs it. Before anything is forced it asks
// every node it can reach (its /status: last index and term, applied configuration), names the reachable node
// with the longest log, and refuses while a majority of the voters still answers or while the node named is
// not that one (unless --force). After the reset it says what may have been lost: what the lost nodes held
// beyond the survivor's log is unknown, so every edit after the survivor's last txid of each journal may be.

import type { AdminClient, NodeStatusReport } from '../../libqjm/index.js';
import { QjmError } from '../errors.js';
import type { NodeStatusJson } from '../node-status.js';
import { formatPeers } from '../peers.js';
import type { Peer } from '../peers.js';
import { escapeControls } from '../terminal-text.js';

type Out = (line: string) => void;

export interface ResetPlan {
  survivor: NodeStatusJson;
  /** The reachable node of the survivor's cluster with the longest log (the survivor when tied). */
  longest: NodeStatusJson;
  /** The voters of the configuration the furthest-applied reachable node holds. */
  voters: Peer[];
  /** Voters that answered, and those that did not (with why). */
  answering: string[];
  silent: { id: string; address: string; error: string }[];
  /** Why the reset should not go ahead (overridden by --force). */
  refusals: string[];
}

/** (lastLogTerm, lastIndex), the order Raft's vote uses: the log a new leader would need. */
function longer(a: NodeStatusJson, b: NodeStatusJson): boolean {
  return a.lastLogTerm !== b.lastLogTerm ? a.lastLogTerm > b.lastLogTerm : a.lastIndex > b.lastIndex;
}

const logOf = (s: NodeStatusJson) => `last index ${s.lastIndex} in term ${s.lastLogTerm}`;

/**
 * What reset-peers would do, from every /status it could get: `node` is the address of the node to reset.
 * Throws when that node does not answer (there is nothing to reset).
 */
export function planReset(reports: readonly NodeStatusReport[], node: string): ResetPlan {
  const own = reports.find((r) => r.endpoint === node);
  if (!own?.status)
    throw new QjmError('UNAVAILABLE', `the node to reset, ${node}, does not answer (${own?.error ?? 'not asked'})`);
  const survivor = own.status;
  // Another cluster's node (a stray address) says nothing about this one.
  const ours = reports
    .map((r) => r.status)
    .filter((s): s is NodeStatusJson => s !== null && s.clusterId === survivor.clusterId);
  const longest = ours.reduce((best, s) => (longer(s, best) ? s : best), survivor);
  const freshest = ours.reduce((best, s) => (s.appliedIndex > best.appliedIndex ? s : best), survivor);
  const voters = freshest.peers.filter((p) => p.role !== 'learner').map((p) => ({ id: p.id, address: p.address }));
  const heard = new Set(ours.map((s) => s.id));
  const answering = voters.filter((v) => heard.has(v.id)).map((v) => v.id);
  const silent = voters
    .filter((v) => !heard.has(v.id))
    .map((v) => ({ ...v, error: reports.find((r) => r.endpoint === v.address)?.error ?? 'not asked' }));
  const refusals: string[] = [];
  if (answering.length > voters.length / 2) {
    refusals.push(
      `${answering.length} of the ${voters.length} voters answer (${answering.join(', ')}): the cluster still has a quorum; reset-peers is for a majority lost for good`,
    );
  }
  if (longest !== survivor) {
    refusals.push(
      `${longest.id} holds a longer log (${logOf(longest)}) than ${survivor.id} (${logOf(survivor)}): reset ${longest.id} instead, or what only it holds is lost`,
    );
  }
  return { survivor, longest, voters, answering, silent, refusals };
}

/** What may have been lost, in the operator's terms: after the reset, from the survivor's /status then. */
export function describeLoss(
  plan: ResetPlan,
  lastIndexBefore: number,
  lastTermBefore: number,
  after: NodeStatusJson | null,
): string[] {
  const lines = [
    `the survivor's last index is ${lastIndexBefore} in term ${lastTermBefore}; everything up to it is now committed.`,
  ];
  if (plan.silent.length > 0) {
    lines.push(
      `lost: ${plan.silent.map((s) => `${s.id} (${s.address}: ${s.error})`).join(', ')}. The leader among them may have committed entries beyond index ${lastIndexBefore}, up to its own last index, which is unknown.`,
    );
  }
  const journals = Object.entries(after?.journals ?? plan.survivor.journals);
  for (const [jid, j] of journals)
    lines.push(
      `journal ${jid}: the survivor holds txids up to ${j.lastTxId}; edits a writer was told are durable after txid ${j.lastTxId} may be lost.`,
    );
  if (journals.length === 0) lines.push('no journal was formatted: no edit can have been lost.');
  lines.push(...keepOut(plan));
  return lines;
}

/**
 * How to keep the lost nodes out: what they do if they come back with their data, and the one case no node can
 * catch (they reach each other but never the survivor).
 */
export function keepOut(plan: ResetPlan): string[] {
  const lost = plan.voters.filter((v) => v.id !== plan.survivor.id).map((v) => v.id);
  if (lost.length === 0) return [];
  const names = lost.join(', ');
  const at = plan.voters.find((v) => v.id === plan.survivor.id)?.address || '<the survivor>';
  return [
    `keep the lost nodes out: ${names} must not run again with their data. The reset started a new generation of the cluster: a lost node that comes back and reaches ${plan.survivor.id} (or is reached by it) stands down for good and says so (qjm status, /healthz), but lost nodes that come back cut off from ${plan.survivor.id} can still elect each other and take writes from a writer that knows only them.`,
    `so: disable their services now (so that no restart brings them back), and before one runs again wipe its data directory, start it with --join ${at} and add it with qjm add-peer.`,
  ];
}

export interface ResetPeersArgs {
  node: string;
  newPeers: Peer[];
  /** Other nodes to ask besides the node and the members it names. */
  peers: readonly string[];
  force: boolean;
  json: boolean;
  timeoutMs: number | undefined;
  /** Asks the operator to confirm, once the plan is known and before anything is forced (throws to stop). */
  confirm?: (what: string, token: string) => Promise<void>;
}

/** Runs the command over an admin client; the exit code. */
export async function runResetPeers(
  admin: AdminClient,
  a: ResetPeersArgs,
  io: { out: Out; err: Out },
): Promise<number> {
  const first = await admin.statusOf([a.node]);
  const named = first[0]?.status?.peers.map((p) => p.address).filter((x) => x !== '') ?? [];
  const others = [...new Set([...a.peers, ...named])].filter((x) => x !== a.node);
  const reports = [...first, ...(await admin.statusOf(others))];
  const plan = planReset(reports, a.node);
  if (!a.newPeers.some((p) => p.id === plan.survivor.id)) {
    throw new QjmError(
      'INVALID_ARGUMENT',
      `--new-peers must include the node reset, ${plan.survivor.id} (${a.node}): ${formatPeers(a.newPeers)} does not`,
    );
  }
  if (!a.json) {
    for (const r of reports)
      io.err(
        escapeControls(
          `${r.endpoint}: ${r.status ? `${r.status.id}, ${r.status.state}, ${logOf(r.status)}` : `no answer (${r.error})`}`,
        ),
      );
    io.err(escapeControls(`the longest log among the nodes that answer: ${plan.longest.id} (${logOf(plan.longest)})`));
  }
  if (plan.refusals.length > 0 && !a.force)
    throw new QjmError('INVALID_CONF_CHANGE', `refused: ${plan.refusals.join('; ')} (--force to reset anyway)`);
  await a.confirm?.(
    `qjm reset-peers forces ${formatPeers(a.newPeers)} as the only voters on ${plan.survivor.id} (${logOf(plan.survivor)}); ` +
      `whatever only ${plan.silent.map((s) => s.id).join(', ') || 'the lost nodes'} held is lost for good`,
    plan.survivor.id,
  );
  const r = await admin.resetPeers(a.node, a.newPeers, a.force, a.timeoutMs);
  const after = (await admin.statusOf([a.node]))[0]?.status ?? null;
  const loss = describeLoss(plan, Number(r.lastIndexBefore), Number(r.lastTermBefore), after);
  if (a.json) {
    io.out(
      JSON.stringify({
        ok: true,
        node: plan.survivor.id,
        voters: a.newPeers,
        snapshotIndex: Number(r.index),
        committedIndexBefore: Number(r.committedIndexBefore),
        lastIndexBefore: Number(r.lastIndexBefore),
        lastTermBefore: Number(r.lastTermBefore),
        lost: plan.silent,
        journals: Object.fromEntries(
          Object.entries(after?.journals ?? {}).map(([jid, j]) => [jid, { lastTxId: j.lastTxId }]),
        ),
      }),
    );
  } else {
    // One line each, whatever the nodes answered: what they say is data, escaped (src/terminal-text.ts).
    io.out(escapeControls(r.message));
    for (const line of loss) io.out(escapeControls(line));
  }
  return 0;
}
