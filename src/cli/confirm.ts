// Confirmation before a destructive command (format --force, purge --force, reset-peers): the operator types
// the name of what is destroyed at a terminal, or says --yes; with no terminal to ask at and no --yes, nothing
// happens. What will be destroyed is said first, so the answer is an informed one.

import { UsageError } from '../command-line.js';

/** Asks a question at the operator's terminal; null when there is none (a script, a pipe, CI). */
export type Ask = (question: string) => Promise<string | null>;

/** The operator did not type what the prompt asked for: nothing was done. */
export class NotConfirmedError extends Error {
  override name = 'NotConfirmedError';
}

export interface Destruction {
  /** What will happen, in one or two lines: "wipes journal ns1: 81570 edits in 3 segments". */
  what: string;
  /** What the operator types to confirm (the journal id, the node): a slip of the finger does not match. */
  token: string;
  /** --yes: confirmed on the command line. */
  yes: boolean;
}

export async function confirmDestruction(ask: Ask | undefined, d: Destruction): Promise<void> {
  if (d.yes) return;
  const answer = ask ? await ask(`${d.what}\nType ${d.token} to go ahead (anything else stops): `) : null;
  if (answer === null) {
    throw new UsageError(`${d.what}; there is no terminal to confirm at: add --yes to go ahead`);
  }
  if (answer.trim() !== d.token)
    throw new NotConfirmedError(`not confirmed (expected ${d.token}): nothing was changed`);
}
