// A JournalNode's mutual TLS, both directions, from its certificates directory: the server's options (TLS 1.3
// only; a client certificate is asked for but not required at the handshake, so a caller without one still
// gets its 401 from authz.ts), the guard of every accepted connection (its principal settled at its one
// handshake, renegotiation refused, a certificate this CA did not sign cut at once, old protocols logged),
// and the client side it dials peers with (its own node certificate; the peer must prove it is the node the
// configuration puts at that address).

import type { ServerOptions } from 'node:https';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import type { ClientTls } from '../../src/http-pool.js';
import { rateLimitedWarning } from '../../src/logger.js';
import type { Logger } from '../../src/logger.js';
import type { PeerDirectory } from '../../src/replica/peer-directory.js';
import type { TlsMaterial } from '../../src/security/cert-files.js';
import { TLS_VERSION } from '../../src/http-pool.js';
import { checkNodeServer } from '../../src/security/client-tls.js';
import { describePrincipal } from '../../src/security/roles.js';
import { settlePrincipal } from './authz.js';

export function serverTlsOptions(m: TlsMaterial): ServerOptions {
  // TLS 1.3 only: every client is ours, and TLS 1.3 has no renegotiation, so no later handshake on a
  // connection can present another certificate than the one its principal was taken from.
  return {
    ca: m.ca,
    cert: m.cert,
    key: m.key,
    requestCert: true,
    rejectUnauthorized: false,
    minVersion: TLS_VERSION,
    maxVersion: TLS_VERSION,
  };
}

/** The node as a client of its peers: the id expected at an address is the one the configuration names. */
export function peerClientTls(m: TlsMaterial, directory: Pick<PeerDirectory, 'idAt'>): ClientTls {
  return {
    ca: m.ca,
    cert: m.cert,
    key: m.key,
    verifyServer: (address, cert) => checkNodeServer(address, cert, directory.idAt(address)),
  };
}

/** How often each kind of refused connection is logged at most: a scanner must not flood the log. */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

/** OpenSSL's codes for a client that offered no protocol version this server speaks (TLS 1.2 or older). */
const OLD_PROTOCOL = new Set(['ERR_SSL_UNSUPPORTED_PROTOCOL', 'ERR_SSL_WRONG_VERSION_NUMBER']);

/**
 * Guards every connection the server accepts. At the end of its handshake: the connection's principal is
 * settled from the verified chain (authz.ts reads nothing from the socket afterwards), renegotiation is refused
 * for its life (TLS 1.3 has none; this holds even if a TLS 1.2 listener were ever configured), and a client
 * whose certificate failed verification (another CA, expired) is cut. Attempts to renegotiate or to speak an
 * older protocol are logged as warnings with the remote address.
 */
export function guardTlsConnections(server: TlsServer, logger: Logger): void {
  const warning = (message: string) => rateLimitedWarning(logger, message, REFUSAL_LOG_INTERVAL_MS);
  const unverified = warning(
    "refused a TLS client: its certificate was not issued by this cluster's CA (or is not valid now)",
  );
  const oldProtocol = warning('refused a TLS client: it offered TLS 1.2 or older (JournalNodes speak TLS 1.3 only)');
  const renegotiation = warning('cut a TLS connection that tried to renegotiate');
  server.on('tlsClientError', (err: Error & { code?: string }, socket: TLSSocket) => {
    if (err.code && OLD_PROTOCOL.has(err.code)) oldProtocol({ remote: socket.remoteAddress, error: err.code });
    socket.destroy();
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    const principal = settlePrincipal(socket);
    const remote = socket.remoteAddress; // read now: a socket being torn down no longer knows it
    socket.disableRenegotiation();
    socket.on('error', (err: Error & { code?: string }) => {
      if (err.code !== 'ERR_TLS_RENEGOTIATION_DISABLED') return;
      renegotiation({
        remote,
        caller: principal ? describePrincipal(principal) : 'no certificate',
      });
      socket.destroy();
    });
    if (socket.authorized) return;
    const cert = socket.getPeerCertificate();
    if (!cert || Object.keys(cert).length === 0) return; // no certificate: authz.ts answers 401
    socket.destroy();
    unverified({ remote, subject: cert.subject, error: String(socket.authorizationError) });
  });
}
