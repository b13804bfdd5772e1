// The journalnode command line: identity and address flags, --config file.json, and --<setting> <value> for
// every setting of src/settings.ts (the flags derive from the schema's names, kinds and docs, so a new
// setting needs no edit here). Flags override the file; config.ts validates the result.

import fs from 'node:fs';
import { parseCommand, UsageError } from '../src/command-line.js';
import type { CommandSpec, FlagSpec } from '../src/command-line.js';
import { parseAddresses, parsePeers } from '../src/peers.js';
import { SETTINGS } from '../src/settings.js';
import type { SettingName, SettingSchema } from '../src/settings.js';
import { ConfigError, DEFAULTS, validateConfig } from './config.js';
import type { JournalNodeConfig } from './config.js';

const NODE_FLAGS = {
  id: { type: 'string', valueName: 'ID', description: "this node's id" },
  listen: { type: 'string', valueName: 'HOST:PORT', description: 'the address to bind (port 0: any free port)' },
  data: { type: 'string', valueName: 'DIR', description: 'the data directory (locked while the node runs)' },
  peers: {
    type: 'string',
    valueName: 'ID=HOST:PORT,...',
    description:
      'the initial configuration, read when the data directory is empty; later starts give the same list (membership changes: qjm)',
  },
  join: {
    type: 'string',
    valueName: 'HOST:PORT,...',
    description: 'instead of --peers: members of a running cluster to join (then: qjm add-peer)',
  },
  advertise: {
    type: 'string',
    valueName: 'HOST:PORT',
    description: 'the address peers dial, when it is not the one in --peers or --listen',
  },
  'certs-dir': {
    type: 'string',
    valueName: 'DIR',
    description: 'serve HTTPS only, with client certificates: ca.crt and node.<id>.crt/.key (qjm cert)',
  },
  insecure: {
    type: 'boolean',
    description: 'serve plain HTTP without any authentication (instead of --certs-dir; never in production)',
  },
  'ui-listen': {
    type: 'string',
    valueName: 'HOST:PORT',
    description: 'also serve a read-only plain-HTTP port: the dashboard, /status, /metrics, /healthz (off by default)',
  },
  'ui-allowed-hosts': {
    type: 'string',
    valueName: 'NAME,...',
    description:
      'host names the dashboard port also answers (a DNS name, a proxy); it refuses any other Host header (default: its listen address, and localhost on loopback)',
  },
  config: {
    type: 'string',
    valueName: 'FILE',
    description: 'a JSON object of settings by name (and the flags above); flags override it',
  },
  'log-level': { type: 'string', choices: SETTINGS.logLevel.values, description: 'the same as --logLevel' },
} as const satisfies Record<string, FlagSpec>;

/** Flag name to setting name, where they differ. */
const FIELD_OF_FLAG: Partial<Record<keyof typeof NODE_FLAGS, keyof JournalNodeConfig>> = {
  data: 'dataDir',
  'log-level': 'logLevel',
  'certs-dir': 'certsDir',
  'ui-listen': 'uiListen',
  'ui-allowed-hosts': 'uiAllowedHosts',
};

/** What a config file may name besides the settings. */
const FILE_FIELDS = [
  'id',
  'listen',
  'dataDir',
  'peers',
  'join',
  'advertise',
  'certsDir',
  'insecure',
  'uiListen',
  'uiAllowedHosts',
];

/** A comma-separated list (of names): its non-empty parts. */
const commaList = (v: string) =>
  v
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0);

function settingFlag(s: SettingSchema): FlagSpec {
  const description = `${s.doc} (default ${s.default})`;
  switch (s.kind) {
    case 'int':
      return { type: 'string', valueName: 'N', description };
    case 'bool':
      return { type: 'string', choices: ['true', 'false'], description };
    case 'enum':
      return { type: 'string', choices: s.values, description };
  }
}

const SETTING_FLAGS: Record<string, FlagSpec> = Object.fromEntries(
  Object.entries(SETTINGS).map(([name, s]) => [name, settingFlag(s)]),
);

