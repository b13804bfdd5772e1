// Plain tables for terminals, in the style of `etcdctl endpoint status -w table`: the qjm CLI, the demo and the
// benchmark print their results through this one renderer.

export function renderTable(head: string[], rows: string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = '+' + widths.map((w) => '-'.repeat(w + 2)).join('+') + '+';
  const fmt = (cells: string[]) => '|' + widths.map((w, i) => ` ${(cells[i] ?? '').padEnd(w)} `).join('|') + '|';
  return [line, fmt(head), line, ...rows.map(fmt), line].join('\n');
}
