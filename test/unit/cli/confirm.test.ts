// Confirmation of a destructive command: --yes, the exact token at a terminal, or nothing happens.

import { expect } from 'chai';
import { UsageError } from '../../../src/command-line.js';
import { confirmDestruction, NotConfirmedError } from '../../../src/cli/confirm.js';

const what = 'wipes journal ns1: 81570 edits';

describe('confirmation of destructive commands', () => {
  it('--yes goes ahead without asking', async () => {
    let asked = false;
    await confirmDestruction(
      async () => {
        asked = true;
        return '';
      },
      { what, token: 'ns1', yes: true },
    );
    expect(asked).to.equal(false);
  });

  it('without a terminal and without --yes: a usage error that says what would happen and to add --yes', async () => {
    for (const ask of [undefined, async () => null]) {
      const e = await confirmDestruction(ask, { what, token: 'ns1', yes: false }).catch((x: unknown) => x);
      expect(e).to.be.instanceOf(UsageError);
      expect((e as Error).message)
        .to.contain(what)
        .and.contain('add --yes');
    }
  });

  it('at a terminal: the question names what is destroyed; only the exact token goes ahead', async () => {
    let question = '';
    const answer = (a: string) => async (q: string) => {
      question = q;
      return a;
    };
    await confirmDestruction(answer(' ns1 \n'), { what, token: 'ns1', yes: false });
    expect(question).to.contain(what).and.contain('Type ns1');
    for (const wrong of ['', 'y', 'yes', 'NS1', 'ns2']) {
      const e = await confirmDestruction(answer(wrong), { what, token: 'ns1', yes: false }).catch((x: unknown) => x);
      expect(e, wrong).to.be.instanceOf(NotConfirmedError);
    }
  });
});
