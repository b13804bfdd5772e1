// The byte bound on a batch of entries, one rule for every place that cuts one (the log view, the memory and
// disk logs): items are taken in order while the batch stays within maxBytes, but a batch never starts empty
// (an item larger than the bound goes alone), so a bound slows progress and never stops it.

/** A batch being filled: the items and bytes it already holds. */
export interface BatchFill {
  count: number;
  bytes: number;
}

const EMPTY: BatchFill = { count: 0, bytes: 0 };

/**
 * How many of the next `n` items (item k of sizeOf(k) bytes) join a batch that already holds `sofar`
 * without passing maxBytes, and the bytes they add.
 */
export function takeWithinBytes(
  n: number,
  sizeOf: (k: number) => number,
  maxBytes: number,
  sofar: BatchFill = EMPTY,
): BatchFill {
  let count = 0;
  let bytes = 0;
  while (count < n) {
    const sz = sizeOf(count);
    if (sofar.count + count > 0 && sofar.bytes + bytes + sz > maxBytes) break;
    bytes += sz;
    count++;
  }
  return { count, bytes };
}
