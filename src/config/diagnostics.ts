/**
 * Config diagnostics: one problem found in `isola.toml`, and how a list of them is printed.
 */

/** One problem in a config file. Errors make the file unusable; warnings do not. */
export interface Diagnostic {
  severity: 'error' | 'warning';
  /** Dotted path of the key concerned, as a user writes it: `functions[1].limits.timeout`; "" for the whole file. */
  key: string;
  /** 1-based line where the key (or, when it is missing, its table) is written; null when unknown. */
  line: number | null;
  /** 1-based column on `line`; null when `line` is null. */
  column: number | null;
  /** What is wrong and, where it helps, how to fix it. One line, no trailing period needed. */
  message: string;
}

/**
 * Orders diagnostics by position (line, then column; unlocated last), keeping the given order
 * among equals. Returns a new array.
 */
export function sortDiagnostics(diagnostics: readonly Diagnostic[]): Diagnostic[] {
  const rank = (d: Diagnostic): [number, number] => [d.line ?? Infinity, d.column ?? 0];
  return diagnostics
    .map((d, index) => ({ d, index }))
    .sort((a, b) => {
      const [la, ca] = rank(a.d);
      const [lb, cb] = rank(b.d);
      return la - lb || ca - cb || a.index - b.index;
    })
    .map(({ d }) => d);
}

/**
 * Formats diagnostics for a terminal, one per line in the given order:
 * `isola.toml:12:3: error: functions[0].limits.timeout: <message>`, followed (when `source` is
 * given and the line is known) by the source line and a caret under the column:
 * ```
 *    12 |   timeout = "30x"
 *       |   ^
 * ```
 * @param diagnostics what to print (see sortDiagnostics for ordering).
 * @param file the name to show for the file, e.g. "isola.toml" or "examples/hello/isola.toml".
 * @param source the file's text; without it only the header lines are printed.
 * @returns the text, lines joined with "\n", no trailing newline ("" for no diagnostics).
 */
export function formatDiagnostics(diagnostics: readonly Diagnostic[], file: string, source?: string): string {
  const lines = source === undefined ? null : source.split('\n').map((l) => l.replace(/\r$/, ''));
  const width = Math.max(0, ...diagnostics.map((d) => String(d.line ?? '').length));
  const out: string[] = [];
  for (const d of diagnostics) {
    const where = d.line === null ? file : d.column === null ? `${file}:${d.line}` : `${file}:${d.line}:${d.column}`;
    out.push(`${where}: ${d.severity}: ${d.key === '' ? '' : `${d.key}: `}${d.message}`);
    const text = lines && d.line !== null ? lines[d.line - 1] : undefined;
    if (text === undefined || d.line === null) continue;
    out.push(`  ${String(d.line).padStart(width)} | ${text}`);
    if (d.column !== null) {
      // Reuse the source's own tabs so the caret lines up whatever the tab width.
      const pad = text.slice(0, d.column - 1).replace(/[^\t]/g, ' ');
      out.push(`  ${' '.repeat(width)} | ${pad}^`);
    }
  }
  return out.join('\n');
}
