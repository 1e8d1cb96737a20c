/**
 * Durations and sizes as written in `isola.toml`.
 *
 * A duration is a non-negative integer (milliseconds) or a string `<number><unit>` with unit
 * ms, s, m or h ("1.5s"). A size is a non-negative integer (bytes) or a string with unit
 * B, KB, MB, GB (powers of 1000) or KiB, MiB, GiB (powers of 1024). Decimal strings are converted
 * exactly (BigInt arithmetic), so "1.1KB" is 1100 bytes, not 1100.0000000000002.
 */

/** The outcome of parsing one value: the number, or a message saying what is wrong and how to write it. */
export type UnitResult = { ok: true; value: number } | { ok: false; message: string };

/** Largest duration accepted, ms: Node.js timers overflow past 2^31 - 1 ms (about 24.8 days) and fire at once. */
export const MAX_DURATION_MS = 2 ** 31 - 1;

const DURATION_UNITS: Record<string, bigint> = { ms: 1n, s: 1000n, m: 60_000n, h: 3_600_000n };
const SIZE_UNITS: Record<string, bigint> = {
  B: 1n,
  KB: 1000n,
  MB: 1000n ** 2n,
  GB: 1000n ** 3n,
  KiB: 1024n,
  MiB: 1024n ** 2n,
  GiB: 1024n ** 3n,
};
/** Words people write for a duration unit, mapped to the unit we accept. */
const DURATION_ALIASES: Record<string, string> = {
  msec: 'ms', msecs: 'ms', millis: 'ms', millisecond: 'ms', milliseconds: 'ms',
  sec: 's', secs: 's', second: 's', seconds: 's',
  min: 'm', mins: 'm', minute: 'm', minutes: 'm',
  hr: 'h', hrs: 'h', hour: 'h', hours: 'h',
};

interface Kind {
  noun: string; // "duration"
  base: string; // "milliseconds"
  baseUnit: string; // "ms"
  example: string; // "30s"
  units: Record<string, bigint>;
  aliases: Record<string, string>;
  max: number;
  maxText: string;
}

const DURATION: Kind = {
  noun: 'duration',
  base: 'milliseconds',
  baseUnit: 'ms',
  example: '30s',
  units: DURATION_UNITS,
  aliases: DURATION_ALIASES,
  max: MAX_DURATION_MS,
  maxText: `${MAX_DURATION_MS} ms (about 24.8 days, the longest timer Node.js supports)`,
};
const SIZE: Kind = {
  noun: 'size',
  base: 'bytes',
  baseUnit: 'B',
  example: '128MiB',
  units: SIZE_UNITS,
  aliases: {},
  max: Number.MAX_SAFE_INTEGER,
  maxText: `${Number.MAX_SAFE_INTEGER} bytes`,
};

/**
 * Parses a duration into milliseconds.
 * @param input a TOML value: integer ms (`30000`) or string (`"30s"`, `"1.5s"`, `"250ms"`, `"5m"`, `"1h"`).
 * @returns `{ok: true, value}` (integer ms, 0..MAX_DURATION_MS) or `{ok: false, message}`; never throws.
 */
export function parseDuration(input: unknown): UnitResult {
  return parseQuantity(input, DURATION);
}

/**
 * Parses a size into bytes.
 * @param input a TOML value: integer bytes (`1048576`) or string (`"1GiB"`, `"512KB"`, `"1.5MiB"`, `"10B"`).
 * @returns `{ok: true, value}` (integer bytes, 0..Number.MAX_SAFE_INTEGER) or `{ok: false, message}`; never throws.
 */
export function parseSize(input: unknown): UnitResult {
  return parseQuantity(input, SIZE);
}

/**
 * Writes a byte count the way a person would read it: the largest binary unit that divides it
 * exactly ("128 MiB", "64 KiB"), else plain bytes ("1000 B").
 */
export function formatBytes(bytes: number): string {
  for (const [unit, factor] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (bytes !== 0 && bytes % factor === 0) return `${bytes / factor} ${unit}`;
  }
  return `${bytes} B`;
}

const QUANTITY_RE = /^(\d+)(?:\.(\d+))?\s*([A-Za-z]*)$/;

function parseQuantity(input: unknown, kind: Kind): UnitResult {
  const accepted = Object.keys(kind.units).join(', ');
  const expected = `a ${kind.noun}: an integer number of ${kind.base} or a string like "${kind.example}" (units: ${accepted})`;
  if (typeof input === 'number') {
    if (!Number.isFinite(input)) return fail(`expected ${expected}, found ${input}`);
    if (input < 0) return fail(`a ${kind.noun} cannot be negative (found ${input})`);
    if (!Number.isInteger(input)) {
      return fail(`${input} is not a whole number of ${kind.base}; write an integer, or a string with a unit like "${kind.example}"`);
    }
    if (input > kind.max) return fail(`${input} is too large; the most allowed is ${kind.maxText}`);
    return { ok: true, value: input };
  }
  if (typeof input !== 'string') return fail(`expected ${expected}, found ${describeValue(input)}`);

  const text = input.trim();
  if (text.startsWith('-')) return fail(`a ${kind.noun} cannot be negative (found "${input}")`);
  const m = QUANTITY_RE.exec(text);
  if (!m) return fail(`"${input}" is not ${expected}`);
  const [, whole, frac = '', unit] = m;
  if (unit === '') {
    return fail(
      `"${input}" has no unit; write "${text}${kind.baseUnit}", or an integer without quotes for ${kind.base} (units: ${accepted})`,
    );
  }
  const factor = kind.units[unit];
  if (factor === undefined) {
    return fail(`unknown unit "${unit}" in "${input}"${unitHint(unit, kind)}; accepted units: ${accepted}`);
  }
  const scale = 10n ** BigInt(frac.length);
  const total = BigInt(whole + frac) * factor;
  if (total % scale !== 0n) return fail(`"${input}" is not a whole number of ${kind.base}`);
  const value = total / scale;
  if (value > BigInt(kind.max)) return fail(`"${input}" is too large; the most allowed is ${kind.maxText}`);
  return { ok: true, value: Number(value) };
}

function unitHint(unit: string, kind: Kind): string {
  const alias = kind.aliases[unit.toLowerCase()];
  if (alias !== undefined) return ` (did you mean "${alias}"?)`;
  const sameLetters = Object.keys(kind.units).filter((u) => u.toLowerCase() === unit.toLowerCase());
  if (sameLetters.length === 1) return ` (did you mean "${sameLetters[0]}"? units are case-sensitive)`;
  return '';
}

function fail(message: string): UnitResult {
  return { ok: false, message };
}

/**
 * Describes a parsed TOML value for an error message, naming its TOML type:
 * `the string "x"`, `integer 5`, `float 1.5`, `boolean true`, `datetime …`, `an array`, `a table`.
 */
export function describeValue(value: unknown): string {
  switch (typeof value) {
    case 'string': {
      const shown = value.length > 40 ? `${value.slice(0, 37)}...` : value;
      return `the string ${JSON.stringify(shown)}`;
    }
    case 'number':
      return Number.isInteger(value) ? `integer ${value}` : `float ${value}`;
    case 'boolean':
      return `boolean ${value}`;
    case 'bigint':
      return `integer ${value}`;
    case 'undefined':
      return 'nothing';
    default:
      if (value === null) return 'null';
      if (Array.isArray(value)) return 'an array';
      if (value instanceof Date) return `datetime ${value.toISOString()}`;
      return 'a table';
  }
}
