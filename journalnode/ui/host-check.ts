// Which Host headers the dashboard port answers: the names and addresses it was given, nothing else. A web
// page of another site can make a browser send requests to the port (DNS rebinding: the site's name is made
// to resolve to this machine), but the browser then says the site's name in Host; refusing every name this
// port was not given keeps such a page from reading it.

import os from 'node:os';
import { splitHostPort } from '../../src/ids.js';

const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'];

/** A host as compared: lower case, no IPv6 brackets, no trailing dot of a fully qualified name. */
function normalize(host: string): string {
  let h = host.toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  return h.endsWith('.') ? h.slice(0, -1) : h;
}

const isWildcard = (host: string) => host === '0.0.0.0' || host === '::';
const isLoopback = (host: string) => host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);

/** The host part of a Host header ("name:port", "[v6]:port", "name"), or null when it is not one. */
export function hostOfHeader(header: string): string | null {
  if (header.startsWith('[')) {
    const end = header.indexOf(']');
    if (end < 0 || (end + 1 < header.length && !/^:\d{1,5}$/.test(header.slice(end + 1)))) return null;
    return normalize(header.slice(0, end + 1));
  }
  const m = /^([A-Za-z0-9._-]+)(?::\d{1,5})?$/.exec(header);
  return m ? normalize(m[1]!) : null;
}

/** This machine's addresses: what a port bound to a wildcard address can be reached at. */
function machineAddresses(): string[] {
  return Object.values(os.networkInterfaces())
    .flatMap((list) => list ?? [])
    .map((i) => normalize(i.address.split('%')[0]!));
}

/**
 * The Host headers the port bound at `listen` answers: its listen host; localhost, 127.0.0.1 and ::1 when it
 * listens on loopback or on every address; this machine's addresses when on every address; and `extra` (the
 * names it is reached by besides: a DNS name, a proxy's). The port in the header is not compared (a tunnel or
 * a proxy may change it; a page of another site cannot change the name).
 */
export function hostChecker(listen: string, extra: readonly string[]): (hostHeader: string | undefined) => boolean {
  const listenHost = normalize(splitHostPort(listen).host);
  const allowed = new Set<string>([...extra.map(normalize)]);
  if (!isWildcard(listenHost)) allowed.add(listenHost);
  if (isWildcard(listenHost) || isLoopback(listenHost)) for (const n of LOOPBACK_NAMES) allowed.add(n);
  if (isWildcard(listenHost)) for (const a of machineAddresses()) allowed.add(a);
  return (hostHeader) => {
    if (hostHeader === undefined) return false;
    const host = hostOfHeader(hostHeader);
    return host !== null && allowed.has(host);
  };
}
