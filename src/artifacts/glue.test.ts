import { describe, expect, it } from 'vitest';
import { directExportCalls, directHostCalls, dropCreatedReps, fastByteCopies, stripDebugLog } from './glue.js';

describe('stripDebugLog', () => {
  it('removes call statements with literal arguments', () => {
    const src = "function f(a) {\n  _debugLog('[x] enter', { a, b: [1, 2] });\n  return g(a);\n  _debugLog(\"done\");\n}";
    const r = stripDebugLog(src);
    expect(r.removed).toBe(2);
    expect(r.code).toBe('function f(a) {\n  \n  return g(a);\n  \n}');
  });

  it('keeps the definition, calls inside expressions, and calls with side effects', () => {
    const src = [
      'const _debugLog = (...args) => { console.debug(...args); };',
      'x = y || _debugLog("a");',
      '_debugLog("n", { i: i++ });',
      '_debugLog(`t ${v}`);',
    ].join('\n');
    const r = stripDebugLog(src);
    expect(r.removed).toBe(0);
    expect(r.code).toBe(src);
  });

  it('handles strings containing parentheses and braces', () => {
    const r = stripDebugLog("a();\n_debugLog('(unbalanced {', { s: \"})\" });\nb();");
    expect(r.code).toBe('a();\n\nb();');
  });
});

describe('directHostCalls', () => {
  it('leaves glue it does not recognise unchanged', () => {
    const src = 'export function instantiate() { const _trampoline1 = function() { return 1; }; }';
    expect(directHostCalls(src)).toEqual({ code: src, changed: false });
  });
});

/** jco 1.35's wrapper of a synchronous `incoming-handler.handle` export (componentize-js guest, debug logging stripped). */
const HANDLE_1_35 = `
  function handle$1(arg0, arg1) {
    const hostProvided = false;
    getOrCreateAsyncState(0).throwIfTrapped();
    const [task, _wasm_call_currentTaskID] = createNewCurrentTask({
      componentIdx: 0,
      isAsync: false,
      isManualAsync: false,
      preserveFutureResult: false,
      entryFnName: 'incomingHandler0210Handle',
      getCallbackFn: () => null,
      callbackFnName: null,
      errHandling: 'none',
      callingWasmExport: true,
    });
    task.setCalleeIsAsync(false);
    const started = task.enterSync();
    CURRENT_TASK_MAY_BLOCK.value = task.mayBlock() ? 1 : 0;
    if (null!== null) {
      task.setReturnMemoryIdx(null);
      task.setReturnMemory((() => null)());
    }
    return _withGlobalCurrentTaskMeta({
      taskID: task.id(),
      componentIdx: task.componentIdx(),
      fn: () => {
        try {
          if (!(arg0 instanceof IncomingRequest)) {
            throw new TypeError('Resource error: Not a valid \\"IncomingRequest\\" resource.');
          }
          var handle0 = arg0[symbolRscHandle];
          if (!handle0) {
            const rep = arg0[symbolRscRep] || ++captureCnt5;
            captureTable5.set(rep, arg0);
            handle0 = rscTableCreateOwn(handleTable5, rep);
          }
          if (!(arg1 instanceof ResponseOutparam)) {
            throw new TypeError('Resource error: Not a valid \\"ResponseOutparam\\" resource.');
          }
          var handle1 = arg1[symbolRscHandle];
          if (!handle1) {
            const rep = arg1[symbolRscRep] || ++captureCnt9;
            captureTable9.set(rep, arg1);
            handle1 = rscTableCreateOwn(handleTable9, rep);
          }
          let ret;
          try {
            _withGlobalCurrentTaskMeta({
              taskID: task.id(),
              componentIdx: task.componentIdx(),
              fn: () => incomingHandler0210Handle(handle0, handle1),
            });
          } catch (err) {
            getOrCreateAsyncState(0).markTrapped(err);
            task.setErrored(err);
            task.reject(err);
            task.exit();
            throw err;
          }
          task.resolve([ret]);
          let cstate = getOrCreateAsyncState(0);
          cstate.mayLeave = false;
          postReturn0();
          cstate.mayLeave = true;
          task.exit();
        } catch (err) {
          if (!task.isResolvedState()) {
            task.setErrored(err);
            task.reject(err);
          }
          if (!task.isExited()) { task.exit({ skipExclusiveLockCheck: true }); }
          throw err;
        }
      },
    });
  }
`;
/** Task helpers as jco defines them (abridged): reading the current task is allowed inside them only. */
const HELPERS = `
  function getCurrentTask(componentIdx, taskID) {
    return ASYNC_TASKS_BY_COMPONENT_IDX.get(componentIdx); // it's the current one
  }
  function _lowerImportBackwardsCompat(args) {
    const meta = getCurrentTask(args.componentIdx);
    return meta;
  }
`;
const glueWith = (...parts: string[]) =>
  `export function instantiate(getCoreModule, imports) {\n${HELPERS}${parts.join('\n')}\n  return { handle: handle$1 };\n}\n`;
/** Throws a SyntaxError if `code` (an ES module with one export) does not parse. */
const parses = (code: string) => new Function(code.replace('export function', 'function'));

