// The one command-line parser of qjm and journalnode, on node:util's parseArgs in strict mode. A command
// declares every flag it takes (type, whether required, one line of help) and its positionals; anything
// else is refused with a UsageError that names the rule, and the caller prints the usage line and exits 2.
//
// The rules, beyond parseArgs' own: a boolean flag takes no value (`--force`, never `--force yes` or
// `--force=false`: leave it out to say no); a flag given twice is refused (which one was meant is a guess);
// `--help`/`-h` is every command's.

import { parseArgs } from 'node:util';

export interface FlagSpec {
  /** boolean: present or absent. string: one value. uint: a non-negative safe integer. */
  readonly type: 'boolean' | 'string' | 'uint';
  /** One line for --help. */
  readonly description: string;
  /** How the value is shown in usage: TXID, HOST:PORT,... (default VALUE, or N for uint). */
  readonly valueName?: string;
  readonly required?: boolean;
  /** The values a string flag allows. */
  readonly choices?: readonly string[];
  /** The environment variable read when the flag is absent. */
  readonly env?: string;
}

export interface CommandSpec {
  /** The command as typed: 'qjm purge', 'journalnode'. */
  readonly name: string;
  /** One line: what the command does. */
  readonly summary: string;
  readonly flags: Readonly<Record<string, FlagSpec>>;
  /** Positional arguments, all required, in order; the last may be variadic (one or more: HOST...). */
  readonly positionals?: readonly {
    readonly name: string;
    readonly description: string;
    readonly variadic?: boolean;
  }[];
  /** Usage lines to show instead of the generated one (when there are too many flags to list). */
  readonly usage?: readonly string[];
  /** Text after the flags in --help: notes, examples. */
  readonly notes?: string;
}

export class UsageError extends Error {
  override name = 'UsageError';
}

type ValueOf<F extends FlagSpec> = F['type'] extends 'boolean' ? boolean : F['type'] extends 'uint' ? number : string;

/** The parsed flags, typed from the spec: booleans always present, required flags never undefined. */
export type FlagValues<S extends CommandSpec> = {
  -readonly [K in keyof S['flags']]: S['flags'][K] extends { type: 'boolean' } | { required: true }
    ? ValueOf<S['flags'][K]>
    : ValueOf<S['flags'][K]> | undefined;
};

export type ParsedCommand<S extends CommandSpec> =
  | { help: true }
  | { help: false; flags: FlagValues<S>; positionals: string[] };

type Token = NonNullable<ReturnType<typeof parseArgs>['tokens']>[number];

const HELP = { type: 'boolean', short: 'h' } as const;

/**
 * Parses argv (without the command words) against the spec; flags absent from argv come from their env
 * variable when it is set and not empty. Throws UsageError.
 */
