// qjm's commands that change the cluster rather than a journal: membership (add-peer, remove-peer, replace-node,
// change-peers, and reset-peers for a majority lost for good), the safe-to-stop check, leadership transfer and
// snapshots on demand. Each runs through the admin client; the policies live beside (check-impact.ts,
// replace-node.ts, reset-peers.ts).

import type { AdminClient } from '../../libqjm/index.js';
import { UsageError } from '../command-line.js';
import type { CommandSpec, FlagValues } from '../command-line.js';
import { QjmError } from '../errors.js';
import type { NodeStatusJson } from '../node-status.js';
import { formatPeers, parseAddresses } from '../peers.js';
import type { Peer } from '../peers.js';
import { SETTINGS } from '../settings.js';
import { escapeControls } from '../terminal-text.js';
import { assessImpact } from './check-impact.js';
import { confirmDestruction } from './confirm.js';
import { adminClient, CONNECT, JSON_OUT, PEERS, parsePeersFlag, timeoutMsOf, YES } from './connect.js';
import type { CliIo, Connection } from './connect.js';
import { newcomerStorage, runReplaceNode } from './replace-node.js';
import { runResetPeers } from './reset-peers.js';

const PEER = { type: 'string', required: true } as const;

export const ADD_PEER = {
  name: 'qjm add-peer',
  summary:
    'Add a node (started with --join) as a voter, bound to its storage: it joins as a learner and catches up first.',
  flags: { ...CONNECT, peer: { ...PEER, valueName: 'ID=HOST:PORT', description: 'the new node' }, json: JSON_OUT },
} as const satisfies CommandSpec;

const MAX_LAG = {
  type: 'uint',
  valueName: 'N',
  description: `a voter more entries than this behind the leader is not caught up (default ${SETTINGS.catchupMargin.default}, catchupMargin's)`,
} as const;

export const REPLACE_NODE = {
  name: 'qjm replace-node',
  summary:
    'Re-add a node whose data directory was replaced (its storage is not the one the cluster binds it to): it catches up on its new storage, then votes.',
  flags: {
    ...CONNECT,
    peer: { ...PEER, valueName: 'ID=HOST:PORT', description: 'the node, running on its new data directory' },
    json: JSON_OUT,
  },
} as const satisfies CommandSpec;

export const REMOVE_PEER = {
  name: 'qjm remove-peer',
  summary:
    'Remove a voter (the leader too: it steps down once the change commits); refused when the rest would not be a quorum of caught-up voters.',
  flags: {
    ...CONNECT,
    peer: { ...PEER, valueName: 'ID', description: 'the node to remove' },
    force: { type: 'boolean', description: 'remove it although the rest would not be a quorum of caught-up voters' },
    'max-lag': MAX_LAG,
    json: JSON_OUT,
  },
} as const satisfies CommandSpec;

export const CHECK_IMPACT = {
  name: 'qjm check-impact',
  summary: 'Would the cluster keep a quorum of caught-up voters without this node (stopped, or removed)?',
  flags: {
    ...CONNECT,
    node: { type: 'string', required: true, valueName: 'ID', description: 'the node to stop or remove' },
    remove: { type: 'boolean', description: 'judge removing it from the configuration (default: stopping it)' },
    'max-lag': MAX_LAG,
    json: JSON_OUT,
  },
} as const satisfies CommandSpec;

/** The leader's own status (its view of every follower), asked of every node the client can reach. */
async function leaderStatus(admin: AdminClient): Promise<NodeStatusJson> {
  const m = await admin.membership();
  const reports = await admin.statusOf(m.leaderAddress ? [m.leaderAddress] : []);
  const s = reports[0]?.status;
  if (s?.state !== 'leader') {
    throw new QjmError(
      'QUORUM_UNAVAILABLE',
      `the leader ${m.leader} does not answer as leader (${reports[0]?.error ?? 'no address'})`,
    );
  }
  return s;
}

export async function cmdCheckImpact(f: FlagValues<typeof CHECK_IMPACT>, io: CliIo): Promise<number> {
  const admin = adminClient(f, io);
  try {
    const action = f.remove ? 'remove' : 'stop';
    const impact = assessImpact(
      await leaderStatus(admin),
      f.node,
      action,
      f['max-lag'] ?? SETTINGS.catchupMargin.default,
    );
    if (f.json) io.out(JSON.stringify({ node: f.node, action, ...impact }));
    else for (const l of impact.lines) io.out(l);
    return impact.safe ? 0 : 1;
  } finally {
    await admin.close();
  }
}

export const CHANGE_PEERS = {
  name: 'qjm change-peers',
  summary: 'Replace the whole set of voters in one joint change (new nodes catch up first).',
  flags: {
    ...CONNECT,
    'new-peers': { ...PEER, valueName: 'ID=HOST:PORT,...', description: 'the voters after the change' },
    json: JSON_OUT,
  },
} as const satisfies CommandSpec;

async function cmdChangePeers(
  f: Connection,
  target: (voters: Peer[], admin: AdminClient) => Peer[] | Promise<Peer[]>,
  json: boolean,
  io: CliIo,
): Promise<number> {
  const admin = adminClient(f, io);
  try {
    const m = await admin.membership();
    const voters = m.peers.filter((p) => p.role === 'voter').map((p) => ({ id: p.id, address: p.address }));
    const next = await target(voters, admin);
    if (!json)
      io.err(
        `changing voters from ${escapeControls(formatPeers(voters))} to ${escapeControls(formatPeers(next))} (new peers catch up first)...`,
      );
    const msg = await admin.changePeers(next, timeoutMsOf(f));
    io.out(json ? JSON.stringify({ ok: true, voters: next }) : escapeControls(msg));
    return 0;
  } finally {
    await admin.close();
  }
}

