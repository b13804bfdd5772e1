// A local cluster of real JournalNode processes on loopback, for the demo, the benchmarks and the
// integration tests: free ports, data directories under one root, kill -9 / SIGSTOP / SIGCONT / restart,
// and /status polling. Secure by default, as a real cluster: a CA, node certificates and the client
// certificates admin, writer and reader (the last two scoped to the cluster's journals) under <root>/certs,
// the nodes started with --certs-dir; plain HTTP (--insecure) only when asked for.

import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { HttpPools } from './http-pool.js';
import type { HttpResponse } from './http-pool.js';
import { waitFor } from './wait-for.js';
import { PRIVATE_FILE_MODE } from './file-modes.js';
import { fetchNodeStatus } from './node-status.js';
import type { NodeStatusJson } from './node-status.js';
import { checkNodeServer, clientTlsFrom } from './security/client-tls.js';
import type { TlsOption } from './security/client-tls.js';
import { createCa, createClientCert, createNodeCert } from './security/certs.js';
import type { ClientRole } from './security/roles.js';

// This file runs from dist/src/: the repository root is two levels up.
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const JOURNALNODE_MAIN = path.join(ROOT, 'dist', 'journalnode', 'main.js');

/**
 * The malloc settings a JournalNode runs with (docs/OPERATIONS.md): glibc keeps freed memory for reuse instead
 * of giving it back to the kernel and faulting it in again, and asks for transparent huge pages (a fault per
 * 2 MiB instead of per 4 KiB). A node receives every batch into a new buffer that its caches keep for a
 * while; with glibc's defaults each one is fresh pages (measured: docs/PERFORMANCE.md).
 */
export const JOURNALNODE_GLIBC_TUNABLES =
  'glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=67108864:glibc.malloc.hugetlb=1';

export async function freePorts(n: number): Promise<number[]> {
  const servers: net.Server[] = [];
  const ports: number[] = [];
  for (let i = 0; i < n; i++) {
    const s = net.createServer();
    await new Promise<void>((resolve) => s.listen(0, '127.0.0.1', resolve));
    ports.push((s.address() as net.AddressInfo).port);
    servers.push(s);
  }
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  return ports;
}

export interface ProcNode {
  id: string;
  /** Joins the running cluster (--join) instead of bootstrapping with --peers. */
  joining: boolean;
  address: string;
  /** The read-only dashboard port (--ui-listen), when the cluster has one. */
  uiAddress: string | null;
  dataDir: string;
  logFile: string;
  proc: ChildProcess | null;
  exit: Promise<number | null> | null;
}

export interface ClusterOptions {
  nodes?: number;
  electionTimeoutMs?: number;
  /** Extra flags for every node (e.g. ['--snapshotLogBytes', '65536']). */
  extraArgs?: string[];
  root?: string;
  logLevel?: string;
  /** Plain HTTP (--insecure) instead of mutual TLS: for what must run without TLS on purpose. */
  insecure?: boolean;
  /** Give every node a read-only dashboard port (--ui-listen) on a free port. */
  ui?: boolean;
  /** The journals the writer and reader certificates may use (default: ns1); admin spans every journal. */
  journals?: readonly string[];
  /**
   * Each node's open-file limit (soft and hard), set by the shell that starts it (`ulimit -n`): a connection
   * flood then reaches the limit quickly. Unset: the launcher's own limit.
   */
  maxOpenFiles?: number;
  /**
   * Start each node in a process group of its own, so a terminal's Ctrl-C reaches only the launcher, which
   * then stops the nodes in order (the demo). Without it Ctrl-C reaches the nodes too (a test run's).
   */
  ownProcessGroups?: boolean;
}

/** The client certificates a secure local cluster creates: one user per role, named for it. */
export const LOCAL_USERS: readonly ClientRole[] = ['admin', 'writer', 'reader'];
/** The journals the local writer and reader may use unless the cluster is told others. */
export const LOCAL_JOURNALS: readonly string[] = ['ns1'];
/** Every host a local node is dialed at (its certificate's SANs). */
const LOCAL_HOSTS = ['127.0.0.1', 'localhost'];

