// `qjm cert`'s engine: creates the cluster's CA, node certificates and client certificates in a
// certificates directory (the layout of cert-files.ts). Node's crypto generates the ECDSA P-256 keys;
// @peculiar/x509 builds and signs the certificates (no hand-written ASN.1). Keys are written 0600, and no
// existing file is replaced unless the caller says overwrite.

import 'reflect-metadata'; // @peculiar/x509's dependency injection (tsyringe) needs it loaded first
import * as x509 from '@peculiar/x509';
import { createPrivateKey, generateKeyPairSync, randomBytes, webcrypto, X509Certificate } from 'node:crypto';
import type { KeyObject } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { isJournalId, isNodeId, JOURNAL_ID_RULE, NODE_ID_RULE } from '../ids.js';
import { CA_CERT_FILE, CA_KEY_FILE, certFiles, CertificateError } from './cert-files.js';
import { CERT_ORGANIZATION, isClientRole, JOURNAL_URI_PREFIX, PEER_ROLE } from './roles.js';
import type { ClientRole } from './roles.js';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const EC = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const SIGNING = { name: 'ECDSA', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;
export const CA_DAYS_DEFAULT = 3650;
export const CERT_DAYS_DEFAULT = 730;

export interface CertOptions {
  certsDir: string;
  /** Where the CA key is (default D/ca.key): it may live elsewhere, offline, between uses. */
  caKeyPath?: string;
  /** Validity (default: CA 10 years, others 2 years). */
  days?: number;
  /** Replace files that exist (default: refuse). */
  overwrite?: boolean;
}

/** A file refused because it exists and overwrite was not asked for. */
export class CertExistsError extends CertificateError {
  override name = 'CertExistsError';
}

interface NewKey {
  pem: string;
  spkiDer: ArrayBuffer;
  signing: webcrypto.CryptoKey;
}

async function newKey(): Promise<NewKey> {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    pem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    spkiDer: toArrayBuffer(publicKey.export({ type: 'spki', format: 'der' })),
    signing: await importSigningKey(privateKey),
  };
}

function toArrayBuffer(b: Buffer): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
}

async function importSigningKey(k: KeyObject): Promise<webcrypto.CryptoKey> {
  return webcrypto.subtle.importKey('pkcs8', toArrayBuffer(k.export({ type: 'pkcs8', format: 'der' })), EC, false, [
    'sign',
  ]);
}

/** 128 random bits, positive (RFC 5280 serials are positive and at most 20 bytes). */
function serialNumber(): string {
  const b = randomBytes(16);
  b[0] = (b[0]! & 0x7f) | 0x01;
  return b.toString('hex');
}

function validity(days: number | undefined, def: number): { notBefore: Date; notAfter: Date } {
  const d = days ?? def;
  if (!Number.isInteger(d) || d < 1 || d > 36_500)
    throw new CertificateError(`days must be an integer in 1..36500, got ${String(days)}`);
  // A minute of slack for clocks slightly behind this one.
  const notBefore = new Date(Date.now() - 60_000);
  return { notBefore, notAfter: new Date(notBefore.getTime() + d * DAY_MS) };
}

/** The subject: CN, O, then one OU per role (one RDN each, so no value needs escaping). */
function subject(cn: string, ous: readonly string[]): x509.JsonName {
  return [{ CN: [cn] }, { O: [CERT_ORGANIZATION] }, ...ous.map((ou) => ({ OU: [ou] }))];
}

function refuseExisting(files: string[], overwrite: boolean | undefined): void {
  if (overwrite) return;
  const existing = files.filter((f) => fs.existsSync(f));
  if (existing.length > 0)
    throw new CertExistsError(
      `${existing.join(', ')} already exist${existing.length === 1 ? 's' : ''}: refusing to overwrite (give --overwrite to replace)`,
    );
}

function writeFile(file: string, data: string, mode: number): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.writeFileSync(file, data, { mode });
  fs.chmodSync(file, mode); // writeFileSync's mode applies only to a file it creates
}

const caKeyPath = (o: CertOptions) => o.caKeyPath ?? path.join(o.certsDir, CA_KEY_FILE);

/** Creates D/ca.crt and the CA key (D/ca.key unless caKeyPath). Returns the files written. */
export async function createCa(options: CertOptions): Promise<string[]> {
  const certFile = path.join(options.certsDir, CA_CERT_FILE);
  const keyFile = caKeyPath(options);
  refuseExisting([certFile, keyFile], options.overwrite);
  const key = await newKey();
  const publicKey = await webcrypto.subtle.importKey('spki', key.spkiDer, EC, true, ['verify']);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: [{ CN: ['qjournal CA'] }, { O: [CERT_ORGANIZATION] }],
    ...validity(options.days, CA_DAYS_DEFAULT),
    keys: { privateKey: key.signing, publicKey } as unknown as Parameters<
      typeof x509.X509CertificateGenerator.createSelfSigned
    >[0]['keys'],
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(key.spkiDer),
    ],
  });
  writeFile(keyFile, key.pem, 0o600);
  writeFile(certFile, `${cert.toString('pem')}\n`, 0o644);
  return [certFile, keyFile];
}

interface Issuer {
  cert: x509.X509Certificate;
  key: webcrypto.CryptoKey;
}

