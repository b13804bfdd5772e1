// The main job (`npm start`, `qjm demo`): three JournalNodes on loopback with mutual TLS (a CA and
// certificates under demo-data/certs/), a NameNode-style active master journaling every namespace change,
// a standby tailing the journal, an anonymous, a wrong-role and a wrong-journal client refused, a failover in which the
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
import type { Refusals } from './refusals.js';
import { Stopped, StopSwitch } from './stop-switch.js';
import type { TlsOption } from '../../libqjm/index.js';
import { waitFor } from '../wait-for.js';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from '../file-modes.js';

const JID = 'ns1';
const NS_INFO = { namespaceId: 20261125, clusterId: 'CID-demo', blockPoolId: 'BP-demo' };
const ROLL_EVERY_EDITS = 1000;

/** --serve's steady load: enough for the dashboard's charts to move, little enough to leave the machine be. */
const SERVE_OPS_PER_SECOND = 100;
const SERVE_REPORT_EVERY_S = 10;
/** --serve purges the finalized segments more than this many txids behind, as a master does after a checkpoint. */
const SERVE_KEEP_TXNS = 5_000;
/**
 * The retention floor the demo's JournalNodes keep (minTxnsRetained; 1,000,000 by default, which --serve's
 * 100 edits/s would reach only after hours, so its purges would delete nothing): below what the master keeps,
 * so the master's purges go through, and the floor still shows in what is left.
 */
