// A certificates directory as qjm cert lays it out — D/ca.crt, D/ca.key, D/node.<ID>.crt/.key,
// D/client.<NAME>.crt/.key — read with node's own X.509 parser: the TLS material a JournalNode or a client
// loads (checked before it is used: issued by the CA, the key matches, not expired, the expected identity),
// and what `qjm cert list` shows of each file.

import { createPrivateKey, X509Certificate } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { describePrincipal, principalOfCertificate, rolesOf } from './roles.js';
import type { Principal, Role, SubjectFields } from './roles.js';

export const CA_CERT_FILE = 'ca.crt';
export const CA_KEY_FILE = 'ca.key';

export type CertKind = 'node' | 'client';

/** The certificate and key files of a node or a client in a certificates directory. */
export function certFiles(certsDir: string, kind: CertKind, name: string): { cert: string; key: string } {
  return { cert: path.join(certsDir, `${kind}.${name}.crt`), key: path.join(certsDir, `${kind}.${name}.key`) };
}

/** A certificate file that cannot be used: the message names the file and what to do. */
export class CertificateError extends Error {
  override name = 'CertificateError';
}

/** PEM material for one end of a mutual-TLS connection. */
export interface TlsMaterial {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

export interface CertInfo {
  file: string;
  /** "CN=n1, O=qjournal, OU=peer" */
  subject: string;
  principal: Principal | null;
  roles: Role[];
  /** "DNS:localhost", "IP:127.0.0.1", "URI:qjournal://journal/ns1" */
  sans: string[];
  notBefore: string;
  notAfter: string;
  serial: string;
  isCa: boolean;
  /** Whether the directory's ca.crt issued it (null for the CA itself, or when there is no ca.crt). */
  signedByCa: boolean | null;
}

function subjectFields(x: X509Certificate): SubjectFields {
  return x.toLegacyObject().subject as SubjectFields;
}

function readFile(file: string, what: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    const code = (e as { code?: string }).code;
    throw new CertificateError(
      `cannot read ${what} ${file}: ${code ?? (e as Error).message}${code === 'ENOENT' ? ' (create it with qjm cert)' : ''}`,
    );
  }
}

function parseCert(pem: Buffer, file: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch (e) {
    throw new CertificateError(`${file} is not a PEM certificate: ${(e as Error).message}`);
  }
}

function issuedBy(x: X509Certificate, ca: X509Certificate): boolean {
  return x.checkIssued(ca) && x.verify(ca.publicKey);
}

export function describeCert(pem: Buffer, file: string, ca: X509Certificate | null): CertInfo {
  const x = parseCert(pem, file);
  const fields = subjectFields(x);
  const principal = x.ca ? null : principalOfCertificate(fields, x.subjectAltName);
  return {
    file,
    subject: x.subject.split('\n').join(', '),
    principal,
    roles: principal ? rolesOf(principal) : [],
    sans: (x.subjectAltName ?? '')
      .split(', ')
      .filter((s) => s.length > 0)
      .map((s) => s.replace(/^IP Address:/, 'IP:')),
    notBefore: new Date(x.validFrom).toISOString(),
    notAfter: new Date(x.validTo).toISOString(),
    serial: x.serialNumber,
    isCa: x.ca,
    signedByCa: x.ca || !ca ? null : issuedBy(x, ca),
  };
}

/** Every certificate in the directory (the CA first), described. */
export function listCertsDir(certsDir: string): CertInfo[] {
  let names: string[];
  try {
    names = fs
      .readdirSync(certsDir)
      .filter((n) => n.endsWith('.crt'))
      .sort();
  } catch (e) {
    throw new CertificateError(`cannot read the certificates directory ${certsDir}: ${(e as Error).message}`);
  }
  const caPath = path.join(certsDir, CA_CERT_FILE);
  const ca = names.includes(CA_CERT_FILE) ? parseCert(readFile(caPath, 'the CA certificate'), caPath) : null;
  const ordered = [...names.filter((n) => n === CA_CERT_FILE), ...names.filter((n) => n !== CA_CERT_FILE)];
  return ordered.map((n) => describeCert(readFile(path.join(certsDir, n), 'certificate'), path.join(certsDir, n), ca));
}

/**
 * Loads and checks one identity's material: the CA, the certificate (issued by that CA, in force, naming the
 * expected principal) and its key (matching the certificate). Throws CertificateError naming what is wrong.
 */
function loadIdentity(
  certsDir: string,
  kind: CertKind,
  name: string,
  expect: (p: Principal | null) => boolean,
): TlsMaterial {
  const caFile = path.join(certsDir, CA_CERT_FILE);
  const files = certFiles(certsDir, kind, name);
  const ca = readFile(caFile, 'the CA certificate');
  const cert = readFile(files.cert, `the ${kind} certificate`);
  const key = readFile(files.key, `the ${kind} key`);
  const caX = parseCert(ca, caFile);
  const x = parseCert(cert, files.cert);
  if (!caX.ca) throw new CertificateError(`${caFile} is not a CA certificate`);
  if (!issuedBy(x, caX))
    throw new CertificateError(
      `${files.cert} was not issued by ${caFile}: re-create it with qjm cert create-${kind} against this CA`,
    );
  const now = Date.now();
  if (Date.parse(x.validTo) < now)
    throw new CertificateError(
      `${files.cert} expired on ${x.validTo}: re-create it (qjm cert create-${kind} ... --overwrite)`,
    );
  if (Date.parse(x.validFrom) > now)
    throw new CertificateError(`${files.cert} is not valid before ${x.validFrom} (is this machine's clock right?)`);
  let matches = false;
  try {
    matches = x.checkPrivateKey(createPrivateKey(key));
  } catch (e) {
    throw new CertificateError(`${files.key} is not a PEM private key: ${(e as Error).message}`);
  }
  if (!matches) throw new CertificateError(`${files.key} is not the key of ${files.cert}`);
  const p = principalOfCertificate(subjectFields(x), x.subjectAltName);
  if (!expect(p))
    throw new CertificateError(
      `${files.cert} is for ${p ? describePrincipal(p) : `"${x.subject.split('\n').join(', ')}"`}, not ${kind} ${name}`,
    );
  return { ca, cert, key };
}

/** A JournalNode's material: D/ca.crt and D/node.<id>.crt/.key (a node certificate for that id). */
export function loadNodeTls(certsDir: string, id: string): TlsMaterial {
  return loadIdentity(certsDir, 'node', id, (p) => p?.kind === 'node' && p.id === id);
}

/** A client's material: D/ca.crt and D/client.<user>.crt/.key (a client certificate with a role). */
export function loadClientTls(certsDir: string, user: string): TlsMaterial {
  return loadIdentity(certsDir, 'client', user, (p) => p?.kind === 'client' && p.name === user);
}
