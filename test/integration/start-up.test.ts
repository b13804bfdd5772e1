// What a JournalNode's start-up does with what it is given, with real processes and mutual TLS: a port that
// cannot be bound stops it before anything is written to its data directory (the next start finds the directory
// as it was), and --peers on a directory that already belongs to a cluster must still describe that cluster — a
// corrected or stale value is refused with what differs and what to do, never ignored in silence.

import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { expect } from 'chai';
import { freePorts, JOURNALNODE_MAIN, LocalCluster } from '../../src/local-cluster.js';
import type { ProcNode } from '../../src/local-cluster.js';
import { waitFor } from '../support/async.js';
import { destroyCluster } from '../support/cluster-writer.js';
import { runQjm } from '../support/qjm-process.js';

/** A node's own command line, with flags replaced (flag -> value). */
function argsWith(c: LocalCluster, id: string, replace: Record<string, string>): string[] {
  const args = c.args(c.node(id));
  return args.map((a, i) => (i > 0 && args[i - 1]! in replace ? replace[args[i - 1]!]! : a));
}

/**
 * Runs journalnode to its exit (a refusal is quick; one that starts instead is killed after 30 s): its exit code
 * and stderr. Its log (stdout) is not kept: a node writes it synchronously to a pipe, and would block on a full
 * one once spawnSync stopped reading it.
 */
