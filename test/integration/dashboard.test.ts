// The dashboard in a real browser: Debian's headless Chromium, driven by playwright-core, opens the read-only
// port of one node of a real 3-node cluster, shows what /status says (leader, terms, the journal's last
// txid), and after kill -9 of the leader shows the new leader within a few seconds. A screenshot is saved
// (DASHBOARD_SCREENSHOT=docs/dashboard.png refreshes the README's).

import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { chromium } from 'playwright-core';
import type { BrowserContext, Page } from 'playwright-core';
import { request } from 'undici';
import { QuorumJournalManager } from '../../libqjm/index.js';
import { LocalCluster } from '../../src/local-cluster.js';
import type { NodeStatusJson } from '../../src/node-status.js';
import { waitFor } from '../support/async.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
// What works in a container without a GPU, a sandbox or the network (the Chromium of Debian's packages).
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const ns = { namespaceId: 77, clusterId: 'CID-ui', blockPoolId: 'BP-ui' };
const JID = 'ns1';

// The page's DOM as far as this test reads it, in page.evaluate (the project compiles without the DOM library).
interface PageElement {
  textContent: string | null;
  getAttribute(name: string): string | null;
  querySelector(selector: string): PageElement | null;
}
declare const document: {
  querySelector(selector: string): PageElement | null;
  querySelectorAll(selector: string): Iterable<PageElement>;
};

