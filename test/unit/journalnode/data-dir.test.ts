// A data directory's first start (journalnode/data-dir.ts): what it refuses to bootstrap over, and what a first
// start interrupted before its metadata was durable leaves (it must start again).

import { expect } from 'chai';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { dataDirPaths, DataDirError, prepareDataDir } from '../../../journalnode/data-dir.js';
import type { DataDirNode } from '../../../journalnode/data-dir.js';
import { stateMachineSettings } from '../../../journalnode/storage-options.js';
import type { StateMachineOptions } from '../../../journalnode/state/journal-state-machine.js';
import type { Logger } from '../../../src/logger.js';
import { DEFAULT_SETTINGS } from '../../../src/settings.js';
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
});