export const DEMO_MIN_TXNS_RETAINED = 2_000;
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
  /** Say in each report where the journal now starts (what purges left). */
  showRetained?: boolean;
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
    this.qjm = new QuorumJournalManager({
      journalId: JID,
      peers,
      writerId: id,
      nsInfo: NS_INFO,
      writeTimeoutMs: 20_000,
      tls,
    });
  }

  /** Standby: apply every committed edit as it arrives. */
  startTailing(): void {
    this.tailAbort = new AbortController();
    const signal = this.tailAbort.signal;
    this.tailDone = (async () => {
      try {
        for await (const e of this.qjm.readEdits({
          fromTxId: this.ns.lastTxId + 1,
          inProgressOk: true,
          follow: true,
          signal,
          waitMs: 500,
        })) {
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
      await this.purgeOld();
    }
    return durable;
  }

  /** With keepTxns set: the finalized segments more than keepTxns behind go (the nodes' floor permitting). */
  async purgeOld(): Promise<void> {
    const last = this.ns.lastTxId;
    if (this.keepTxns !== null && last > this.keepTxns) await this.qjm.purgeLogsOlderThan(last + 1 - this.keepTxns);
  }

  async close(): Promise<void> {
    await this.stopTailing();
    await this.qjm.close();
  }
}

/** Marks a directory as the demo's own: the demo wipes it at start, and wipes nothing else. */
const DEMO_MARKER = '.qjournal-demo';

/** Null when the demo may wipe and use dir; otherwise why not. */
export function demoDirRefusal(dir: string): string | null {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    return `--data-dir ${dir}: ${(e as Error).message}`;
  }
  if (names.length === 0 || names.includes(DEMO_MARKER)) return null;
  // A demo-data directory written before the marker existed: the demo's own layout.
  if (names.includes('certs') && names.includes('n1')) return null;
  return `--data-dir ${dir} holds files the demo did not write, and the demo wipes its directory at start: give an empty or new directory`;
}

export async function runDemo(options: DemoOptions): Promise<number> {
  const dataDir = path.resolve(options.dataDir ?? 'demo-data');
  const refusal = demoDirRefusal(dataDir);
  if (refusal) {
    console.error(`qjm demo: ${refusal}`);
    return 2;
  }
  fs.rmSync(dataDir, { recursive: true, force: true });
  fs.mkdirSync(dataDir, { recursive: true, mode: PRIVATE_DIR_MODE });
  fs.writeFileSync(
    path.join(dataDir, DEMO_MARKER),
    'written by the qjournal demo, which wipes this directory at start\n',
    { mode: PRIVATE_FILE_MODE },
  );
  const cluster = await LocalCluster.create({
    nodes: 3,
    electionTimeoutMs: 1000,
    root: dataDir,
    logLevel: 'info',
    extraArgs: ['--minTxnsRetained', String(DEMO_MIN_TXNS_RETAINED)],
    ui: options.serve === true,
    ownProcessGroups: true,
    journals: [JID],
  });
  return new Demo(options, dataDir, cluster).run();
}

/** What the failover showed, for the summary. */
interface Failover {
  /** The last txid nn1 had acknowledged before it "stopped responding". */
  beforeTxId: number;
  /** Tail-lag samples taken before the failover (nn2 tailing); later ones are nn1's. */
  lagSamplesBefore: number;
  ms: number;
  /** What the old active's next write was answered. */
  fencedWith: string;
}

/** The story, one phase per method: start, failover, a JournalNode killed under load, the summary, --serve. */
class Demo {
  private readonly log: (line: string) => void;
  private readonly t0 = performance.now();
  private readonly rng = new Prng(20261125);
  private readonly lag = new LagMeter();
  private readonly stop = new StopSwitch();
  private readonly story: Load;
  private nn1: Master | null = null;
  private nn2: Master | null = null;

  constructor(
    private readonly options: DemoOptions,
    private readonly dataDir: string,
    private readonly cluster: LocalCluster,
  ) {
    this.log = options.log ?? ((l: string) => console.log(l));
    this.story = { opsPerSecond: options.opsPerSecond ?? 2000, burstEveryMs: 10, reportEveryS: 1 };
  }

  private say(s: string): void {
    this.log(`${`${((performance.now() - this.t0) / 1000).toFixed(1)}s`.padStart(6)}  ${s}`);
  }

  async run(): Promise<number> {
    const { cluster, options } = this;
    // The nodes run in process groups of their own (a Ctrl-C reaches the demo alone, which stops them in
    // order): should the demo itself die of a bug, they must not outlive it.
    const killLeftovers = () => {
      for (const n of cluster.nodes) n.proc?.kill('SIGKILL');
    };
    process.on('exit', killLeftovers);
    try {
      const refused = await this.open();
      await this.writeFor(this.nn1!, { ...this.story, seconds: options.phase1S ?? 6 });
      this.stop.check();
      const failover = await this.failover();
      const jnKill = await this.killJournalNodeUnderLoad();
      const verdict = await this.summarize(refused, failover, jnKill);
      if (options.serve) await this.serve();
      return verdict;
    } catch (e) {
      if (!(e instanceof Stopped)) throw e;
      this.say(`--- ${e.signal}: the demo stops before its end ---`);
      // --serve ends this way by design; without it, an interrupted demo has no verdict.
      return options.serve ? 0 : 130;
    } finally {
      await this.nn1?.close().catch(() => {});
      await this.nn2?.close().catch(() => {});
      // Each node drains (hands leadership on, finishes in-flight writes) before it exits; a node that does not
      // within 30 s is killed, and the demo says so rather than claim a clean stop.
      const killed = await cluster.stopAll(30_000).catch((e: Error) => [e.message]);
      await cluster.destroy(true);
      process.off('exit', killLeftovers);
      for (const k of killed) this.say(k);
      this.say(
        killed.length === 0
          ? 'all JournalNodes stopped; nothing left running'
          : 'all JournalNodes stopped (some killed, above); nothing left running',
      );
      // Only now: a signal that arrives while the nodes stop (npm forwards the terminal's Ctrl-C a moment
      // after the terminal sent it) must find the switch's handler, not node's default, which would kill the
      // demo on the spot and leave the JournalNodes running.
      this.stop.dispose();
    }
  }

  /** The cluster up, the journal formatted, nn1 active, nn2 tailing, and the three refused requests. */
  private async open(): Promise<Refusals> {
    const { cluster } = this;
    this.log('qjournal demo: a quorum journal behind an HA pair of NameNode-style masters\n');
    cluster.startAll();
    const jnLeader = await cluster.waitForLeader(30_000);
    this.say(
      `3 JournalNodes up on ${cluster.addresses.join(', ')} (data in ${path.relative(process.cwd(), this.dataDir) || '.'}); Raft leader ${jnLeader}`,
    );
    this.say(
      `mutual TLS: a CA, node certificates and client certificates (admin; writer and reader for journal ${JID} only) in ${path.relative(process.cwd(), cluster.certsDir!) || '.'}/; the masters use the writer's`,
    );
    if (this.options.serve) this.say(`dashboard: ${dashboardUrls(cluster)}`);
    this.stop.check();
    this.nn1 = this.master('nn1');
    this.nn2 = this.master('nn2');
    await this.nn1.qjm.format(NS_INFO);
    this.say(`formatted journal ${JID} (namespace ${NS_INFO.namespaceId})`);
    const r1 = await this.nn1.becomeActive();
    this.say(`nn1 is ACTIVE: epoch ${r1.epoch}, writing from txid ${r1.lastTxId + 1}`);
    this.nn2.startTailing();
    this.say('nn2 is STANDBY: tailing the journal (long-poll, committed edits only)');
    this.stop.check();
    const refused = await tryRefusals(cluster, JID, NS_INFO, (l) => this.say(l));
    this.stop.check();
    return refused;
  }

  private master(id: string): Master {
    return new Master(id, this.cluster.clientPeers, this.lag, this.cluster.tls('writer'));
  }

  /** nn2 fences nn1 and takes over; nn1's next write is refused; nn1 comes back as the standby. */
  private async failover(): Promise<Failover> {
    const nn2 = this.nn2!;
    let nn1 = this.nn1!;
    const beforeTxId = nn1.ns.lastTxId;
    const lagSamplesBefore = this.lag.samplesMs.length;
    this.say(`--- nn1 stops responding (think: a long GC pause; the failover controller declares it dead) ---`);
    const tFail = performance.now();
    const r2 = await nn2.becomeActive();
    await nn2.burst(1, this.rng);
    const ms = performance.now() - tFail;
    this.say(
      `nn2 is ACTIVE: epoch ${r2.epoch} fenced nn1 (epoch ${nn1.epoch}); recovered the open segment up to txid ${r2.lastTxId}; first durable write after ${ms.toFixed(0)} ms`,
    );
    if (r2.lastTxId < beforeTxId) throw new Error(`recovery lost acknowledged edits: ${r2.lastTxId} < ${beforeTxId}`);

    // The old active wakes up and tries to go on: it must be refused.
    let fencedWith = 'not tried';
    try {
      await nn1.burst(1, this.rng);
      fencedWith = 'ACCEPTED (this must never happen)';
    } catch (e) {
      fencedWith = e instanceof QjmError ? `${e.code}` : String(e);
      this.say(`nn1 wakes up and writes: refused with ${fencedWith}; it shuts down, as a fenced NameNode does`);
    }
    await nn1.close();
    nn1 = this.nn1 = this.master('nn1');
    // The old active comes back as the standby.
    for await (const e of nn1.qjm.readEdits({ fromTxId: 1, inProgressOk: true }))
      nn1.ns.apply(decodeOp(e.record), e.txid);
    nn1.startTailing();
    this.say(`nn1 restarts as STANDBY: replayed ${nn1.ns.lastTxId} edits, now tailing`);
    this.stop.check();
    return { beforeTxId, lagSamplesBefore, ms, fencedWith };
  }

  /** A JournalNode failure under load: kill -9 the Raft leader, then bring it back. */
  private async killJournalNodeUnderLoad(): Promise<{ node: string; stallMs: number }> {
    const { cluster } = this;
    const nn2 = this.nn2!;
    const jnKill = { node: '', stallMs: 0 };
    await this.writeFor(nn2, { ...this.story, seconds: this.options.phase2S ?? 8 }, async (second) => {
      if (second === 2) {
        const leader = await cluster.waitForLeader(10_000);
        const t = performance.now();
        const killed = cluster.kill(leader);
        this.say(`--- kill -9 of JournalNode ${leader} (the Raft leader) ---`);
        await nn2.burst(1, this.rng);
        jnKill.node = leader;
        jnKill.stallMs = performance.now() - t;
        await killed;
        this.say(
          `writes acknowledged again after ${jnKill.stallMs.toFixed(0)} ms (new Raft leader ${await cluster.waitForLeader(10_000, [leader])})`,
        );
      }
      if (second === 5) {
        cluster.start(jnKill.node);
        this.say(`JournalNode ${jnKill.node} restarted; it catches up from the leader`);
      }
    });
    // Stopped before the killed node came back: it comes back now, so that stopping drains all three.
    if (jnKill.node && !cluster.node(jnKill.node).proc) cluster.start(jnKill.node);
    this.stop.check();
    return jnKill;
  }

  /** The segment finalized, the standby caught up and compared, the summary table; 0 when every check held. */
  private async summarize(
    refused: Refusals,
    failover: Failover,
    jnKill: { node: string; stallMs: number },
  ): Promise<number> {
    const { cluster, log } = this;
    const nn1 = this.nn1!;
    const nn2 = this.nn2!;
    const lagsMs = this.lag.samplesMs;
    // The open segment may hold nothing yet (the active had just rolled to a new one): then there is nothing to
    // finalize, and the segment before it is finalized already.
    if (nn2.out!.segmentTxId <= nn2.ns.lastTxId)
      await nn2.qjm.finalizeLogSegment(nn2.out!.segmentTxId, nn2.ns.lastTxId);
    const finalTxId = nn2.ns.lastTxId;
    await waitFor(() => nn1.ns.lastTxId >= finalTxId, {
      timeoutMs: 10_000,
      what: 'the old active to replay every edit',
    }).catch(() => {});
    await nn1.stopTailing();
    const same = nn1.ns.digest() === nn2.ns.digest() && nn1.ns.lastTxId === finalTxId;
    const manifest = await nn2.qjm.getEditLogManifest(1);
    const status = await Promise.all(cluster.nodes.map((n) => cluster.status(n.id)));
    log('');
    log(
      renderTable(
        ['', 'summary'],
        [
          [
            'edits journaled',
            `${finalTxId} (nn1 ${failover.beforeTxId} before the failover, nn2 ${finalTxId - failover.beforeTxId} after)`,
          ],
          [
            'segments',
            `${manifest.segments.length} finalized, ${manifest.segments
              .map((s) => `${s.firstTxId}-${s.lastTxId}`)
              .slice(-3)
              .join(', ')}${manifest.segments.length > 3 ? ', ...' : ''}`,
          ],
          [
            'NameNode failover',
            `${failover.ms.toFixed(0)} ms (fence + recover the open segment + catch up + first durable write)`,
          ],
          ['old active after it', `next write refused: ${failover.fencedWith}`],
          [
            'standby tail lag',
            `journal ack -> applied: nn2 ${lagSummary(lagsMs.slice(0, failover.lagSamplesBefore))}; nn1 ${lagSummary(lagsMs.slice(failover.lagSamplesBefore))}`,
          ],
          ['JournalNode leader kill', `writes stalled ${jnKill.stallMs.toFixed(0)} ms (electionTimeoutMs 1000)`],
          [
            'security',
            `mutual TLS, roles and journals enforced: no certificate -> ${refused.anonymous}; reader taking over -> ${refused.wrongRole}; another journal's writer taking over -> ${refused.wrongJournal}`,
          ],
          [
            'JournalNodes',
            status
              .map(
                (s, i) =>
                  `${cluster.nodes[i]!.id} ${s ? `${s.state} term ${s.term} applied ${s.appliedIndex}` : 'down'}`,
              )
              .join('; '),
          ],
          [
            'namespaces',
            same
              ? `IDENTICAL on active and standby (digest ${nn2.ns.digest()}, ${nn2.ns.dirs.size} dirs, ${nn2.ns.files.size} files)`
              : `DIFFER: active ${nn2.ns.digest()} at ${finalTxId}, standby ${nn1.ns.digest()} at ${nn1.ns.lastTxId}`,
          ],
        ],
      ),
    );
    log(
      `\nthe journal stays in ${path.relative(process.cwd(), this.dataDir) || '.'}/ — read a segment offline with:\n  node bin/qjm.js dump ${path.relative(process.cwd(), path.join(this.dataDir, 'n1', 'journals', JID, `edits_${String(1).padStart(19, '0')}-${String(manifest.segments[0]?.lastTxId ?? 1).padStart(19, '0')}`))} | head`,
    );
    return same && failover.fencedWith === 'QJM_ERR_FENCED' && refused.ok ? 0 : 1;
  }

  /** --serve: nn2 goes on writing in a new segment, nn1 tails it again; the namespace and the journal stay bounded. */
  private async serve(): Promise<void> {
    const nn1 = this.nn1!;
    const nn2 = this.nn2!;
    this.log('');
    nn2.nsLimits = SERVE_NAMESPACE_LIMITS;
    nn2.keepTxns = SERVE_KEEP_TXNS;
    nn2.out = await nn2.qjm.startLogSegment(nn2.ns.lastTxId + 1, -64);
    await nn2.purgeOld();
    nn1.startTailing();
    this.say(
      `serving: nn2 ACTIVE writing ${SERVE_OPS_PER_SECOND} edits/s, nn1 STANDBY tailing; a line every ${SERVE_REPORT_EVERY_S} s`,
    );
    this.say(
      `old segments: nn2 purges those more than ${SERVE_KEEP_TXNS} txids behind, as a master does after a checkpoint; the JournalNodes keep at least the last ${DEMO_MIN_TXNS_RETAINED} (minTxnsRetained, set low for the demo: by default 1,000,000, which this rate would reach only after hours)`,
    );
    this.say(`dashboard: ${dashboardUrls(this.cluster)}`);
    this.say('Ctrl-C (or SIGTERM) stops everything');
    await this.writeFor(nn2, {
      opsPerSecond: SERVE_OPS_PER_SECOND,
      burstEveryMs: 100,
      reportEveryS: SERVE_REPORT_EVERY_S,
      forgetLags: true,
      showRetained: true,
    });
    this.say(`--- ${this.stop.signal}: stopping: the masters close, then each JournalNode drains and exits ---`);
  }

  /** The active master writes until the load's time is up or the demo is stopped, reporting as it goes. */
  private async writeFor(m: Master, load: Load, onReport?: (n: number) => Promise<void>): Promise<void> {
    const lagsMs = this.lag.samplesMs;
    const end = load.seconds === undefined ? Infinity : performance.now() + load.seconds * 1000;
    let nextReport = performance.now() + load.reportEveryS * 1000;
    let reports = 0;
    let reported = lagsMs.length;
    const perBurst = Math.max(1, Math.round((load.opsPerSecond * load.burstEveryMs) / 1000));
    while (performance.now() < end && !this.stop.stopped) {
      const t = performance.now();
      await m.burst(perBurst, this.rng);
      if (performance.now() >= nextReport) {
        reports++;
        nextReport += load.reportEveryS * 1000;
        const standby = m === this.nn1 ? this.nn2 : this.nn1;
        const behind = m.ns.lastTxId - (standby?.ns.lastTxId ?? 0);
        const recent = lagsMs.slice(reported);
        reported = lagsMs.length;
        if (load.forgetLags) reported = lagsMs.length = 0;
        const retained = load.showRetained
          ? `  |  journal from txid ${(await m.qjm.getEditLogManifest(1)).segments[0]?.firstTxId ?? '-'}`
          : '';
        this.say(
          `${m.id} active: ${m.edits} edits, txid ${m.ns.lastTxId}  |  standby ${standby?.id}: txid ${standby?.ns.lastTxId} (${behind} behind)  |  tail lag p50 ${recent.length ? percentile(recent, 50).toFixed(1) : '-'} ms${retained}`,
        );
        await onReport?.(reports);
      }
      const wait = load.burstEveryMs - (performance.now() - t);
      if (wait > 0) await this.stop.sleep(wait);
    }
  }
}

/** Where to watch: every node's dashboard port shows the whole cluster; the first is the one to open. */
function dashboardUrls(cluster: LocalCluster): string {
  const [first, ...rest] = cluster.nodes.map((n) => `http://${n.uiAddress}/`);
  return `${first}  (every node's page shows the whole cluster; also ${rest.join(', ')})`;
}
