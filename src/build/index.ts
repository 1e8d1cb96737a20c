/**
 * `isola build`'s engine: a function's entry (TypeScript or JavaScript, Workers-style
 * `export default { fetch }` or an explicit wasi:http `incomingHandler`) → a wasi:http component.
 *
 *   entry ──esbuild (bundle.ts)──► one ES module ──hash──► cached? copy : componentize-js ──► out.wasm
 *
 * The cache key is the hash of the bundle (so every imported file and package counts, and an
 * unchanged bundle is never rebuilt), the tool versions and the WIT (component.ts).
 */
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, extname, join, relative, resolve } from 'node:path';
import { IsolaError } from '../errors.js';
import { bundle, BundleError } from './bundle.js';
import { buildKey, componentize, ComponentizeError, fromSharedCache, readBuildHash, toSharedCache, writeAtomic } from './component.js';
import { prepareWit } from './wit.js';

export { BUILD_HASH_SECTION, readBuildHash } from './component.js';

/** Options of {@link buildFunction}. */
export interface BuildOptions {
  /** Rebuild even when the output (or the shared cache) holds this build already. */
  force?: boolean;
  /** Receives progress lines (default: none). */
  log?: (line: string) => void;
  /** Directory that file names in messages are relative to (default: the process's cwd). */
  cwd?: string;
}

/** What a build did. */
export interface BuildResult {
  /** Absolute path of the component written. */
  out: string;
  /** "built" (componentize-js ran), "cached" (copied from the shared cache), "up-to-date" (output untouched). */
  status: 'built' | 'cached' | 'up-to-date';
  /** The build hash (sha256 hex) recorded in the component. */
  hash: string;
  /** Wall time of the whole build, ms. */
  ms: number;
  /** Size of the component, bytes. */
  bytes: number;
  /** Absolute paths of the files the bundle was made from. */
  inputs: string[];
}

/** The output path `isola build` picks when -o is not given: dist/<entry name without extension>.wasm, relative to the working directory. */
export function defaultOutput(entry: string): string {
  return join('dist', `${basename(entry, extname(entry))}.wasm`);
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/**
 * Builds the function at `entry` into a wasi:http component at `out`, unless up to date.
 *
 * @throws IsolaError ERR_BUILD_FAILED (user error) when the entry is missing, does not bundle
 *   (message lists each problem as file:line:column with the source line) or does not
 *   componentize (componentize-js's message, e.g. an exception thrown at the module's top level)
 */
export async function buildFunction(entry: string, out: string, options: BuildOptions = {}): Promise<BuildResult> {
  const { force = false, log = () => {}, cwd = process.cwd() } = options;
  const started = performance.now();
  const entryPath = resolve(cwd, entry);
  const outPath = resolve(cwd, out);
  const shownEntry = relative(cwd, entryPath) || entryPath;
  const shownOut = relative(cwd, outPath) || outPath;
  try {
    if (!(await stat(entryPath)).isFile()) throw new Error('not a file');
  } catch {
    throw new IsolaError('ERR_BUILD_FAILED', `cannot build ${shownEntry}: no such file`, {
      user: true, hint: 'give the path of the function\'s entry module, e.g. `isola build src/index.ts`',
    });
  }

  const wit = await prepareWit();
  let bundled;
  try {
    bundled = await bundle(entryPath, wit.wasiVersion, cwd);
  } catch (err) {
    if (!(err instanceof BundleError)) throw err;
    throw new IsolaError('ERR_BUILD_FAILED', `cannot bundle ${shownEntry}:\n${err.message}`, {
      user: true, hint: 'fix the code at the position shown', details: { entry: entryPath, errors: err.messages },
    });
  }
  for (const w of bundled.warnings) log(w);
  const key = await buildKey(bundled.code);
  const done = async (status: BuildResult['status']): Promise<BuildResult> => {
    const { size } = await stat(outPath);
    return { out: outPath, status, hash: key.hash, ms: performance.now() - started, bytes: size, inputs: bundled.inputs };
  };

  if (!force && (await readBuildHash(outPath)) === key.hash) {
    log(`${shownOut} is up to date (${key.hash.slice(0, 12)})`);
    return done('up-to-date');
  }
  if (!force && (await fromSharedCache(key.hash, outPath))) {
    log(`${shownOut}: reused an identical earlier build (${key.hash.slice(0, 12)})`);
    return done('cached');
  }

  log(`building ${shownEntry} with ${key.tools} (wasi ${key.wasiVersion})…`);
  const dir = await mkdtemp(join(tmpdir(), 'isola-build-'));
  let component: Buffer;
  try {
    const source = join(dir, `${basename(entryPath, extname(entryPath))}.js`);
    await writeFile(source, bundled.code);
    component = await componentize(source, key);
  } catch (err) {
    if (!(err instanceof ComponentizeError)) throw err;
    throw new IsolaError('ERR_BUILD_FAILED', `cannot build ${shownEntry} into a component:\n${err.message}`, {
      user: true,
      hint: 'an error thrown while the module loads (its top level runs at build time) is reported here; move request work into fetch()',
      details: { entry: entryPath },
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  await writeAtomic(outPath, component);
  await toSharedCache(key.hash, component);
  const result = await done('built');
  log(`wrote ${shownOut} (${(result.bytes / 1e6).toFixed(1)} MB) in ${seconds(result.ms)}`);
  return result;
}
