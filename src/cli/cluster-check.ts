// What `qjm status` sees of a cluster: every node it can reach — those it was given, and the members the nodes
// that answer name (a node added since, a node the configuration still names) — and the problems among them,
// each in a sentence that names the node and the repair: no leader, two leaders, two configurations, a node
// that answers without being a member, an uninitialized node, a node that stood down, a storage that is not
// the one the configuration binds its node to, a node below its floor.

import type { AdminClient, NodeStatusReport } from '../../libqjm/index.js';
import type { NodeStatusJson } from '../node-status.js';

/** At most this many addresses are asked, and this many rounds of learning members from the answers. */
const MAX_ADDRESSES = 64;
const MAX_ROUNDS = 4;

/** The addresses a node's answer names: its members, or the nodes it waits for while its cluster forms. */
function namedBy(st: NodeStatusJson): string[] {
  const peers = st.state === 'uninitialized' ? (st.formation?.peers ?? []) : st.peers;
  return peers.map((p) => p.address).filter((a) => a !== '');
}

/** Every node reachable from `endpoints` through the members the answers name, each asked once. */
export async function discoverNodes(
  admin: Pick<AdminClient, 'statusOf'>,
  endpoints: readonly string[],
  timeoutMs?: number,
): Promise<NodeStatusReport[]> {
  const asked = new Set<string>();
  const reports: NodeStatusReport[] = [];
  let next = [...new Set(endpoints)];
  for (let round = 0; round < MAX_ROUNDS && next.length > 0; round++) {
    const batch = next.filter((a) => !asked.has(a)).slice(0, MAX_ADDRESSES - asked.size);
    for (const a of batch) asked.add(a);
    const got = await admin.statusOf(batch, timeoutMs);
    reports.push(...got);
    next = got.flatMap((r) => (r.status ? namedBy(r.status) : [])).filter((a) => !asked.has(a));
    next = [...new Set(next)];
  }
  return reports;
}

/** The leader to judge the others by: of the newest generation, then the highest term. */
export function referenceLeader(statuses: readonly NodeStatusJson[]): NodeStatusJson | null {
  const gen = (s: NodeStatusJson) => s.identity?.generation ?? 0;
  return statuses.filter((s) => s.state === 'leader').sort((a, b) => gen(b) - gen(a) || b.term - a.term)[0] ?? null;
}

const who = (s: NodeStatusJson, endpoint: string) => `${s.id} (${endpoint})`;

/** One node's own problem, as it says it (uninitialized, stood down, storage mismatch, floor, removed, joining). */
function ownProblem(s: NodeStatusJson, endpoint: string): string | null {
  const id = s.identity;
  if (s.state === 'uninitialized')
    return `${who(s, endpoint)} is uninitialized: ${s.formation?.waitingFor.join('; ') || 'it waits for the cluster to form'}`;
  if (!id) return null;
  const repair = id.repair ? `; ${id.repair}` : '';
  switch (id.state) {
    case 'stood-down':
    case 'storage-mismatch':
    case 'below-floor':
      return `${who(s, endpoint)} ${id.problem}${repair}`;
    case 'not-member':
      return `${who(s, endpoint)} answers but is not a member of its own configuration (removed): stop it`;
    case 'joining':
      return `${who(s, endpoint)} answers but is not a member yet (started with --join): add it (qjm add-peer) or stop it`;
    default:
      return null;
  }
}

/** Every problem among the answers, one sentence each; none for a healthy cluster. */
export function clusterProblems(reports: readonly NodeStatusReport[]): string[] {
  const answered = reports.filter((r): r is NodeStatusReport & { status: NodeStatusJson } => r.status !== null);
  const problems: string[] = [];
  const flagged = new Set<string>();
  for (const r of answered) {
    const p = ownProblem(r.status, r.endpoint);
    if (p) {
      problems.push(p);
      flagged.add(r.status.id);
    }
  }
  const formed = answered.filter((r) => r.status.state !== 'uninitialized' && r.status.identity?.state !== 'joining');
  const leaders = formed.filter((r) => r.status.state === 'leader');
  if (leaders.length === 0)
    problems.push('no leader: no node that answers leads (a majority of the voters is down, or cut off)');
  if (leaders.length > 1)
    problems.push(
      `${leaders.length} leaders: ${leaders.map((r) => `${who(r.status, r.endpoint)} in term ${r.status.term}, generation ${r.status.identity?.generation ?? 0}`).join('; ')}`,
    );
  const configurations = new Map<string, string[]>();
  const byGeneration = [...formed].sort(
    (a, b) => (b.status.identity?.generation ?? 0) - (a.status.identity?.generation ?? 0),
  );
  for (const r of byGeneration) {
    const k = `cluster ${r.status.clusterId} generation ${r.status.identity?.generation ?? 0}`;
    configurations.set(k, [...(configurations.get(k) ?? []), r.status.id]);
  }
  if (configurations.size > 1)
    problems.push(
      `${configurations.size} configurations: ${[...configurations].map(([k, ids]) => `${k} (${ids.join(', ')})`).join('; ')}`,
    );
  const ref = referenceLeader(formed.map((r) => r.status));
  if (!ref) return problems;
  const members = new Map(ref.peers.map((p) => [p.id, p]));
  for (const r of formed) {
    const s = r.status;
    if (flagged.has(s.id) || s.id === ref.id) continue;
    const m = members.get(s.id);
    if (!m)
      problems.push(
        `${who(s, r.endpoint)} answers but the leader ${ref.id}'s configuration does not name it (cluster ${s.clusterId}, generation ${s.identity?.generation ?? 0}): stop it`,
      );
    else if (m.storageId && s.storageId !== m.storageId)
      problems.push(
        `${who(s, r.endpoint)}: its storage ${s.storageId} is not the storage ${m.storageId} the configuration binds ${s.id} to; repair: qjm replace-node --peer ${s.id}=${m.address}`,
      );
  }
  return problems;
}
