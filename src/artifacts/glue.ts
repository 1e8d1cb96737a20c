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

/**
 * Scans JS source from `p`, skipping string and template literals, tracking bracket depth (starting
 * at `depth`). Returns the index just past the bracket that brings the depth to 0, or, with
 * `semicolon`, just past a `;` at depth 0; -1 when neither comes (or, with `noTemplateExpr`, on a
 * template literal with `${`).
 */
function scanTo(src: string, p: number, depth: number, opts: { semicolon?: boolean; noTemplateExpr?: boolean } = {}): number {
  while (p < src.length) {
    const c = src[p]!;
    if (c === "'" || c === '"' || c === '`') {
      p++;
      while (p < src.length && src[p] !== c) {
        if (src[p] === '\\') p++;
        else if (opts.noTemplateExpr && c === '`' && src[p] === '$' && src[p + 1] === '{') return -1;
        p++;
      }
    } else if (c === '(' || c === '{' || c === '[') depth++;
    else if (c === ')' || c === '}' || c === ']') {
      depth--;
      if (depth === 0 && !opts.semicolon) return p + 1;
    } else if (c === ';' && depth === 0 && opts.semicolon) return p + 1;
    p++;
  }
  return -1;
}

/** Index just past the `)` closing a call whose arguments start at `p`, or -1 (unbalanced, or a template with `${`). */
function callEnd(src: string, p: number): number {
  return scanTo(src, p, 1, { noTemplateExpr: true });
}

function stripStrings(s: string): string {
  return s.replace(/'(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|`[^`]*`/g, "''");
}

/**
 * Makes synchronous host calls direct. jco 1.35's glue wraps every import in component-model
 * async bookkeeping (a subtask per call through `_lowerImportBackwardsCompat`, a task per call
 * inside each `_trampolineN`) that a synchronous wasi 0.2 host never needs; on a small guest it
 * was most of the sandbox thread's time per request. For each host trampoline whose scaffolding
 * has the exact expected shape, this removes the task creation, calls the host function directly
 * (keeping its lifting, lowering, borrow release, error-to-`err` mapping and trap marking), and
 * binds the core import straight to the trampoline. All or nothing: if any trampoline or binding
 * does not match the expected shape, the glue is returned unchanged (`changed: false`).
 */
export function directHostCalls(src: string): { code: string; changed: boolean } {
  const SCAFFOLD = /const hostProvided = true;[\s\S]*?const started = task\.enterSync\(\);/g;
  const TRAMPOLINE = /const _trampoline(\d+) = function\(/g;
  const starts = [...src.matchAll(TRAMPOLINE)].map((m) => ({ n: m[1]!, at: m.index! }));
  if (starts.length === 0) return { code: src, changed: false };
  let out = src;
  // 1. Task scaffolding inside each host trampoline → a no-op task.
  let scaffolds = 0;
  let bad = false;
  out = out.replace(SCAFFOLD, (block) => {
    if (block.length > 4000 || block.includes('_trampoline') || block.includes('hostProvided = false')) bad = true;
    scaffolds++;
    return 'const task = __isolaNoTask;';
  });
  if (bad || scaffolds !== starts.length) return { code: src, changed: false };
  // 2. The host call itself: drop the task-meta and host-operation wrappers.
  const WRAP = /_withGlobalCurrentTaskMeta\(\{\s*componentIdx: task\.componentIdx\(\),\s*taskID: task\.id\(\),\s*fn: \(\) => _trackHostOperation\(\(\) => /g;
  let calls = 0;
  let result = '';
  let last = 0;
  for (const m of out.matchAll(WRAP)) {
    const exprStart = m.index! + m[0].length;
    const exprEnd = scanTo(out, exprStart, 1); // just past the `)` closing _trackHostOperation(
    if (exprEnd < 0) return { code: src, changed: false };
    const tail = /^\s*,\s*\}\)/.exec(out.slice(exprEnd));
    if (!tail) return { code: src, changed: false };
    result += out.slice(last, m.index!) + '(' + out.slice(exprStart, exprEnd - 1) + ')';
    last = exprEnd + tail[0].length;
    calls++;
  }
  result += out.slice(last);
  if (calls !== starts.length) return { code: src, changed: false };
  out = result;
  // 3. Bind each core import straight to its trampoline (no subtask wrapper).
  let binds = 0;
  for (const { n } of starts) {
    const head = `let trampoline${n} = _trampoline${n}.manuallyAsync ?`;
    const at = out.indexOf(head);
    if (at < 0) return { code: src, changed: false };
    const end = scanTo(out, at + head.length, 0, { semicolon: true });
    if (end < 0) return { code: src, changed: false };
    out = out.slice(0, at) + `let trampoline${n} = _trampoline${n};` + out.slice(end);
    binds++;
  }
  if (binds !== starts.length) return { code: src, changed: false };
  const noTask =
    'const __isolaNoTask = { resolve() {}, exit() {}, reject() {}, setErrored() {}, componentIdx() { return -1; }, id() { return 0; }, ' +
    'getParentSubtask() { return null; }, isResolvedState() { return true; } };\n';
  const exportAt = out.indexOf('export function instantiate(');
  if (exportAt < 0) return { code: src, changed: false };
  return { code: out.slice(0, exportAt) + noTask + out.slice(exportAt), changed: true };
}
