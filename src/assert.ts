// Assertions for programmer errors: a broken assumption inside the process, never bad input from outside
// (that is validated and refused with a typed error). An AssertionError is never caught: it crashes.

export class AssertionError extends Error {
  override name = 'AssertionError';
}

export function assert(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) {
    throw new AssertionError(typeof message === 'function' ? message() : message);
  }
}

/** For exhaustive switches: the compiler proves this unreachable; at run time it is a crash. */
export function unreachable(value: never, what: string): never {
  throw new AssertionError(`unreachable ${what}: ${String(value)}`);
}
