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
 * The cache file sits beside the script, named for the V8 version and CPU architecture
 * (`guest.script.js.<arch>-v8-<version>.cache`), and starts with a magic and the sha256 of the V8
 * data: a truncated, corrupt or foreign file is ignored (and replaced), never handed to V8; data V8
 * itself rejects (other flags, another source) is ignored and replaced too.
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
  /** How the code cache was used: `hit` (accepted by V8), `none` (no file), `invalid` (ignored: bad header or checksum), `rejected` (by V8). */
  cache: 'hit' | 'none' | 'invalid' | 'rejected';
  /**
   * Writes the code cache when it was not a hit (call once, after the first request, so that it
   * holds every function compiled so far). Never throws: an unwritable folder only means no cache.
   * @returns true when a cache file was written
   */
  saveCache(): boolean;
}

const MAGIC = Buffer.from('ISOLAGC1');
const HEADER = MAGIC.length + 32;

/** The cache file of the glue script at `scriptPath`, for this V8 version and CPU architecture. */
export function cacheFileOf(scriptPath: string): string {
  return `${scriptPath}.${process.arch}-v8-${process.versions.v8}.cache`;
}

/** The V8 data in a cache file's bytes, or null when the header or checksum is wrong. */
function unwrap(file: Buffer): Buffer | null {
  if (file.length <= HEADER || !file.subarray(0, MAGIC.length).equals(MAGIC)) return null;
  const data = file.subarray(HEADER);
  const sum = createHash('sha256').update(data).digest();
  return sum.equals(file.subarray(MAGIC.length, HEADER)) ? data : null;
}

function readCache(file: string): Buffer | null | undefined {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch {
    return undefined;
  }
  return unwrap(bytes);
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
  const script = new Script(source, { filename, cachedData: cached ?? undefined });
  const cache = cached === undefined ? 'none' : cached === null ? 'invalid' : script.cachedDataRejected ? 'rejected' : 'hit';
  const glue = (script.runInThisContext() as () => Glue)();
  let saved = cache === 'hit';
  return {
    glue,
    cache,
    saveCache() {
      if (saved) return false;
      saved = true;
      const tmp = `${cacheFile}.${process.pid}-${Math.random().toString(36).slice(2)}.tmp`;
      try {
        const data = script.createCachedData();
        const sum = createHash('sha256').update(data).digest();
        writeFileSync(tmp, Buffer.concat([MAGIC, sum, data]));
        renameSync(tmp, cacheFile); // atomic: a reader sees the old file or the whole new one
        return true;
      } catch {
        rmSync(tmp, { force: true });
        return false;
      }
    },
  };
}
