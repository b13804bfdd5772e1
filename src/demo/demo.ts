// The main job (`npm start`, `qjm demo`): three JournalNodes on loopback with mutual TLS (a CA and
// certificates under demo-data/certs/), a NameNode-style active master journaling every namespace change,
// a standby tailing the journal, an anonymous and a wrong-role client refused, a failover in which the
// standby fences the old active and takes over, the old active's next write refused with FENCED, a
// JournalNode leader killed under load, and a summary. With --serve it then keeps running (dashboard,
// active, standby, a steady modest load) until Ctrl-C or SIGTERM. Everything it starts, it stops, in order.

import fs from 'node:fs';
import path from 'node:path';
import { LocalCluster } from '../local-cluster.js';
import { QuorumJournalManager } from '../../libqjm/index.js';
import type { EditLogOutputStream } from '../../libqjm/index.js';
import { QjmError } from '../errors.js';
import { Prng } from '../prng.js';
import { renderTable } from '../text-table.js';
import { decodeOp, encodeOp, Namespace } from './namespace.js';
import type { NamespaceLimits } from './namespace.js';
import { tryRefusals } from './refusals.js';
import { Stopped, StopSwitch } from './stop-switch.js';
import type { TlsOption } from '../../libqjm/index.js';
import { waitFor } from '../wait-for.js';

const JID = 'ns1';
const NS_INFO = { namespaceId: 20261125, clusterId: 'CID-demo', blockPoolId: 'BP-demo' };
const ROLL_EVERY_EDITS = 1000;

/** --serve's steady load: enough for the dashboard's charts to move, little enough to leave the machine be. */
const SERVE_OPS_PER_SECOND = 100;
const SERVE_REPORT_EVERY_S = 10;
/** --serve purges the finalized segments more than this many txids behind, as a master does after a checkpoint. */
const SERVE_KEEP_TXNS = 10_000;
/** --serve's namespace stops growing here: memory stays flat however long it runs. */
const SERVE_NAMESPACE_LIMITS: NamespaceLimits = { maxFiles: 2000, maxDirs: 200 };

interface DemoOptions {
  dataDir?: string;
  /** Seconds of writing before the failover, and after it. */
  phase1S?: number;
  phase2S?: number;
  opsPerSecond?: number;
  /** After the story, keep everything running with a steady load until SIGINT or SIGTERM. */
  serve?: boolean;
  log?: (line: string) => void;
}

/** How a master writes in a load loop: the rate, the bursts it comes in, how often the demo reports. */
interface Load {
  opsPerSecond: number;
  burstEveryMs: number;
  reportEveryS: number;
  /** Stop after this long (default: until the demo is stopped). */
  seconds?: number;
  /** Drop the tail-lag samples after each report (a load that runs for days keeps no history). */
  forgetLags?: boolean;
}

function percentile(xs: number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}

function lagSummary(xs: number[]): string {
  if (xs.length === 0) return 'no samples';
  const early = xs.filter((x) => x === 0).length;
  return `p50 ${percentile(xs, 50).toFixed(1)}, p99 ${percentile(xs, 99).toFixed(1)} ms (${Math.round((100 * early) / xs.length)}% before the ack)`;
}

/**
 * Tail lag: from the journal acknowledging an edit to the active, to the standby applying it. The standby
 * can apply an edit before the active's acknowledgement reaches it (both answers leave the leader together):
 * that counts as no lag.
 */
class LagMeter {
  private readonly ackedAt = new Map<number, number>();
  private readonly appliedEarly = new Set<number>();
  readonly samplesMs: number[] = [];

  acked(txid: number, now: number): void {
    if (this.appliedEarly.delete(txid)) this.samplesMs.push(0);
    else this.ackedAt.set(txid, now);
  }

  applied(txid: number, now: number): void {
    const t = this.ackedAt.get(txid);
    if (t === undefined) {
      this.appliedEarly.add(txid);
      if (this.appliedEarly.size > 100_000) this.appliedEarly.clear();
      return;
    }
    this.ackedAt.delete(txid);
    this.samplesMs.push(now - t);
  }
}

