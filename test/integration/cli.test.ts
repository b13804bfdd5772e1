// The qjm CLI as an operator uses it: real processes, real output, and exit codes for every failure.

import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { JOURNALNODE_MAIN, LocalCluster } from '../../src/local-cluster.js';
import { QuorumJournalManager } from '../../libqjm/index.js';
import { waitFor } from '../support/async.js';
import { REPO_ROOT } from '../support/repo-root.js';

const QJM = path.join(REPO_ROOT, 'bin', 'qjm.js');

/** The rows of the first table in `out`, as trimmed cells (the header row first). */
function tableRows(out: string): string[][] {
  const rows: string[][] = [];
  for (const line of out.split('\n')) {
    if (line.startsWith('| '))
      rows.push(
        line
          .slice(1, -1)
          .split('|')
          .map((c) => c.trim()),
      );
    else if (rows.length > 1 && !line.startsWith('+')) break;
  }
  return rows;
}

function qjm(args: string[], env: Record<string, string> = {}): Promise<{ code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [QJM, ...args],
      { env: { ...process.env, ...env }, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
        resolve({ code, out: stdout, err: stderr });
      },
    );
  });
}

describe('qjm CLI', function () {
  this.timeout(120_000);
  let c: LocalCluster;
  let peers: string;
  /** bin/qjm as the cluster's admin user (QJM_CERTS_DIR, QJM_USER). */
  const qjmAsAdmin = (args: string[], env: Record<string, string> = {}) => qjm(args, { ...c.qjmEnv('admin'), ...env });

  before(async () => {
    c = await LocalCluster.create({ nodes: 3, electionTimeoutMs: 300 });
    c.startAll();
    await c.waitForLeader();
    peers = c.addresses.join(',');
  });
  after(async function () {
    const failed = this.test?.parent?.tests.some((t) => t.state === 'failed') ?? false;
    await c.destroy(failed);
  });

  it('usage errors exit 2 with the usage text', async () => {
    const r = await qjmAsAdmin(['segments', '--jid', 'x']);
    expect(r.code).to.equal(2);
    expect(r.err)
      .to.match(/--peers is required/)
      .and.match(/usage: qjm segments --peers/);
    expect((await qjmAsAdmin(['frobnicate'])).code).to.equal(2);
  });

  it("status: a table of every node with each follower's lag, and --json", async () => {
    const r = await qjmAsAdmin(['status', '--peers', peers]);
    expect(r.code, r.err).to.equal(0);
    expect(r.out).to.match(/ENDPOINT\s+\|\s+ID\s+\|\s+STATE/);
    expect(r.out.match(/leader/g)?.length).to.equal(1);
    const [head, ...rows] = tableRows(r.out);
    const col = (name: string) => head!.indexOf(name);
    expect(col('LAG'), 'a LAG column').to.be.greaterThan(0);
    expect(rows).to.have.length(3);
    for (const row of rows) {
      if (row[col('STATE')] === 'leader') expect(row[col('LAG')], 'the leader lags nobody').to.equal('-');
      else expect(row[col('LAG')], `${row[col('ID')]}: entries behind the leader`).to.match(/^\d+$/);
    }
    // Then each node's recent log writes and, as the leader sees them, each follower's acknowledgements.
    const leaderId = rows.find((row) => row[col('STATE')] === 'leader')![col('ID')];
    const [lhead, ...lrows] = tableRows(r.out.split('\n\n').find((b) => b.includes('SYNC P50'))!);
    expect(lhead).to.deep.equal(['ID', 'SYNC P50 / P99 (MS)', 'ACK P50 / P99 (MS)']);
    expect(lrows.map((row) => row[0]).sort()).to.deep.equal(['n1', 'n2', 'n3']);
    const pair = /^\d+\.\d \/ \d+\.\d$/;
    for (const [id, sync, ack] of lrows) {
      expect(sync, `${id} wrote its log within the minute`).to.match(pair);
      if (id === leaderId) expect(ack).to.equal('-');
      else expect(ack, `${id} acknowledged the leader's appends`).to.match(pair);
    }
    const j = JSON.parse((await qjmAsAdmin(['status', '--peers', peers, '--json'])).out) as {
      endpoint: string;
      status: { state: string };
    }[];
    expect(j.map((x) => x.endpoint).sort()).to.deep.equal([...c.addresses].sort());
  });

  it('format, segments, finalize (refused while the writer is active, then --force), purge, tail', async () => {
    expect((await qjmAsAdmin(['segments', '--peers', peers, '--jid', 'cli1'])).code, 'not formatted').to.equal(3);
    let r = await qjmAsAdmin([
      'format',
      '--peers',
      peers,
      '--jid',
      'cli1',
      '--namespace-id',
      '5',
      '--cluster-id',
      'CID-cli',
    ]);
    expect(r.code, r.err).to.equal(0);
    const ns = { namespaceId: 5, clusterId: 'CID-cli', blockPoolId: '' };
    const w = new QuorumJournalManager({
      journalId: 'cli1',
      peers: c.addresses,
      writerId: 'nn1',
      nsInfo: ns,
      tls: c.tls('writer'),
    });
    await w.recoverUnfinalizedSegments();
    let out = await w.startLogSegment(1, -64);
    for (let i = 1; i <= 5; i++) out.write(Buffer.from(`op ${i}`));
    await out.flush();
    await w.finalizeLogSegment(1, 5);
    out = await w.startLogSegment(6, -64);
    for (let i = 6; i <= 8; i++) out.write(Buffer.from(`op ${i}`));
    await out.flush();

    // First, while the writer's last write is seconds old (a slow machine runs each qjm process for seconds).
    r = await qjmAsAdmin(['finalize', '--peers', peers, '--jid', 'cli1']);
    expect(r.code, 'the writer wrote a moment ago').to.equal(4);
    expect(r.err)
      .to.match(/QJM_ERR_WRITER_ACTIVE/)
      .and.match(/--force/);
    r = await qjmAsAdmin(['segments', '--peers', peers, '--jid', 'cli1']);
    expect(r.code, r.err).to.equal(0);
    expect(r.out)
      .to.match(/1\s+\|\s+5\s+\|\s+5\s+\|\s+finalized\s+\|\s+\d+ B\s+\|/)
      .and.match(/6\s+\|\s+8\s+\|\s+3\s+\|\s+in progress/);
    expect(r.out).to.match(/2 segment\(s\), \d+(\.\d)? (B|KiB)/);

    r = await qjmAsAdmin(['finalize', '--peers', peers, '--jid', 'cli1', '--forse', 'yes']);
    expect(r.code, 'a misspelt --force is refused, not ignored').to.equal(2);
    r = await qjmAsAdmin(['finalize', '--peers', peers, '--jid', 'cli1', '--force']);
    expect(r.code, r.err).to.equal(0);
    expect(r.out).to.match(/fenced prior writers with epoch 2; finalized segment 6-8/);
    out.write(Buffer.from('too late'));
    try {
      await out.flush();
      expect.fail('the writer is fenced');
    } catch (e) {
      expect((e as Error & { code: string }).code).to.equal('QJM_ERR_FENCED');
    }
    await w.close();
    const sized = JSON.parse((await qjmAsAdmin(['segments', '--peers', peers, '--jid', 'cli1', '--json'])).out) as {
      totalBytes: number;
      segments: { firstTxId: number; sizeBytes: number }[];
    };
    const onDisk = c.segmentFiles('n1', 'cli1').get('edits_0000000000000000001-0000000000000000005')!;
    expect(sized.segments[0]!.sizeBytes, 'the exact size of the finalized file').to.equal(onDisk.length);
    expect(sized.totalBytes).to.equal(sized.segments.reduce((n, g) => n + g.sizeBytes, 0));

    r = await qjmAsAdmin(['tail', '--peers', peers, '--jid', 'cli1', '--from', '4']);
    expect(r.code, r.err).to.equal(0);
    expect(r.out.trim().split('\n')).to.deep.equal([
      '4\t4\top 4',
      '5\t4\top 5',
      '6\t4\top 6',
      '7\t4\top 7',
      '8\t4\top 8',
    ]);

    r = await qjmAsAdmin(['purge', '--peers', peers, '--jid', 'cli1', '--min-txid', '6', '--dry-run', 'yes']);
    expect(r.code, 'there is no --dry-run: refused, not ignored').to.equal(2);
    expect(r.err)
      .to.match(/unknown flag --dry-run/)
      .and.match(/usage: qjm purge/);
    const kept = JSON.parse((await qjmAsAdmin(['segments', '--peers', peers, '--jid', 'cli1', '--json'])).out) as {
      segments: { firstTxId: number }[];
    };
    expect(
      kept.segments.map((s) => s.firstTxId),
      'nothing purged',
    ).to.deep.equal([1, 6]);

    r = await qjmAsAdmin(['purge', '--peers', peers, '--jid', 'cli1', '--min-txid', '6']);
    expect(r.code, r.err).to.equal(0);
    expect(r.out).to.match(/purged 1 segment/);
    const segs = JSON.parse((await qjmAsAdmin(['segments', '--peers', peers, '--jid', 'cli1', '--json'])).out) as {
      segments: { firstTxId: number }[];
    };
    expect(segs.segments.map((s) => s.firstTxId)).to.deep.equal([6]);
  });

  it('dump reads a segment file offline, and exits 5 naming the offset of a corrupt record', async () => {
    const dir = path.join(c.node('n1').dataDir, 'journals', 'cli1');
    const file = path.join(dir, fs.readdirSync(dir).find((n) => n.startsWith('edits_0000000000000000006'))!);
    let r = await qjmAsAdmin(['dump', file]);
    expect(r.code, r.err).to.equal(0);
    expect(r.out)
      .to.match(/layout version -64, first txid 6/)
      .and.match(/^6\t4\tcrc ok\top 6$/m)
      .and.match(/3 records, txids 6\.\.8, .* every CRC ok/);
    const bad = path.join(c.root, 'bad-segment');
    const b = fs.readFileSync(file);
    b[b.length - 2]! ^= 0x40;
    fs.writeFileSync(bad, b);
    r = await qjmAsAdmin(['dump', bad]);
    expect(r.code).to.equal(5);
    expect(r.err).to.match(/corrupt frame at byte offset \d+: CRC mismatch for txid 8/);
  });

  it('unreachable peers: says on stderr what it retries, once a second, gives up after --timeout, exit 1', async () => {
    const t0 = Date.now();
    const r = await qjmAsAdmin(['segments', '--peers', '127.0.0.1:1', '--jid', 'cli1', '--timeout', '3'], {});
    const tookMs = Date.now() - t0;
    expect(r.code).to.equal(1);
    expect(r.err).to.match(/QJM_ERR_QUORUM_UNAVAILABLE.*no JournalNode answered/);
    const notices = r.err.split('\n').filter((l) => l.startsWith('qjm: '));
    expect(notices.length, r.err).to.be.within(2, 4);
    for (const l of notices)
      expect(l).to.match(/^qjm: 127\.0\.0\.1:1 unreachable \(ECONNREFUSED\); retrying for [0-3] s more$/);
    expect(notices[0]).to.match(/for 3 s more/);
    expect(tookMs, 'well before the default 20 s').to.be.lessThan(12_000);
  });

  it('snapshot: the leader snapshots now and its /status shows the new index; --node picks a follower', async () => {
    let r = await qjmAsAdmin([
      'format',
      '--peers',
      peers,
      '--jid',
      'snap1',
      '--namespace-id',
      '6',
      '--cluster-id',
      'CID-snap',
    ]);
    expect(r.code, r.err).to.equal(0);
    const leader = await c.waitForLeader();
    const before = (await c.status(leader))!;
    r = await qjmAsAdmin(['snapshot', '--peers', peers]);
    expect(r.code, r.err).to.equal(0);
    const index = Number(/^snapshot at index (\d+)$/m.exec(r.out)?.[1]);
    expect(index, r.out).to.be.at.least(before.appliedIndex).and.greaterThan(before.snapshotIndex);
    expect((await c.status(leader))!.snapshotIndex).to.equal(index);

    const follower = c.nodes.find((n) => n.id !== leader)!;
    r = await qjmAsAdmin(['snapshot', '--peers', peers, '--node', follower.address, '--json']);
    expect(r.code, r.err).to.equal(0);
    const onFollower = Number(/snapshot at index (\d+)/.exec((JSON.parse(r.out) as { message: string }).message)?.[1]);
    expect((await c.status(follower.id))!.snapshotIndex).to.equal(onFollower);
  });

  // Last: it changes the cluster the tests above share.
  it('change-peers swaps one voter for a new node in one joint change; the journal is intact on it', async () => {
    const leader = await c.waitForLeader();
    const out = c.nodes.find((n) => n.id !== leader)!;
    const n4 = await c.addNode('n4');
    c.start('n4');
    // The change may go in only once n4 has learned the cluster: a short log counts a silent learner as caught up.
    await waitFor(() => c.status('n4'), { timeoutMs: 15_000, what: 'the joining n4 answers /status' });
    const next = c.nodes
      .filter((n) => n !== out)
      .map((n) => `${n.id}=${n.address}`)
      .join(',');
    const r = await qjmAsAdmin(['change-peers', '--peers', peers, '--new-peers', next, '--timeout', '60']);
    expect(r.code, r.err).to.equal(0);
    expect(r.err).to.match(
      new RegExp(`changing voters from .*${out.id}=.* to .*n4=${n4.address.replace(/\./g, '\\.')}`),
    );
    const st = (await c.status(await c.waitForLeader(15_000, [out.id])))!;
    const voters = st.peers
      .filter((p) => p.role === 'voter')
      .map((p) => p.id)
      .sort();
    expect(voters).to.deep.equal(
      c.nodes
        .filter((n) => n !== out)
        .map((n) => n.id)
        .sort(),
    );
    expect(
      st.peers.map((p) => p.id),
      `${out.id} is no member at all`,
    ).to.not.include(out.id);
    expect(await c.stop(out.id), `${out.id}, removed, stops cleanly`).to.equal(0);
    await c.waitForApplied(st.commitIndex, 30_000);
    const ref = c.segmentFiles(st.id, 'cli1');
    const got = c.segmentFiles('n4', 'cli1');
    expect([...got.keys()]).to.deep.equal([...ref.keys()]);
    for (const [name, b] of ref) expect(got.get(name)!.equals(b), name).to.equal(true);
  });
});

describe('journalnode command line', () => {
  const run = (args: string[]) =>
    spawnSync(process.execPath, [JOURNALNODE_MAIN, ...args], { encoding: 'utf8', timeout: 15_000 });
  const base = [
    '--id',
    'n1',
    '--listen',
    '127.0.0.1:0',
    '--data',
    path.join(os.tmpdir(), 'qj-never-created'),
    '--peers',
    'n1=127.0.0.1:1',
  ];

  it('an unknown flag exits 2 with the usage line, before the data directory is touched', () => {
    const r = run([...base, '--electionTimeoutMs', '500', '--bogus', '1']);
    expect(r.status).to.equal(2);
    expect(r.stderr).to.match(/^journalnode: unknown flag --bogus\nusage: journalnode --id /);
    expect(fs.existsSync(base[5]!)).to.equal(false);
  });

  it('--help lists the node flags and every setting', () => {
    const r = run(['--help']);
    expect(r.status).to.equal(0);
    expect(r.stdout)
      .to.match(/--listen HOST:PORT/)
      .and.match(/--electionTimeoutMs N +Election timeout.*\(default 1000\)/)
      .and.match(/--sync true\|false/);
  });
});
