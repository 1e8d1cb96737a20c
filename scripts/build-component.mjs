#!/usr/bin/env node
// Builds a JavaScript guest into a wasi:http component with componentize-js (its library API).
//
//   node scripts/build-component.mjs <entry.js> <out.wasm> [--force]
//
// The guest is built against the wasi:http version that componentize-js's engine (StarlingMonkey)
// itself imports and exports. That version is read from the engine binary, and the WIT for it is
// generated from the WASI 0.2.x WIT that jco bundles, with the package versions rewritten (WASI
// 0.2.x releases are semver-compatible, so an older patch version is a subset of a newer one).
//
// Builds are cached: the output carries a custom section `isola:build-hash` holding the sha256 of
// (entry source, componentize-js version, WIT, build settings); an output whose hash matches is not
// rebuilt. (A custom section rather than a stamp file next to the .wasm, so that nothing untracked
// is left beside the gitignored outputs.)

import { createHash, randomUUID } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** Whether `dir` holds the package.json of the package `name`. */
function isPackageRoot(dir, name) {
  try {
    return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).name === name;
  } catch {
    return false;
  }
}

/** Returns the directory of the installed package `name` (found from its resolved entry point). */
function packageDir(name) {
  let dir = dirname(fileURLToPath(import.meta.resolve(name)));
  while (!isPackageRoot(dir, name)) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`cannot find the package directory of ${name}`);
    dir = parent;
  }
  return dir;
}

const CJS_DIR = packageDir('@bytecodealliance/componentize-js');
const CJS_PACKAGE_JSON = join(CJS_DIR, 'package.json');
const JCO_DIR = packageDir('@bytecodealliance/jco');

/** Name of the custom section that records the build hash inside a built component. */
export const BUILD_HASH_SECTION = 'isola:build-hash';

/** The world every guest is built for (generated into the WIT directory by {@link prepareWit}). */
export const WORLD = 'isola:guest/http-guest';

/** Where generated WIT lives (a cache; safe to delete). */
const WIT_CACHE = join(ROOT, 'node_modules', '.cache', 'isola', 'wit');

/** The WASI packages the generated WIT needs (directory names in jco's bundled WIT). */
const WASI_PACKAGES = ['wasi-cli', 'wasi-clocks', 'wasi-filesystem', 'wasi-http', 'wasi-io', 'wasi-random', 'wasi-sockets'];

/** The newest WASI 0.2.x WIT snapshot that jco bundles (the source the WIT is generated from). */
const JCO_WIT_VERSION = '0.2.12';

/** An error from building a guest: carries the entry path and componentize-js's message. */
export class BuildError extends Error {
  /**
   * @param {string} entry path of the guest's entry file
   * @param {string} message what went wrong
   */
  constructor(entry, message) {
    super(`${entry}: ${message}`);
    this.name = 'BuildError';
    this.entry = entry;
    this.detail = message;
  }
}

/** Returns componentize-js's version, from its package.json. */
export async function componentizeJsVersion() {
  return JSON.parse(await readFile(CJS_PACKAGE_JSON, 'utf8')).version;
}

/** Returns jco's version (jco supplies the preview1 adapter that componentize-js links in). */
export async function jcoVersion() {
  return JSON.parse(await readFile(join(JCO_DIR, 'package.json'), 'utf8')).version;
}

/**
 * Returns the wasi:http version (e.g. "0.2.10") that componentize-js's engine binary imports and
 * exports, read from the interface names embedded in the engine.
 */
export async function engineWasiVersion() {
  const engine = await readFile(join(CJS_DIR, 'lib', 'starlingmonkey_embedding.wasm'));
  const found = new Set();
  const needle = Buffer.from('wasi:http/incoming-handler@');
  for (let at = engine.indexOf(needle); at !== -1; at = engine.indexOf(needle, at + 1)) {
    const tail = engine.subarray(at + needle.length, at + needle.length + 16).toString('latin1');
    const m = /^\d+\.\d+\.\d+/.exec(tail);
    if (m) found.add(m[0]);
  }
  if (found.size !== 1) {
    throw new Error(
      `cannot tell which wasi:http version componentize-js's engine uses (found: ${[...found].join(', ') || 'none'})`,
    );
  }
  return [...found][0];
}

