// Who a JournalNode hears: members always; a leader its configuration does not name yet only on the word of a
// member (or, joining, of whom it joined from) that applied at least as far; a stranger or a removed node
// never; and the bounds on asking.

import { expect } from 'chai';
import { PeerAdmission } from '../../../../journalnode/peers/peer-admission.js';
import type { PeerAdmissionOptions } from '../../../../journalnode/peers/peer-admission.js';
import type { NodeStatusJson, MemberJson } from '../../../../src/node-status.js';
import { PeerDirectory } from '../../../../src/replica/peer-directory.js';
import { makeMessage, MessageType } from '../../../../src/raft/types.js';
import type { Message, NodeId, Peer } from '../../../../src/raft/types.js';
import { deferred } from '../../../support/async.js';

const CLUSTER = 'CID-a';
const MEMBERS: Peer[] = [
  { id: 'a', address: 'a:1' },
  { id: 'b', address: 'b:1' },
  { id: 'c', address: 'c:1' },
];

const app = (from: NodeId): Message => makeMessage({ type: MessageType.App, from, to: 'a', term: 3, index: 1 });
const vote = (from: NodeId): Message => makeMessage({ type: MessageType.Vote, from, to: 'a', term: 3 });

/** A /status answer: `id` at `appliedIndex`, whose configuration names `members` (id or id=address). */
function status(id: string, appliedIndex: number, members: string[], clusterId = CLUSTER): NodeStatusJson {
  const peers: MemberJson[] = members.map((m) => {
    const [mid, address] = m.split('=');
    return { id: mid!, address: address ?? `${mid}:1`, role: 'voter' };
  });
  return { id, appliedIndex, clusterId, peers } as unknown as NodeStatusJson;
}

interface Rig {
  admission: PeerAdmission;
  directory: PeerDirectory;
  /** Every /status asked, by address. */
  asked: string[];
  clock: { ms: number };
}

/** Node a in a, b, c (applied at 10), whose peers answer /status from `answers` (absent: unreachable). */
function rig(
  answers: Record<string, NodeStatusJson | Promise<NodeStatusJson>>,
  over: Partial<PeerAdmissionOptions> = {},
  members = MEMBERS,
): Rig {
  const directory = new PeerDirectory(members);
  directory.retain(
    members.map((p) => p.id),
    10,
  );
  const asked: string[] = [];
  const clock = { ms: 1000 };
  const admission = new PeerAdmission({
    selfId: 'a',
    clusterId: CLUSTER,
    directory,
    joinedFrom: [],
    fetchStatus: (address) => {
      asked.push(address);
      const a = answers[address];
      return a ? Promise.resolve(a) : Promise.reject(new Error('ECONNREFUSED'));
    },
    checkTimeoutMs: 500,
    refusedForMs: 1000,
    logger: { info() {}, warn() {}, error() {}, debug() {} },
    nowMs: () => clock.ms,
    ...over,
  });
  return { admission, directory, asked, clock };
}

