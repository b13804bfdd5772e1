// qjm cert's engine: what it writes (keys 0600, nothing overwritten unless asked), what a certificate says
// (roles parsed back from the subject, SANs, validity), and the checks a node or a client applies when it
// loads its material.

import { X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import {
  CertificateError,
  certFiles,
  listCertsDir,
  loadClientTls,
  loadNodeTls,
} from '../../../src/security/cert-files.js';
import { CertExistsError, createCa, createClientCert, createNodeCert } from '../../../src/security/certs.js';
import { journalsOfAltNames, principalOfCertificate } from '../../../src/security/roles.js';

describe('certificates', function () {
  this.timeout(20_000);
  let dir: string;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-certs-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const mode = (f: string) => fs.statSync(f).mode & 0o777;
  const refusal = (fn: () => unknown): string => {
    try {
      fn();
    } catch (e) {
      expect(e).to.be.instanceOf(CertificateError);
      return (e as Error).message;
    }
    return expect.fail('accepted');
  };

  it('create-ca, create-node, create-client: keys 0600, roles and SANs read back, default validity', async () => {
    await createCa({ certsDir: dir });
    await createNodeCert({ certsDir: dir }, 'n1', ['127.0.0.1', 'jn1.example.com', '[::1]']);
    await createClientCert({ certsDir: dir }, 'nn1', ['writer', 'reader'], ['ns1', 'ns2']);
    for (const key of ['ca.key', 'node.n1.key', 'client.nn1.key'])
      expect(mode(path.join(dir, key)), key).to.equal(0o600);
    const list = listCertsDir(dir);
    expect(list.map((c) => path.basename(c.file))).to.deep.equal(['ca.crt', 'client.nn1.crt', 'node.n1.crt']);
    const [ca, client, node] = list;
    expect(ca).to.include({ isCa: true, subject: 'CN=qjournal CA, O=qjournal', signedByCa: null });
    expect(client).to.include({ subject: 'CN=nn1, O=qjournal, OU=writer, OU=reader', signedByCa: true });
    expect(client!.principal).to.deep.equal({
      kind: 'client',
      name: 'nn1',
      roles: ['writer', 'reader'],
      journals: ['ns1', 'ns2'],
    });
    expect(client!.sans).to.deep.equal(['URI:qjournal://journal/ns1', 'URI:qjournal://journal/ns2']);
    expect(node!.principal).to.deep.equal({ kind: 'node', id: 'n1' });
    expect(node!.sans).to.deep.equal(['IP:127.0.0.1', 'DNS:jn1.example.com', 'IP:0:0:0:0:0:0:0:1']);
    const years = (c: { notBefore: string; notAfter: string }) =>
      (Date.parse(c.notAfter) - Date.parse(c.notBefore)) / (365 * 86_400_000);
    expect(years(ca!)).to.be.within(9.9, 10.1);
    expect(years(node!)).to.be.within(1.9, 2.1);
    const x = new X509Certificate(fs.readFileSync(certFiles(dir, 'node', 'n1').cert));
    expect(x.keyUsage, 'a node serves and dials').to.include.members(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    const y = new X509Certificate(fs.readFileSync(certFiles(dir, 'client', 'nn1').cert));
    expect(y.keyUsage, 'a client only dials').to.deep.equal(['1.3.6.1.5.5.7.3.2']);
    expect(y.publicKey.asymmetricKeyDetails?.namedCurve).to.equal('prime256v1');
  });

  it('refuses to overwrite unless asked; --days; a CA key kept elsewhere', async () => {
    const caKeyPath = path.join(dir, 'offline', 'ca.key');
    await createCa({ certsDir: dir, caKeyPath });
    expect(fs.existsSync(path.join(dir, 'ca.key'))).to.equal(false);
    await createClientCert({ certsDir: dir, caKeyPath, days: 30 }, 'ops', ['admin']);
    let refused: unknown = null;
    await createClientCert({ certsDir: dir, caKeyPath }, 'ops', ['admin']).catch((e: unknown) => (refused = e));
    expect(refused).to.be.instanceOf(CertExistsError);
    expect((refused as Error).message).to.match(
      /client\.ops\.crt, .*client\.ops\.key already exist: refusing to overwrite \(give --overwrite/,
    );
    const before = listCertsDir(dir)[1]!;
    expect(Date.parse(before.notAfter) - Date.parse(before.notBefore)).to.equal(30 * 86_400_000);
    await createClientCert({ certsDir: dir, caKeyPath, overwrite: true }, 'ops', ['admin']);
    expect(listCertsDir(dir)[1]!.serial).to.not.equal(before.serial);
    let noCa: unknown = null;
    await createNodeCert({ certsDir: dir }, 'n1', ['h']).catch((e: unknown) => (noCa = e));
    expect((noCa as Error).message).to.match(/ca\.key: ENOENT \(create the CA first/);
  });

  it('loading checks the issuer, the key, the identity and the expiry', async () => {
    await createCa({ certsDir: dir });
    await createNodeCert({ certsDir: dir }, 'n1', ['127.0.0.1']);
    await createNodeCert({ certsDir: dir }, 'n2', ['127.0.0.1']);
    await createClientCert({ certsDir: dir }, 'alice', ['reader'], ['ns1']);
    expect(loadNodeTls(dir, 'n1').cert.toString()).to.match(/BEGIN CERTIFICATE/);
    expect(loadClientTls(dir, 'alice').key.toString()).to.match(/BEGIN PRIVATE KEY/);
    // n2's key under n1's certificate.
    fs.copyFileSync(path.join(dir, 'node.n2.key'), path.join(dir, 'node.n1.key'));
    expect(refusal(() => loadNodeTls(dir, 'n1'))).to.match(/node\.n1\.key is not the key of .*node\.n1\.crt/);
    // n2's certificate and key filed as n1's.
    fs.copyFileSync(path.join(dir, 'node.n2.crt'), path.join(dir, 'node.n1.crt'));
    expect(refusal(() => loadNodeTls(dir, 'n1'))).to.match(/node\.n1\.crt is for node n2, not node n1/);
    // A client certificate is not a node's.
    fs.copyFileSync(path.join(dir, 'client.alice.crt'), path.join(dir, 'node.n3.crt'));
    fs.copyFileSync(path.join(dir, 'client.alice.key'), path.join(dir, 'node.n3.key'));
    expect(refusal(() => loadNodeTls(dir, 'n3'))).to.match(/is for client alice \(reader\), not node n3/);
    // Another CA.
    await createCa({ certsDir: dir, overwrite: true });
    expect(refusal(() => loadClientTls(dir, 'alice'))).to.match(/client\.alice\.crt was not issued by .*ca\.crt/);
    expect(refusal(() => loadClientTls(dir, 'bob'))).to.match(
      /cannot read the client certificate .*client\.bob\.crt: ENOENT/,
    );
  });

  it('a writer or reader certificate must name its journals; an admin names none; ids are checked', async () => {
    await createCa({ certsDir: dir });
    const refused = async (roles: ('writer' | 'reader' | 'admin')[], journals: string[]) => {
      try {
        await createClientCert({ certsDir: dir }, 'x', roles, journals);
      } catch (e) {
        expect(e).to.be.instanceOf(CertificateError);
        return (e as Error).message;
      }
      return 'created';
    };
    expect(await refused(['writer'], [])).to.equal(
      'a writer certificate must name the journals it may use: --journal JID[,JID] (an admin certificate spans every journal)',
    );
    expect(await refused(['reader'], [])).to.match(/^a reader certificate must name the journals/);
    expect(await refused(['admin'], ['ns1'])).to.match(
      /^an admin certificate spans every journal: leave --journal out/,
    );
    expect(await refused(['writer'], ['..'])).to.match(/^bad journal id "\.\."/);
    expect(await refused(['writer'], ['ns1,ns2'])).to.match(/^bad journal id "ns1,ns2"/);
    expect(
      await refused(
        ['writer'],
        Array.from({ length: 101 }, (_, i) => `j${i}`),
      ),
    ).to.match(/at most 100 journals/);
    expect(fs.existsSync(path.join(dir, 'client.x.crt')), 'nothing written').to.equal(false);
  });

  it('journals are read from the URI names: only qjournal://journal/<valid id> counts', () => {
    expect(journalsOfAltNames('URI:qjournal://journal/ns1, DNS:x, URI:qjournal://journal/ns2')).to.deep.equal([
      'ns1',
      'ns2',
    ]);
    expect(journalsOfAltNames(undefined)).to.deep.equal([]);
    for (const odd of [
      'URI:qjournal://journal/..', // not a journal id
      'URI:qjournal://journal/', // empty
      'URI:qjournal://journal/a/b',
      'URI:https://journal/ns1', // another scheme
      'URI:qjournal://journals/ns1',
      'DNS:qjournal://journal/ns1', // another kind of name
      'URI:"qjournal://journal/ns1, URI:qjournal://journal/ns2"', // node quotes a name holding a separator
    ])
      expect(journalsOfAltNames(odd), odd).to.deep.equal([]);
  });

  it('roles are read from the subject: OU=peer makes a node, unknown roles are ignored, no role is nobody', () => {
    const table: [Parameters<typeof principalOfCertificate>[0], ReturnType<typeof principalOfCertificate>][] = [
      [
        { CN: 'n1', O: 'qjournal', OU: 'peer' },
        { kind: 'node', id: 'n1' },
      ],
      [
        { CN: 'a', OU: ['reader', 'janitor'] },
        { kind: 'client', name: 'a', roles: ['reader'], journals: [] },
      ],
      [
        { CN: 'a', OU: ['admin', 'writer'] },
        { kind: 'client', name: 'a', roles: ['writer', 'admin'], journals: [] },
      ],
      [
        { CN: 'a', OU: ['writer', 'peer'] },
        { kind: 'node', id: 'a' },
      ],
      [{ CN: 'a' }, null],
      [{ CN: ['a', 'b'], OU: 'admin' }, null],
      [{ CN: 'a b', OU: 'admin' }, null],
      [{ OU: 'admin' }, null],
    ];
    for (const [subject, principal] of table)
      expect(principalOfCertificate(subject), JSON.stringify(subject)).to.deep.equal(principal);
  });
});
