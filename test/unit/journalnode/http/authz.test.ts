// The authorization table and its decisions: who may call what, the refusals' codes, the Raft batch rule,
// and -- against a node built in-process with certificates -- that every route it registers is in the table
// and refused without a certificate (app.inject carries none) but /healthz.

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { pino } from 'pino';
import {
  authorizeJournal,
  authorizePeerBatch,
  decide,
  INSECURE_CALLER,
  ROUTE_RULES,
  ruleFor,
} from '../../../../journalnode/http/authz.js';
import type { Caller } from '../../../../journalnode/http/authz.js';
import { DEFAULTS, validateConfig } from '../../../../journalnode/config.js';
import { buildJournalNode } from '../../../../journalnode/journal-node.js';
import { MessageType, makeMessage } from '../../../../src/raft/types.js';
import { createCa, createNodeCert } from '../../../../src/security/certs.js';

const node = (id: string): Caller => ({ kind: 'node', id });
const client = (...roles: ('writer' | 'reader' | 'admin')[]): Caller => ({
  kind: 'client',
  name: 'c',
  roles,
  journals: [],
});
const scoped = (roles: ('writer' | 'reader' | 'admin')[], journals: string[]): Caller => ({
  kind: 'client',
  name: 'nn1',
  roles,
  journals,
});

function outcome(caller: Caller | null, route: string): string {
  return decide(caller, ruleFor(route).allowed)?.code ?? 'ok';
}