describe('PeerAdmission', () => {
  it('a member is heard at once, whatever it sends, and no one is asked', () => {
    const { admission, asked } = rig({});
    expect(admission.admits('b', [vote('b')])).to.equal(true);
    expect(admission.admits('c', [app('c')])).to.equal(true);
    expect(asked).to.deep.equal([]);
  });

  it('a non-member that sends anything but leader messages is refused without asking', async () => {
    const { admission, asked } = rig({ 'b:1': status('b', 10, ['b', 'c', 'd']) });
    expect(await admission.admits('d', [app('d'), vote('d')])).to.equal(false);
    expect(await admission.admits('d', [])).to.equal(false);
    expect(asked).to.deep.equal([]);
  });

  it('a leader the configuration does not name yet is heard once a member that applied as far names it; then it is dialed at that address', async () => {
    const { admission, directory, asked } = rig({ 'b:1': status('b', 12, ['b', 'c', 'd=d:7']) });
    expect(await admission.admits('d', [app('d')])).to.equal(true);
    expect(asked.sort()).to.deep.equal(['b:1', 'c:1']);
    expect(directory.isVouched('d')).to.equal(true);
    expect(directory.isMember('d'), 'a vouch is not membership').to.equal(false);
    expect([directory.addressOf('d'), directory.idAt('d:7')]).to.deep.equal(['d:7', 'd']);
    expect(admission.admits('d', [app('d')]), 'heard at once from then on').to.equal(true);
  });

  it('a removed node stays unheard: a member that has not applied as far as this node cannot vouch for it', async () => {
    // b still has d in its configuration at index 9; this node applied d's removal by index 10.
    const { admission, directory } = rig({ 'b:1': status('b', 9, ['a', 'b', 'c', 'd']) });
    expect(await admission.admits('d', [app('d')])).to.equal(false);
    expect(directory.isVouched('d')).to.equal(false);
  });

  it('a stranger is named by no member: refused, and not asked about again for refusedForMs', async () => {
    const { admission, asked, clock } = rig({
      'b:1': status('b', 10, ['a', 'b', 'c']),
      'c:1': status('c', 11, ['a', 'b', 'c']),
    });
    expect(await admission.admits('mallory', [app('mallory')])).to.equal(false);
    expect(asked).to.have.length(2);
    clock.ms += 999;
    expect(await admission.admits('mallory', [app('mallory')])).to.equal(false);
    expect(asked, 'within refusedForMs nobody is asked').to.have.length(2);
    clock.ms += 1;
    expect(await admission.admits('mallory', [app('mallory')])).to.equal(false);
    expect(asked).to.have.length(4);
  });

  it('an answer from another cluster, or from a node that is not the one dialed, vouches for nothing', async () => {
    const { admission } = rig({ 'b:1': status('b', 12, ['d'], 'CID-other'), 'c:1': status('x', 12, ['d']) });
    expect(await admission.admits('d', [app('d')])).to.equal(false);
  });

  it('neither the sender nor this node is asked', async () => {
    const { admission, asked } = rig(
      {},
      {
        selfId: 'j',
        joinedFrom: [
          { id: 'd', address: 'd:1' },
          { id: 'j', address: 'j:1' },
        ],
      },
    );
    expect(await admission.admits('d', [app('d')])).to.equal(false);
    expect(asked.sort()).to.deep.equal(['a:1', 'b:1', 'c:1']);
  });

  it('a vouch lasts until the members change', async () => {
    const { admission, directory } = rig({ 'b:1': status('b', 12, ['b', 'c', 'd']) });
    expect(await admission.admits('d', [app('d')])).to.equal(true);
    directory.retain(['a', 'b', 'c'], 11);
    expect(directory.isVouched('d'), 'the same members at a later index').to.equal(true);
    directory.set('e', 'e:1');
    expect(directory.isVouched('d'), 'a member added').to.equal(false);
    expect(await admission.admits('d', [app('d')])).to.equal(true);
    directory.retain(['a', 'b', 'c'], 13);
    expect(directory.isVouched('d'), 'a member removed').to.equal(false);
  });

  it('joining (not a member of its own configuration): the members it joined from are asked too, and only then', async () => {
    // The snapshot it installed names a, b, c without it; b and c are gone; e (whom it joined from) knows d.
    const joined = rig(
      { 'e:1': status('e', 12, ['d', 'e']) },
      { selfId: 'j', joinedFrom: [{ id: 'e', address: 'e:1' }] },
    );
    expect(await joined.admission.admits('d', [app('d')])).to.equal(true);
    expect(joined.asked.sort()).to.deep.equal(['a:1', 'b:1', 'c:1', 'e:1']);
    const member = rig({ 'e:1': status('e', 12, ['d', 'e']) }, { joinedFrom: [{ id: 'e', address: 'e:1' }] });
    expect(await member.admission.admits('d', [app('d')])).to.equal(false);
    expect(member.asked.sort()).to.deep.equal(['b:1', 'c:1']);
  });

  it('bounded: one check per sender in flight, shared by its batches, and at most four senders at once', async () => {
    const slow = deferred<NodeStatusJson>();
    const { admission, asked } = rig({ 'b:1': slow.promise, 'c:1': slow.promise });
    const first = admission.admits('d', [app('d')]);
    const second = admission.admits('d', [app('d')]);
    expect(second).to.equal(first);
    for (const id of ['e', 'f', 'g']) admission.admits(id, [app(id)]);
    expect(asked).to.have.length(8);
    expect(await admission.admits('h', [app('h')]), 'a fifth sender is refused without asking').to.equal(false);
    expect(asked).to.have.length(8);
    slow.resolve(status('b', 10, ['d']));
    expect(await first).to.equal(true);
  });
});
