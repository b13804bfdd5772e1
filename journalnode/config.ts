// A JournalNode's configuration: its identity (id, addresses, data directory, peers) and the settings of
// src/settings.ts; validation of every field with an error that names it. The command line and the
// optional JSON config file are read by cli-args.ts.

import { checkHost, checkHostPort, isNodeId, NODE_ID_RULE } from '../src/ids.js';
import { sameAddress } from '../src/peers.js';
import type { Peer } from '../src/raft/types.js';
import { checkSetting, DEFAULT_SETTINGS, SETTINGS } from '../src/settings.js';
import type { SettingName, Settings } from '../src/settings.js';
import { STREAM_WINDOW_BYTES } from './http/response-budget.js';

/** Who this node is and where it listens; everything tunable is a setting of src/settings.ts. */
export interface NodeIdentity {
  id: string;
  /** Bind address (host:port). */
  listen: string;
  dataDir: string;
  /** Initial configuration, used only when the data directory is empty (braft's initial_conf). */
  peers: Peer[];
  /**
   * Instead of --peers: members of a running cluster to join. The node starts empty and waits for the
   * leader to replicate to it once an operator adds it (qjm add-peer). Used only on an empty directory.
   */
  join: string[];
  /** The address peers dial this node at, when it differs from --listen (NAT, containers, proxies). */
  advertise: string;
  /** The certificates directory (ca.crt, node.<id>.crt/.key): HTTPS with client certificates. '' = none. */
  certsDir: string;
  /** Run without TLS: asked for explicitly, never the default. */
  insecure: boolean;
  /** The read-only plain-HTTP port (dashboard, /status, /metrics, /healthz), host:port; null: none. */
  uiListen: string | null;
  /**
   * Host names (or addresses) the dashboard port answers besides its listen address and, on loopback or a
   * wildcard, localhost: a DNS name it is reached by, a proxy's. Every other Host header is refused.
   */
  uiAllowedHosts: string[];
}

/** What a node started with neither --certs-dir nor --insecure answers. */
export const NO_SECURITY_CHOSEN =
  'no certificates: start with --certs-dir D (qjm cert create-ca / create-node), or --insecure to run without TLS';

export interface JournalNodeConfig extends NodeIdentity, Settings {}