/**
 * Writes the WIT to build guests against, and returns its directory and a digest of its text.
 *
 * The root package `isola:guest` has one world, `http-guest`: the standard `wasi:http/proxy`
 * world plus `wasi:cli/environment` (so a guest can read its environment variables). The WASI
 * packages are jco's bundled 0.2.12 WIT rewritten to the engine's version.
 *
 * @returns {Promise<{ dir: string, digest: string, wasiVersion: string }>}
 */
export async function prepareWit() {
  const wasiVersion = await engineWasiVersion();
  const files = new Map();
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
  const from = join(JCO_DIR, 'lib', 'wit', 'builtin', JCO_WIT_VERSION);
  for (const pkg of WASI_PACKAGES) {
    const text = await readFile(join(from, pkg, 'package.wit'), 'utf8');
    files.set(`deps/${pkg}/package.wit`, text.replaceAll(`@${JCO_WIT_VERSION}`, `@${wasiVersion}`));
  }
  const hash = createHash('sha256');
  for (const [name, text] of [...files].sort(([a], [b]) => a.localeCompare(b))) {
    hash.update(`${name}\0${text}\0`);
  }
  const digest = hash.digest('hex');
  const dir = join(WIT_CACHE, `wasi-${wasiVersion}-${digest.slice(0, 12)}`);
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
 * Gives preview2-shim (which runs componentize-js's Wasm "splicer") read access to `dir`.
 * Without a preopen the splicer cannot read the WIT ("No such file or directory (os error 44)").
 * Uses the same preview2-shim module instance that componentize-js imports.
 *
 * @param {string} dir absolute host path, made visible to the guest at the same path
 */
export async function allowShimToRead(dir) {
  const cjsRequire = createRequire(CJS_PACKAGE_JSON);
  const shimPath = cjsRequire.resolve('@bytecodealliance/preview2-shim/filesystem');
  const shim = await import(pathToFileURL(shimPath).href);
  if (!shim._getPreopens().some(([, virtualPath]) => virtualPath === dir)) {
    shim._addPreopen(dir, dir);
  }
}

/**
 * Computes the cache key of a build: sha256 over the entry source, the componentize-js version
 * (and jco's, whose preview1 adapter ends up in the component), the WIT digest and the world.
 *
 * @param {string} source the entry file's text
 * @param {string} versions the tool versions, e.g. "componentize-js=0.23.0 jco=1.35.0"
 * @param {string} witDigest digest of the WIT text (from {@link prepareWit})
 * @returns {string} hex digest
 */
export function buildHash(source, versions, witDigest) {
  return createHash('sha256')
    .update(`isola-build-component v1\0world=${WORLD}\0`)
    .update(`${versions}\0wit=${witDigest}\0`)
    .update(source)
    .digest('hex');
}

/** Encodes `n` as unsigned LEB128. */
function leb128(n) {
  const bytes = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    bytes.push(b);
  } while (n !== 0);
  return Buffer.from(bytes);
}

/** Returns a Wasm custom section (id 0) named `name` holding `payload`. */
function customSection(name, payload) {
  const nameBytes = Buffer.from(name, 'utf8');
  const body = Buffer.concat([leb128(nameBytes.length), nameBytes, payload]);
  return Buffer.concat([Buffer.from([0]), leb128(body.length), body]);
}

/**
 * Reads the build hash recorded in a built component (its `isola:build-hash` custom section,
 * which the builder appends last), or returns undefined when there is none or the file is absent.
 *
 * @param {string} path component file
 * @returns {Promise<string | undefined>}
 */
export async function readBuildHash(path) {
  const expected = customSection(BUILD_HASH_SECTION, Buffer.alloc(64));
  let fh;
  try {
    fh = await open(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const { size } = await fh.stat();
    if (size < expected.length + 8) return undefined;
    const tail = Buffer.alloc(expected.length);
    await fh.read(tail, 0, tail.length, size - tail.length);
    const header = expected.subarray(0, expected.length - 64);
    if (!tail.subarray(0, header.length).equals(header)) return undefined;
    const hex = tail.subarray(header.length).toString('latin1');
    return /^[0-9a-f]{64}$/.test(hex) ? hex : undefined;
  } finally {
    await fh.close();
  }
}

/**
 * Describes the first syntax error in `source` as "file:line:column: message" plus the offending
 * line, using esbuild (a dev dependency); returns undefined if esbuild is missing or finds none.
 *
 * @param {string} entry the file name to report
 * @param {string} source its text
 * @returns {Promise<string | undefined>}
 */
export async function locateSyntaxError(entry, source) {
  let esbuild;
  try {
    esbuild = await import('esbuild');
  } catch {
    return undefined;
  }
  try {
    await esbuild.transform(source, { loader: 'js', format: 'esm', sourcefile: entry });
    return undefined;
  } catch (err) {
    const first = err?.errors?.[0];
    if (!first?.location) return undefined;
    const { line, column, lineText } = first.location;
    return `syntax error at ${entry}:${line}:${column + 1}: ${first.text}\n  ${lineText}\n  ${' '.repeat(column)}^`;
  }
}

/**
 * Builds the JS guest `entry` into a wasi:http component at `out`, unless `out` already holds a
 * build of the same inputs. Only the entry file is hashed: a guest must be one self-contained
 * ES module (imports of `wasi:*` interfaces aside).
 *
 * @param {string} entry path of the guest's ES module
 * @param {string} out path of the component to write
 * @param {{ force?: boolean, log?: (line: string) => void }} [options] `force` rebuilds even when
 *   up to date; `log` receives progress lines (default: none)
 * @returns {Promise<{ out: string, built: boolean, hash: string, ms: number, bytes: number }>}
 *   `built` is false when the cached output was up to date
 * @throws {BuildError} when the guest does not build (message names the file)
 */
export async function buildComponent(entry, out, options = {}) {
  const { force = false, log = () => {} } = options;
  const started = performance.now();
  const entryPath = resolve(entry);
  const outPath = resolve(out);
  let source;
  try {
    source = await readFile(entryPath, 'utf8');
  } catch (err) {
    throw new BuildError(entry, `cannot read the entry file (${err.code ?? err.message})`);
  }
  const [cjsVersion, jco, wit] = await Promise.all([componentizeJsVersion(), jcoVersion(), prepareWit()]);
  const hash = buildHash(source, `componentize-js=${cjsVersion} jco=${jco}`, wit.digest);
  if (!force && (await readBuildHash(outPath)) === hash) {
    const { size: bytes } = await stat(outPath);
    log(`${relative(process.cwd(), outPath)} is up to date (${hash.slice(0, 12)})`);
    return { out: outPath, built: false, hash, ms: performance.now() - started, bytes };
  }

  log(
    `building ${relative(process.cwd(), entryPath)} with componentize-js ${cjsVersion} ` +
      `for ${WORLD} (wasi ${wit.wasiVersion})…`,
  );
  await allowShimToRead(wit.dir);
  const { componentize } = await import('@bytecodealliance/componentize-js');
  let component;
  try {
    ({ component } = await componentize({
      sourcePath: entryPath,
      witPath: wit.dir,
      worldName: WORLD,
    }));
  } catch (err) {
    let message = String(err?.message ?? err).trim();
    // componentize-js reports a syntax error only as a count; ask esbuild where it is.
    if (message.startsWith('failed to parse JS source')) {
      message = (await locateSyntaxError(entry, source)) ?? message;
    }
    throw new BuildError(entry, message);
  }

  const bytes = Buffer.concat([
    Buffer.from(component),
    customSection(BUILD_HASH_SECTION, Buffer.from(hash, 'latin1')),
  ]);
  await mkdir(dirname(outPath), { recursive: true });
  const tmp = `${outPath}.tmp-${process.pid}-${randomUUID()}`;
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, outPath);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const ms = performance.now() - started;
  log(`wrote ${relative(process.cwd(), outPath)} (${(bytes.length / 1e6).toFixed(1)} MB) in ${(ms / 1000).toFixed(1)} s`);
  return { out: outPath, built: true, hash, ms, bytes: bytes.length };
}

/** Command-line entry: `build-component.mjs <entry.js> <out.wasm> [--force]`. */
async function main(argv) {
  const force = argv.includes('--force');
  const args = argv.filter((a) => a !== '--force');
  if (args.length !== 2) {
    console.error('usage: node scripts/build-component.mjs <entry.js> <out.wasm> [--force]');
    return 2;
  }
  try {
    await buildComponent(args[0], args[1], { force, log: (line) => console.error(line) });
    return 0;
  } catch (err) {
    if (err instanceof BuildError) {
      console.error(`build-component: failed to build ${err.entry}:\n${err.detail}`);
    } else {
      console.error(`build-component: ${err?.stack ?? err}`);
    }
    return 1;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exitCode = await main(process.argv.slice(2));
}
