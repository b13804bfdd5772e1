// The message of the error a call throws, checked to be of the expected class: for tables of refusals.

import { expect } from 'chai';

export function thrownMessage(fn: () => unknown, type: abstract new (...args: never[]) => Error, what: string): string {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(type);
    return (e as Error).message;
  }
  return expect.fail(`${what} was accepted`);
}
