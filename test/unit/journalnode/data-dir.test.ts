// A data directory's first start (journalnode/data-dir.ts): what it refuses to bootstrap over, what a first
// start interrupted before its metadata was durable leaves (it must start again), and an empty directory under
// the id of a member bound to another storage (it must not bootstrap as a voter).

import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dataDirPaths, DataDirError, finishFormation, prepareDataDir } from '../../../journalnode/data-dir.js';
import type { DataDirNode } from '../../../journalnode/data-dir.js';
import { stateMachineSettings } from '../../../journalnode/storage-options.js';
import type { StateMachineOptions } from '../../../journalnode/state/journal-state-machine.js';
import type { Logger } from '../../../src/logger.js';
import { DEFAULT_SETTINGS } from '../../../src/settings.js';
import { FileIdentityStore } from '../../../src/storage/identity-store.js';
import { nodeFileSystem } from '../../../src/storage/node-file-system.js';
import { MetaStore } from '../../../src/storage/raft-meta-store.js';

const quiet: Logger = { debug() {}, info() {}, warn() {}, error() {} };

describe('data directory, first start', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qj-datadir-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const node = (): DataDirNode => ({
    id: 'n2',
    dataDir: dir,
    advertise: '127.0.0.1:1',
    peers: [
      { id: 'n1', address: '127.0.0.1:2' },
      { id: 'n2', address: '127.0.0.1:1' },
    ],
  });
  const options = (): StateMachineOptions => ({
    fileSystem: nodeFileSystem,
    dataDir: dir,
    ...stateMachineSettings(DEFAULT_SETTINGS),
    source: null,
    logger: quiet,
  });
  const joining = { clusterId: 'abc', members: [{ id: 'n1', address: '127.0.0.1:2' }], generation: 0 };

  for (const how of ['joining', 'forming'] as const) {
    it(`${how}: a start that stopped before its metadata was durable starts again`, () => {
      fs.mkdirSync(dataDirPaths(dir).raft, { recursive: true });
      prepareDataDir(node(), options(), quiet, 'aaaa', how === 'joining' ? joining : null);
      // The metadata never reached the disk (a sync that failed, a crash): what the state machine wrote stays.
      fs.rmSync(path.join(dataDirPaths(dir).raft, 'raft_meta'));
      expect(MetaStore.open(nodeFileSystem, dataDirPaths(dir).raft)).to.equal(null);
      const meta = prepareDataDir(node(), options(), quiet, 'bbbb', how === 'joining' ? joining : null);
      expect(meta.meta.storageId).to.equal('bbbb');
    });
  }

  it('a bootstrap snapshot left in its temporary directory (the disk filled up) is no journal data', () => {
    fs.mkdirSync(path.join(dataDirPaths(dir).snapshots, 'tmp_initial_123', 'journals'), { recursive: true });
    fs.mkdirSync(dataDirPaths(dir).raft, { recursive: true });
    expect(prepareDataDir(node(), options(), quiet, 'aaaa', joining).meta.storageId).to.equal('aaaa');
  });

  it('refuses to bootstrap over journal data without metadata', () => {
    fs.mkdirSync(path.join(dataDirPaths(dir).journals, 'ns1'), { recursive: true });
    expect(() => prepareDataDir(node(), options(), quiet, 'aaaa', null)).to.throw(DataDirError, /holds journal data/);
  });

  it('an empty directory whose id the cluster binds to another storage waits to be re-added, holding nothing', () => {
    fs.mkdirSync(dataDirPaths(dir).raft, { recursive: true });
    const meta = prepareDataDir(node(), options(), quiet, 'new0', null);
    const identity = new FileIdentityStore(nodeFileSystem, dataDirPaths(dir).raft);
    finishFormation(
      node(),
      options(),
      meta,
      identity,
      {
        kind: 'replaced',
        from: 'n1',
        clusterId: 'abc',
        generation: 0,
        members: [{ id: 'n1', address: '127.0.0.1:2', storageId: 's1' }],
        boundTo: 'old2',
      },
      quiet,
    );
    const after = MetaStore.open(nodeFileSystem, dataDirPaths(dir).raft)!.meta;
    // Its own storage id, no term, no vote, nothing committed: it cannot vote or acknowledge as the old disk.
    expect(after).to.deep.include({ storageId: 'new0', clusterId: 'abc', forming: false });
    expect(after.hardState).to.deep.equal({ term: 0, vote: '', commit: 0 });
    expect(identity.load().boundElsewhere).to.equal('old2');
    // The empty state at index 0 (no configuration), not a bootstrap snapshot of the cluster's members.
    expect(fs.readdirSync(dataDirPaths(dir).snapshots)).to.deep.equal([`snap_${'0'.repeat(20)}`]);
  });
});
