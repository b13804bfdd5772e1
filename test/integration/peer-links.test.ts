// Peer links across a partition, on real processes with mutual TLS, each node behind a proxy that can cut its
// inbound traffic the way a partition does (src/bench/blackhole-proxy.ts): a link the leader dialed into the
// partition is found dead by its unanswered pings and redialed once the partition heals, long before any
// idle timeout (set to a minute here, so only the pings can bring the link back in time).

import { expect } from 'chai';
import { LocalCluster } from '../../src/local-cluster.js';
import { BlackholeProxy } from '../../src/bench/blackhole-proxy.js';
import { waitFor } from '../support/async.js';
import { destroyCluster, startWriting } from '../support/cluster-writer.js';

const ns = { namespaceId: 21, clusterId: 'CID-links', blockPoolId: 'BP-links' };

describe('peer links across a partition', function () {
  this.timeout(120_000);
  let c: LocalCluster | undefined;
  const proxies = new Map<string, BlackholeProxy>();
  const destroy = destroyCluster(() => c);
  afterEach(async function () {
    await destroy.call(this);
    await Promise.all([...proxies.values()].map((p) => p.close()));
    proxies.clear();
  });

  it("a follower's inbound cut for 1.5 s: the link the leader dialed into the partition is redialed after it heals", async () => {
    c = await LocalCluster.create({
      nodes: 3,
      electionTimeoutMs: 1000,
      extraArgs: ['--peerRequestTimeoutMs', '60000'],
    });
    for (const n of c.nodes) {
      const p = await BlackholeProxy.start(n.listenAddress);
      proxies.set(n.id, p);
      c.frontWith(n.id, p.address);
    }
    c.startAll();
    const w = await startWriting(c, ns, { writeTimeoutMs: 30_000 });
    const leader = await c.waitForLeader();
    const follower = c.nodes.find((n) => n.id !== leader)!.id;
    const proxy = proxies.get(follower)!;

    proxy.cut();
    // The leader's stream to the follower was reset; it redials, into the partition.
    await waitFor(() => proxy.swallowedConnections > 0, { what: 'a connection dialed into the partition' });
    await new Promise((r) => setTimeout(r, 1500));
    w.out.write(new TextEncoder().encode('during the cut'));
    await w.out.flush(); // the leader and the other follower are a quorum
    proxy.heal();
    const healedAt = Date.now();
    w.out.write(new TextEncoder().encode('after the cut'));
    await w.out.flush();
    const leaderStatus = (await c.status(leader))!;
    await waitFor(
      async () => {
        const s = await c!.status(follower);
        return s !== null && s.leader === leader && s.appliedIndex >= leaderStatus.commitIndex;
      },
      { timeoutMs: 15_000, intervalMs: 20, what: `${follower} to hear the leader again and apply what it missed` },
    );
    console.log(`      ${follower} heard the leader again ${Date.now() - healedAt} ms after the partition healed`);
    const link = (await c.status(leader))!.transport.find((l) => l.id === follower)!;
    expect(link.deadLinks, 'the swallowed link was found dead by its pings').to.be.at.least(1);
    await w.q.close();
  });
});
