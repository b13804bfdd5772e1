import fs from 'node:fs';
import path from 'node:path';
import { expect } from 'chai';
import {
  ERROR_NAMES,
  codeOf,
  httpStatusOf,
  isRetriable,
  makeError,
  FencedError,
  NotLeaderError,
} from '../../src/errors.js';
import { qjournal } from '../../src/gen/proto.js';
import { REPO_ROOT } from '../support/repo-root.js';

const docs = fs.readFileSync(path.join(REPO_ROOT, 'docs', 'ERRORS.md'), 'utf8');

describe('errors', () => {
  it('every code is documented in docs/ERRORS.md, with its HTTP status and retriable flag', () => {
    for (const name of ERROR_NAMES) {
      const row = docs.split('\n').find((l) => l.startsWith(`| \`${codeOf(name)}\``));
      expect(row, `${codeOf(name)} has a row`).to.be.a('string');
      const cells = row!.split('|').map((c) => c.trim());
      expect(Number(cells[2]), `${name} HTTP status`).to.equal(httpStatusOf(name));
      expect(cells[3], `${name} retriable`).to.equal(isRetriable(name) ? 'yes' : 'no');
    }
  });

  it("the server writes no error code by hand: every refusal is a QjmError, answered with its code's status", () => {
    const found: string[] = [];
    const walk = (dir: string) => {
      for (const name of fs.readdirSync(dir)) {
        const p = path.join(dir, name);
        if (fs.statSync(p).isDirectory()) walk(p);
        else if (name.endsWith('.ts') && /['`"]QJM_ERR_/.test(fs.readFileSync(p, 'utf8')))
          found.push(path.relative(REPO_ROOT, p));
      }
    };
    walk(path.join(REPO_ROOT, 'journalnode'));
    expect(found).to.deep.equal([]);
  });

  it('the wire enum has exactly the same names', () => {
    const wire = Object.keys(qjournal.journal.ErrorCode).filter((k) => Number.isNaN(Number(k)) && k !== 'OK');
    expect(wire.sort()).to.deep.equal([...ERROR_NAMES].sort());
  });

  it('typed classes keep their code and retriable flag', () => {
    const f = makeError('FENCED', 'x', { promisedEpoch: 3 });
    expect(f).to.be.instanceOf(FencedError);
    expect([f.code, f.retriable, f.details.promisedEpoch]).to.deep.equal(['QJM_ERR_FENCED', false, 3]);
    expect(makeError('NOT_LEADER', 'y')).to.be.instanceOf(NotLeaderError);
    expect(makeError('NOT_LEADER', 'y').retriable).to.equal(true);
  });
});