function runToExit(args: string[]): { code: number | null; stderr: string } {
  const r = spawnSync(process.execPath, [JOURNALNODE_MAIN, ...args], {
    encoding: 'utf8',
    timeout: 30_000,
    killSignal: 'SIGKILL',
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return { code: r.status, stderr: r.stderr };
}

/** Holds host:port with a plain listener, as another program would. */
async function occupy(address: string): Promise<net.Server> {
  const [host, port] = [
    address.slice(0, address.lastIndexOf(':')),
    Number(address.slice(address.lastIndexOf(':') + 1)),
  ];
  const s = net.createServer((socket) => socket.destroy());
  await new Promise<void>((resolve, reject) => {
    s.once('error', reject);
    s.listen({ host, port }, resolve);
  });
  return s;
}

/** text as a literal in a RegExp. */
function literal(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Every path under dir, relative, sorted ([] when dir does not exist). */
function tree(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return (fs.readdirSync(dir, { recursive: true }) as string[]).sort();
}

describe('journalnode start-up', function () {
  this.timeout(180_000);
  let c: LocalCluster;

  afterEach(destroyCluster(() => c));

  it('a port that cannot be bound: exit 1 naming it, and nothing is written to the data directory', async () => {
    c = await LocalCluster.create({ nodes: 3, electionTimeoutMs: 400, ui: true });
    const n1 = c.node('n1');
    const cases: { what: string; args: string[]; busy: string }[] = [
      // A node of three waits to form on its port; one of one forms at once, without serving first.
      { what: 'one of three, --listen busy', args: c.args(n1), busy: n1.address },
      { what: 'one of three, --ui-listen busy', args: c.args(n1), busy: n1.uiAddress! },
      {
        what: 'a cluster of one, --listen busy',
        args: argsWith(c, 'n1', { '--peers': `n1=${n1.address}` }),
        busy: n1.address,
      },
      {
        what: 'joining, --listen busy',
        args: [
          ...c.args(n1).filter((_, i, a) => a[i] !== '--peers' && a[i - 1] !== '--peers'),
          '--join',
          c.node('n2').address,
        ],
        busy: n1.address,
      },
    ];
    for (const k of cases) {
      const data = path.join(c.root, 'fresh', 'n1');
      const held = await occupy(k.busy);
      try {
        const r = runToExit(k.args.map((a) => (a === n1.dataDir ? data : a)));
        expect(r.code, `${k.what}: ${r.stderr}`).to.equal(1);
        expect(r.stderr, k.what).to.match(
          new RegExp(
            `cannot listen on ${k.busy.replace(/\./g, '\\.')}: EADDRINUSE .*the data directory was left as it was`,
          ),
        );
        expect(tree(path.join(c.root, 'fresh')), `${k.what}: nothing created`).to.deep.equal([]);
        // An existing directory keeps what it held, and nothing more.
        fs.mkdirSync(data, { recursive: true });
        fs.writeFileSync(path.join(data, 'README'), 'mine');
        expect(runToExit(k.args.map((a) => (a === n1.dataDir ? data : a))).code, k.what).to.equal(1);
        expect(tree(data), `${k.what}: an existing directory unchanged`).to.deep.equal(['README']);
      } finally {
        await new Promise((r) => held.close(r));
        fs.rmSync(path.join(c.root, 'fresh'), { recursive: true, force: true });
      }
    }

    // The port free again: the same command lines form the cluster as if nothing had happened.
    c.startAll();
    await c.waitForLeader(30_000);
    const st = (await c.status('n1'))!;
    expect(st.identity?.state).to.equal('member');
  });

  it('--peers on a formed directory: anything but the configuration it formed with is refused, naming what differs, before anything is written', async () => {
    c = await LocalCluster.create({ nodes: 3, electionTimeoutMs: 400 });
    c.startAll();
    await c.waitForLeader(30_000);
    await c.stop('n1');
    const [n1, n2, n3] = ['n1', 'n2', 'n3'].map((id) => c.node(id)) as [ProcNode, ProcNode, ProcNode];
    const [elsewhere] = await freePorts(1);
    const refused = (what: string, peers: string, differs: RegExp) => {
      const r = runToExit(argsWith(c, 'n1', { '--peers': peers }));
      expect(r.code, `${what}: ${r.stderr}`).to.equal(2);
      expect(r.stderr, what)
        .to.match(/--peers is not the configuration this data directory formed with \(n1=.*,n2=.*,n3=.*\)/)
        .and.match(differs)
        .and.match(/read only when the data directory is empty/)
        .and.match(new RegExp(`Start with --peers ${literal(c.peersFlag)} as before \\(the members now: qjm status\\)`))
        .and.match(/qjm add-peer, remove-peer or change-peers/);
    };
    const before = tree(n1.dataDir);
    refused(
      'n2 at another address',
      `n1=${n1.address},n2=127.0.0.1:${elsewhere},n3=${n3.address}`,
      new RegExp(`n2 was at ${literal(n2.address)}, not 127\\.0\\.0\\.1:${elsewhere}`),
    );
    refused(
      'n3 left out',
      `n1=${n1.address},n2=${n2.address}`,
      new RegExp(`n3 \\(${literal(n3.address)}\\) is missing`),
    );
    refused('a node it never had', `${c.peersFlag},n9=127.0.0.1:${elsewhere}`, /n9 was not among them/);
    expect(tree(n1.dataDir), 'the refusals wrote nothing').to.deep.equal(before);

    // The same line as ever starts it.
    const member = () =>
      waitFor(async () => (await c.status('n1'))?.identity?.state === 'member', {
        timeoutMs: 30_000,
        what: 'n1 back with its usual --peers',
      });
    c.start('n1');
    await member();

    // After n3's removal the members are n1 and n2; --peers still means the formation: the old line starts n1.
    const removed = await runQjm(c, ['remove-peer', '--peers', c.addresses.join(','), '--peer', 'n3']);
    expect(removed.code, removed.err).to.equal(0);
    await c.stop('n3');
    await c.stop('n1');
    refused('the members now', `n1=${n1.address},n2=${n2.address}`, /n3 \(127\.0\.0\.1:\d+\) is missing/);
    c.start('n1');
    await member();
    const st = (await c.status(await c.waitForLeader(30_000)))!;
    expect(st.peers.map((p) => p.id).sort()).to.deep.equal(['n1', 'n2']);
  });
});