/** Every setting's default (the schema in src/settings.ts). */
export const DEFAULTS: Settings = DEFAULT_SETTINGS;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Validates a complete configuration; throws ConfigError naming the first bad field. */
export function validateConfig(c: Partial<JournalNodeConfig>): JournalNodeConfig {
  const bad = (field: string, why: string): never => {
    throw new ConfigError(`invalid ${field}: ${why}`);
  };
  if (!isNodeId(c.id)) bad('id', `expected ${NODE_ID_RULE}`);
  if (typeof c.listen !== 'string') bad('listen', 'missing (e.g. --listen 127.0.0.1:8485)');
  const hp = checkHostPort(c.listen!, 'listen');
  if (hp) bad('listen', hp);
  if (typeof c.dataDir !== 'string' || c.dataDir.length === 0) bad('dataDir', 'missing (e.g. --data ./data/n1)');
  const join = c.join ?? [];
  const peers = c.peers ?? [];
  if (!Array.isArray(join)) bad('join', 'expected a list of host:port');
  for (const a of join) {
    const e = checkHostPort(a);
    if (e) bad('join', e);
  }
  if (!Array.isArray(peers) || (peers.length === 0 && join.length === 0)) {
    bad(
      'peers',
      'missing: --peers n1=127.0.0.1:8485,n2=127.0.0.1:8486,n3=127.0.0.1:8487 for a new cluster, or --join <members> to join one',
    );
  }
  if (peers.length > 0 && join.length > 0)
    bad('join', 'give --peers (a new cluster) or --join (an existing one), not both');
  const ids = new Set<string>();
  const idAt = new Map<string, string>();
  for (const p of peers) {
    if (!isNodeId(p.id)) bad('peers', `bad peer id ${JSON.stringify(p.id)}`);
    if (ids.has(p.id)) bad('peers', `peer ${p.id} named twice`);
    ids.add(p.id);
    const e = checkHostPort(p.address);
    if (e) bad('peers', `peer ${p.id}: ${e}`);
    const twin = idAt.get(p.address);
    if (twin !== undefined) bad('peers', sameAddress(p.address, twin, p.id));
    idAt.set(p.address, p.id);
  }
  if (peers.length > 0 && !ids.has(c.id!)) bad('peers', `this node's id ${c.id} is not among the peers`);
  const advertise = c.advertise ?? peers.find((p) => p.id === c.id)?.address ?? c.listen!;
  const ae = checkHostPort(advertise);
  if (ae) bad('advertise', ae);
  if (/^(0\.0\.0\.0|\[::\]):/.test(advertise))
    bad('advertise', `${advertise} is a wildcard bind address: peers cannot dial it; give --advertise host:port`);
  const certsDir = c.certsDir ?? '';
  const insecure = c.insecure ?? false;
  if (typeof certsDir !== 'string') bad('certsDir', 'expected a directory');
  if (typeof insecure !== 'boolean') bad('insecure', 'expected true or false');
  if (certsDir === '' && !insecure) throw new ConfigError(NO_SECURITY_CHOSEN);
  if (certsDir !== '' && insecure)
    bad('insecure', 'give --certs-dir (mutual TLS) or --insecure (plain HTTP), not both');
  const uiListen = c.uiListen ?? null;
  if (uiListen !== null) {
    const ue = checkHostPort(uiListen, 'listen');
    if (ue) bad('uiListen', ue);
    if (uiListen === c.listen && !uiListen.endsWith(':0'))
      bad('uiListen', `must differ from --listen (${c.listen}): the dashboard port is a second, read-only port`);
  }
  const uiAllowedHosts = c.uiAllowedHosts ?? [];
  if (!Array.isArray(uiAllowedHosts) || uiAllowedHosts.length > 64)
    bad('uiAllowedHosts', 'expected a list of at most 64 host names');
  for (const h of uiAllowedHosts) {
    const problem = checkHost(h);
    if (problem) bad('uiAllowedHosts', problem);
  }
  if (uiAllowedHosts.length > 0 && uiListen === null) bad('uiAllowedHosts', 'only with --ui-listen');
  const out: Record<string, unknown> = { ...c, peers, join, advertise, certsDir, insecure, uiListen, uiAllowedHosts };
  for (const name of Object.keys(SETTINGS) as SettingName[]) {
    const problem = checkSetting(name, out[name]);
    if (problem) bad(name, problem);
  }
  if (c.electionTimeoutMs! / c.electionHeartbeatFactor! < 5)
    bad('electionHeartbeatFactor', 'the heartbeat interval would be under 5 ms');
  if (c.httpHeadersTimeoutMs! > c.httpRequestTimeoutMs!)
    bad('httpHeadersTimeoutMs', `must not exceed httpRequestTimeoutMs (${c.httpRequestTimeoutMs})`);
  if (c.maxBatchBytes! > c.maxAppendBodyBytes!)
    bad('maxBatchBytes', `must not exceed maxAppendBodyBytes (${c.maxAppendBodyBytes})`);
  if (c.maxRecordBytes! > c.maxBatchBytes!) bad('maxRecordBytes', `must not exceed maxBatchBytes (${c.maxBatchBytes})`);
  checkResourceBounds(c, bad);
  return out as unknown as JournalNodeConfig;
}

/** The answer budget and the descriptor reserve, checked against what they must hold. */
function checkResourceBounds(c: Partial<JournalNodeConfig>, bad: (field: string, why: string) => never): void {
  // The largest answer that cannot be made smaller (one record, one snapshot chunk) must fit a connection's
  // budget, and a connection's budget the node's, or some reads would be refused for ever.
  const oneAnswerBytes = Math.max(c.maxRecordBytes!, c.maxSnapshotChunkBytes!) + (64 << 10);
  if (c.maxResponseBytesPerConnection! < oneAnswerBytes)
    bad(
      'maxResponseBytesPerConnection',
      `must be at least the largest record or snapshot chunk plus 64 KiB (${oneAnswerBytes})`,
    );
  // The reserve must hold what storage and streamed answers may keep open at once: an open segment per journal,
  // a file per streamed answer the budget admits, and room for the log, snapshots, peers and the process.
  const reserveNeeded = c.maxJournals! + Math.ceil(c.maxResponseBytesInFlight! / STREAM_WINDOW_BYTES) + 128;
  if (c.reservedFileDescriptors! < reserveNeeded)
    bad(
      'reservedFileDescriptors',
      `must be at least maxJournals + maxResponseBytesInFlight / 512 KiB + 128 (${reserveNeeded}): storage and streamed answers keep that many files open at most`,
    );
  if (c.maxResponseBytesInFlight! < c.maxResponseBytesPerConnection!)
    bad(
      'maxResponseBytesInFlight',
      `must be at least maxResponseBytesPerConnection (${c.maxResponseBytesPerConnection})`,
    );
}
