// The names qjournal accepts from outside — node ids, journal ids, storage and cluster ids, host:port addresses —
// one rule each,
// checked wherever such a value enters: flags, config files, RPC bodies, library options, peers' batches.

const NODE_ID_RE = /^[A-Za-z0-9._-]{1,64}$/;
export const NODE_ID_RULE = '1-64 characters of [A-Za-z0-9._-]';

/** A node id names a Raft member in logs, metrics labels and flags: short and shell-safe. */
export function isNodeId(s: unknown): s is string {
  return typeof s === 'string' && NODE_ID_RE.test(s);
}

// A journal id names a directory on every node: "." and ".." would step out of it.
const JOURNAL_ID_RE = /^(?!\.{1,2}$)[A-Za-z0-9._-]{1,128}$/;
export const JOURNAL_ID_RULE = '1-128 characters of [A-Za-z0-9._-], not "." or ".."';

export function isJournalId(s: unknown): s is string {
  return typeof s === 'string' && JOURNAL_ID_RE.test(s);
}

const DNS_NAME_RE = /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/;
const IPV4_RE = /^\d{1,3}(\.\d{1,3}){3}$/;

/** Checks a host without a port: a DNS name, an IPv4 address, or an IPv6 address (bare). Returns the problem. */
export function checkHost(s: unknown): string | null {
  if (
    typeof s === 'string' &&
    (DNS_NAME_RE.test(s) || IPV4_RE.test(s) || (s.includes(':') && /^[0-9a-fA-F:.]+$/.test(s)))
  )
    return null;
  return `expected a host name or an IP address without a port, got ${JSON.stringify(s)}`;
}

// A storage id (one per data directory) or a cluster id, as nodes make them: hex, bounded. A storage binding
// may also be '' (none): isStorageBinding.
const NODE_MADE_ID_RE = /^[0-9a-f]{1,64}$/;

export function isStorageId(s: unknown): s is string {
  return typeof s === 'string' && NODE_MADE_ID_RE.test(s);
}

/** A storage id, or '' where a configuration binds a member to no storage. */
export function isStorageBinding(s: unknown): s is string {
  return s === '' || isStorageId(s);
}

/** A cluster id, or '' (a node whose cluster is not formed yet). */
export function isClusterIdOrNone(s: unknown): s is string {
  return s === '' || isStorageId(s);
}

// A host name or IPv4 address, or a bracketed IPv6 address; then the port.
const HOST_PORT_RE = /^(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+):(\d{1,5})$/;

/**
 * Checks a host:port string; returns the problem, or null. Port 0 ("any free port") means something only to
 * bind to, so only a listen address may carry it: an address that someone dials needs 1..65535.
 */
export function checkHostPort(s: unknown, use: 'dial' | 'listen' = 'dial'): string | null {
  const m = typeof s === 'string' ? HOST_PORT_RE.exec(s) : null;
  if (!m) return `expected host:port, got ${JSON.stringify(s)}`;
  const port = Number(m[2]);
  const lowest = use === 'listen' ? 0 : 1;
  if (port < lowest || port > 65535) return `port ${port} of ${s as string} is outside ${lowest}..65535`;
  return null;
}

/** Splits an address that checkHostPort accepted (IPv6 brackets removed, as listen() wants the host). */
export function splitHostPort(s: string): { host: string; port: number } {
  const i = s.lastIndexOf(':');
  let host = s.slice(0, i);
  if (host.startsWith('[') && host.endsWith(']')) host = host.slice(1, -1);
  return { host, port: Number(s.slice(i + 1)) };
}
