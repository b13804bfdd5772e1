// A JournalNode's mutual TLS, both directions, from its certificates directory: the server's options (a
// client certificate is asked for but not required at the handshake, so a caller without one still gets
// its 401 from authz.ts; one that presents a certificate this CA did not sign is cut right after the
// handshake), the client side it dials peers with (its own node certificate; the peer must prove it is the
// node the configuration puts at that address).

import type { ServerOptions } from 'node:https';
import type { Server as TlsServer, TLSSocket } from 'node:tls';
import type { ClientTls } from '../../src/http-pool.js';
import type { Logger } from '../../src/logger.js';
import type { PeerDirectory } from '../../src/replica/peer-directory.js';
import type { TlsMaterial } from '../../src/security/cert-files.js';
import { checkNodeServer } from '../../src/security/client-tls.js';

export function serverTlsOptions(m: TlsMaterial): ServerOptions {
  return { ca: m.ca, cert: m.cert, key: m.key, requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' };
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

/** How often a refused handshake is logged at most: a scanner must not flood the log. */
const REFUSAL_LOG_INTERVAL_MS = 10_000;

/** Cuts every connection that presented a certificate which failed verification (another CA, expired). */
export function cutUnverifiedClients(server: TlsServer, logger: Logger): void {
  let lastLogMs = 0;
  let suppressed = 0;
  server.on('secureConnection', (socket: TLSSocket) => {
    if (socket.authorized) return;
    const cert = socket.getPeerCertificate();
    if (!cert || Object.keys(cert).length === 0) return; // no certificate: authz.ts answers 401
    socket.destroy();
    const now = Date.now();
    if (now - lastLogMs < REFUSAL_LOG_INTERVAL_MS) {
      suppressed++;
      return;
    }
    logger.warn(
      {
        remote: socket.remoteAddress,
        subject: cert.subject,
        error: String(socket.authorizationError),
        suppressedSinceLast: suppressed,
      },
      "refused a TLS client: its certificate was not issued by this cluster's CA (or is not valid now)",
    );
    lastLogMs = now;
    suppressed = 0;
  });
}
