// The import rules of docs/ARCHITECTURE.md ("The map"), checked on the sources: each folder imports only from
// the layers it may. A rule broken here is a layering mistake to fix, not a rule to loosen.

import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { REPO_ROOT } from '../support/repo-root.js';

const ROOT = REPO_ROOT;

function sources(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of fs.readdirSync(d)) {
      const p = path.join(d, name);
      if (name === 'gen') continue;
      if (fs.statSync(p).isDirectory()) walk(p);
      else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(p);
    }
  };
  walk(path.join(ROOT, dir));
  return out;
}

/** Every module a file imports: repository-relative paths for local imports, package names otherwise. */
function importsOf(file: string): string[] {
  const text = fs.readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/^(?:import|export)\s[^'";]*?from\s+'([^']+)'/gm)) {
    const spec = m[1]!;
    out.push(
      spec.startsWith('.') ? path.relative(ROOT, path.resolve(path.dirname(file), spec)).replace(/\.js$/, '.ts') : spec,
    );
  }
  return out;
}

interface Rule {
  folder: string;
  /** What may be imported: repository-relative path prefixes, package names, or 'node:' for Node's modules. */
  allow: string[];
}

const SHARED_SRC_FILES = fs
  .readdirSync(path.join(ROOT, 'src'))
  .filter((n) => n.endsWith('.ts'))
  .map((n) => `src/${n}`);

/** Reading and checking certificates; not certs.ts, the builder of qjm cert (a node never loads it). */
const SECURITY_READERS = [
  'src/security/roles.ts',
  'src/security/cert-files.ts',
  'src/security/client-tls.ts',
  'src/security/server-identities.ts',
];

/** What any part of the server may use: Node, its packages, the layers under it and the shared files of src/. */
const NODE_BASE = [
  'node:',
  'fastify',
  'pino',
  'pino-pretty',
  'prom-client',
  'undici',
  'src/raft/',
  'src/replica/',
  'src/storage/',
  'src/transport/',
  'src/gen/',
  ...SECURITY_READERS,
  ...SHARED_SRC_FILES,
];

/** What the CLI, the demo and the bench may use: libqjm, the local cluster launcher and the shared files of src/. */
const TOOL_BASE = ['node:', 'undici', 'libqjm/', 'src/gen/', ...SECURITY_READERS, ...SHARED_SRC_FILES];

const RULES: Rule[] = [
  { folder: 'src/raft', allow: ['src/raft/', 'src/assert.ts', 'src/logger.ts', 'src/settings.ts'] },
  {
    folder: 'src/replica',
    allow: [
      'src/replica/',
      'src/raft/',
      'src/transport/raft-codec.ts',
      'src/errors.ts',
      'src/settings.ts',
      'src/logger.ts',
      'src/assert.ts',
    ],
  },
  {
    folder: 'src/storage',
    allow: [
      'node:',
      'src/storage/',
      'src/raft/',
      'src/replica/env.ts',
      'src/gen/',
      'src/logger.ts',
      'src/assert.ts',
      'src/segment-name.ts',
      'src/file-modes.ts',
    ],
  },
  {
    folder: 'src/transport',
    allow: ['src/transport/', 'src/raft/types.ts', 'src/raft/bytes.ts', 'src/gen/', 'protobufjs'],
  },
  {
    folder: 'src/security',
    allow: ['node:', 'src/security/', 'src/ids.ts', 'src/http-pool.ts', '@peculiar/x509', 'reflect-metadata'],
  },
  {
    folder: 'libqjm',
    allow: [
      'node:',
      'undici',
      'libqjm/',
      'src/gen/',
      ...SECURITY_READERS,
      ...SHARED_SRC_FILES.filter((f) => f !== 'src/local-cluster.ts'),
    ],
  },
  {
    folder: 'journalnode',
    allow: [
      'node:',
      'fastify',
      'pino',
      'pino-pretty',
      'prom-client',
      'undici',
      'journalnode/',
      'src/raft/',
      'src/replica/',
      'src/storage/',
      'src/transport/',
      'src/gen/',
      ...SECURITY_READERS,
      ...SHARED_SRC_FILES,
    ],
  },
  // Inside the server, each concern leans only on the ones below it: replicated state on nothing of the
  // server's; peer links on the state they carry and the one authorization table; observation on what it
  // observes; the HTTP face on all three; the dashboard on what observation and /status gather.
  { folder: 'journalnode/state', allow: [...NODE_BASE, 'journalnode/state/'] },
  {
    folder: 'journalnode/peers',
    allow: [
      ...NODE_BASE,
      'journalnode/peers/',
      'journalnode/state/',
      'journalnode/http/authz.ts',
      'journalnode/http/rpc-errors.ts',
    ],
  },
  {
    folder: 'journalnode/observe',
    allow: [...NODE_BASE, 'journalnode/observe/', 'journalnode/state/', 'journalnode/peers/'],
  },
  {
    folder: 'journalnode/http',
    allow: [
      ...NODE_BASE,
      'journalnode/http/',
      'journalnode/state/',
      'journalnode/peers/',
      'journalnode/observe/',
      'journalnode/config.ts',
    ],
  },
  {
    folder: 'journalnode/ui',
    allow: [...NODE_BASE, 'journalnode/ui/', 'journalnode/observe/', 'journalnode/http/routes-admin.ts'],
  },
  // The operators' programs stand on libqjm like any client: never on the server, the core or its driver.
  { folder: 'src/cli', allow: [...TOOL_BASE, 'src/cli/', 'src/demo/', 'src/bench/', 'src/security/'] },
  { folder: 'src/demo', allow: [...TOOL_BASE, 'src/demo/'] },
  { folder: 'src/bench', allow: [...TOOL_BASE, 'src/bench/'] },
  // The examples are what a user of the package writes: its public entry point and Node, nothing else.
  { folder: 'examples', allow: ['node:', 'qjournal/libqjm'] },
];

describe('layering (docs/ARCHITECTURE.md, "The map")', () => {
  for (const rule of RULES) {
    it(`${rule.folder} imports only what it may`, () => {
      const bad: string[] = [];
      for (const file of sources(rule.folder)) {
        for (const imp of importsOf(file)) {
          const ok = rule.allow.some((a) => (a === 'node:' ? imp.startsWith('node:') : imp === a || imp.startsWith(a)));
          if (!ok) bad.push(`${path.relative(ROOT, file)} imports ${imp}`);
        }
      }
      expect(bad).to.deep.equal([]);
    });
  }

  it('no shipped code imports test/', () => {
    const bad: string[] = [];
    for (const dir of ['src', 'journalnode', 'libqjm']) {
      for (const file of sources(dir))
        for (const imp of importsOf(file))
          if (imp.startsWith('test/')) bad.push(`${path.relative(ROOT, file)} imports ${imp}`);
    }
    expect(bad).to.deep.equal([]);
  });

  it('the rules see the imports they are about (the checker itself works)', () => {
    const imports = importsOf(path.join(ROOT, 'src/replica/replica.ts'));
    expect(imports).to.include('src/raft/raw-node.ts');
    expect(imports).to.include('src/replica/client-waits.ts');
  });
});

describe('docs/ARCHITECTURE.md maps every file', () => {
  it('names every shipped source file', () => {
    const doc = fs.readFileSync(path.join(ROOT, 'docs', 'ARCHITECTURE.md'), 'utf8');
    const missing: string[] = [];
    for (const dir of ['src', 'journalnode', 'libqjm']) {
      for (const file of sources(dir)) {
        const rel = path.relative(ROOT, file);
        if (!doc.includes(path.basename(rel))) missing.push(rel);
      }
    }
    expect(missing, 'files the map does not name').to.deep.equal([]);
  });
});