export class LocalCluster {
  readonly nodes: ProcNode[] = [];
  readonly root: string;
  readonly electionTimeoutMs: number;
  /** The certificates directory (null: the cluster runs --insecure). */
  readonly certsDir: string | null;
  private readonly extraArgs: string[];
  private readonly logLevel: string;
  /** Dials the nodes as the admin user (status polls, tests' raw requests). */
  private readonly http: HttpPools;
  private readonly ui: boolean;
  private readonly ownProcessGroups: boolean;
  private readonly maxOpenFiles: number | null;

  private constructor(root: string, o: ClusterOptions) {
    this.root = root;
    this.ui = o.ui ?? false;
    this.ownProcessGroups = o.ownProcessGroups ?? false;
    this.maxOpenFiles = o.maxOpenFiles ?? null;
    this.electionTimeoutMs = o.electionTimeoutMs ?? 500;
    this.extraArgs = o.extraArgs ?? [];
    this.logLevel = o.logLevel ?? 'info';
    this.certsDir = o.insecure ? null : path.join(root, 'certs');
    // It knows which node it started at each address: the certificate there must be that node's.
    const tls = this.certsDir ? clientTlsFrom({ certsDir: this.certsDir, user: 'admin' }) : null;
    this.http = new HttpPools({
      connectTimeoutMs: 1000,
      ...(tls
        ? {
            tls: {
              ...tls,
              verifyServer: (address, cert) =>
                checkNodeServer(address, cert, this.nodes.find((n) => n.address === address)?.id),
            },
          }
        : {}),
    });
  }

  static async create(options: ClusterOptions = {}): Promise<LocalCluster> {
    const root = options.root ?? fs.mkdtempSync(path.join(os.tmpdir(), 'qjournal-cluster-'));
    const ids = Array.from({ length: options.nodes ?? 3 }, (_, i) => `n${i + 1}`);
    if (!options.insecure) {
      const certs = { certsDir: path.join(root, 'certs'), overwrite: true };
      await createCa(certs);
      for (const id of ids) await createNodeCert(certs, id, LOCAL_HOSTS);
      for (const user of LOCAL_USERS)
        await createClientCert(certs, user, [user], user === 'admin' ? [] : (options.journals ?? LOCAL_JOURNALS));
    }
    const c = new LocalCluster(root, options);
    const n = ids.length;
    const ports = await freePorts(c.ui ? 2 * n : n);
    ids.forEach((id, i) => {
      const uiAddress = c.ui ? `127.0.0.1:${ports[n + i]}` : null;
      c.nodes.push({
        id,
        joining: false,
        address: `127.0.0.1:${ports[i]}`,
        uiAddress,
        dataDir: path.join(root, id),
        logFile: path.join(root, `${id}.log`),
        proc: null,
        exit: null,
      });
    });
    return c;
  }

  /**
   * One more client certificate under the cluster's CA (a secure cluster only): `name` with `roles`, scoped to
   * `journals` unless admin. Returns libqjm's tls option for it.
   */
  async addUser(name: string, roles: readonly ClientRole[], journals: readonly string[]): Promise<TlsOption> {
    if (!this.certsDir) throw new Error('this cluster runs --insecure: it has no certificates');
    await createClientCert({ certsDir: this.certsDir, overwrite: true }, name, roles, journals);
    return { certsDir: this.certsDir, user: name };
  }

  /** libqjm's tls option for one of the local users (undefined when the cluster runs --insecure). */
  tls(user: string): TlsOption | undefined {
    return this.certsDir ? { certsDir: this.certsDir, user } : undefined;
  }

  /** The environment under which bin/qjm acts as a local user (or --insecure's absence of one). */
  qjmEnv(user = 'admin'): Record<string, string> {
    return this.certsDir ? { QJM_CERTS_DIR: this.certsDir, QJM_USER: user } : {};
  }

  /** One raw request to a node as the admin user (tests look at pages and refusals with it). */
  request(
    address: string,
    method: 'GET' | 'POST',
    urlPath: string,
    body: Uint8Array | null = null,
    timeoutMs = 5000,
  ): Promise<HttpResponse> {
    return this.http.request(address, method, urlPath, body, timeoutMs);
  }

