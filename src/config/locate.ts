/**
 * Where is a key written? smol-toml gives values, not positions, so this is a small scanner that
 * walks TOML source and records the line and column of every key and array element, under the same
 * path the parsed value has: `["functions", 1, "limits", "timeout"]`.
 *
 * It understands table headers (`[a.b]`), arrays of tables (`[[functions]]`, counted per parent),
 * dotted keys (`limits.timeout = …`), quoted keys, inline tables, arrays (elements are indexed),
 * all four string forms and comments. It is meant for documents smol-toml has already accepted;
 * on anything else it still terminates and returns what it found. The first place a path is
 * written wins (e.g. `[a.b]` locates both `a` and `a.b` when `a` has no header of its own).
 */

/** A path into the parsed document: table keys are strings, array indexes are numbers. */
export type KeyPath = readonly (string | number)[];

/** 1-based line and column (column counts UTF-16 code units, like smol-toml's TomlError). */
export interface SourcePosition {
  line: number;
  column: number;
}

/** Positions of every key and array element of one TOML source. */
export class KeyLocator {
  readonly #positions: Map<string, SourcePosition>;

  /** Scans `source` once (linear time); never throws. */
  constructor(source: string) {
    this.#positions = scan(source);
  }

  /** Where `path` is written, or null when it is not written in the source (e.g. a default). */
  locate(path: KeyPath): SourcePosition | null {
    return this.#positions.get(pathId(path)) ?? null;
  }

  /**
   * Where `path` is written or, failing that, its nearest written ancestor (a missing required key
   * points at its table's header). Null when no prefix of the path is written (the empty path is
   * never written).
   */
  locateNearest(path: KeyPath): SourcePosition | null {
    for (let n = path.length; n > 0; n--) {
      const found = this.#positions.get(pathId(path.slice(0, n)));
      if (found) return found;
    }
    return null;
  }
}

/**
 * Shows a path the way a user writes it: `functions[1].limits.timeout`; keys that are not bare TOML
 * keys are quoted: `functions[0].files["/static"]`. The empty path is `""`.
 */
export function formatKeyPath(path: KeyPath): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z0-9_-]+$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

function pathId(path: KeyPath): string {
  return JSON.stringify(path);
}

interface KeySegment {
  name: string;
  offset: number;
}

