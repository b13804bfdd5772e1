// The tests' own check, written apart from src/terminal-text.ts: whether text holds a code unit a terminal acts
// on besides printing it (C0 but the line break and tab of a whole output, DEL, C1, bidirectional controls,
// the line and paragraph separators).

export function hasRawControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x0a || c === 0x09) continue;
    if (c < 0x20 || (c >= 0x7f && c <= 0x9f)) return true;
    if ([0x061c, 0x200e, 0x200f, 0x2028, 0x2029].includes(c)) return true;
    if ((c >= 0x202a && c <= 0x202e) || (c >= 0x2066 && c <= 0x2069)) return true;
  }
  return false;
}
