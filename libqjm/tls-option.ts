// libqjm's `tls` option, resolved once for QuorumJournalManager and AdminClient: a certificate problem is an
// InvalidArgumentError at construction (naming the file and the fix), not a failure at the first write.

import type { ClientTls } from '../src/http-pool.js';
import { InvalidArgumentError } from '../src/errors.js';
import { CertificateError } from '../src/security/cert-files.js';
import { clientTlsFrom } from '../src/security/client-tls.js';
import type { TlsOption } from '../src/security/client-tls.js';

export type { TlsOption } from '../src/security/client-tls.js';

export function resolveTls(options: TlsOption): ClientTls {
  try {
    return clientTlsFrom(options);
  } catch (e) {
    if (e instanceof CertificateError) throw new InvalidArgumentError(`tls: ${e.message}`);
    throw e;
  }
}