/** The scanner proper. Offsets are converted to line/column only when a position is recorded. */
function scan(src: string): Map<string, SourcePosition> {
  const positions = new Map<string, SourcePosition>();
  /** Count of elements so far of each array of tables, by the pathId of its resolved path. */
  const tableArrays = new Map<string, number>();
  const lineStarts = [0];
  for (let k = 0; k < src.length; k++) if (src[k] === '\n') lineStarts.push(k + 1);

  let i = 0;
  let table: (string | number)[] = [];

  const record = (path: KeyPath, offset: number): void => {
    const id = pathId(path);
    if (positions.has(id)) return;
    let lo = 0;
    let hi = lineStarts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (lineStarts[mid] <= offset) lo = mid;
      else hi = mid - 1;
    }
    positions.set(id, { line: lo + 1, column: offset - lineStarts[lo] + 1 });
  };

  const skipSpaces = (): void => {
    while (i < src.length && (src[i] === ' ' || src[i] === '\t' || src[i] === '\r')) i++;
  };
  /** Skips whitespace, newlines and comments (between array elements, between statements). */
  const skipBlank = (): void => {
    for (;;) {
      skipSpaces();
      if (src[i] === '\n') i++;
      else if (src[i] === '#') while (i < src.length && src[i] !== '\n') i++;
      else return;
    }
  };

  const readBasicString = (): string => {
    // at the opening quote of "..."
    i++;
    let out = '';
    while (i < src.length && src[i] !== '"' && src[i] !== '\n') {
      if (src[i] === '\\') {
        out += readEscape();
      } else out += src[i++];
    }
    if (src[i] === '"') i++;
    return out;
  };
  const readEscape = (): string => {
    // at the backslash
    const c = src[i + 1];
    const simple: Record<string, string> = { b: '\b', t: '\t', n: '\n', f: '\f', r: '\r', e: '\x1b', '"': '"', '\\': '\\' };
    if (c !== undefined && simple[c] !== undefined) {
      i += 2;
      return simple[c];
    }
    const hexLength = c === 'x' ? 2 : c === 'u' ? 4 : c === 'U' ? 8 : 0;
    const hex = src.slice(i + 2, i + 2 + hexLength);
    if (hexLength > 0 && /^[0-9A-Fa-f]+$/.test(hex) && hex.length === hexLength) {
      i += 2 + hexLength;
      const code = parseInt(hex, 16);
      return code <= 0x10ffff ? String.fromCodePoint(code) : '';
    }
    i += 1;
    return '\\';
  };
  const readLiteralString = (): string => {
    i++;
    const start = i;
    while (i < src.length && src[i] !== "'" && src[i] !== '\n') i++;
    const out = src.slice(start, i);
    if (src[i] === "'") i++;
    return out;
  };
  /** Skips a """…""" or '''…''' string, starting at its opening quotes. */
  const skipMultilineString = (quote: string): void => {
    i += 3;
    while (i < src.length) {
      if (quote === '"' && src[i] === '\\') {
        i += 2;
        continue;
      }
      if (src.startsWith(quote.repeat(3), i)) {
        i += 3;
        // Up to two more quotes belong to the content: """a""""" ends with `a""`.
        for (let extra = 0; extra < 2 && src[i] === quote; extra++) i++;
        return;
      }
      i++;
    }
  };

  /** Reads `a . "b" . 'c'` (at its first character) into segments with their offsets. */
  const readKey = (): KeySegment[] => {
    const segments: KeySegment[] = [];
    for (;;) {
      skipSpaces();
      const offset = i;
      let name: string;
      if (src[i] === '"') name = readBasicString();
      else if (src[i] === "'") name = readLiteralString();
      else {
        const start = i;
        while (i < src.length && /[A-Za-z0-9_-]/.test(src[i])) i++;
        name = src.slice(start, i);
        if (i === start) return segments; // not a key: stop without consuming
      }
      segments.push({ name, offset });
      skipSpaces();
      if (src[i] !== '.') return segments;
      i++;
    }
  };

  /** Skips one value, recording the keys of inline tables and the elements of arrays under `path`. */
  const readValue = (path: (string | number)[]): void => {
    skipSpaces();
    const c = src[i];
    if (c === '"' || c === "'") {
      if (src.startsWith(c.repeat(3), i)) skipMultilineString(c);
      else if (c === '"') readBasicString();
      else readLiteralString();
    } else if (c === '[') {
      i++;
      for (let index = 0; ; index++) {
        skipBlank();
        if (i >= src.length || src[i] === ']') break;
        const start = i;
        record([...path, index], i);
        readValue([...path, index]);
        skipBlank();
        if (src[i] === ',') i++;
        else if (i === start) i++; // garbage: make progress
      }
      if (src[i] === ']') i++;
    } else if (c === '{') {
      i++;
      for (;;) {
        skipBlank();
        if (i >= src.length || src[i] === '}') break;
        const start = i;
        readKeyValue(path);
        skipBlank();
        if (src[i] === ',') i++;
        else if (i === start) i++;
      }
      if (src[i] === '}') i++;
    } else {
      // number, boolean, date-time (which may contain one space): ends at a delimiter
      while (i < src.length && !',]}\n#'.includes(src[i])) i++;
    }
  };

  /** Reads `key = value` (at the key) relative to `base`. */
  const readKeyValue = (base: (string | number)[]): void => {
    const segments = readKey();
    if (segments.length === 0) return;
    const path = [...base];
    for (const seg of segments) {
      path.push(seg.name);
      record(path, seg.offset);
    }
    skipSpaces();
    if (src[i] !== '=') return;
    i++;
    readValue(path);
  };

  /** Resolves a header's segments: a prefix that names an array of tables means its latest element. */
  const resolveHeader = (segments: KeySegment[], isTableArray: boolean): (string | number)[] => {
    const path: (string | number)[] = [];
    segments.forEach((seg, k) => {
      path.push(seg.name);
      record(path, seg.offset);
      const last = k === segments.length - 1;
      const count = tableArrays.get(pathId(path));
      if (last && isTableArray) {
        tableArrays.set(pathId(path), (count ?? 0) + 1);
        path.push(count ?? 0);
        record(path, seg.offset); // each [[x]] element is located at its own header
      } else if (count !== undefined) {
        path.push(count - 1);
      }
    });
    return path;
  };

  while (i < src.length) {
    const before = i;
    skipBlank();
    if (i >= src.length) break;
    if (src[i] === '[') {
      const isTableArray = src[i + 1] === '[';
      i += isTableArray ? 2 : 1;
      const segments = readKey();
      if (segments.length > 0) table = resolveHeader(segments, isTableArray);
      while (i < src.length && src[i] !== '\n' && src[i] !== '#') i++;
    } else {
      readKeyValue(table);
      while (i < src.length && src[i] !== '\n' && src[i] !== '#') i++;
    }
    if (i === before) i++;
  }
  return positions;
}