describe('dashboard in a real browser', function () {
  this.timeout(120_000);
  let c: LocalCluster;
  let browser: BrowserContext;
  let userDataDir: string;
  let page: Page;
  /** Errors the page's scripts threw: a broken chart scale or event row shows here first. */
  const pageErrors: string[] = [];
  const writers: QuorumJournalManager[] = [];

  before(async () => {
    if (!fs.existsSync(CHROMIUM)) {
      throw new Error(
        `${CHROMIUM} is missing: the dashboard test needs Debian's Chromium. Install it with: apt-get update && apt-get install -y chromium (.ci/run does), or set CHROMIUM_PATH`,
      );
    }
    c = await LocalCluster.create({ nodes: 3, electionTimeoutMs: 400, ui: true });
    c.startAll();
    await c.waitForLeader();
    userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-chromium-'));
    browser = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: CHROMIUM_FLAGS,
      viewport: { width: 1400, height: 1000 },
    });
    page = await browser.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
  });

  after(async function () {
    await Promise.all(writers.map((w) => w.close()));
    await browser?.close();
    if (userDataDir) fs.rmSync(userDataDir, { recursive: true, force: true });
    const failed = this.test?.parent?.tests.some((t) => t.state === 'failed') ?? false;
    await c?.destroy(failed);
    if (failed) console.log(`    cluster logs kept in ${c.root}`);
  });

  function writer(id: string): QuorumJournalManager {
    const q = new QuorumJournalManager({
      journalId: JID,
      peers: c.addresses,
      writerId: id,
      nsInfo: ns,
      requestTimeoutMs: 2000,
      writeTimeoutMs: 20_000,
      tls: c.tls('writer'),
    });
    writers.push(q);
    return q;
  }

  async function statuses(): Promise<NodeStatusJson[]> {
    return (await Promise.all(c.nodes.filter((n) => n.proc).map((n) => c.status(n.id)))).filter(
      (s): s is NodeStatusJson => s !== null,
    );
  }

  /** What the page shows, read from its cells. */
  async function shown(): Promise<{
    leader: string;
    terms: Record<string, string>;
    health: Record<string, string>;
    lastTxId: string | null;
  }> {
    return page.evaluate((jid) => {
      const text = (sel: string) => document.querySelector(sel)?.textContent ?? null;
      const terms: Record<string, string> = {};
      const health: Record<string, string> = {};
      for (const tr of document.querySelectorAll('#nodes tbody tr')) {
        const id = tr.getAttribute('data-node')!;
        terms[id] = tr.querySelector('[data-field=term]')!.textContent!;
        health[id] = tr.querySelector('[data-field=health]')!.textContent!;
      }
      return {
        leader: text('#leader') ?? '',
        terms,
        health,
        lastTxId: text(`#journals tr[data-jid="${jid}"] [data-field=lastTxId]`),
      };
    }, JID);
  }

  it('shows what /status says, and the new leader within seconds of kill -9 of the old one', async () => {
    // A first writer, then a second that fences it: a finalized segment, an open one, a fenced-writer event.
    const w1 = writer('nn1');
    await w1.format(ns);
    await w1.recoverUnfinalizedSegments();
    let out = await w1.startLogSegment(1, -64);
    for (let t = 1; t <= 200; t++) out.write(new TextEncoder().encode(`mkdir /a/${t}`));
    expect(await out.flush()).to.equal(200);
    const w2 = writer('nn2');
    const { lastTxId } = await w2.recoverUnfinalizedSegments();
    out = await w2.startLogSegment(lastTxId + 1, -64);
    for (let t = lastTxId + 1; t <= lastTxId + 50; t++) out.write(new TextEncoder().encode(`mkdir /b/${t}`));
    const written = await out.flush();

    const leader = await c.waitForLeader();
    await c.waitForApplied((await c.status(leader))!.commitIndex);
    const viewer = c.nodes.find((n) => n.id !== leader)!;
    await page.goto(`http://${viewer.uiAddress}/`);

    // The page agrees with every node's /status (nothing changes meanwhile: no writes, no elections).
    const sts = await statuses();
    await waitFor(
      async () => {
        const s = await shown();
        return (
          s.leader === leader && s.lastTxId === String(written) && sts.every((st) => s.terms[st.id] === String(st.term))
        );
      },
      { timeoutMs: 10_000, what: `the page shows leader ${leader}, the terms of /status and last txid ${written}` },
    );
    const s = await shown();
    expect(sts.map((st) => st.journals[JID]!.lastTxId)).to.deep.equal([written, written, written]);
    expect(Object.keys(s.terms).sort()).to.deep.equal(['n1', 'n2', 'n3']);
    expect(await page.locator('#events tr[data-kind=fenced]').count()).to.equal(1);
    expect(await page.textContent('#events tr[data-kind=fenced] [data-field=message]')).to.contain(
      'writer nn2 (epoch 2) fenced nn1 (epoch 1)',
    );

    // Steady writes through the failover, for the charts.
    let writing = true;
    let next = written + 1;
    const load = (async () => {
      while (writing) {
        for (let i = 0; i < 20; i++) out.write(new TextEncoder().encode(`mkdir /c/${next++}`));
        await out.flush();
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    load.catch(() => {}); // awaited below; a failure before then must not surface as an unhandled rejection
    await waitFor(async () => Number((await shown()).lastTxId) > written, {
      timeoutMs: 10_000,
      what: 'the page follows new writes',
    });

    const killedAt = Date.now();
    await c.kill(leader);
    const newLeader = await c.waitForLeader(15_000, [leader]);
    await waitFor(async () => (await shown()).leader === newLeader, {
      timeoutMs: 5_000,
      what: `the page shows the new leader ${newLeader}`,
    });
    const shownAfterMs = Date.now() - killedAt;
    const after = await shown();
    expect(after.health[leader]).to.match(/^unreachable/);
    expect(after.terms[newLeader]).to.equal(String((await c.status(newLeader))!.term));
    const leaderEvents = page.locator('#events tr[data-kind=leader]');
    expect(await leaderEvents.filter({ hasText: `${newLeader} became leader` }).count()).to.equal(1);
    // What the dead leader reported before it died stays on the page.
    expect(await leaderEvents.filter({ hasText: `${leader} became leader` }).count()).to.equal(1);
    expect(await page.textContent('#banner')).to.contain(`${leader} (`);
    // The dead node cannot report its own death: the page lists it among the events all the same.
    await waitFor(
      async () =>
        (await page
          .locator('#events tr[data-kind=unreachable]')
          .filter({ hasText: `${leader} stopped answering` })
          .count()) === 1,
      { timeoutMs: 5_000, what: `an event saying ${leader} stopped answering` },
    );

    // A few seconds of load on the new leader, so the charts have something to show; then the screenshot.
    await waitFor(async () => Number((await shown()).lastTxId) > next - 100 && Date.now() - killedAt > 6000, {
      timeoutMs: 20_000,
      what: 'writes continue under the new leader',
    });
    const shot = process.env.DASHBOARD_SCREENSHOT ?? path.join(os.tmpdir(), 'qjournal-dashboard.png');
    await page.screenshot({ path: shot, fullPage: true });
    writing = false;
    await load;
    console.log(`    new leader shown ${shownAfterMs} ms after kill -9; screenshot ${shot}`);
    expect(pageErrors, 'errors thrown by the page').to.deep.equal([]);
  });

  it('the dashboard port is read-only: no POST, no journal data, no admin call', async () => {
    const ui = c.nodes.find((n) => n.proc)!.uiAddress!;
    const post = await request(`http://${ui}/admin/transferLeader`, { method: 'POST', body: '' });
    expect(post.statusCode).to.equal(405);
    expect(((await post.body.json()) as { message: string }).message).to.match(/read-only/);
    for (const url of ['/qjm/getEdits', '/flags', '/raft_stat', '/raft/snapshot/manifest']) {
      const r = await request(`http://${ui}${url}`);
      await r.body.dump();
      expect(r.statusCode, url).to.equal(404);
    }
    const st = await request(`http://${ui}/status`);
    expect(st.statusCode).to.equal(200);
    await st.body.dump();
  });
});
