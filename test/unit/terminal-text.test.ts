// What reaches an operator's terminal from journal data: every control character escaped (C0, DEL, C1, the
// bidirectional ones), line breaks too within a value; JSON stays JSON of the same value.

import { expect } from 'chai';
import { hasRawControl } from '../support/raw-control.js';
import fc from 'fast-check';
import { escapeControls, terminalSafe } from '../../src/terminal-text.js';
import { renderTable } from '../../src/text-table.js';

describe('terminal text', () => {
  const table: [string, string][] = [
    ['plain text, é and 日本', 'plain text, é and 日本'],
    ['\u001b[2J\u001b[Hall nodes healthy', '\\x1b[2J\\x1b[Hall nodes healthy'],
    ['a\nb\tc\rd\u0000', 'a\\x0ab\\x09c\\x0dd\\x00'],
    ['del\u007f csi\u009b31m osc\u009d0;x\u0007', 'del\\u007f csi\\u009b31m osc\\u009d0;x\\x07'],
    ['abc\u202edcba\u2066x\u2069\u200f', 'abc\\u202edcba\\u2066x\\u2069\\u200f'],
    ['line\u2028sep', 'line\\u2028sep'],
  ];
  for (const [input, shown] of table)
    it(`escapeControls shows ${shown}`, () => expect(escapeControls(input)).to.equal(shown));

  it('terminalSafe keeps line breaks and tabs, escapes the rest', () => {
    expect(terminalSafe('a\tb\n\u001b[1mc\u009b')).to.equal('a\tb\n\\x1b[1mc\\u009b');
  });

  it('JSON through terminalSafe: no raw control character, and it parses to the same value', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 3 }), fc.string({ unit: 'binary' }), (v, s) => {
        for (const value of [v, s, { writerId: s, nested: [s, v] }]) {
          for (const text of [JSON.stringify(value), JSON.stringify(value, null, 2)]) {
            const shown = terminalSafe(text);
            expect(hasRawControl(shown)).to.equal(false);
            expect(JSON.parse(shown)).to.deep.equal(JSON.parse(text));
          }
        }
      }),
      { numRuns: 60 },
    );
  });

  it('a table escapes every cell: a control sequence is shown, a line break cannot forge a row', () => {
    const out = renderTable(['ID', 'WRITER'], [['n1', 'nn1\u001b[2K\r| n9 | all nodes healthy |\n| n8 |\u009b1A']]);
    expect(hasRawControl(out)).to.equal(false);
    const lines = out.split('\n');
    expect(lines.length, 'a border, the head, a border, one row, a border').to.equal(5);
    expect(lines[3]).to.equal('| n1 | nn1\\x1b[2K\\x0d| n9 | all nodes healthy |\\x0a| n8 |\\u009b1A |');
  });
});