describe('authorization', () => {
  it('the role table: who may call what', () => {
    const callers: [string, Caller | null][] = [
      ['nobody', null],
      ['peer', node('n1')],
      ['reader', client('reader')],
      ['writer', client('writer')],
      ['admin', client('admin')],
      ['no role', client()],
      ['insecure', INSECURE_CALLER],
    ];
    const U = 'QJM_ERR_UNAUTHENTICATED';
    const F = 'QJM_ERR_FORBIDDEN';
    // route: nobody, peer, reader, writer, admin, no role, insecure
    const table: [string | undefined, string[]][] = [
      ['/healthz', ['ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok']],
      ['/raft/stream', [U, 'ok', F, F, F, F, 'ok']],
      ['/raft/snapshot/chunk', [U, 'ok', F, F, F, F, 'ok']],
      ['/qjm/getEdits', [U, F, 'ok', 'ok', 'ok', F, 'ok']],
      ['/qjm/segment', [U, F, 'ok', 'ok', 'ok', F, 'ok']],
      ['/qjm/journal', [U, F, F, 'ok', 'ok', F, 'ok']],
      ['/qjm/newEpoch', [U, F, F, 'ok', 'ok', F, 'ok']],
      ['/qjm/format', [U, F, F, 'ok', 'ok', F, 'ok']],
      ['/status', [U, 'ok', 'ok', 'ok', 'ok', F, 'ok']],
      ['/metrics', [U, 'ok', 'ok', 'ok', 'ok', F, 'ok']],
      // The effective settings name file-system paths (the certificates, the data directory): admin only.
      ['/flags', [U, F, F, F, 'ok', F, 'ok']],
      ['/admin/changePeers', [U, F, F, F, 'ok', F, 'ok']],
      ['/admin/snapshot', [U, F, F, F, 'ok', F, 'ok']],
      ['/admin/resetPeers', [U, F, F, F, 'ok', F, 'ok']],
      [undefined, [U, 'ok', 'ok', 'ok', 'ok', 'ok', 'ok']],
    ];
    for (const [route, expected] of table) {
      expect(
        callers.map(([, c]) => outcome(c, route as string)),
        `${route ?? '(no route: 404)'} for ${callers.map(([n]) => n).join(', ')}`,
      ).to.deep.equal(expected);
    }
  });

  it('a refusal names the rule and how to comply', () => {
    expect(decide(null, ['reader'])!.message).to.match(
      /a client certificate is required: connect with --certs-dir D --user NAME/,
    );
    expect(decide(client('reader'), ['writer', 'admin'])!.message).to.equal(
      'client c (reader) may not call this: it needs the role writer or admin',
    );
  });

  it('a journal route touches only the journals the certificate names; admin spans all', () => {
    const writer = scoped(['writer'], ['ns1', 'ns2']);
    const verdict = (c: Caller | null, jid: string) => authorizeJournal(c, jid)?.code ?? 'ok';
    expect(['ns1', 'ns2', 'ns3', 'NS1', 'ns1 ', 'ns', 'ns10', '', '..'].map((j) => verdict(writer, j))).to.deep.equal([
      'ok',
      'ok',
      ...Array(7).fill('QJM_ERR_FORBIDDEN'),
    ]);
    expect(verdict(scoped(['admin'], []), 'anything')).to.equal('ok');
    expect(verdict(scoped(['reader', 'admin'], []), 'ns9')).to.equal('ok');
    expect(verdict(INSECURE_CALLER, 'ns9')).to.equal('ok');
    expect(verdict(node('n1'), 'ns1')).to.equal('QJM_ERR_FORBIDDEN');
    expect(verdict(null, 'ns1')).to.equal('QJM_ERR_FORBIDDEN');
    expect(authorizeJournal(writer, 'ns3')!.message).to.equal(
      'client nn1 (writer) may not use journal "ns3": its certificate names journals ns1,ns2',
    );
    // A certificate issued before journals were carried in certificates names none: it is told how to re-issue.
    expect(authorizeJournal(scoped(['writer'], []), 'ns1')!.message).to.equal(
      'client nn1 (writer) may not use journal "ns1": its certificate names no journal (issued before certificates were scoped to journals); re-issue it: qjm cert create-client nn1 --role writer --journal JID[,JID] --overwrite',
    );
  });

  it('a Raft batch speaks only for its certificate: the batch and every message', () => {
    const batch = (from: string, messageFrom = from) => ({
      from,
      clusterId: 'c',
      storageId: 's',
      fromAddress: '',
      messages: [makeMessage({ type: MessageType.Heartbeat, from: messageFrom, to: 'n2', term: 5 })],
    });
    expect(authorizePeerBatch(node('n3'), batch('n3'))).to.equal(null);
    expect(authorizePeerBatch(node('n3'), batch('n1'))?.message).to.equal(
      'node n3\'s certificate cannot send a batch from "n1"',
    );
    expect(authorizePeerBatch(node('n3'), batch('n3', 'n1'))?.message).to.equal(
      'node n3\'s certificate cannot send a message from "n1"',
    );
    expect(authorizePeerBatch(client('admin'), batch('n1'))?.code).to.equal('QJM_ERR_FORBIDDEN');
    expect(authorizePeerBatch(null, batch('n1'))?.code).to.equal('QJM_ERR_FORBIDDEN');
    expect(authorizePeerBatch(INSECURE_CALLER, batch('n1'))).to.equal(null);
  });

  it('every route a secure node registers has a rule, and answers 401 without a certificate (but /healthz)', async function () {
    this.timeout(20_000);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-authz-'));
    const certsDir = path.join(dir, 'certs');
    await createCa({ certsDir });
    await createNodeCert({ certsDir }, 'n1', ['127.0.0.1']);
    const config = validateConfig({
      ...DEFAULTS,
      id: 'n1',
      listen: '127.0.0.1:0',
      dataDir: path.join(dir, 'n1'),
      peers: [{ id: 'n1', address: '127.0.0.1:1' }],
      certsDir,
      logLevel: 'silent',
    });
    const jn = await buildJournalNode(config, { logger: pino({ level: 'silent' }) });
    try {
      await jn.app.ready();
      const routes = [...jn.app.printRoutes({ commonPrefix: false }).matchAll(/(\/\S*) \(([A-Z, ]+)\)/g)].flatMap((m) =>
        m[2]!
          .split(', ')
          .filter((x) => x !== 'HEAD')
          .map((method) => [method, m[1]!] as const),
      );
      expect(routes.length).to.be.greaterThan(15);
      const unknown = ruleFor(undefined);
      for (const [method, url] of routes) {
        expect(ruleFor(url), `${url} is in the table`).to.not.equal(unknown);
        const res = await jn.app.inject({
          method: method as 'GET' | 'POST',
          url,
          headers: { 'content-type': 'application/x-protobuf' },
          payload: method === 'POST' ? Buffer.alloc(0) : undefined,
        });
        expect(res.statusCode, `${method} ${url}`).to.equal(url === '/healthz' ? 200 : 401);
      }
      expect(
        Object.keys(ROUTE_RULES).every((pattern) =>
          routes.some(([, url]) => url === pattern || (pattern.endsWith('/*') && url.startsWith(pattern.slice(0, -1)))),
        ),
        'no rule for a route that does not exist',
      ).to.equal(true);
    } finally {
      await jn.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
