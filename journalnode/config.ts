// A JournalNode's configuration: its identity (id, addresses, data directory, peers) and the settings of
// src/settings.ts; the command line and an optional JSON config file; validation of every field with an
// error that names it.

import fs from 'node:fs';
import { parseAddresses, parsePeers } from '../src/peers.js';
import type { Peer } from '../src/raft/types.js';
import { checkSetting, DEFAULT_SETTINGS, SETTINGS } from '../src/settings.js';
import type { SettingName, Settings } from '../src/settings.js';

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
}

export interface JournalNodeConfig extends NodeIdentity, Settings {}

/** Every setting's default (the schema in src/settings.ts). */
export const DEFAULTS: Settings = DEFAULT_SETTINGS;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Checks a host:port string; returns the problem or null. */
export function checkHostPort(s: string): string | null {
  const m = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/.exec(s);
  if (!m) return `expected host:port, got ${JSON.stringify(s)}`;
  const port = Number(m[2]);
  if (port < 0 || port > 65535) return `port ${port} out of range`;
  return null;
}

export function splitHostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  let host = s.slice(0, i);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host, port: Number(s.slice(i + 1)) };
}

/** Validates a complete configuration; throws ConfigError naming the first bad field. */
export function validateConfig(c: Partial<JournalNodeConfig>): JournalNodeConfig {
  const bad = (field: string, why: string): never => {
    throw new ConfigError(`invalid ${field}: ${why}`);
  };
  if (typeof c.id !== 'string' || !/^[A-Za-z0-9._-]{1,64}$/.test(c.id)) bad('id', 'expected 1-64 characters of [A-Za-z0-9._-]');
  if (typeof c.listen !== 'string') bad('listen', 'missing (e.g. --listen 127.0.0.1:8485)');
  const hp = checkHostPort(c.listen!);
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
    bad('peers', 'missing: --peers n1=127.0.0.1:8485,n2=127.0.0.1:8486,n3=127.0.0.1:8487 for a new cluster, or --join <members> to join one');
  }
  if (peers.length > 0 && join.length > 0) bad('join', 'give --peers (a new cluster) or --join (an existing one), not both');
  const ids = new Set<string>();
  for (const p of peers) {
    if (!/^[A-Za-z0-9._-]{1,64}$/.test(p.id)) bad('peers', `bad peer id ${JSON.stringify(p.id)}`);
    if (ids.has(p.id)) bad('peers', `peer ${p.id} named twice`);
    ids.add(p.id);
    const e = checkHostPort(p.address);
    if (e) bad('peers', `peer ${p.id}: ${e}`);
  }
  if (peers.length > 0 && !ids.has(c.id!)) bad('peers', `this node's id ${c.id} is not among the peers`);
  const advertise = c.advertise ?? peers.find((p) => p.id === c.id)?.address ?? c.listen!;
  const ae = checkHostPort(advertise);
  if (ae) bad('advertise', ae);
  if (/^(0\.0\.0\.0|\[::\]):/.test(advertise)) bad('advertise', `${advertise} is a wildcard bind address: peers cannot dial it; give --advertise host:port`);
  const out: Record<string, unknown> = { ...c, peers, join, advertise };
  for (const name of Object.keys(SETTINGS) as SettingName[]) {
    const problem = checkSetting(name, out[name]);
    if (problem) bad(name, problem);
  }
  if (c.electionTimeoutMs! / c.electionHeartbeatFactor! < 5) bad('electionHeartbeatFactor', 'the heartbeat interval would be under 5 ms');
  if (c.maxBatchBytes! > c.maxAppendBodyBytes!) bad('maxBatchBytes', `must not exceed maxAppendBodyBytes (${c.maxAppendBodyBytes})`);
  if (c.maxRecordBytes! > c.maxBatchBytes!) bad('maxRecordBytes', `must not exceed maxBatchBytes (${c.maxBatchBytes})`);
  return out as unknown as JournalNodeConfig;
}

const FLAG_TO_FIELD: Record<string, keyof JournalNodeConfig> = {
  id: 'id',
  listen: 'listen',
  advertise: 'advertise',
  data: 'dataDir',
  'log-level': 'logLevel',
};

/** Parses the command line (plus --config file.json, whose values the flags override). */
export function parseArgs(argv: string[]): JournalNodeConfig {
  const flags: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) throw new ConfigError(`unexpected argument ${JSON.stringify(a)}`);
    const eq = a.indexOf('=');
    const name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    const value = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new ConfigError(`--${name} needs a value`);
    flags[name] = value;
  }
  let file: Record<string, unknown> = {};
  if (flags.config) {
    try {
      file = JSON.parse(fs.readFileSync(flags.config, 'utf8')) as Record<string, unknown>;
    } catch (e) {
      throw new ConfigError(`cannot read --config ${flags.config}: ${(e as Error).message}`);
    }
    if (typeof file !== 'object' || file === null || Array.isArray(file)) throw new ConfigError(`--config ${flags.config}: expected a JSON object`);
    for (const k of Object.keys(file)) {
      if (!(k in DEFAULTS) && !['id', 'listen', 'dataDir', 'peers', 'join', 'advertise'].includes(k)) throw new ConfigError(`--config ${flags.config}: unknown setting ${JSON.stringify(k)}`);
    }
    if (typeof file.peers === 'string') file.peers = parsePeers(file.peers);
    if (typeof file.join === 'string') file.join = parseAddresses(file.join);
  }
  const cfg: Record<string, unknown> = { ...DEFAULTS, ...file };
  for (const [flag, value] of Object.entries(flags)) {
    if (flag === 'config') continue;
    if (flag === 'join') {
      try {
        cfg.join = parseAddresses(value);
      } catch (e) {
        throw new ConfigError(`invalid --join: ${(e as Error).message}`);
      }
      continue;
    }
    if (flag === 'peers') {
      try {
        cfg.peers = parsePeers(value);
      } catch (e) {
        throw new ConfigError(`invalid --peers: ${(e as Error).message}`);
      }
      continue;
    }
    const field = FLAG_TO_FIELD[flag] ?? (flag in DEFAULTS ? flag : undefined);
    if (!field) throw new ConfigError(`unknown flag --${flag}`);
    const def = (DEFAULTS as Record<string, unknown>)[field];
    if (typeof def === 'number') {
      const n = Number(value);
      if (!Number.isFinite(n)) throw new ConfigError(`invalid --${flag}: expected a number, got ${JSON.stringify(value)}`);
      cfg[field] = n;
    } else if (typeof def === 'boolean') {
      if (value !== 'true' && value !== 'false') throw new ConfigError(`invalid --${flag}: expected true or false`);
      cfg[field] = value === 'true';
    } else cfg[field] = value;
  }
  return validateConfig(cfg as Partial<JournalNodeConfig>);
}