export function parseCommand<S extends CommandSpec>(
  spec: S,
  argv: readonly string[],
  env: Readonly<Record<string, string | undefined>> = process.env,
): ParsedCommand<S> {
  const options: Record<string, { type: 'boolean' | 'string'; short?: string }> = { help: HELP };
  for (const [name, f] of Object.entries(spec.flags))
    options[name] = { type: f.type === 'boolean' ? 'boolean' : 'string' };
  const positionalCount = spec.positionals?.length ?? 0;
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...argv], options, strict: true, allowPositionals: positionalCount > 0, tokens: true });
  } catch (e) {
    if (!(e instanceof TypeError) || !String((e as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS')) throw e;
    throw new UsageError(explain(spec, argv, e.message));
  }
  if (parsed.values.help === true) return { help: true };
  const seen = new Set<string>();
  for (const t of parsed.tokens ?? []) {
    if (t.kind !== 'option') continue;
    if (seen.has(t.name)) throw new UsageError(`--${t.name} is given twice`);
    seen.add(t.name);
  }
  const pos = parsed.positionals;
  if (pos.length < positionalCount) throw new UsageError(`missing ${spec.positionals![pos.length]!.name}`);
  const variadic = spec.positionals?.[positionalCount - 1]?.variadic === true;
  if (pos.length > positionalCount && !variadic)
    throw new UsageError(`unexpected argument ${JSON.stringify(pos[positionalCount])}`);

  const flags: Record<string, string | number | boolean | undefined> = {};
  for (const [name, f] of Object.entries(spec.flags)) {
    let v = parsed.values[name] as string | boolean | undefined;
    if (v === undefined && f.env && env[f.env]) v = env[f.env];
    if (f.type === 'boolean') {
      flags[name] = v === true;
      continue;
    }
    if (v === undefined) {
      if (f.required) throw new UsageError(`--${name} is required${f.env ? ` (or set ${f.env})` : ''}`);
      flags[name] = undefined;
      continue;
    }
    const s = String(v);
    if (f.choices && !f.choices.includes(s))
      throw new UsageError(`--${name} must be ${orList(f.choices)}, got ${JSON.stringify(s)}`);
    if (f.type === 'uint') {
      const n = Number(s);
      if (!/^\d+$/.test(s) || !Number.isSafeInteger(n))
        throw new UsageError(`--${name} must be a non-negative integer, got ${JSON.stringify(s)}`);
      flags[name] = n;
    } else flags[name] = s;
  }
  return { help: false, flags: flags as FlagValues<S>, positionals: pos };
}

/** Says what strict parsing refused, from the lenient tokens of the same argv (parseArgs' own message as fallback). */
function explain(spec: CommandSpec, argv: readonly string[], fallback: string): string {
  const options: Record<string, { type: 'boolean' | 'string'; short?: string }> = { help: HELP };
  for (const [name, f] of Object.entries(spec.flags))
    options[name] = { type: f.type === 'boolean' ? 'boolean' : 'string' };
  const tokens = parseArgs({ args: [...argv], options, strict: false, allowPositionals: true, tokens: true }).tokens;
  let prev: Token | undefined;
  for (const t of tokens) {
    if (t.kind === 'option') {
      const type = options[t.name]?.type;
      if (!type) return `unknown flag ${t.rawName}${suggest(t.name, Object.keys(spec.flags))}`;
      if (type === 'boolean' && t.value !== undefined)
        return `${t.rawName} takes no value: give ${t.rawName} alone, or leave it out`;
      if (type === 'string' && t.value === undefined) return `${t.rawName} needs a value`;
      if (type === 'string' && !t.inlineValue && t.value!.startsWith('-'))
        return `${t.rawName} needs a value (got ${JSON.stringify(t.value)}; write ${t.rawName}=${t.value} if that is the value)`;
    } else if (t.kind === 'positional') {
      if (
        prev?.kind === 'option' &&
        options[prev.name]?.type === 'boolean' &&
        prev.value === undefined &&
        prev.index === t.index - 1
      ) {
        return `${prev.rawName} takes no value (got ${JSON.stringify(t.value)}): give ${prev.rawName} alone, or leave it out`;
      }
      if (!spec.positionals?.length)
        return `unexpected argument ${JSON.stringify(t.value)}: ${spec.name} takes only flags`;
    }
    prev = t;
  }
  return fallback.split('\n')[0]!;
}

/** " (did you mean --force?)" for a near miss: one or two edits away. */
function suggest(name: string, known: string[]): string {
  let best: string | null = null;
  let bestDistance = 3;
  for (const k of known) {
    const d = editDistance(name, k);
    if (d < bestDistance) [best, bestDistance] = [k, d];
  }
  return best ? ` (did you mean --${best}?)` : '';
}

function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++)
      next[j] = Math.min(row[j]! + 1, next[j - 1]! + 1, row[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    row = next;
  }
  return row[b.length]!;
}

function orList(xs: readonly string[]): string {
  return xs.length === 1 ? xs[0]! : `${xs.slice(0, -1).join(', ')} or ${xs[xs.length - 1]}`;
}

function flagWithValue(name: string, f: FlagSpec): string {
  if (f.type === 'boolean') return `--${name}`;
  return `--${name} ${f.valueName ?? (f.choices ? f.choices.join('|') : f.type === 'uint' ? 'N' : 'VALUE')}`;
}

/** The usage line(s): required flags and positionals first, then the optional flags in brackets. */
export function usageLines(spec: CommandSpec): string[] {
  if (spec.usage) return [...spec.usage];
  const entries = Object.entries(spec.flags);
  const parts = [
    spec.name,
    ...entries.filter(([, f]) => f.required).map(([n, f]) => flagWithValue(n, f)),
    ...(spec.positionals ?? []).map((p) => p.name),
    ...entries.filter(([, f]) => !f.required).map(([n, f]) => `[${flagWithValue(n, f)}]`),
  ];
  return [parts.join(' ')];
}

/** What a refused command line prints (before exiting 2). */
export function usageError(spec: CommandSpec, message: string): string {
  const lines = usageLines(spec);
  return [
    `${spec.name}: ${message}`,
    `usage: ${lines[0]}`,
    ...lines.slice(1).map((l) => `       ${l}`),
    `(${spec.name} --help lists every flag)`,
  ].join('\n');
}

/** --help: usage, summary, every flag with its line of help, then the notes. */
export function helpText(spec: CommandSpec): string {
  const lines = usageLines(spec);
  const rows: [string, string][] = [];
  for (const p of spec.positionals ?? []) rows.push([p.name, p.description]);
  for (const [name, f] of Object.entries(spec.flags)) {
    const extra = f.required ? (f.env ? `required, or set $${f.env}` : 'required') : f.env ? `default: $${f.env}` : '';
    rows.push([flagWithValue(name, f), extra ? `${f.description} (${extra})` : f.description]);
  }
  rows.push(['-h, --help', 'print this help']);
  const width = Math.min(28, Math.max(...rows.map(([l]) => l.length)));
  const body = rows.map(([l, d]) =>
    l.length > width ? `  ${l}\n  ${''.padEnd(width)}  ${d}` : `  ${l.padEnd(width)}  ${d}`,
  );
  return [
    `usage: ${lines[0]}`,
    ...lines.slice(1).map((l) => `       ${l}`),
    '',
    spec.summary,
    '',
    ...body,
    ...(spec.notes ? ['', spec.notes] : []),
  ].join('\n');
}
