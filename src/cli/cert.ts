// `qjm cert`: the certificates of a cluster (CockroachDB's `cockroach cert` is the model): create-ca,
// create-node ID HOST..., create-client NAME --role ROLE[,ROLE] [--journal JID[,JID]], list. The engine is src/security/; this file
// is the commands' flags and what they print.

import path from 'node:path';
import type { CommandSpec, FlagValues } from '../command-line.js';
import { UsageError } from '../command-line.js';
import { listCertsDir } from '../security/cert-files.js';
import { CA_DAYS_DEFAULT, CERT_DAYS_DEFAULT, createCa, createClientCert, createNodeCert } from '../security/certs.js';
import type { CertOptions } from '../security/certs.js';
import { CLIENT_ROLES, describeJournals, isClientRole } from '../security/roles.js';
import type { ClientRole, Principal } from '../security/roles.js';
import { renderTable } from '../text-table.js';

type Out = (line: string) => void;

const CERTS_DIR = {
  type: 'string',
  required: true,
  valueName: 'DIR',
  description: 'the certificates directory',
} as const;
const CA_KEY = {
  type: 'string',
  valueName: 'FILE',
  description: "the CA's key (default DIR/ca.key): keep it offline between uses",
} as const;
const OVERWRITE = { type: 'boolean', description: 'replace files that exist (default: refuse)' } as const;
const days = (def: number) =>
  ({ type: 'uint', valueName: 'N', description: `validity in days (default ${def})` }) as const;

export const CERT_CREATE_CA = {
  name: 'qjm cert create-ca',
  summary: "Create the cluster's CA: DIR/ca.crt and its key (mode 0600).",
  flags: { 'certs-dir': CERTS_DIR, 'ca-key': CA_KEY, days: days(CA_DAYS_DEFAULT), overwrite: OVERWRITE },
} as const satisfies CommandSpec;

export const CERT_CREATE_NODE = {
  name: 'qjm cert create-node',
  summary: "Create a JournalNode's certificate (role peer, its hosts as SANs): DIR/node.<ID>.crt/.key.",
  positionals: [
    { name: 'ID', description: "the node's id (its --id)" },
    { name: 'HOST...', description: 'every name and IP address the node is dialed at', variadic: true },
  ],
  flags: { 'certs-dir': CERTS_DIR, 'ca-key': CA_KEY, days: days(CERT_DAYS_DEFAULT), overwrite: OVERWRITE },
} as const satisfies CommandSpec;

export const CERT_CREATE_CLIENT = {
  name: 'qjm cert create-client',
  summary:
    "Create a client's certificate with its role(s) and, for a writer or reader, its journals: DIR/client.<NAME>.crt/.key.",
  positionals: [{ name: 'NAME', description: 'the client name (qjm --user NAME, libqjm tls.user)' }],
  flags: {
    'certs-dir': CERTS_DIR,
    role: {
      type: 'string',
      required: true,
      valueName: CLIENT_ROLES.join('|'),
      description:
        'writer: journal writes and reads; reader: reads and status; admin: everything (several: writer,reader)',
    },
    journal: {
      type: 'string',
      valueName: 'JID[,JID]',
      description:
        'the journals a writer or reader may use (required for them; every other journal is refused); admin spans all and takes none',
    },
    'ca-key': CA_KEY,
    days: days(CERT_DAYS_DEFAULT),
    overwrite: OVERWRITE,
  },
} as const satisfies CommandSpec;

export const CERT_LIST = {
  name: 'qjm cert list',
  summary: 'Every certificate in DIR: subject, roles, SANs, expiry, and whether ca.crt issued it.',
  flags: { 'certs-dir': CERTS_DIR, json: { type: 'boolean', description: 'print JSON, for scripts' } },
} as const satisfies CommandSpec;

function certOptions(f: {
  'certs-dir': string;
  'ca-key'?: string | undefined;
  days?: number | undefined;
  overwrite: boolean;
}): CertOptions {
  return {
    certsDir: f['certs-dir'],
    overwrite: f.overwrite,
    ...(f['ca-key'] ? { caKeyPath: f['ca-key'] } : {}),
    ...(f.days !== undefined ? { days: f.days } : {}),
  };
}

function wrote(out: Out, files: string[]): number {
  for (const f of files) out(`wrote ${f}`);
  return 0;
}

export async function cmdCreateCa(f: FlagValues<typeof CERT_CREATE_CA>, out: Out): Promise<number> {
  return wrote(out, await createCa(certOptions(f)));
}

export async function cmdCreateNode(
  f: FlagValues<typeof CERT_CREATE_NODE>,
  out: Out,
  [id, ...hosts]: string[],
): Promise<number> {
  return wrote(out, await createNodeCert(certOptions(f), id!, hosts));
}

export async function cmdCreateClient(
  f: FlagValues<typeof CERT_CREATE_CLIENT>,
  out: Out,
  [name]: string[],
): Promise<number> {
  const roles = f.role.split(',').map((r) => r.trim());
  const unknown = roles.filter((r) => !isClientRole(r));
  if (unknown.length > 0 || roles.length === 0)
    throw new UsageError(
      `--role must be ${CLIENT_ROLES.join(', ')} (or several, comma-separated), got ${JSON.stringify(f.role)}`,
    );
  const journals = (f.journal ?? '')
    .split(',')
    .map((j) => j.trim())
    .filter((j) => j.length > 0);
  if (journals.length === 0 && !roles.includes('admin'))
    throw new UsageError(
      `a ${roles.join(',')} certificate must name the journals it may use: --journal JID[,JID] (an admin certificate spans every journal)`,
    );
  return wrote(out, await createClientCert(certOptions(f), name!, roles as ClientRole[], journals));
}

/** What a certificate may touch: every journal (admin), the ones it names, or none (re-issue it). */
function journalsColumn(p: Principal | null): string {
  if (p === null || p.kind === 'node') return '-';
  const j = describeJournals(p);
  return j === 'none' ? 'NONE: re-issue with --journal' : j;
}

export function cmdList(f: FlagValues<typeof CERT_LIST>, out: Out): number {
  const certs = listCertsDir(f['certs-dir']);
  if (f.json) {
    out(JSON.stringify(certs, null, 2));
    return 0;
  }
  const issued = (v: boolean | null) => (v === null ? '-' : v ? 'yes' : 'NO');
  out(
    renderTable(
      ['FILE', 'SUBJECT', 'ROLES', 'JOURNALS', 'SANS', 'EXPIRES', 'ISSUED BY ca.crt'],
      certs.map((c) => [
        path.basename(c.file),
        c.subject,
        c.isCa ? 'CA' : c.roles.join(',') || '-',
        journalsColumn(c.principal),
        c.sans.filter((san) => !san.startsWith('URI:')).join(' ') || '-',
        c.notAfter.slice(0, 10),
        issued(c.signedByCa),
      ]),
    ),
  );
  return 0;
}
