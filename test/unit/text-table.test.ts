// What the CLI's tables show: byte counts as a person reads them.

import { expect } from 'chai';
import { humanBytes } from '../../src/text-table.js';

describe('humanBytes', () => {
  const table: [number, string][] = [
    [0, '0 B'],
    [1023, '1023 B'],
    [1024, '1.0 KiB'],
    [1536, '1.5 KiB'],
    [10 * 1024, '10 KiB'],
    [1024 * 1024 - 1, '1.0 MiB'],
    [38 * 1024 * 1024 + 400_000, '38 MiB'],
    [5 * 1024 ** 3, '5.0 GiB'],
    [3000 * 1024 ** 4, '3000 TiB'],
  ];
  for (const [n, shown] of table) it(`${n} -> ${shown}`, () => expect(humanBytes(n)).to.equal(shown));
});
