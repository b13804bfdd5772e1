// The TLS side of every qjournal client: libqjm's `tls` option (a certificates directory and a user, or PEM
// material) resolved into what the one HTTP pool dials with, and the rule every client applies to the
// server it reaches: a JournalNode's certificate (role peer), and, for a node dialing a peer, the very id it
// meant to reach.

import type { PeerCertificate } from 'node:tls';
import type { ClientTls } from '../http-pool.js';
import { CertificateError, loadClientTls } from './cert-files.js';
import { describePrincipal, principalOfCertificate } from './roles.js';
import type { SubjectFields } from './roles.js';

/** libqjm's `tls` option: a certificates directory and the client name in it, or the PEM material itself. */
export type TlsOption =
  | { certsDir: string; user: string }
  | { ca: string | Buffer; cert: string | Buffer; key: string | Buffer };

const isPem = (v: unknown): v is string | Buffer => (typeof v === 'string' || Buffer.isBuffer(v)) && v.length > 0;

/**
 * Checks that the server is a JournalNode (a certificate with role peer) and, when `expectedId` names one
 * for this address, that it is that node. Returns the problem, or null.
 */
export function checkNodeServer(address: string, cert: PeerCertificate, expectedId?: string): string | null {
  const p = principalOfCertificate(cert.subject as SubjectFields, cert.subjectaltname);
  if (p?.kind !== 'node')
    return `${address} presented ${p ? describePrincipal(p) : 'a certificate with no qjournal role'}'s certificate, not a JournalNode's`;
  if (expectedId !== undefined && p.id !== expectedId) return `${address} is node ${p.id}, expected ${expectedId}`;
  return null;
}

/** Resolves libqjm's option into the HTTP pool's TLS settings; throws CertificateError naming the problem. */
export function clientTlsFrom(options: TlsOption): ClientTls {
  if (typeof options !== 'object' || options === null)
    throw new CertificateError('tls: expected { certsDir, user } or { ca, cert, key }');
  if ('certsDir' in options) {
    if (
      typeof options.certsDir !== 'string' ||
      options.certsDir.length === 0 ||
      typeof options.user !== 'string' ||
      options.user.length === 0
    ) {
      throw new CertificateError('tls: expected { certsDir: <directory>, user: <client name> }');
    }
    return {
      ...loadClientTls(options.certsDir, options.user),
      verifyServer: (address, cert) => checkNodeServer(address, cert),
    };
  }
  if (!isPem(options.ca) || !isPem(options.cert) || !isPem(options.key))
    throw new CertificateError('tls: expected PEM strings or Buffers ca, cert and key');
  return {
    ca: options.ca,
    cert: options.cert,
    key: options.key,
    verifyServer: (address, cert) => checkNodeServer(address, cert),
  };
}