async function loadIssuer(o: CertOptions): Promise<Issuer> {
  const certFile = path.join(o.certsDir, CA_CERT_FILE);
  const keyFile = caKeyPath(o);
  const read = (f: string) => {
    try {
      return fs.readFileSync(f);
    } catch (e) {
      throw new CertificateError(
        `cannot read ${f}: ${(e as { code?: string }).code ?? (e as Error).message} (create the CA first: qjm cert create-ca --certs-dir ${o.certsDir}${o.caKeyPath ? ` --ca-key ${o.caKeyPath}` : ''})`,
      );
    }
  };
  const certPem = read(certFile);
  const keyObject = createPrivateKey(read(keyFile));
  const nodeCert = new X509Certificate(certPem);
  if (!nodeCert.ca) throw new CertificateError(`${certFile} is not a CA certificate`);
  if (!nodeCert.checkPrivateKey(keyObject)) throw new CertificateError(`${keyFile} is not the key of ${certFile}`);
  if (keyObject.asymmetricKeyType !== 'ec' || keyObject.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new CertificateError(`${keyFile}: qjm cert signs with ECDSA P-256 keys only`);
  }
  return { cert: new x509.X509Certificate(certPem), key: await importSigningKey(keyObject) };
}

async function issue(
  o: CertOptions,
  files: { cert: string; key: string },
  cn: string,
  ous: string[],
  extensions: x509.Extension[],
): Promise<string[]> {
  refuseExisting([files.cert, files.key], o.overwrite);
  const ca = await loadIssuer(o);
  const key = await newKey();
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: subject(cn, ous),
    issuer: ca.cert.subjectName,
    ...validity(o.days, CERT_DAYS_DEFAULT),
    publicKey: key.spkiDer,
    signingKey: ca.key,
    signingAlgorithm: SIGNING,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      await x509.SubjectKeyIdentifierExtension.create(key.spkiDer),
      await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey),
      ...extensions,
    ],
  });
  writeFile(files.key, key.pem, 0o600);
  writeFile(files.cert, `${cert.toString('pem')}\n`, 0o644);
  return [files.cert, files.key];
}

const HOST_RE = /^(?=.{1,253}$)[A-Za-z0-9*]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;

/** A node's certificate: role peer bound to its id, its hosts as SANs, for serving and for dialing peers. */
export async function createNodeCert(options: CertOptions, id: string, hosts: readonly string[]): Promise<string[]> {
  if (!isNodeId(id)) throw new CertificateError(`bad node id ${JSON.stringify(id)}: expected ${NODE_ID_RULE}`);
  if (hosts.length === 0)
    throw new CertificateError('give at least one host (name or IP address) the node is dialed at');
  const names = hosts.map((h) => {
    const bare = h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
    if (net.isIP(bare)) return { type: 'ip' as const, value: bare };
    if (!HOST_RE.test(h))
      throw new CertificateError(`bad host ${JSON.stringify(h)}: expected a DNS name or an IP address (no port)`);
    return { type: 'dns' as const, value: h };
  });
  return issue(
    options,
    certFiles(options.certsDir, 'node', id),
    id,
    [PEER_ROLE],
    [
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      new x509.SubjectAlternativeNameExtension(names),
    ],
  );
}

/**
 * The journals a client certificate names, checked: a writer or reader must name at least one (it may use only
 * those), an admin none (it spans every journal; a list would suggest a limit that does not exist).
 */
function checkJournals(roles: readonly ClientRole[], journals: readonly string[]): string[] {
  const bad = journals.filter((j) => !isJournalId(j));
  if (bad.length > 0)
    throw new CertificateError(`bad journal id ${JSON.stringify(bad[0])}: expected ${JOURNAL_ID_RULE}`);
  const unique = [...new Set(journals)];
  if (roles.includes('admin')) {
    if (unique.length > 0)
      throw new CertificateError(
        'an admin certificate spans every journal: leave --journal out (or issue a writer or reader certificate for those journals)',
      );
    return [];
  }
  if (unique.length === 0)
    throw new CertificateError(
      `a ${roles.join(',')} certificate must name the journals it may use: --journal JID[,JID] (an admin certificate spans every journal)`,
    );
  if (unique.length > MAX_CERT_JOURNALS)
    throw new CertificateError(`at most ${MAX_CERT_JOURNALS} journals per certificate, got ${unique.length}`);
  return unique;
}

/** Journals one client certificate may name: far above what one master writes, and a bounded certificate. */
export const MAX_CERT_JOURNALS = 100;

/**
 * A client's certificate: its name and its roles (one OU each), and for a writer or reader the journals it
 * may use (one URI subject alternative name each, qjournal://journal/<JID>); for dialing nodes only.
 */
export async function createClientCert(
  options: CertOptions,
  name: string,
  roles: readonly ClientRole[],
  journals: readonly string[] = [],
): Promise<string[]> {
  if (!isNodeId(name)) throw new CertificateError(`bad client name ${JSON.stringify(name)}: expected ${NODE_ID_RULE}`);
  if (roles.length === 0 || roles.some((r) => !isClientRole(r)))
    throw new CertificateError(`roles must be among writer, reader, admin, got ${JSON.stringify(roles)}`);
  const scoped = checkJournals(roles, journals);
  return issue(
    options,
    certFiles(options.certsDir, 'client', name),
    name,
    [...new Set(roles)],
    [
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.clientAuth]),
      ...(scoped.length > 0
        ? [
            new x509.SubjectAlternativeNameExtension(
              scoped.map((j) => ({ type: 'url' as const, value: `${JOURNAL_URI_PREFIX}${j}` })),
            ),
          ]
        : []),
    ],
  );
}
