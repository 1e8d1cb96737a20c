/**
 * The WIT a JS guest is built against, and where the build tools live.
 *
 * A guest is built for the wasi:http version that componentize-js's engine (StarlingMonkey)
 * itself imports and exports. That version is read from the engine binary, and the WIT for it is
 * generated from the WASI 0.2.x WIT that jco bundles, with the package versions rewritten (WASI
 * 0.2.x releases are semver-compatible, so an older patch version is a subset of a newer one).
 */
import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The isola installation's root directory (holds package.json, node_modules, sdk/). */
export const ISOLA_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** The world every guest is built for (generated into the WIT directory by {@link prepareWit}). */
export const WORLD = 'isola:guest/http-guest';

/** The WASI packages the generated WIT needs (directory names in jco's bundled WIT). */
const WASI_PACKAGES = ['wasi-cli', 'wasi-clocks', 'wasi-filesystem', 'wasi-http', 'wasi-io', 'wasi-random', 'wasi-sockets'];

/** The newest WASI 0.2.x WIT snapshot that jco bundles (the source the WIT is generated from). */
const JCO_WIT_VERSION = '0.2.12';

/** Where isola keeps generated files (WIT, the shared component cache); safe to delete. */
export const TOOL_CACHE = join(ISOLA_ROOT, 'node_modules', '.cache', 'isola');

function isPackageRoot(dir: string, name: string): boolean {
  try {
    return (JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: string }).name === name;
  } catch {
    return false;
  }
}

/** The directory of the installed package `name` (found from its resolved entry point). */
export function packageDir(name: string): string {
  let dir = dirname(fileURLToPath(import.meta.resolve(name)));
  while (!isPackageRoot(dir, name)) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find the package directory of ${name}`);
    dir = parent;
  }
  return dir;
}

/** The installed version of package `name` (from its package.json). */
export async function packageVersion(name: string): Promise<string> {
  return (JSON.parse(await readFile(join(packageDir(name), 'package.json'), 'utf8')) as { version: string }).version;
}

/**
 * The wasi:http version (e.g. "0.2.10") that componentize-js's engine imports and exports, read
 * from the interface names embedded in the engine binary.
 *
 * @throws Error when the engine names no version or several
 */
export async function engineWasiVersion(): Promise<string> {
  const engine = await readFile(join(packageDir('@bytecodealliance/componentize-js'), 'lib', 'starlingmonkey_embedding.wasm'));
  const found = new Set<string>();
  const needle = Buffer.from('wasi:http/incoming-handler@');
  for (let at = engine.indexOf(needle); at !== -1; at = engine.indexOf(needle, at + 1)) {
    const tail = engine.subarray(at + needle.length, at + needle.length + 16).toString('latin1');
    const m = /^\d+\.\d+\.\d+/.exec(tail);
    if (m) found.add(m[0]);
  }
  if (found.size !== 1) {
    throw new Error(`cannot tell which wasi:http version componentize-js's engine uses (found: ${[...found].join(', ') || 'none'})`);
  }
  return [...found][0]!;
}

/** A generated WIT directory. */
export interface PreparedWit {
  /** Absolute directory holding world.wit and deps/. */
  dir: string;
  /** sha256 of the WIT text (part of every build's cache key). */
  digest: string;
  /** The WASI version the WIT declares (the engine's). */
  wasiVersion: string;
}

let prepared: Promise<PreparedWit> | undefined;

/**
 * Writes (once per process; reused across processes) the WIT to build guests against. The root
 * package `isola:guest` has one world, `http-guest`: the standard `wasi:http/proxy` world plus
 * `wasi:cli/environment` (so a guest can read its environment variables).
 */
export function prepareWit(): Promise<PreparedWit> {
  prepared ??= writeWit().catch((err: unknown) => {
    prepared = undefined;
    throw err;
  });
  return prepared;
}

async function writeWit(): Promise<PreparedWit> {
  const wasiVersion = await engineWasiVersion();
  const files = new Map<string, string>();
  files.set(
    'world.wit',
    [
      'package isola:guest;',
      '',
      '/// What an isola JS guest is built for: wasi:http/proxy, plus the environment variables.',
      'world http-guest {',
      `  include wasi:http/proxy@${wasiVersion};`,
      `  import wasi:cli/environment@${wasiVersion};`,
      '}',
      '',
    ].join('\n'),
  );
  const from = join(packageDir('@bytecodealliance/jco'), 'lib', 'wit', 'builtin', JCO_WIT_VERSION);
  for (const pkg of WASI_PACKAGES) {
    const text = await readFile(join(from, pkg, 'package.wit'), 'utf8');
    files.set(`deps/${pkg}/package.wit`, text.replaceAll(`@${JCO_WIT_VERSION}`, `@${wasiVersion}`));
  }
  const hash = createHash('sha256');
  for (const [name, text] of [...files].sort(([a], [b]) => a.localeCompare(b))) hash.update(`${name}\0${text}\0`);
  const digest = hash.digest('hex');
  const dir = join(TOOL_CACHE, 'wit', `wasi-${wasiVersion}-${digest.slice(0, 12)}`);
  if (!existsSync(join(dir, 'world.wit'))) {
    // Write to a private directory, then rename: concurrent builds never see a half-written WIT.
    const tmp = `${dir}.tmp-${process.pid}-${randomUUID()}`;
    for (const [name, text] of files) {
      await mkdir(dirname(join(tmp, name)), { recursive: true });
      await writeFile(join(tmp, name), text);
    }
    try {
      await rename(tmp, dir);
    } catch (err) {
      await rm(tmp, { recursive: true, force: true });
      if (!existsSync(join(dir, 'world.wit'))) throw err;
    }
  }
  return { dir, digest, wasiVersion };
}

/**
 * Gives preview2-shim (which runs componentize-js's Wasm "splicer") read access to `dir`, at the
 * same path. Without a preopen the splicer cannot read the WIT ("No such file or directory (os
 * error 44)"). Uses the preview2-shim module instance that componentize-js itself imports.
 */
export async function allowShimToRead(dir: string): Promise<void> {
  const cjsRequire = createRequire(join(packageDir('@bytecodealliance/componentize-js'), 'package.json'));
  const shimPath = cjsRequire.resolve('@bytecodealliance/preview2-shim/filesystem');
  const shim = (await import(pathToFileURL(shimPath).href)) as {
    _getPreopens(): Array<[unknown, string]>;
    _addPreopen(virtualPath: string, hostPath: string): void;
  };
  if (!shim._getPreopens().some(([, virtualPath]) => virtualPath === dir)) shim._addPreopen(dir, dir);
}
