/**
 * Loads a function's jco glue inside a sandbox from its script form (`guest.script.js`, written at
 * artifact preparation by ../artifacts/glue-script.ts) with a V8 code cache kept beside it.
 *
 * A fresh thread that `import()`s the glue module parses and compiles ~6–15k lines of JS, then
 * compiles each function lazily as instantiation and the first request reach it: ~15–25 ms of a
 * small component's first request on a blank sandbox (issue 5). Node 20 has no compile cache for
 * modules; a `vm.Script` takes V8 cached data. The first sandbox to load a glue without a usable
 * cache writes one after its first request (`saveCache`), so it holds the bytecode of every
 * function that request ran; later sandboxes, in this process or the next, start from it.
 *
 * A component that never ran gets a first, partial cache ahead of its first request
 * (`primeGlueCache`, in a throwaway thread after deploy, ./glue-prime.ts): jco's instantiation run
 * against stand-ins for the core modules and the host, so no guest code runs; it holds what
 * instantiation and a call of every import and export compile. Sandboxes keep it: the worker
 * writes a cache after a first request only when it loaded none it could use (./worker.ts).
 *
 * The cache file sits beside the script, named for the V8 version and CPU architecture
 * (`guest.script.js.<arch>-v8-<version>.cache`), and starts with a magic (which also says full or
 * partial) and the sha256 of the V8 data: a truncated, corrupt or foreign file is ignored (and
 * replaced), never handed to V8; data V8 itself rejects (other flags, another source) is ignored
 * and replaced too.
 */
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { Script } from 'node:vm';
import { fileURLToPath } from 'node:url';

/** The glue's one export isola calls (jco `--instantiation async`). */
export interface Glue {
  /**
   * @param get returns a compiled core module by file name (`guest.core.wasm`, …)
   * @param imports the host's interfaces by unversioned name (`wasi:http/types`, …)
   * @param instantiateCore instantiates one core module; may return the instance itself, in which
   *   case jco's instantiation runs synchronously and the returned promise is already settled
   * @returns the component's exports
   */
  instantiate: (
    get: (name: string) => WebAssembly.Module,
    imports: unknown,
    instantiateCore?: (m: WebAssembly.Module, imports: WebAssembly.Imports) => WebAssembly.Instance | Promise<WebAssembly.Instance>,
  ) => Promise<Record<string, unknown>> | Record<string, unknown>;
}

/** A glue loaded by `loadGlue`. */
export interface LoadedGlue {
  glue: Glue;
  /**
   * How the code cache was used: `hit` (a full one, accepted by V8), `partial` (a primed one,
   * accepted), `none` (no file), `invalid` (ignored: bad header or checksum), `rejected` (by V8).
   */
  cache: 'hit' | 'partial' | 'none' | 'invalid' | 'rejected';
  /**
   * Writes a full code cache unless one was a hit (call once, after the first request, so that it
   * holds every function compiled so far). Never throws: an unwritable folder only means no cache.
   * @returns true when a cache file was written; false on a hit, a second call, or a failed write
   */
  saveCache(): boolean;
}

/** Magic of a full cache (written after a request) and of a primed, partial one. */
const FULL = Buffer.from('ISOLAGC1');
const PARTIAL = Buffer.from('ISOLAGC0');
const HEADER = FULL.length + 32;

/** The cache file of the glue script at `scriptPath`, for this V8 version and CPU architecture. */
export function cacheFileOf(scriptPath: string): string {
  return `${scriptPath}.${process.arch}-v8-${process.versions.v8}.cache`;
}

/** The V8 data in a cache file's bytes and whether it is full, or null when the header or checksum is wrong. */
function unwrap(file: Buffer): { data: Buffer; full: boolean } | null {
  const magic = file.subarray(0, FULL.length);
  if (file.length <= HEADER || !(magic.equals(FULL) || magic.equals(PARTIAL))) return null;
  const data = file.subarray(HEADER);
  const sum = createHash('sha256').update(data).digest();
  return sum.equals(file.subarray(FULL.length, HEADER)) ? { data, full: magic.equals(FULL) } : null;
}

/** The cache in `file`: undefined when there is none, null when it is not valid. */
function readCache(file: string): { data: Buffer; full: boolean } | null | undefined {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch {
    return undefined;
  }
  return unwrap(bytes);
}

/** Writes `script`'s code cache to `file` (temporary file, then rename). Never throws; false when it failed. */
function writeCache(script: Script, file: string, full: boolean): boolean {
  const tmp = `${file}.${process.pid}-${Math.random().toString(36).slice(2)}.tmp`;
  try {
    const data = script.createCachedData();
    const sum = createHash('sha256').update(data).digest();
    writeFileSync(tmp, Buffer.concat([full ? FULL : PARTIAL, sum, data]));
    renameSync(tmp, file); // atomic: a reader sees the old file or the whole new one
    return true;
  } catch {
    rmSync(tmp, { force: true });
    return false;
  }
}