  /** The initial configuration: the nodes the cluster was created with. */
  get peersFlag(): string {
    return this.nodes
      .filter((n) => !n.joining)
      .map((n) => `${n.id}=${n.address}`)
      .join(',');
  }

  /** A new node (not started) that will join the running cluster; add it with qjm add-peer. */
  async addNode(id: string): Promise<ProcNode> {
    if (this.certsDir) await createNodeCert({ certsDir: this.certsDir, overwrite: true }, id, LOCAL_HOSTS);
    const [port, uiPort] = await freePorts(this.ui ? 2 : 1);
    const n: ProcNode = {
      id,
      joining: true,
      address: `127.0.0.1:${port}`,
      uiAddress: this.ui ? `127.0.0.1:${uiPort}` : null,
      dataDir: path.join(this.root, id),
      logFile: path.join(this.root, `${id}.log`),
      proc: null,
      exit: null,
    };
    this.nodes.push(n);
    return n;
  }

  get addresses(): string[] {
    return this.nodes.map((n) => n.address);
  }

  /** The nodes as a client should be given them, with their ids (id=host:port): each must be the one named. */
  get clientPeers(): string[] {
    return this.nodes.map((n) => `${n.id}=${n.address}`);
  }

  node(id: string): ProcNode {
    const n = this.nodes.find((x) => x.id === id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  args(n: ProcNode): string[] {
    return [
      '--id',
      n.id,
      '--listen',
      n.address,
      '--data',
      n.dataDir,
      ...(n.joining
        ? [
            '--join',
            this.nodes
              .filter((x) => x !== n && x.proc)
              .map((x) => x.address)
              .join(','),
          ]
        : ['--peers', this.peersFlag]),
      '--electionTimeoutMs',
      String(this.electionTimeoutMs),
      '--logLevel',
      this.logLevel,
      ...(this.certsDir ? ['--certs-dir', this.certsDir] : ['--insecure']),
      ...(n.uiAddress ? ['--ui-listen', n.uiAddress] : []),
      ...this.extraArgs,
    ];
  }

  /** Spawns the node's process (output appended to its log file). */
  start(id: string, extra: string[] = []): ProcNode {
    const n = this.node(id);
    if (n.proc) throw new Error(`${id} is already running`);
    // A node's log names its journals, peers and errors: private, like its data (0600).
    const out = fs.openSync(n.logFile, 'a', PRIVATE_FILE_MODE);
    // QJ_NODE_ARGS adds Node flags to every JournalNode (profiling: "--cpu-prof --cpu-prof-dir=/tmp/prof").
    const nodeArgs = (process.env.QJ_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const env = { ...process.env, GLIBC_TUNABLES: process.env.GLIBC_TUNABLES ?? JOURNALNODE_GLIBC_TUNABLES };
    const argv = ['--enable-source-maps', ...nodeArgs, JOURNALNODE_MAIN, ...this.args(n), ...extra];
    // With a lower open-file limit, a shell sets it and then becomes the node (exec: the same pid).
    const [cmd, args] =
      this.maxOpenFiles === null
        ? [process.execPath, argv]
        : ['/bin/sh', ['-c', `ulimit -n ${this.maxOpenFiles} && exec "$0" "$@"`, process.execPath, ...argv]];
    const proc = spawn(cmd, args, { stdio: ['ignore', out, out], env, detached: this.ownProcessGroups });
    fs.closeSync(out);
    n.proc = proc;
    n.exit = new Promise((resolve) => proc.on('exit', (code) => resolve(code)));
    void n.exit.then(() => {
      if (n.proc === proc) n.proc = null;
    });
    return n;
  }

  startAll(): void {
    for (const n of this.nodes) this.start(n.id);
  }

  signal(id: string, sig: NodeJS.Signals): void {
    const n = this.node(id);
    if (!n.proc) throw new Error(`${id} is not running`);
    n.proc.kill(sig);
  }

  /** kill -9 and wait until the process is gone. */
  async kill(id: string): Promise<void> {
    const n = this.node(id);
    if (!n.proc) return;
    const exit = n.exit!;
    n.proc.kill('SIGKILL');
    await exit;
    n.proc = null;
  }

  /** SIGTERM and wait for a clean exit (SIGKILL and an error after stopTimeoutMs); returns the exit code. */
  async stop(id: string, stopTimeoutMs = 15_000): Promise<number | null> {
    const n = this.node(id);
    if (!n.proc) return null;
    const exit = n.exit!;
    n.proc.kill('SIGCONT');
    n.proc.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'timeout'>((r) => (timer = setTimeout(() => r('timeout'), stopTimeoutMs)));
    // Cleared at once: a pending 15 s timer would keep a launcher that is done (the demo) alive that long.
    const code = await Promise.race([exit, late]).finally(() => clearTimeout(timer));
    if (code === 'timeout') {
      await this.kill(id);
      throw new Error(`${id} did not stop within ${stopTimeoutMs / 1000} s of SIGTERM: killed`);
    }
    n.proc = null;
    return code;
  }

  /** Stops every running node (see stop()); returns why each node that had to be killed was. */
  async stopAll(stopTimeoutMs?: number): Promise<string[]> {
    const killed: string[] = [];
    await Promise.all(
      this.nodes
        .filter((n) => n.proc)
        .map((n) =>
          this.stop(n.id, stopTimeoutMs).catch(async (e: Error) => {
            killed.push(e.message);
            await this.kill(n.id);
          }),
        ),
    );
    return killed;
  }

  async destroy(keepOnFailure = false): Promise<void> {
    for (const n of this.nodes) if (n.proc) n.proc.kill('SIGKILL');
    await Promise.all(this.nodes.map((n) => n.exit));
    await this.http.close();
    if (!keepOnFailure) fs.rmSync(this.root, { recursive: true, force: true });
  }

  /** The node's /status, or null while it does not answer (down, stopped, starting). */
  async status(id: string, timeoutMs = 1000): Promise<NodeStatusJson | null> {
    return fetchNodeStatus(this.node(id).address, timeoutMs, this.http).catch(() => null);
  }

  /**
   * Waits until the running nodes agree on one leader; returns its id. The default bound covers a first start
   * on a loaded machine: nodes form the cluster (every one of them up and answering) before they elect.
   */
  async waitForLeader(timeoutMs = 30_000, exclude: string[] = []): Promise<string> {
    return waitFor(
      async () => {
        const running = this.nodes.filter((n) => n.proc && !exclude.includes(n.id));
        const sts = (await Promise.all(running.map((n) => this.status(n.id)))).filter(
          (s): s is NodeStatusJson => s !== null,
        );
        const leaders = sts.filter((s) => s.state === 'leader');
        if (leaders.length !== 1 || sts.length !== running.length) return null;
        const l = leaders[0]!;
        return sts.every((s) => s.leader === l.id && s.term === l.term) ? l.id : null;
      },
      { timeoutMs, intervalMs: 25, what: `an agreed leader (logs in ${this.root})` },
    );
  }

  /** Waits until every running node has applied at least `index`. */
  async waitForApplied(index: number, timeoutMs = 15_000): Promise<void> {
    await waitFor(
      async () => {
        const sts = await Promise.all(this.nodes.filter((n) => n.proc).map((n) => this.status(n.id)));
        return sts.every((s) => s !== null && s.appliedIndex >= index);
      },
      { timeoutMs, intervalMs: 25, what: `every node to apply index ${index}` },
    );
  }

  /** The journal's segment files on a node: name -> contents. */
  segmentFiles(id: string, jid: string): Map<string, Buffer> {
    const dir = path.join(this.node(id).dataDir, 'journals', jid);
    const out = new Map<string, Buffer>();
    if (!fs.existsSync(dir)) return out;
    for (const name of fs.readdirSync(dir).sort()) out.set(name, fs.readFileSync(path.join(dir, name)));
    return out;
  }

  readLog(id: string): string {
    try {
      return fs.readFileSync(this.node(id).logFile, 'utf8');
    } catch {
      return '';
    }
  }
}
