// Text from outside on its way to an operator's terminal: journal data (records, writer and cluster ids), what
// nodes answer (messages, addresses), certificate subjects. A control character in it could move the cursor,
// rewrite lines already printed, retitle the window or reprogram keys (ESC sequences, C1 controls such as
// CSI U+009B), or reorder what is shown (bidirectional overrides). Every one is shown as an escape instead.

/**
 * Whether a UTF-16 code unit is one to escape: C0 controls (U+0000-U+001F), DEL, C1 controls (U+0080-U+009F),
 * the bidirectional marks, embeddings, overrides and isolates (U+061C, U+200E, U+200F, U+202A-U+202E,
 * U+2066-U+2069), and the line and paragraph separators (U+2028, U+2029).
 */
function isControl(code: number): boolean {
  return (
    code < 0x20 ||
    (code >= 0x7f && code <= 0x9f) ||
    code === 0x061c ||
    code === 0x200e ||
    code === 0x200f ||
    code === 0x2028 ||
    code === 0x2029 ||
    (code >= 0x202a && code <= 0x202e) ||
    (code >= 0x2066 && code <= 0x2069)
  );
}

/** C0 as \xNN (as a person reads bytes); DEL and beyond as \uXXXX, which is also their escape in JSON. */
function escapeOne(code: number): string {
  return code < 0x20 ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
}

function escapeWhere(s: string, escaped: (code: number) => boolean): string {
  let out = '';
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    const code = s.charCodeAt(i);
    if (!escaped(code)) continue;
    out += s.slice(from, i) + escapeOne(code);
    from = i + 1;
  }
  return from === 0 ? s : out + s.slice(from);
}

/** A value shown on one line (a table cell, a field of a message): every control character escaped. */
export function escapeControls(s: string): string {
  return escapeWhere(s, isControl);
}

/**
 * A whole output (lines of a table, a JSON document) as it is written to the terminal: every control
 * character but a line break and a tab escaped. In JSON, where such characters occur only inside strings
 * (JSON.stringify escapes the C0 ones itself, not DEL, C1 or the bidirectional ones), `\uXXXX` is the
 * JSON escape of the same character: the document still parses to the same value.
 */
export function terminalSafe(text: string): string {
  return escapeWhere(text, (code) => code !== 0x0a && code !== 0x09 && isControl(code));
}