/**
 * Loads the glue's script form (a file URL; ../artifacts/glue-script.ts writes it) with its code
 * cache (see the module doc).
 * @param filename the name stack traces give the glue's frames (its module URL)
 * @throws what reading or evaluating the script throws (a missing file, a syntax error)
 */
export function loadGlue(scriptUrl: string, filename = scriptUrl): LoadedGlue {
  const scriptPath = fileURLToPath(scriptUrl);
  const source = readFileSync(scriptPath, 'utf8');
  const cacheFile = cacheFileOf(scriptPath);
  const cached = readCache(cacheFile);
  const script = new Script(source, { filename, cachedData: cached?.data });
  const cache = cached === undefined ? 'none' : cached === null ? 'invalid' : script.cachedDataRejected ? 'rejected' : cached.full ? 'hit' : 'partial';
  const glue = (script.runInThisContext() as () => Glue)();
  let saved = cache === 'hit';
  return {
    glue,
    cache,
    saveCache() {
      if (saved) return false;
      saved = true;
      return writeCache(script, cacheFile, true);
    },
  };
}

/**
 * Runs the loader's first-use costs ahead of a bind (for blank sandboxes): a thread's first sha256
 * initialises its hashing (~0.5 ms), and its first `vm.Script` given cached data sets up that path
 * (~0.3 ms). Never throws.
 */
export function warmGlueLoader(): void {
  try {
    createHash('sha256').update(FULL).digest();
    (new Script('(function () { return 0; })', { cachedData: Buffer.alloc(64) }).runInThisContext() as () => number)();
  } catch {
    /* only a warm-up */
  }
}

/** A function, usable as a class, whose every property (and every call's or construction's result) is another one. */
function standIn(): unknown {
  const f = function () {};
  const p: unknown = new Proxy(f, {
    get: (_t, key) => (key === 'then' ? undefined : key === Symbol.toPrimitive ? () => 0 : p),
    apply: () => p,
    construct: () => p as object,
  });
  return p;
}

/** Calls `fn` with `args`, ignoring what it returns or throws (a rejected promise included). */
function tryCall(fn: unknown, args: unknown[]): void {
  try {
    const r = (fn as (...a: unknown[]) => unknown)(...args);
    if (r instanceof Promise) r.catch(() => {});
  } catch {
    /* a stand-in did not do */
  }
}

/**
 * Writes a partial code cache for the glue script unless a valid cache exists, without running any
 * Wasm or guest code: loads the script and runs jco's instantiation against stand-ins for the core
 * modules, their instances and the host; then, since V8 compiles a function when it is first
 * called even if it throws at once, calls every function the glue gives the core modules as
 * imports and every function it exports, with stand-in arguments. The cache is written after
 * instantiation and again after those calls (the first file stays if they never return). Run it
 * in a throwaway thread (./glue-prime.ts): the glue's top level runs in the calling isolate.
 * @param filename the name stack traces give the glue's frames (its module URL)
 * @returns true when a cache file was written
 * @throws when the script cannot be read or compiled
 */
export function primeGlueCache(scriptUrl: string, filename = scriptUrl): boolean {
  const scriptPath = fileURLToPath(scriptUrl);
  const cacheFile = cacheFileOf(scriptPath);
  if (readCache(cacheFile)) return false;
  const script = new Script(readFileSync(scriptPath, 'utf8'), { filename });
  const coreImports: unknown[] = [];
  let exports: unknown = null;
  try {
    const glue = (script.runInThisContext() as () => Glue)();
    const fake = standIn() as WebAssembly.Module;
    const result = glue.instantiate(() => fake, standIn(), (_m, imports) => {
      coreImports.push(imports);
      return { exports: standIn() } as unknown as WebAssembly.Instance;
    });
    if (result instanceof Promise) result.catch(() => {});
    else exports = result;
  } catch {
    /* a stand-in did not do: cache what compiled until then */
  }
  const written = writeCache(script, cacheFile, false);
  const functionsOf = (o: unknown): unknown[] =>
    o !== null && typeof o === 'object' ? Object.values(o).flatMap((v) => (typeof v === 'function' ? [v] : functionsOf(v))) : [];
  const zeros = Array.from({ length: 16 }, () => 0);
  for (const imports of coreImports) for (const fn of functionsOf(imports)) tryCall(fn, zeros);
  for (const fn of functionsOf(exports)) tryCall(fn, [standIn(), standIn()]);
  return writeCache(script, cacheFile, false) || written;
}