export const JOURNALNODE_COMMAND = {
  name: 'journalnode',
  summary: 'A JournalNode: one member of the Raft group that stores the journals.',
  usage: [
    'journalnode --id n1 --listen 127.0.0.1:8485 --data ./data/n1 \\',
    '            --peers n1=127.0.0.1:8485,n2=127.0.0.1:8486,n3=127.0.0.1:8487 --certs-dir ./certs \\',
    '            [--config file.json] [--<setting> VALUE]...',
    'journalnode --id n4 --listen 127.0.0.1:8488 --data ./data/n4 --join 127.0.0.1:8485   (then: qjm add-peer)',
  ],
  flags: { ...NODE_FLAGS, ...SETTING_FLAGS },
  notes:
    'Every setting (GET /flags shows the effective ones) is a flag of its own name; docs/OPERATIONS.md says what each does.',
} as const satisfies CommandSpec;

export type JournalNodeArgs = { help: true } | { help: false; config: JournalNodeConfig };

/**
 * Parses the command line into a validated configuration. Throws UsageError (a flag problem) or ConfigError
 * (a bad setting, from the flags or the file).
 */
export function parseJournalNodeArgs(argv: readonly string[]): JournalNodeArgs {
  const p = parseCommand(JOURNALNODE_COMMAND, argv, {});
  if (p.help) return p;
  const { insecure, ...flags } = p.flags as unknown as Record<string, string | undefined> & { insecure: boolean };
  if (flags['log-level'] !== undefined && flags.logLevel !== undefined)
    throw new UsageError('give --log-level or --logLevel, not both');
  const cfg: Record<string, unknown> = { ...DEFAULTS, ...(flags.config ? readConfigFile(flags.config) : {}) };
  // Present or absent, as every boolean flag: absent leaves the file's choice.
  if (insecure) cfg.insecure = true;
  for (const [flag, value] of Object.entries(flags)) {
    if (value === undefined || flag === 'config') continue;
    if (flag === 'peers' || flag === 'join') {
      try {
        cfg[flag] = flag === 'peers' ? parsePeers(value) : parseAddresses(value);
      } catch (e) {
        throw new UsageError(`invalid --${flag}: ${(e as Error).message}`);
      }
      continue;
    }
    const field = FIELD_OF_FLAG[flag as keyof typeof NODE_FLAGS] ?? flag;
    const kind = Object.hasOwn(SETTINGS, field) ? SETTINGS[field as SettingName].kind : 'string';
    if (kind === 'int') {
      // Ranges are the schema's to check (validateConfig); here only that it is a number at all.
      const n = Number(value);
      if (value.trim() === '' || !Number.isFinite(n))
        throw new UsageError(`invalid --${flag}: expected a number, got ${JSON.stringify(value)}`);
      cfg[field] = n;
    } else if (kind === 'bool') cfg[field] = value === 'true';
    else if (field === 'uiAllowedHosts') cfg[field] = commaList(value);
    else cfg[field] = value;
  }
  return { help: false, config: validateConfig(cfg as Partial<JournalNodeConfig>) };
}

function readConfigFile(file: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new ConfigError(`cannot read --config ${file}: ${(e as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed))
    throw new ConfigError(`--config ${file}: expected a JSON object`);
  const out = parsed as Record<string, unknown>;
  for (const k of Object.keys(out)) {
    if (!(k in DEFAULTS) && !FILE_FIELDS.includes(k))
      throw new ConfigError(`--config ${file}: unknown setting ${JSON.stringify(k)}`);
  }
  try {
    if (typeof out.peers === 'string') out.peers = parsePeers(out.peers);
    if (typeof out.join === 'string') out.join = parseAddresses(out.join);
    if (typeof out.uiAllowedHosts === 'string') out.uiAllowedHosts = commaList(out.uiAllowedHosts);
  } catch (e) {
    throw new ConfigError(`--config ${file}: ${(e as Error).message}`);
  }
  return out;
}
