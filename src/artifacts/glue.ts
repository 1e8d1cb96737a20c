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
 * Scans JS source from `p`, skipping comments and string and template literals, tracking bracket depth (starting
 * at `depth`). Returns the index just past the bracket that brings the depth to 0, or, with
 * `semicolon`, just past a `;` at depth 0; -1 when neither comes (or, with `noTemplateExpr`, on a
 * template literal with `${`).
 */
function scanTo(src: string, p: number, depth: number, opts: { semicolon?: boolean; noTemplateExpr?: boolean } = {}): number {
  while (p < src.length) {
    const c = src[p]!;
    if (c === '/' && (src[p + 1] === '/' || src[p + 1] === '*')) {
      // A comment (it may hold an apostrophe): skip it.
      const end = src[p + 1] === '/' ? src.indexOf('\n', p) : src.indexOf('*/', p + 2);
      if (end < 0) return -1;
      p = src[p + 1] === '/' ? end : end + 2;
      continue;
    }
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

/** A regex source matching `text` literally, with any run of whitespace in it matching `\s*`. */
function loose(text: string): string {
  return text
    .trim()
    .split(/\s+/)
    .map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('\\s*');
}

/** Places in the glue that read the current task; allowed only inside these helpers' own definitions. */
const TASK_READERS = ['getCurrentTask(', '_getGlobalCurrentTaskMeta('];
/** Helpers that read the current task; they must have no call sites left (only their definitions). */
const TASK_READING_HELPERS = ['getCurrentTask', '_getGlobalCurrentTaskMeta', '_lowerImportBackwardsCompat', '_suspendingImport'];

/**
 * Makes synchronous export calls direct. jco 1.35 wraps each call into a guest export in a
 * component-model task: an `AsyncTask` (two promises, several closures and arrays), a per-instance
 * exclusive lock, a resource-borrow scope, and two `_withGlobalCurrentTaskMeta` frames that publish
 * the task to imports. For a synchronous (non-async-lifted) export whose parameters are owned
 * handles or plain values and which returns nothing (wasi:http's `incoming-handler.handle`), none of
 * it is observable once the host imports are direct (`directHostCalls`): no borrow is lent, there
 * is no return value to lift or post-return callback to register, and nothing reads the current task.
 *
 * Kept exactly: the "instance already trapped" check on entry, the lowering of the arguments
 * (resource handles into the instance's tables), marking the instance trapped when the guest traps
 * (then rethrowing the trap), and the post-return call with its `mayLeave` guard.
 *
 * All or nothing: returns the glue unchanged (`changed: false`) unless every export wrapper has the
 * exact expected shape and no code outside the task helpers' own definitions reads the current
 * task (e.g. an async import, `context.get`, or an import that was not made direct). Never throws.
 */
export function directExportCalls(src: string): { code: string; changed: boolean } {
  const unchanged = { code: src, changed: false };
  const MARK = 'const hostProvided = false;';
  const wrappers = src.split(MARK).length - 1;
  if (wrappers === 0) return unchanged;
  // Nothing may read the current task except inside the task helpers themselves, and those helpers
  // must not be called at all (after directHostCalls they are not).
  const definitions: Array<[number, number]> = [];
  for (const name of TASK_READING_HELPERS) {
    const def = new RegExp(`function ${name}\\(`).exec(src);
    if (!def) continue;
    const bodyAt = src.indexOf('{', def.index);
    const end = bodyAt < 0 ? -1 : scanTo(src, bodyAt + 1, 1);
    if (end < 0) return unchanged;
    definitions.push([def.index, end]);
  }
  const insideDefinition = (at: number) => definitions.some(([a, b]) => at >= a && at < b);
  for (const needle of [...TASK_READERS, ...TASK_READING_HELPERS.map((n) => `${n}(`)]) {
    for (let at = src.indexOf(needle); at >= 0; at = src.indexOf(needle, at + 1)) {
      const before = src[at - 1] ?? ' ';
      if (/[\w$.]/.test(before)) continue; // part of a longer name, or a method call
      if (!insideDefinition(at)) return unchanged;
    }
  }

  const HEAD =
    `function ([\\w$]+)\\(([\\w$, ]*)\\)\\s*\\{\\s*` +
    loose(MARK) + '\\s*' +
    loose('getOrCreateAsyncState(') + '(\\d+)' + loose(').throwIfTrapped();') + '\\s*' +
    loose('const [task, _wasm_call_currentTaskID] = createNewCurrentTask({') + '([^{}]*?)' + loose('});') + '\\s*' +
    loose(`task.setCalleeIsAsync(false);
      const started = task.enterSync();
      CURRENT_TASK_MAY_BLOCK.value = task.mayBlock() ? 1 : 0;
      if (null!== null) { task.setReturnMemoryIdx(null); task.setReturnMemory((() => null)()); }
      return _withGlobalCurrentTaskMeta({ taskID: task.id(), componentIdx: task.componentIdx(), fn: () => { try {`);
  const CALL =
    loose('let ret; try { _withGlobalCurrentTaskMeta({ taskID: task.id(), componentIdx: task.componentIdx(), fn: () =>') +
    '\\s*([\\w$]+)\\(([\\w$, ]*)\\),\\s*' +
    loose('}); } catch (err) { getOrCreateAsyncState(') + '(\\d+)' +
    loose(').markTrapped(err); task.setErrored(err); task.reject(err); task.exit(); throw err; } task.resolve([ret]);');
  const POST_RETURN =
    '(?:' + loose('let cstate = getOrCreateAsyncState(') + '(\\d+)' + loose('); cstate.mayLeave = false;') +
    '\\s*(postReturn\\d+)\\(\\);\\s*' + loose('cstate.mayLeave = true;') + ')?';
  const TAIL = loose(`task.exit();
      } catch (err) {
        if (!task.isResolvedState()) { task.setErrored(err); task.reject(err); }
        if (!task.isExited()) { task.exit({ skipExclusiveLockCheck: true }); }
        throw err;
      }
    }, }); }`);
  const WRAPPER = new RegExp(HEAD + '([\\s\\S]*?)' + CALL + '\\s*' + POST_RETURN + '\\s*' + TAIL, 'g');

  let done = 0;
  let bad = false;
  const out = src.replace(WRAPPER, (whole, name: string, params: string, idx: string, taskArgs: string, lower: string,
    callee: string, args: string, idx2: string, idx3: string | undefined, postReturn: string | undefined) => {
    done++;
    const flags = ['isAsync: false', 'isManualAsync: false', 'getCallbackFn: () => null', 'callingWasmExport: true', `componentIdx: ${idx},`];
    if (
      whole.split(MARK).length !== 2 ||
      idx2 !== idx || (idx3 !== undefined && idx3 !== idx) ||
      !flags.every((f) => taskArgs.includes(f)) ||
      /\btask\b|\bret\b|\breturn\b|\bawait\b|[Bb]orrow|[Ll]ender|[Ss]cope/.test(lower)
    ) {
      bad = true;
      return whole;
    }
    const post = postReturn
      ? `\n    let cstate = getOrCreateAsyncState(${idx});\n    cstate.mayLeave = false;\n    ${postReturn}();\n    cstate.mayLeave = true;`
      : '';
    return (
      `function ${name}(${params}) {\n` +
      `    // isola: direct synchronous export call (src/artifacts/glue.ts directExportCalls)\n` +
      `    getOrCreateAsyncState(${idx}).throwIfTrapped();\n` +
      `    CURRENT_TASK_MAY_BLOCK.value = 0;\n` +
      `    ${lower.trim()}\n` +
      `    try {\n      ${callee}(${args});\n    } catch (err) {\n      getOrCreateAsyncState(${idx}).markTrapped(err);\n      throw err;\n    }` +
      post +
      `\n  }`
    );
  });
  if (bad || done !== wrappers) return unchanged;
  return { code: out, changed: true };
}

/**
 * Stops jco 1.35's resource tables from remembering every resource ever handed to the guest.
 * `rscTableCreateOwn` adds each new rep to `table._createdReps`, a Set that nothing removes from;
 * rep numbers never repeat, so in a reused instance the Set grows by a few entries per request
 * (a leak, and on a small guest the most expensive line of the glue). The only reader jco has,
 * `resourceTransferBorrow` (borrows passed between components of one composition), is absent from
 * the glue of a single component. Removes the `add` only when every other mention of
 * `_createdReps` is an initialisation to an empty Set; otherwise returns the glue unchanged
 * (`changed: false`). Never throws.
 */
export function dropCreatedReps(src: string): { code: string; changed: boolean } {
  const ADD = /(function rscTableCreateOwn\(table, rep\) \{[^{}]*?)\n[ \t]*table\._createdReps\.add\(rep\);/;
  const m = ADD.exec(src);
  if (!m) return { code: src, changed: false };
  const mentions = src.split('_createdReps').length - 1;
  const inits = src.match(/\b[\w$]+\._createdReps = new Set\(\);/g)?.length ?? 0;
  if (mentions !== inits + 1) return { code: src, changed: false };
  return { code: src.slice(0, m.index) + m[1] + src.slice(m.index + m[0].length), changed: true };
}

/**
 * jco's glue with the per-call debug logging, the async-task bookkeeping around host imports and
 * export calls, and the resource-table leak removed, and with cheaper byte copies (the transforms
 * above). Each transform is all or nothing (the byte copies: per site) and leaves glue it does not
 * recognise as it was; the export transform also refuses while any import still reads the current
 * task. Set ISOLA_JCO_GLUE=plain to keep the glue exactly as jco wrote it (for comparison and as an
 * escape hatch; prepared artifacts are cached, so clear `data_dir/artifacts` after changing it).
 * Never throws.
 */
export function leanGlue(glue: string): string {
  if (process.env.ISOLA_JCO_GLUE === 'plain') return glue;
  let code = directHostCalls(stripDebugLog(glue).code).code;
  code = directExportCalls(code).code; // refuses while any import still reads the current task
  return fastByteCopies(dropCreatedReps(code).code).code;
}

/**
 * Copies of guest bytes without a new ArrayBuffer each. jco lifts every `list<u8>` argument (a
 * header value, a body chunk) as `new Uint8Array(memoryN.buffer.slice(ptr, ptr + len * 1))`:
 * `ArrayBuffer.prototype.slice` allocates an off-heap backing store that V8 must track and sweep
 * (0.5–1 µs per small copy here, much of it on GC helper threads), whereas
 * `new Uint8Array(buffer, ptr, len).slice()` copies small arrays into the JS heap (~70 ns). Each
 * such expression becomes `__isolaBytes(memoryN, ptr, len * 1)`, which returns the same thing (a
 * fresh Uint8Array of its own, offset 0), and falls back to the original expression whenever the
 * range is not entirely inside the memory (where `slice` clamps rather than throws). Sites that do
 * not have this exact shape are left alone; `changed` says whether any was rewritten. Never throws.
 */
export function fastByteCopies(src: string): { code: string; changed: boolean; sites: number } {
  const SITE = /new Uint8Array\((memory\d+)\.buffer\.slice\(([\w$]+), \2 \+ ([\w$]+) \* 1\)\)/g;
  let sites = 0;
  const code = src.replace(SITE, (_m, mem: string, ptr: string, len: string) => {
    sites++;
    return `__isolaBytes(${mem}, ${ptr}, ${len} * 1)`;
  });
  if (sites === 0) return { code: src, changed: false, sites: 0 };
  const exportAt = code.indexOf('export function instantiate(');
  if (exportAt < 0 || code.includes('function __isolaBytes(')) return { code: src, changed: false, sites: 0 };
  const helper =
    'function __isolaBytes(memory, ptr, len) {\n' +
    '  const buffer = memory.buffer;\n' +
    '  if (ptr >= 0 && ptr + len <= buffer.byteLength) return new Uint8Array(buffer, ptr, len).slice();\n' +
    '  return new Uint8Array(buffer.slice(ptr, ptr + len));\n' +
    '}\n';
  return { code: code.slice(0, exportAt) + helper + code.slice(exportAt), changed: true, sites };
}
