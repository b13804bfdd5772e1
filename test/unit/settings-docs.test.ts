// docs/OPERATIONS.md's settings table names every setting of src/settings.ts, and only those: a setting
// added without a line for operators, or a line left for a setting that is gone, fails here.

import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import { SETTINGS } from '../../src/settings.js';
import { REPO_ROOT } from '../support/repo-root.js';

const ROOT = REPO_ROOT;

describe('docs/OPERATIONS.md lists every setting', () => {
  it('the settings table and the schema name the same settings', () => {
    const doc = fs.readFileSync(path.join(ROOT, 'docs', 'OPERATIONS.md'), 'utf8');
    const section = doc.slice(doc.indexOf('## Settings'), doc.indexOf('\n## ', doc.indexOf('## Settings') + 1));
    const documented = [...section.matchAll(/^\| `([A-Za-z0-9]+)` \|/gm)].map((m) => m[1]!).sort();
    expect(documented).to.deep.equal(Object.keys(SETTINGS).sort());
  });
});