describe('directExportCalls', () => {
  it('calls a synchronous export directly, keeping the trap check, the lowering, trap marking and post-return', () => {
    const r = directExportCalls(glueWith(HANDLE_1_35));
    expect(r.changed).toBe(true);
    expect(() => parses(r.code)).not.toThrow();
    const fn = r.code.slice(r.code.indexOf('function handle$1('));
    expect(fn).not.toMatch(/createNewCurrentTask|_withGlobalCurrentTaskMeta|\btask\b/);
    expect(fn).toContain('getOrCreateAsyncState(0).throwIfTrapped();');
    expect(fn).toContain('handle0 = rscTableCreateOwn(handleTable5, rep);');
    expect(fn).toContain('handle1 = rscTableCreateOwn(handleTable9, rep);');
    expect(fn).toMatch(/try \{\s*incomingHandler0210Handle\(handle0, handle1\);\s*\} catch \(err\) \{\s*getOrCreateAsyncState\(0\)\.markTrapped\(err\);\s*throw err;/);
    expect(fn).toMatch(/cstate\.mayLeave = false;\s*postReturn0\(\);\s*cstate\.mayLeave = true;/);
  });

  it('also handles an export without post-return', () => {
    const noPost = HANDLE_1_35.replace(/\s*let cstate = [^]*?cstate\.mayLeave = true;/, '');
    expect(noPost).not.toContain('postReturn0');
    const r = directExportCalls(glueWith(noPost));
    expect(r.changed).toBe(true);
    expect(() => parses(r.code)).not.toThrow();
  });

  it.each([
    ['an async-lifted export', (w: string) => w.replace('isAsync: false', 'isAsync: true')],
    ['an export with a callback', (w: string) => w.replace('getCallbackFn: () => null', 'getCallbackFn: () => cb0')],
    ['an export that returns a value', (w: string) => w.replace('          try {\n            _withGlobal', '          try {\n            ret = _withGlobal')],
    ['an export that lends a borrow', (w: string) => w.replace('handle1 = rscTableCreateOwn(handleTable9, rep);', 'handle1 = rscTableCreateBorrow(handleTable9, rep, task.resourceScopeId());')],
    ['a return pointer', (w: string) => w.replace('if (null!== null)', 'if (0!== null)')],
    ['different trap handling', (w: string) => w.replace('task.reject(err);\n            task.exit();', 'task.exit();')],
  ])('leaves the glue unchanged for %s', (_what, mutate) => {
    const mutated = mutate(HANDLE_1_35);
    expect(mutated).not.toBe(HANDLE_1_35);
    const src = glueWith(mutated);
    expect(directExportCalls(src)).toEqual({ code: src, changed: false });
  });

  it('is all or nothing over several exports', () => {
    const other = HANDLE_1_35.replace('function handle$1(', 'function run(').replace('isAsync: false', 'isAsync: true');
    const src = glueWith(HANDLE_1_35, other);
    expect(directExportCalls(src)).toEqual({ code: src, changed: false });
  });

  it('refuses while an import still reads the current task', () => {
    const src = glueWith(HANDLE_1_35, '  const trampoline3 = (...a) => _lowerImportBackwardsCompat({ componentIdx: 0 }, ...a);');
    expect(directExportCalls(src)).toEqual({ code: src, changed: false });
    const ctx = glueWith(HANDLE_1_35, '  function contextGet() { return getCurrentTask(0).task.storage[0]; }');
    expect(directExportCalls(ctx)).toEqual({ code: ctx, changed: false });
  });

  it('leaves glue without export wrappers unchanged', () => {
    const src = glueWith('  function handle$1() {}');
    expect(directExportCalls(src)).toEqual({ code: src, changed: false });
  });
});

describe('dropCreatedReps', () => {
  const TABLE = `
  function rscTableCreateOwn(table, rep) {
    const free = table[0] & ~T_FLAG;
    table._createdReps.add(rep);
    return free;
  }
  const handleTable2 = [T_FLAG, 0];
  handleTable2._createdReps = new Set();
`;
  it('removes the write-only Set add', () => {
    const r = dropCreatedReps(TABLE);
    expect(r.changed).toBe(true);
    expect(r.code).not.toContain('.add(rep)');
    expect(r.code).toContain('const free = table[0] & ~T_FLAG;\n    return free;');
  });
  it('leaves the glue unchanged when something reads the Set', () => {
    const src = TABLE + '  function resourceTransferBorrow(t, rep) { if (t._createdReps.has(rep)) return rep; }\n';
    expect(dropCreatedReps(src)).toEqual({ code: src, changed: false });
  });
});

describe('fastByteCopies', () => {
  const SRC = 'export function instantiate() {\n  var result4 = new Uint8Array(memory0.buffer.slice(ptr4, ptr4 + len4 * 1));\n}\n';
  it('rewrites each list<u8> copy to the helper', () => {
    const r = fastByteCopies(SRC);
    expect(r).toMatchObject({ changed: true, sites: 1 });
    expect(r.code).toContain('var result4 = __isolaBytes(memory0, ptr4, len4 * 1);');
  });
  it('copies exactly what ArrayBuffer#slice copies, in range or not', () => {
    const { code } = fastByteCopies(SRC);
    const helper = code.slice(0, code.indexOf('export function'));
    const bytes = new Function(`${helper}; return __isolaBytes;`)() as (m: WebAssembly.Memory, p: number, l: number) => Uint8Array;
    const memory = new WebAssembly.Memory({ initial: 1 });
    new Uint8Array(memory.buffer).forEach((_, i, a) => (a[i] = i * 7));
    for (const [ptr, len] of [[0, 0], [5, 12], [65530, 6], [65530, 20], [70000, 4], [-3, 2], [-3, 5]] as const) {
      const got = bytes(memory, ptr, len);
      const want = new Uint8Array(memory.buffer.slice(ptr, ptr + len));
      expect([...got], `${ptr}+${len}`).toEqual([...want]);
      expect(got.byteOffset).toBe(0);
      expect(got.buffer.byteLength).toBe(want.byteLength);
      expect(got.buffer).not.toBe(memory.buffer);
    }
  });
  it('leaves glue without such copies unchanged', () => {
    const src = 'export function instantiate() { return new Uint8Array(memory0.buffer, p, n); }';
    expect(fastByteCopies(src)).toEqual({ code: src, changed: false, sites: 0 });
  });
});