export function cmdAddPeer(f: FlagValues<typeof ADD_PEER>, io: CliIo): Promise<number> {
  const [p] = parsePeersFlag('peer', f.peer);
  return cmdChangePeers(
    f,
    async (voters, admin) => {
      if (voters.some((v) => v.id === p!.id)) throw new UsageError(`${p!.id} is already a voter`);
      const storageId = await newcomerStorage(admin, p!, io);
      return [...voters, storageId ? { ...p!, storageId } : p!];
    },
    f.json,
    io,
  );
}

export async function cmdReplaceNode(f: FlagValues<typeof REPLACE_NODE>, io: CliIo): Promise<number> {
  const [peer] = parsePeersFlag('peer', f.peer);
  const admin = adminClient(f, io);
  try {
    return await runReplaceNode(admin, { peer: peer!, timeoutMs: timeoutMsOf(f), json: f.json }, io);
  } finally {
    await admin.close();
  }
}

export async function cmdRemovePeer(f: FlagValues<typeof REMOVE_PEER>, io: CliIo): Promise<number> {
  const id = f.peer.split('=')[0]!;
  if (!f.force) {
    const admin = adminClient(f, io);
    try {
      const impact = assessImpact(
        await leaderStatus(admin),
        id,
        'remove',
        f['max-lag'] ?? SETTINGS.catchupMargin.default,
      );
      if (!impact.safe) {
        for (const l of impact.lines) io.err(l);
        throw new QjmError(
          'INVALID_CONF_CHANGE',
          `refused: removing ${id} leaves no quorum of caught-up voters (qjm check-impact --node ${id} --remove); --force removes it anyway`,
        );
      }
    } finally {
      await admin.close();
    }
  }
  return cmdChangePeers(
    f,
    (voters) => {
      if (!voters.some((v) => v.id === id))
        throw new UsageError(`${id} is not a voter (voters: ${voters.map((v) => v.id).join(', ')})`);
      return voters.filter((v) => v.id !== id);
    },
    f.json,
    io,
  );
}

export function cmdReplacePeers(f: FlagValues<typeof CHANGE_PEERS>, io: CliIo): Promise<number> {
  const target = parsePeersFlag('new-peers', f['new-peers']);
  return cmdChangePeers(f, () => target, f.json, io);
}

export const RESET_PEERS = {
  name: 'qjm reset-peers',
  summary:
    'A majority lost for good: force the voters on the survivor with the longest log (what only the lost nodes held is gone).',
  flags: {
    ...CONNECT,
    peers: { ...PEERS, required: false, description: 'other nodes to ask (default: the members the node names)' },
    node: { type: 'string', required: true, valueName: 'HOST:PORT', description: 'the surviving node to reset' },
    'new-peers': {
      ...PEER,
      valueName: 'ID=HOST:PORT,...',
      description: 'the voters after the reset: the survivor (alone, usually)',
    },
    force: {
      type: 'boolean',
      description: 'reset although a majority of the voters answers, or another node holds a longer log',
    },
    yes: YES,
    json: JSON_OUT,
  },
} as const satisfies CommandSpec;

export async function cmdResetPeers(f: FlagValues<typeof RESET_PEERS>, io: CliIo): Promise<number> {
  let node: string[];
  try {
    node = parseAddresses(f.node);
  } catch (e) {
    throw new UsageError(`--node: ${(e as Error).message}`);
  }
  if (node.length !== 1) throw new UsageError('--node: one HOST:PORT, the node to reset');
  const newPeers = parsePeersFlag('new-peers', f['new-peers']);
  // The node reset is the one --new-peers names at its address: it must present that node's certificate.
  const named = newPeers.find((p) => p.address === node[0]);
  const target = named ? `${named.id}=${node[0]}` : node[0]!;
  const conn = { ...f, peers: f.peers ? `${f.peers},${target}` : target };
  const admin = adminClient(conn, io);
  try {
    return await runResetPeers(
      admin,
      {
        node: node[0]!,
        newPeers,
        peers: f.peers ? admin.peers.filter((a) => a !== node[0]) : [],
        force: f.force,
        json: f.json,
        timeoutMs: timeoutMsOf(conn),
        confirm: (what, token) => confirmDestruction(io.ask, { what, token, yes: f.yes }),
      },
      io,
    );
  } finally {
    await admin.close();
  }
}

export const TRANSFER_LEADER = {
  name: 'qjm transfer-leader',
  summary: 'Move leadership to another voter.',
  flags: {
    ...CONNECT,
    to: { type: 'string', valueName: 'ID', description: 'the new leader (default: the most caught-up voter)' },
    json: JSON_OUT,
  },
} as const satisfies CommandSpec;

/** One admin call whose answer is a message for the operator. */
export async function cmdAdmin(
  f: Connection & { json: boolean },
  io: CliIo,
  call: (admin: AdminClient) => Promise<string>,
): Promise<number> {
  const admin = adminClient(f, io);
  try {
    const msg = await call(admin);
    io.out(f.json ? JSON.stringify({ ok: true, message: msg }) : escapeControls(msg));
    return 0;
  } finally {
    await admin.close();
  }
}

export const SNAPSHOT = {
  name: 'qjm snapshot',
  summary: 'Take a snapshot now (snapshots otherwise happen by log size and time).',
  flags: {
    ...CONNECT,
    node: { type: 'string', valueName: 'HOST:PORT', description: 'the node that snapshots (default: the leader)' },
    json: JSON_OUT,
  },
} as const satisfies CommandSpec;
