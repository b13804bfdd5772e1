// The identity rules (src/replica/identity.ts) on real Replicas over in-memory disks: which batches reach the
// core, which notices make a node stand down, and three stories end to end — a disk replaced under a member's
// id, nodes reset away coming back, a disk restored from an older copy — each beside its control (the same
// story without the rule, where the harm happens).

import { expect } from 'chai';
import { MemoryStorage } from '../../../src/raft/memory-storage.js';
import { emptyConf, makeMessage, MessageType } from '../../../src/raft/types.js';
import type { Message } from '../../../src/raft/types.js';
import type { IdentityNotice } from '../../../src/replica/identity.js';
import { ReplicaNet } from '../../support/replica-net.js';

/** A three-node network with a leader (n1) and `entries` commands committed everywhere. */
function cluster(entries = 5, seed = 1): ReplicaNet {
  const net = new ReplicaNet(['n1', 'n2', 'n3'], seed);
  for (const id of ['n1', 'n2', 'n3']) net.start(id);
  // n1 campaigns first: the others hear it before their own timeouts.
  net.node('n1').replica!.rawNode.campaign();
  net.run();
  expect(net.tickUntil(() => net.leaders().length === 1, 500)).to.equal(true);
  const leader = net.leaders()[0]!;
  expect(net.propose(leader, entries)).to.deep.equal([]);
  net.tick(5);
  return net;
}

const notice = (over: Partial<IdentityNotice>): IdentityNotice => ({
  kind: 'reset-away',
  clusterId: 'c0ffee',
  generation: 1,
  expectedStorageId: '',
  members: ['n9'],
  ...over,
});

