/**
 * Post-processing of jco's transpiled glue (jco 1.35, `--instantiation async`). The glue calls
 * `_debugLog(...)` about twice per host call, building its argument objects even when
 * `JCO_DEBUG` is off; on a small guest's hot path that was a third of the sandbox thread's time
 * (bench/ profiles). Removing the call statements changes nothing else: their arguments are
 * string literals and plain object literals without side effects (checked here: a call whose
 * arguments contain an assignment, increment, or a template literal with `${` is kept).
 */

const NEEDLE = '_debugLog(';
const SIDE_EFFECT = /\+\+|--|[^=!<>]=[^=>]/;

/** Returns `src` without its `_debugLog(...)` call statements, and how many were removed. Never throws. */
export function stripDebugLog(src: string): { code: string; removed: number } {
  let out = '';
  let i = 0;
  let removed = 0;
  for (;;) {
    const j = src.indexOf(NEEDLE, i);
    if (j < 0) break;
    const end = callEnd(src, j + NEEDLE.length);
    let k = j - 1;
    while (k >= 0 && (src[k] === ' ' || src[k] === '\t')) k--;
    const atStatementStart = k < 0 || '\n;{}'.includes(src[k]!);
    const call = end < 0 ? '' : src.slice(j, end);
    const safe = end >= 0 && atStatementStart && !SIDE_EFFECT.test(stripStrings(call));
    if (!safe) {
      out += src.slice(i, j + NEEDLE.length);
      i = j + NEEDLE.length;
      continue;
    }
    out += src.slice(i, j);
    i = src[end] === ';' ? end + 1 : end;
    removed++;
  }
  return { code: out + src.slice(i), removed };
}

/** Index just past the `)` closing a call whose arguments start at `p`, or -1 (unbalanced, or a template with `${`). */
function callEnd(src: string, p: number): number {
  let depth = 1;
  while (p < src.length) {
    const c = src[p]!;
    if (c === "'" || c === '"' || c === '`') {
      p++;
      while (p < src.length && src[p] !== c) {
        if (src[p] === '\\') p++;
        else if (c === '`' && src[p] === '$' && src[p + 1] === '{') return -1;
        p++;
      }
    } else if (c === '(' || c === '{' || c === '[') depth++;
    else if (c === ')' || c === '}' || c === ']') {
      depth--;
      if (depth === 0) return p + 1;
    }
    p++;
  }
  return -1;
}

function stripStrings(s: string): string {
  return s.replace(/'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`[^`]*`/g, "''");
}
