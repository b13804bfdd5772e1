// The qjm CLI as an operator uses it: real processes, real output, and exit codes for every failure.

import { execFile, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { JOURNALNODE_MAIN, LocalCluster } from '../../src/local-cluster.js';
import { AdminClient, QuorumJournalManager } from '../../libqjm/index.js';
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
    c = await LocalCluster.create({ nodes: 3, electionTimeoutMs: 300, journals: ['cli1', 'cli2', 'cli3'] });
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
    const j = JSON.parse((await qjmAsAdmin(['status', '--peers', peers, '--json'])).out) as {
      nodes: { endpoint: string; status: { state: string } }[];
      problems: string[];
    };
    expect(j.nodes.map((x) => x.endpoint).sort()).to.deep.equal([...c.addresses].sort());
    expect(j.problems).to.deep.equal([]);
    // Given one address, it finds the others through the members that node names.
    const one = await qjmAsAdmin(['status', '--peers', c.addresses[0]!, '--json']);
    expect(one.code, one.err).to.equal(0);
    const found = (JSON.parse(one.out) as { nodes: { endpoint: string }[] }).nodes.map((x) => x.endpoint);
    expect(found.sort()).to.deep.equal([...c.addresses].sort());
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

    const firstTxIds = async () =>
      (
        JSON.parse((await qjmAsAdmin(['segments', '--peers', peers, '--jid', 'cli1', '--json'])).out) as {
          segments: { firstTxId: number }[];
        }
      ).segments.map((s) => s.firstTxId);
    // The retention floor: the last minTxnsRetained (1,000,000) txids stay, so nothing of these 8 may go.
    r = await qjmAsAdmin(['purge', '--peers', peers, '--jid', 'cli1', '--min-txid', '6', '--dry-run']);
    expect(r.code, r.err).to.equal(0);
    expect(r.out, r.out)
      .to.match(/would purge: none/)
      .and.match(/kept by the retention floor \(txid 1: minTxnsRetained: the last 1000000 txids stay/);
    // One digit too many: refused, nothing deleted, and told what to type instead.
    r = await qjmAsAdmin(['purge', '--peers', peers, '--jid', 'cli1', '--min-txid', '99999999']);
    expect(r.code, r.out).to.equal(4);
    expect(r.err)
      .to.match(/refused: --min-txid 99999999 reaches past the retention floor/)
      .and.match(/nothing was deleted/)
      .and.match(/--force/);
    expect(await firstTxIds(), 'nothing purged').to.deep.equal([1, 6]);
    // Past the floor only with --force, which asks first; with no terminal to ask at, --yes is required.
    r = await qjmAsAdmin(['purge', '--peers', peers, '--jid', 'cli1', '--min-txid', '6', '--force']);
    expect(r.code, r.out).to.equal(2);
    expect(r.err).to.match(/there is no terminal to confirm at: add --yes/);
    expect(await firstTxIds(), 'nothing purged').to.deep.equal([1, 6]);
    r = await qjmAsAdmin(['purge', '--peers', peers, '--jid', 'cli1', '--min-txid', '6', '--force', '--yes']);
    expect(r.code, r.err).to.equal(0);
    expect(r.out).to.match(/purged 1 segment/);
    const segs = JSON.parse((await qjmAsAdmin(['segments', '--peers', peers, '--jid', 'cli1', '--json'])).out) as {
      segments: { firstTxId: number }[];
    };
    expect(segs.segments.map((s) => s.firstTxId)).to.deep.equal([6]);
  });

  it('format --force of a journal holding edits says what it wipes and needs --yes without a terminal', async () => {
    const format = (...more: string[]) =>
      qjmAsAdmin(['format', '--peers', peers, '--jid', 'cli2', '--namespace-id', '7', '--cluster-id', 'C7', ...more]);
    expect((await format()).code).to.equal(0);
    const w = new QuorumJournalManager({
      journalId: 'cli2',
      peers: c.addresses,
      writerId: 'nn7',
      nsInfo: { namespaceId: 7, clusterId: 'C7', blockPoolId: '' },
      tls: c.tls('writer'),
    });
    await w.recoverUnfinalizedSegments();
    const out = await w.startLogSegment(1, -64);
    for (let i = 1; i <= 3; i++) out.write(Buffer.from(`op ${i}`));
    await out.flush();
    await w.close();
    let r = await format();
    expect(r.code, 'holds data').to.equal(4);
    expect(r.err).to.match(/qjm format --force wipes it/);
    r = await format('--force', '--allow-active-writer');
    expect(r.code, r.out).to.equal(2);
    expect(r.err)
      .to.match(/wipes journal cli2: 3 edits in 1 segment\(s\), written by nn7/)
      .and.match(/add --yes/);
    const still = await qjmAsAdmin(['segments', '--peers', peers, '--jid', 'cli2', '--json']);
    expect((JSON.parse(still.out) as { lastTxId: number }).lastTxId, 'nothing wiped').to.equal(3);
    r = await format('--force', '--allow-active-writer', '--yes');
    expect(r.code, r.err).to.equal(0);
    const after = await qjmAsAdmin(['segments', '--peers', peers, '--jid', 'cli2', '--json']);
    expect((JSON.parse(after.out) as { lastTxId: number }).lastTxId, 'wiped').to.equal(0);
  });

  it("the master's purge is held to the retention floor by the leader, whatever it asks; past it only forced, as admin", async () => {
    expect(
      (await qjmAsAdmin(['format', '--peers', peers, '--jid', 'cli3', '--namespace-id', '9', '--cluster-id', 'C9']))
        .code,
    ).to.equal(0);
    const w = new QuorumJournalManager({
      journalId: 'cli3',
      peers: c.addresses,
      writerId: 'nn9',
      nsInfo: { namespaceId: 9, clusterId: 'C9', blockPoolId: '' },
      tls: c.tls('writer'),
    });
    await w.recoverUnfinalizedSegments();
    for (const first of [1, 4, 7]) {
      const out = await w.startLogSegment(first, -64);
      for (let i = 0; i < 3; i++) out.write(Buffer.from(`op ${first + i}`));
      await out.flush();
      await w.finalizeLogSegment(first, first + 2);
    }
    const segs = async () => (await w.getJournalState()).segments.map((s) => s.firstTxId);
    // minTxnsRetained (1,000,000) keeps all 9 txids: the library's purge deletes nothing, and says so.
    await w.purgeLogsOlderThan(100);
    expect(await segs()).to.deep.equal([1, 4, 7]);
    const st = await w.getJournalState();
    expect(st.retention.fromTxId).to.equal(1);
    expect(st.retention.reason).to.match(/minTxnsRetained/);
    // A writer may not force it; an admin may.
    const asWriter = new AdminClient(c.addresses, { tls: c.tls('writer'), retry: { deadlineMs: 2000 } });
    const asAdmin = new AdminClient(c.addresses, { tls: c.tls('admin') });
    try {
      const refused = await asWriter.purgeAtEpoch('cli3', st.promisedEpoch, 100, true).catch((e: unknown) => e);
      expect((refused as { code?: string }).code).to.equal('QJM_ERR_FORBIDDEN');
      expect(await segs()).to.deep.equal([1, 4, 7]);
      const r = await asAdmin.purgeAtEpoch('cli3', st.promisedEpoch, 100, true);
      expect(r.purgedBelowTxId).to.equal(100);
      expect(await segs(), 'forced: every finalized segment below 100').to.deep.equal([]);
    } finally {
      await asWriter.close();
      await asAdmin.close();
      await w.close();
    }
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

  it('check-impact says whether a node may be stopped or removed; remove-peer refuses what would leave no quorum', async () => {
    const leader = await c.waitForLeader();
    const [a, b] = c.nodes.filter((n) => n.id !== leader);
    let r = await qjmAsAdmin(['check-impact', '--peers', peers, '--node', a!.id]);
    expect(r.code, r.out + r.err).to.equal(0);
    expect(r.out).to.match(new RegExp(`SAFE: without ${a!.id}, 2 caught-up voter\\(s\\) of 3 remain`));
    // With b down, stopping or removing a would leave the leader alone.
    await c.stop(b!.id);
    try {
      await waitFor(async () => (await qjmAsAdmin(['check-impact', '--peers', peers, '--node', a!.id])).code === 1, {
        timeoutMs: 15_000,
        what: `the leader to stop counting ${b!.id} as caught up`,
      });
      r = await qjmAsAdmin(['check-impact', '--peers', peers, '--node', a!.id, '--json']);
      const j = JSON.parse(r.out) as { safe: boolean; lines: string[] };
      expect(j.safe).to.equal(false);
      expect(j.lines.join('\n')).to.match(new RegExp(`${b!.id}: not heard from`));
      r = await qjmAsAdmin(['remove-peer', '--peers', peers, '--peer', a!.id]);
      expect(r.code, r.out).to.equal(4);
      expect(r.err)
        .to.match(/refused: removing .* leaves no quorum of caught-up voters/)
        .and.match(/--force/);
      const st = (await c.status(leader))!;
      expect(st.peers.map((p) => p.id).sort(), 'the configuration is unchanged').to.deep.equal(
        c.nodes.map((n) => n.id).sort(),
      );
    } finally {
      c.start(b!.id);
      await waitFor(async () => (await qjmAsAdmin(['check-impact', '--peers', peers, '--node', a!.id])).code === 0, {
        timeoutMs: 30_000,
        what: `${b!.id} caught up again`,
      });
    }
  });

  it('purge of a journal no writer has written: nothing to purge, and why (exit 0); of one not formatted: exit 3', async () => {
    let r = await qjmAsAdmin([
      'format',
      '--peers',
      peers,
      '--jid',
      'fresh1',
      '--namespace-id',
      '4',
      '--cluster-id',
      'C4',
    ]);
    expect(r.code, r.err).to.equal(0);
    for (const extra of [[], ['--dry-run'], ['--force', '--yes']]) {
      r = await qjmAsAdmin(['purge', '--peers', peers, '--jid', 'fresh1', '--min-txid', '1000', ...extra]);
      expect([r.code, r.err], extra.join(' ')).to.deep.equal([0, '']);
      expect(r.out.trim(), extra.join(' ')).to.equal(
        'journal fresh1 holds no finalized segment yet: nothing to purge (a purge deletes finalized segments only; the master finalizes one each time it rolls its edit log)',
      );
    }
    r = await qjmAsAdmin(['purge', '--peers', peers, '--jid', 'never-formatted', '--min-txid', '1000']);
    expect(r.code, r.out).to.equal(3);
    expect(r.err).to.match(/QJM_ERR_NOT_FORMATTED: journal never-formatted is not formatted/);
  });

  it("check perf: timed durable writes and every node's fdatasync, PASS; the scratch journal left empty; a node down is a FAIL naming it", async () => {
    let r = await qjmAsAdmin(['check', 'perf', '--peers', peers, '--writes', '50']);
    expect(r.code, r.out + r.err).to.equal(0);
    expect(r.out).to.match(/^50 durable writes of 200 bytes to journal qjm-check-perf, one at a time/);
    const rows = tableRows(r.out);
    expect(rows[0]).to.deep.equal(['NODE', 'ADDRESS', 'ROLE', 'FDATASYNC P50', 'FDATASYNC P99', '']);
    expect(
      rows
        .slice(1)
        .map((row) => row[0])
        .sort(),
    ).to.deep.equal(['n1', 'n2', 'n3']);
    for (const row of rows.slice(1)) {
      expect(row[3], row.join(' ')).to.match(/^\d+(\.\d+)? ms$/);
      expect(row[4], row.join(' ')).to.match(/^\d+(\.\d+)? ms$/);
      expect(row[5]).to.equal('ok');
    }
    expect(r.out)
      .to.match(/write round trip: p50 [\d.]+ ms, p99 [\d.]+ ms, max [\d.]+ ms {2}ok/)
      .and.match(/^PASS: every p99 is at most 1000 ms/m);
    const seg = await qjmAsAdmin(['segments', '--peers', peers, '--jid', 'qjm-check-perf', '--json']);
    expect(seg.code, seg.err).to.equal(0);
    expect((JSON.parse(seg.out) as { segments: unknown[] }).segments, 'wiped after the check').to.deep.equal([]);

    // A journal that is not the check's own is refused before anything is written to it.
    const nsInfo = { namespaceId: 5, clusterId: 'C5', blockPoolId: '' };
    const other = new QuorumJournalManager({
      journalId: 'taken',
      peers: c.addresses,
      writerId: 'nn9',
      nsInfo,
      tls: c.tls('admin'),
    });
    try {
      await other.format(nsInfo);
      await other.recoverUnfinalizedSegments();
      const out = await other.startLogSegment(1, -64);
      out.write(Buffer.from('mkdir /mine'));
      await out.flush();
    } finally {
      await other.close();
    }
    r = await qjmAsAdmin(['check', 'perf', '--peers', peers, '--jid', 'taken', '--writes', '5']);
    expect(r.code, r.out + r.err).to.equal(2);
    expect(r.err).to.match(/journal taken is written by nn9, not by the check/);
    const kept = await qjmAsAdmin(['segments', '--peers', peers, '--jid', 'taken', '--json']);
    expect((JSON.parse(kept.out) as { lastTxId: number }).lastTxId, 'its edit kept').to.equal(1);

    const leader = await c.waitForLeader();
    const down = c.nodes.find((n) => n.id !== leader)!;
    await c.stop(down.id);
    try {
      r = await qjmAsAdmin(['check', 'perf', '--peers', peers, '--writes', '20', '--json']);
      expect(r.code, r.out + r.err).to.equal(1);
      const j = JSON.parse(r.out) as { pass: boolean; nodes: { id: string; error: string | null }[] };
      expect(j.pass).to.equal(false);
      expect(j.nodes.find((n) => n.id === down.id)?.error)
        .to.be.a('string')
        .and.not.equal('');
      expect(j.nodes.filter((n) => n.id !== down.id).every((n) => n.error === null)).to.equal(true);
    } finally {
      c.start(down.id);
      await c.waitForLeader();
    }
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