describe('identity rules', () => {
  describe('a batch envelope, as a member receives it', () => {
    it('same generation and the bound storage: heard; another storage, an empty one, or another generation: refused, saying why', () => {
      const net = cluster(1);
      const leader = net.leaders()[0]!;
      const follower = ['n1', 'n2', 'n3'].find((id) => id !== leader)!;
      const r = net.node(leader).replica!;
      const bound = net.node(follower).disk.storageId;
      const table: [string, { storageId: string; generation: number }, boolean, string | null][] = [
        ['its bound storage', { storageId: bound, generation: 0 }, true, null],
        ['another storage under its id', { storageId: 'abcdef', generation: 0 }, false, 'storage-mismatch'],
        ['no storage at all (forged)', { storageId: '', generation: 0 }, false, 'storage-mismatch'],
        ['a newer generation', { storageId: bound, generation: 7 }, false, null],
      ];
      for (const [what, env, ok, kind] of table) {
        const v = r.admitBatch({ from: follower, ...env });
        expect(v.ok, what).to.equal(ok);
        if (!v.ok) expect(v.notice?.kind ?? null, what).to.equal(kind);
        if (!v.ok && kind === 'storage-mismatch') expect(v.notice!.expectedStorageId, what).to.equal(bound);
      }
      expect(r.status().identity.state, 'the receiver is unchanged').to.equal('member');
      expect(r.status().identity.refused.map((x) => x.id)).to.deep.equal([follower]);
      expect(net.leaders()).to.deep.equal([leader]);
    });

    it('reset away: a batch of an older generation is refused with the newer generation; a non-member is told it is out', () => {
      const net = cluster(3);
      const leader = net.leaders()[0]!;
      const lost = ['n1', 'n2', 'n3'].filter((id) => id !== leader);
      for (const id of lost) net.crash(id);
      net.tick(30);
      let done = false;
      net.node(leader).replica!.resetPeers([{ id: leader, address: `net://${leader}` }], (e) => {
        expect(e).to.equal(null);
        done = true;
      });
      expect(net.tickUntil(() => done && net.leaders().length === 1, 500)).to.equal(true);
      const r = net.node(leader).replica!;
      expect(r.generation).to.equal(1);
      expect(r.status().peers).to.deep.equal([
        { id: leader, address: `net://${leader}`, storageId: net.node(leader).disk.storageId },
      ]);
      const v = r.admitBatch({ from: lost[0]!, storageId: net.node(lost[0]!).disk.storageId, generation: 0 });
      expect(v.ok).to.equal(false);
      expect(!v.ok && v.notice).to.deep.include({ kind: 'reset-away', generation: 1, members: [leader] });
    });
  });

  describe('a vote from a storage its own configuration does not bind', () => {
    for (const candidateBinds of ['its storage', 'its old storage'] as const) {
      it(`is granted; the candidate's configuration decides: ${candidateBinds === 'its storage' ? 're-added there (the node has not applied it yet), it counts and elects' : 'bound to the old storage there, it is refused'}`, () => {
        // n3 was re-added with its new storage, committed and applied by n1 and n2; its own applied configuration
        // still binds it to the storage it replaced (it crashed before applying its re-add). n1 is down: n2 needs
        // n3's vote.
        const net = new ReplicaNet(['n1', 'n2', 'n3']);
        const n3 = net.node('n3').disk;
        const boot = n3.storage.snapshotMeta();
        const rebind = (d: typeof n3, storageId: string) => {
          const peers = boot.peers!.map((p) => (p.id === 'n3' ? { ...p, storageId } : p));
          d.storage = new MemoryStorage(emptyConf());
          d.storage.applySnapshot({ ...boot, peers });
        };
        rebind(n3, 'beef');
        if (candidateBinds === 'its old storage') rebind(net.node('n2').disk, 'beef');
        net.start('n2');
        net.start('n3');
        expect(net.node('n3').replica!.status().identity.state).to.equal('storage-mismatch');
        net.node('n2').replica!.rawNode.campaign();
        const elected = net.tickUntil(() => net.leaders().length > 0, 400);
        if (candidateBinds === 'its storage') expect(net.leaders(), "n2 elected with n3's vote").to.deep.equal(['n2']);
        else expect(elected, "n3's vote is refused: no leader").to.equal(false);
      });
    }
  });

  describe('a notice, as the refused node hears it', () => {
    it('stands down only on a member of its configuration, of its cluster, of a newer generation that leaves it out', () => {
      const table: [string, string, IdentityNotice, boolean][] = [
        ['a member, a newer generation leaving it out', 'n2', notice({}), true],
        ['a stranger', 'n7', notice({}), false],
        ['another cluster', 'n2', notice({ clusterId: 'ffff' }), false],
        ['the same generation', 'n2', notice({ generation: 0 }), false],
        ['a generation that names it', 'n2', notice({ members: ['n9', 'n3'] }), false],
        ['a storage mismatch (a lagging peer may say it)', 'n2', notice({ kind: 'storage-mismatch' }), false],
        ['a peer that stood down itself', 'n2', notice({ kind: 'stood-down' }), false],
      ];
      for (const [what, from, n, standsDown] of table) {
        const net = cluster(1);
        const r = net.node('n3').replica!;
        r.hearNotice(from, n);
        net.run();
        expect(r.status().identity.state === 'stood-down', what).to.equal(standsDown);
        expect(net.node('n3').disk.identity.standDown !== null, `${what}: recorded durably`).to.equal(standsDown);
      }
    });

    it('a node that stood down neither leads, votes nor acknowledges, refuses writes with STOOD_DOWN, and a restart does not undo it', () => {
      const net = cluster(2);
      const leader = net.leaders()[0]!;
      const r = net.node(leader).replica!;
      r.hearNotice(leader === 'n1' ? 'n2' : 'n1', notice({}));
      net.run();
      expect(r.isLeader, 'a leader steps down at once').to.equal(false);
      let refused: unknown = null;
      r.propose(new Uint8Array([1]), undefined, (e) => (refused = e));
      expect(refused).to.have.property('errorName', 'STOOD_DOWN');
      expect((refused as { retriable: boolean }).retriable).to.equal(false);
      net.restart(leader);
      expect(net.node(leader).replica!.status().identity.state).to.equal('stood-down');
      // The other two go on (a majority of three); the one that stood down takes no part.
      expect(net.tickUntil(() => net.leaders().length === 1, 1000)).to.equal(true);
      expect(net.leaders()).to.not.include(leader);
      const before = net.node(leader).disk.storage.lastIndex();
      expect(net.propose(net.leaders()[0]!, 3)).to.deep.equal([]);
      net.tick(20);
      expect(net.node(leader).disk.storage.lastIndex(), 'it acknowledged nothing new').to.equal(before);
    });
  });

  describe('a floor notice (MSG_FLOOR), as a follower hears it', () => {
    it('only from its current leader in its current term, naming a real entry: anything else changes nothing', () => {
      const net = cluster(3);
      const leader = net.leaders()[0]!;
      const [f, other] = ['n1', 'n2', 'n3'].filter((id) => id !== leader) as [string, string];
      const r = net.node(f).replica!;
      const term = r.term;
      const floor = (from: string, over: Partial<Message>) =>
        makeMessage({ type: MessageType.Floor, from, to: f, term, index: 1000, logTerm: term, ...over });
      const table: [string, Message][] = [
        ['from a member that is not its leader', floor(other, {})],
        ['from its leader, in another term', floor(leader, { term: term + 1 })],
        ['from its leader, for index 0', floor(leader, { index: 0 })],
        ['from its leader, of term 0', floor(leader, { logTerm: 0 })],
        [
          'from its leader, for an entry it holds',
          floor(leader, { index: 2, logTerm: net.node(f).disk.storage.term(2)! }),
        ],
      ];
      for (const [what, m] of table) {
        r.receive([m], { from: m.from, storageId: net.node(m.from).disk.storageId, generation: 0 });
        net.run();
        expect(r.status().identity.floor, what).to.equal(null);
      }
      r.receive([floor(leader, {})], { from: leader, storageId: net.node(leader).disk.storageId, generation: 0 });
      net.run();
      expect(r.status().identity.floor, 'from its leader, past its log').to.deep.equal({ index: 1000, term });
    });
  });

  describe('stories', () => {
    for (const checks of [true, false]) {
      it(`a disk replaced under a member's id, bootstrapped again as a voter: ${checks ? 'its votes do not count, the stale node is never elected' : 'CONTROL without envelopes: it votes the stale node in'}`, () => {
        const net = cluster(1);
        net.envelopes = checks;
        const leader = net.leaders()[0]!;
        const [wiped, stale] = ['n1', 'n2', 'n3'].filter((id) => id !== leader) as [string, string];
        net.crash(stale);
        expect(net.propose(leader, 20)).to.deep.equal([]);
        const acked = net.node(leader).disk.storage.lastIndex();
        net.crash(leader);
        net.restartOn(wiped, net.bootstrappedAgain(wiped));
        net.start(stale);
        const elected = net.tickUntil(() => net.leaders().length > 0, 600);
        if (!checks) {
          expect(elected, 'without the rule the stale node wins with the empty disk').to.equal(true);
          expect(net.node(net.leaders()[0]!).disk.storage.lastIndex()).to.be.below(acked);
          return;
        }
        expect(elected, `no leader from ${wiped} (empty) and ${stale} (stale)`).to.equal(false);
        const refused = net.node(stale).replica!.status().identity.refused;
        expect(refused.map((x) => x.id)).to.include(wiped);
        // The leader returns: it leads again with everything acknowledged.
        net.start(leader);
        expect(net.tickUntil(() => net.leaders().length === 1, 1000)).to.equal(true);
        expect(net.node(net.leaders()[0]!).disk.storage.lastIndex()).to.be.at.least(acked);
      });
    }

    for (const reachable of [true, false]) {
      it(`nodes reset away come back ${reachable ? 'and reach the survivor: they stand down' : 'cut off from the survivor: THE LIMIT, they elect each other'}`, () => {
        const net = cluster(3);
        const survivor = net.leaders()[0]!;
        const lost = ['n1', 'n2', 'n3'].filter((id) => id !== survivor) as [string, string];
        for (const id of lost) net.crash(id);
        net.tick(30);
        let done = false;
        net.node(survivor).replica!.resetPeers([{ id: survivor, address: `net://${survivor}` }], () => (done = true));
        expect(net.tickUntil(() => done && net.leaders().length === 1, 500)).to.equal(true);
        if (!reachable)
          for (const id of lost) {
            net.cut.add(`${id}>${survivor}`);
            net.cut.add(`${survivor}>${id}`);
          }
        for (const id of lost) net.start(id);
        net.tick(300);
        const states = lost.map((id) => net.node(id).replica!.status().identity.state);
        if (reachable) {
          expect(states).to.deep.equal(['stood-down', 'stood-down']);
          expect(net.leaders()).to.deep.equal([survivor]);
        } else {
          expect(states).to.deep.equal(['member', 'member']);
          expect(net.leaders().length, 'the survivor and one of the lost pair lead').to.equal(2);
        }
      });
    }

    it('after a reset, a node that joins knowing the older generation takes the newer one from the leader, catches up by snapshot and becomes a voter bound to its storage', () => {
      const net = cluster(3);
      const survivor = net.leaders()[0]!;
      for (const id of ['n1', 'n2', 'n3'].filter((x) => x !== survivor)) net.crash(id);
      net.tick(30);
      let done = false;
      net.node(survivor).replica!.resetPeers([{ id: survivor, address: `net://${survivor}` }], () => (done = true));
      expect(net.tickUntil(() => done && net.leaders().length === 1, 500)).to.equal(true);
      expect(net.propose(survivor, 3)).to.deep.equal([]);
      net.addJoiner('n4', [survivor], 0);
      net.start('n4');
      let changed: unknown = 'pending';
      net.node(survivor).replica!.changePeers(
        [
          { id: survivor, address: `net://${survivor}` },
          { id: 'n4', address: 'net://n4' },
        ],
        (e) => (changed = e),
      );
      expect(
        net.tickUntil(() => changed !== 'pending', 2000),
        'the change finishes',
      ).to.equal(true);
      expect(changed).to.equal(null);
      const n4 = net.node('n4').replica!.status();
      expect([n4.identity.generation, n4.identity.state]).to.deep.equal([1, 'member']);
      const leader = net.node(survivor).replica!.status();
      expect(leader.peers.find((p) => p.id === 'n4')?.storageId, 'bound to the storage it caught up on').to.equal(
        net.node('n4').disk.storageId,
      );
      expect(net.propose(survivor, 3), 'n4 counts in the quorum of two').to.deep.equal([]);
    });

    for (const told of [true, false]) {
      it(`a disk restored from an older copy: ${told ? 'the leader tells it its floor; it votes no stale node in, and votes again once it holds the log' : 'CONTROL, the leader dies before it answers: undetectable, the stale node can win'}`, () => {
        const net = cluster(2);
        const leader = net.leaders()[0]!;
        const [restored, stale] = ['n1', 'n2', 'n3'].filter((id) => id !== leader) as [string, string];
        net.crash(stale);
        const backup = net.copyDisk(restored);
        expect(net.propose(leader, 30)).to.deep.equal([]);
        net.tick(5);
        const acked = net.node(leader).disk.storage.lastIndex();
        net.restartOn(restored, backup);
        if (told) {
          // The writer goes on; for the story, no entry reaches the restored node before the leader dies (its
          // empty appends do: they are what a restored log rejects).
          net.filter = (m) => !(m.to === restored && m.type === MessageType.App && m.entries.length > 0);
          net.node(leader).replica!.propose(new Uint8Array([9]), undefined, () => {});
          expect(
            net.tickUntil(() => net.node(restored).replica!.status().identity.floor !== null, 200),
            'the leader tells the restored node its floor',
          ).to.equal(true);
          expect(net.node(restored).replica!.status().identity.state).to.equal('below-floor');
          expect(net.node(restored).disk.identity.floor?.index, 'recorded durably').to.be.at.least(acked);
          // A restart keeps it (and forgets the leader it heard: only the floor keeps it from voting now).
          net.restart(restored);
          expect(net.node(restored).replica!.status().identity.state).to.equal('below-floor');
        }
        net.crash(leader);
        net.start(stale);
        const elected = net.tickUntil(() => net.leaders().length > 0, 600);
        if (!told) {
          expect(elected, 'nothing tells the restored node: it votes the stale one in').to.equal(true);
          return;
        }
        expect(elected, 'no leader lacking the acknowledged entries').to.equal(false);
        net.filter = null;
        net.start(leader);
        expect(net.tickUntil(() => net.leaders().length === 1, 1000)).to.equal(true);
        expect(
          net.tickUntil(() => net.node(restored).replica!.status().identity.floor === null, 500),
          'the floor clears once it holds the leader log that far',
        ).to.equal(true);
        expect(net.node(restored).disk.identity.floor).to.equal(null);
        expect(net.node(restored).replica!.status().identity.state).to.equal('member');
      });
    }

    it('a restored copy below its floor votes for a candidate whose log reaches past it: the leader dies, the node that holds the log is elected', () => {
      const net = cluster(3);
      const leader = net.leaders()[0]!;
      const [restored, holder] = ['n1', 'n2', 'n3'].filter((id) => id !== leader) as [string, string];
      const backup = net.copyDisk(restored);
      expect(net.propose(leader, 30)).to.deep.equal([]);
      net.tick(5);
      const acked = net.node(leader).disk.storage.lastIndex();
      net.restartOn(restored, backup);
      net.filter = (m) => !(m.to === restored && m.type === MessageType.App && m.entries.length > 0);
      net.node(leader).replica!.propose(new Uint8Array([9]), undefined, () => {});
      expect(net.tickUntil(() => net.node(restored).replica!.status().identity.floor !== null, 200)).to.equal(true);
      net.crash(leader);
      // Only with the restored node's vote can the holder win: it must get it.
      expect(
        net.tickUntil(() => net.leaders().length > 0, 600),
        'a leader',
      ).to.equal(true);
      expect(net.leaders()).to.deep.equal([holder]);
      expect(net.node(holder).disk.storage.lastIndex()).to.be.at.least(acked);
    });
  });
});
