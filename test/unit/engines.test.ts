// The Node.js versions package.json promises are the ones every installed dependency accepts: a dependency
// that needs a newer Node makes `npm ci` warn EBADENGINE on a supported machine (and may break on it).

import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import semver from 'semver';
import { REPO_ROOT } from '../support/repo-root.js';

function installedPackages(dir: string): string[] {
  const out: string[] = [];
  for (const name of fs.readdirSync(dir)) {
    if (name.startsWith('.')) continue;
    const p = path.join(dir, name);
    if (name.startsWith('@')) out.push(...installedPackages(p));
    else if (fs.existsSync(path.join(p, 'package.json'))) {
      out.push(p);
      const nested = path.join(p, 'node_modules');
      if (fs.existsSync(nested)) out.push(...installedPackages(nested));
    }
  }
  return out;
}

describe('engines', () => {
  it('every installed dependency accepts the oldest Node.js that package.json promises', () => {
    const own = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
      engines: { node: string };
    };
    const oldest = semver.minVersion(own.engines.node)!.version;
    const refusing: string[] = [];
    for (const dir of installedPackages(path.join(REPO_ROOT, 'node_modules'))) {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
        engines?: { node?: string };
      };
      const range = pkg.engines?.node;
      if (range && semver.validRange(range) && !semver.satisfies(oldest, range))
        refusing.push(`${pkg.name}@${pkg.version} wants node ${range}`);
    }
    expect(refusing, `dependencies that refuse Node ${oldest}`).to.deep.equal([]);
  });
});