class Master {
  readonly ns = new Namespace();
  readonly qjm: QuorumJournalManager;
  out: EditLogOutputStream | null = null;
  edits = 0;
  epoch = 0;
  /** How far the namespace grows, and how many txids of finalized segments stay (null: all): --serve bounds both. */
  nsLimits: NamespaceLimits | undefined = undefined;
  keepTxns: number | null = null;
  private tailAbort: AbortController | null = null;
  private tailDone: Promise<void> | null = null;

  constructor(
    readonly id: string,
    peers: string[],
    private readonly lag: LagMeter,
    tls: TlsOption | undefined,
  ) {
    this.qjm = new QuorumJournalManager({ journalId: JID, peers, writerId: id, nsInfo: NS_INFO, writeTimeoutMs: 20_000, tls });
  }

  /** Standby: apply every committed edit as it arrives. */
  startTailing(): void {
    this.tailAbort = new AbortController();
    const signal = this.tailAbort.signal;
    this.tailDone = (async () => {
      try {
        for await (const e of this.qjm.readEdits({ fromTxId: this.ns.lastTxId + 1, inProgressOk: true, follow: true, signal, waitMs: 500 })) {
          this.ns.apply(decodeOp(e.record), e.txid);
          this.lag.applied(e.txid, performance.now());
          if (signal.aborted) break;
        }
      } catch (err) {
        if (!signal.aborted) throw err;
      }
    })();
  }

  async stopTailing(): Promise<void> {
    this.tailAbort?.abort();
    await this.tailDone;
    this.tailAbort = null;
  }

  /** Failover: fence every prior writer, recover its segment, catch up, and open a new segment. */
  async becomeActive(): Promise<{ epoch: number; lastTxId: number; caughtUp: number }> {
    await this.stopTailing();
    const { epoch, lastTxId } = await this.qjm.recoverUnfinalizedSegments();
    this.epoch = epoch;
    let caughtUp = 0;
    if (this.ns.lastTxId < lastTxId) {
      for await (const e of this.qjm.readEdits({ fromTxId: this.ns.lastTxId + 1 })) {
        this.ns.apply(decodeOp(e.record), e.txid);
        caughtUp++;
        if (e.txid === lastTxId) break;
      }
    }
    this.out = await this.qjm.startLogSegment(lastTxId + 1, -64);
    return { epoch, lastTxId, caughtUp };
  }

  /** One client burst: each change applied in memory and journaled, then one logSync for all (group commit). */
  async burst(n: number, rng: Prng): Promise<number> {
    const out = this.out!;
    for (let k = 0; k < n; k++) {
      const op = this.ns.randomOp(() => rng.next(), this.ns.lastTxId + 1, this.nsLimits);
      out.write(encodeOp(op));
      this.ns.apply(op, this.ns.lastTxId + 1);
    }
    const durable = await out.flush();
    const now = performance.now();
    for (let t = durable - n + 1; t <= durable; t++) this.lag.acked(t, now);
    this.edits += n;
    if (durable - out.segmentTxId + 1 >= ROLL_EVERY_EDITS) {
      await this.qjm.finalizeLogSegment(out.segmentTxId, durable);
      this.out = await this.qjm.startLogSegment(durable + 1, -64);
      if (this.keepTxns !== null && durable > this.keepTxns) await this.qjm.purgeLogsOlderThan(durable + 1 - this.keepTxns);
    }
    return durable;
  }

  async close(): Promise<void> {
    await this.stopTailing();
    await this.qjm.close();
  }
}

