// Plain tables for terminals, in the style of `etcdctl endpoint status -w table`: the qjm CLI, the demo and the
// benchmark print their results through this one renderer, and sizes in it as people read them.

import { escapeControls } from './terminal-text.js';

/**
 * Every cell is escaped (escapeControls): what a table shows comes from journal data and node answers, and a
 * control character or line break in a cell must neither reach the terminal nor forge a row.
 */
export function renderTable(head: string[], rawRows: string[][]): string {
  const rows = rawRows.map((r) => r.map(escapeControls));
  head = head.map(escapeControls);
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  const fmt = (cells: string[]) => `|${widths.map((w, i) => ` ${(cells[i] ?? '').padEnd(w)} `).join('|')}|`;
  return [line, fmt(head), line, ...rows.map(fmt), line].join('\n');
}

/** A byte count for a person: 512 B, 1.5 KiB, 38 MiB (three significant figures at most; exact counts go in --json). */
export function humanBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (Math.round(v) >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[i]}`;
}