export async function runDemo(o: DemoOptions): Promise<number> {
  const log = o.log ?? ((l: string) => console.log(l));
  const t0 = performance.now();
  const at = () => `${((performance.now() - t0) / 1000).toFixed(1).padStart(5)}s`;
  const say = (s: string) => log(`${at()}  ${s}`);
  const dataDir = path.resolve(o.dataDir ?? 'demo-data');
  const phase1S = o.phase1S ?? 6;
  const phase2S = o.phase2S ?? 8;
  const opsPerSecond = o.opsPerSecond ?? 2000;
  const rng = new Prng(20261125);
  const lag = new LagMeter();
  const lagsMs = lag.samplesMs;

  const stop = new StopSwitch();
  fs.rmSync(dataDir, { recursive: true, force: true });
  fs.mkdirSync(dataDir, { recursive: true });
  const cluster = await LocalCluster.create({ nodes: 3, electionTimeoutMs: 1000, root: dataDir, logLevel: 'info', ui: o.serve === true, ownProcessGroups: true });
  // The nodes run in process groups of their own (a Ctrl-C reaches the demo alone, which stops them in order):
  // should the demo itself die of a bug, they must not outlive it.
  const killLeftovers = () => {
    for (const n of cluster.nodes) n.proc?.kill('SIGKILL');
  };
  process.on('exit', killLeftovers);
  let nn1: Master | null = null;
  let nn2: Master | null = null;

  /** The active master writes until the load's time is up or the demo is stopped, reporting as it goes. */
  const writeFor = async (m: Master, load: Load, onReport?: (n: number) => Promise<void>) => {
    const end = load.seconds === undefined ? Infinity : performance.now() + load.seconds * 1000;
    let nextReport = performance.now() + load.reportEveryS * 1000;
    let reports = 0;
    let reported = lagsMs.length;
    const perBurst = Math.max(1, Math.round((load.opsPerSecond * load.burstEveryMs) / 1000));
    while (performance.now() < end && !stop.stopped) {
      const t = performance.now();
      await m.burst(perBurst, rng);
      if (performance.now() >= nextReport) {
        reports++;
        nextReport += load.reportEveryS * 1000;
        const standby = m === nn1 ? nn2 : nn1;
        const behind = m.ns.lastTxId - (standby?.ns.lastTxId ?? 0);
        const recent = lagsMs.slice(reported);
        reported = lagsMs.length;
        if (load.forgetLags) reported = lagsMs.length = 0;
        say(`${m.id} active: ${m.edits} edits, txid ${m.ns.lastTxId}  |  standby ${standby?.id}: txid ${standby?.ns.lastTxId} (${behind} behind)  |  tail lag p50 ${recent.length ? percentile(recent, 50).toFixed(1) : '-'} ms`);
        await onReport?.(reports);
      }
      const wait = load.burstEveryMs - (performance.now() - t);
      if (wait > 0) await stop.sleep(wait);
    }
  };
  const story: Load = { opsPerSecond, burstEveryMs: 10, reportEveryS: 1 };

  let verdict = 1;
  try {
    log('qjournal demo: a quorum journal behind an HA pair of NameNode-style masters\n');
    cluster.startAll();
    const jnLeader = await cluster.waitForLeader(30_000);
    say(`3 JournalNodes up on ${cluster.addresses.join(', ')} (data in ${path.relative(process.cwd(), dataDir) || '.'}); Raft leader ${jnLeader}`);
    say(`mutual TLS: a CA, node certificates and client certificates (admin, writer, reader) in ${path.relative(process.cwd(), cluster.certsDir!) || '.'}/; the masters use the writer's`);
    if (o.serve) say(`dashboard: ${dashboardUrls(cluster)}`);
    stop.check();
    const peers = cluster.addresses;
    const writerTls = cluster.tls('writer');

    nn1 = new Master('nn1', peers, lag, writerTls);
    nn2 = new Master('nn2', peers, lag, writerTls);
    await nn1.qjm.format(NS_INFO);
    say(`formatted journal ${JID} (namespace ${NS_INFO.namespaceId})`);
    const r1 = await nn1.becomeActive();
    say(`nn1 is ACTIVE: epoch ${r1.epoch}, writing from txid ${r1.lastTxId + 1}`);
    nn2.startTailing();
    say('nn2 is STANDBY: tailing the journal (long-poll, committed edits only)');
    stop.check();
    const refused = await tryRefusals(cluster, JID, NS_INFO, say);
    stop.check();

    await writeFor(nn1, { ...story, seconds: phase1S });
    stop.check();
    const beforeFailover = nn1.ns.lastTxId;
    const lagsBeforeFailover = lagsMs.length;
    say(`--- nn1 stops responding (think: a long GC pause; the failover controller declares it dead) ---`);
    const tFail = performance.now();
    const r2 = await nn2.becomeActive();
    await nn2.burst(1, rng);
    const failoverMs = performance.now() - tFail;
    say(`nn2 is ACTIVE: epoch ${r2.epoch} fenced nn1 (epoch ${nn1.epoch}); recovered the open segment up to txid ${r2.lastTxId}; first durable write after ${failoverMs.toFixed(0)} ms`);
    if (r2.lastTxId < beforeFailover) throw new Error(`recovery lost acknowledged edits: ${r2.lastTxId} < ${beforeFailover}`);

    // The old active wakes up and tries to go on: it must be refused.
    let fencedMessage = 'not tried';
    try {
      await nn1.burst(1, rng);
      fencedMessage = 'ACCEPTED (this must never happen)';
    } catch (e) {
      fencedMessage = e instanceof QjmError ? `${e.code}` : String(e);
      say(`nn1 wakes up and writes: refused with ${fencedMessage}; it shuts down, as a fenced NameNode does`);
    }
    await nn1.close();
    nn1 = new Master('nn1', peers, lag, writerTls);
    // The old active comes back as the standby.
    for await (const e of nn1.qjm.readEdits({ fromTxId: 1, inProgressOk: true })) nn1.ns.apply(decodeOp(e.record), e.txid);
    nn1.startTailing();
    say(`nn1 restarts as STANDBY: replayed ${nn1.ns.lastTxId} edits, now tailing`);
    stop.check();

    // A JournalNode failure under load: kill -9 the Raft leader, then bring it back.
    let jnKill = { node: '', stallMs: 0 };
    await writeFor(nn2, { ...story, seconds: phase2S }, async (second) => {
      if (second === 2) {
        const leader = await cluster.waitForLeader(10_000);
        const t = performance.now();
        const killed = cluster.kill(leader);
        say(`--- kill -9 of JournalNode ${leader} (the Raft leader) ---`);
        await nn2!.burst(1, rng);
        jnKill = { node: leader, stallMs: performance.now() - t };
        await killed;
        say(`writes acknowledged again after ${jnKill.stallMs.toFixed(0)} ms (new Raft leader ${await cluster.waitForLeader(10_000, [leader])})`);
      }
      if (second === 5) {
        cluster.start(jnKill.node);
        say(`JournalNode ${jnKill.node} restarted; it catches up from the leader`);
      }
    });
    // Stopped before the killed node came back: it comes back now, so that stopping drains all three.
    if (jnKill.node && !cluster.node(jnKill.node).proc) cluster.start(jnKill.node);
    stop.check();
    await nn2.qjm.finalizeLogSegment(nn2.out!.segmentTxId, nn2.ns.lastTxId);
    const finalTxId = nn2.ns.lastTxId;
    const oldActive = nn1;
    await waitFor(() => oldActive.ns.lastTxId >= finalTxId, { timeoutMs: 10_000, what: 'the old active to replay every edit' }).catch(() => {});
    await nn1.stopTailing();
    const same = nn1.ns.digest() === nn2.ns.digest() && nn1.ns.lastTxId === finalTxId;
    const manifest = await nn2.qjm.getEditLogManifest(1);
    const status = await Promise.all(cluster.nodes.map((n) => cluster.status(n.id)));

    log('');
    log(
      renderTable(
        ['', 'summary'],
        [
          ['edits journaled', `${finalTxId} (nn1 ${beforeFailover} before the failover, nn2 ${finalTxId - beforeFailover} after)`],
          ['segments', `${manifest.segments.length} finalized, ${manifest.segments.map((s) => `${s.firstTxId}-${s.lastTxId}`).slice(-3).join(', ')}${manifest.segments.length > 3 ? ', ...' : ''}`],
          ['NameNode failover', `${failoverMs.toFixed(0)} ms (fence + recover the open segment + catch up + first durable write)`],
          ['old active after it', `next write refused: ${fencedMessage}`],
          ['standby tail lag', `journal ack -> applied: nn2 ${lagSummary(lagsMs.slice(0, lagsBeforeFailover))}; nn1 ${lagSummary(lagsMs.slice(lagsBeforeFailover))}`],
          ['JournalNode leader kill', `writes stalled ${jnKill.stallMs.toFixed(0)} ms (electionTimeoutMs 1000)`],
          ['security', `mutual TLS, roles enforced: no certificate -> ${refused.anonymous}; reader taking over -> ${refused.wrongRole}`],
          ['JournalNodes', status.map((s, i) => `${cluster.nodes[i]!.id} ${s ? `${s.state} term ${s.term} applied ${s.appliedIndex}` : 'down'}`).join('; ')],
          ['namespaces', same ? `IDENTICAL on active and standby (digest ${nn2.ns.digest()}, ${nn2.ns.dirs.size} dirs, ${nn2.ns.files.size} files)` : `DIFFER: active ${nn2.ns.digest()} at ${finalTxId}, standby ${nn1.ns.digest()} at ${nn1.ns.lastTxId}`],
        ],
      ),
    );
    log(`\nthe journal stays in ${path.relative(process.cwd(), dataDir) || '.'}/ — read a segment offline with:\n  node bin/qjm.js dump ${path.relative(process.cwd(), path.join(dataDir, 'n1', 'journals', JID, 'edits_' + String(1).padStart(19, '0') + '-' + String(manifest.segments[0]?.lastTxId ?? 1).padStart(19, '0')))} | head`);
    verdict = same && fencedMessage === 'QJM_ERR_FENCED' && refused.ok ? 0 : 1;

    if (o.serve) {
      log('');
      // nn2 goes on writing in a new segment, nn1 tails it again; the namespace and the journal stay bounded.
      nn2.nsLimits = SERVE_NAMESPACE_LIMITS;
      nn2.keepTxns = SERVE_KEEP_TXNS;
      nn2.out = await nn2.qjm.startLogSegment(finalTxId + 1, -64);
      nn1.startTailing();
      say(`serving: nn2 ACTIVE writing ${SERVE_OPS_PER_SECOND} edits/s, nn1 STANDBY tailing; a line every ${SERVE_REPORT_EVERY_S} s`);
      say(`dashboard: ${dashboardUrls(cluster)}`);
      say('Ctrl-C (or SIGTERM) stops everything');
      await writeFor(nn2, { opsPerSecond: SERVE_OPS_PER_SECOND, burstEveryMs: 100, reportEveryS: SERVE_REPORT_EVERY_S, forgetLags: true });
      say(`--- ${stop.signal}: stopping: the masters close, then each JournalNode drains and exits ---`);
    }
    return verdict;
  } catch (e) {
    if (!(e instanceof Stopped)) throw e;
    say(`--- ${e.signal}: the demo stops before its end ---`);
    // --serve ends this way by design; without it, an interrupted demo has no verdict.
    return o.serve ? 0 : 130;
  } finally {
    stop.dispose();
    await nn1?.close().catch(() => {});
    await nn2?.close().catch(() => {});
    await cluster.stopAll().catch(() => {});
    await cluster.destroy(true);
    process.off('exit', killLeftovers);
    say('all JournalNodes stopped; nothing left running');
  }
}

/** Where to watch: every node's dashboard port shows the whole cluster; the first is the one to open. */
function dashboardUrls(cluster: LocalCluster): string {
  const [first, ...rest] = cluster.nodes.map((n) => `http://${n.uiAddress}/`);
  return `${first}  (every node's page shows the whole cluster; also ${rest.join(', ')})`;
}
