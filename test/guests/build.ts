/**
 * Builds wasi:http components from WAT, in-process, with a content-addressed cache.
 *
 * WAT → core module (wabt) → core module with the world's WIT embedded (`componentEmbed`, WIT given
 * as one source string, so jco's Wasm-based wasm-tools needs no filesystem) → component
 * (`componentNew`). Outputs are cached under `node_modules/.cache/isola-guests/` by the sha256 of the
 * WAT, the WIT world and the tool versions.
 */
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { componentEmbed, componentNew } from '@bytecodealliance/jco';
import wabtInit from 'wabt';

/** The world a guest is embedded with. */
export interface WorldOptions {
  /**
   * wasi 0.2.x version to label the WIT with. Default: the version the WAT's `wasi:*` imports and
   * export carry (they must agree), else 0.2.12. Other versions reuse jco's 0.2.12 WIT, relabelled
   * (every function the WAT library uses exists unchanged since 0.2.0).
   */
  wasiVersion?: string;
  /** A complete WIT source (nested `package … { }` blocks allowed) replacing the default world. */
  witSource?: string;
  /** The world to embed from `witSource` (required with it). */
  world?: string;
}

/** Options of `buildComponent`. */
export interface BuildOptions {
  world?: WorldOptions;
}

/** Bump when the build pipeline changes in a way that changes outputs. */
const PIPELINE = 1;
const WASI_WIT_VERSION = '0.2.12';
const require = createRequire(import.meta.url);
const jcoEntry = require.resolve('@bytecodealliance/jco');
/** Where built components are cached: `$ISOLA_GUEST_CACHE`, else `.cache/isola-guests` in the
 * node_modules that holds jco (the project's, also when this file is bundled elsewhere). */
export const CACHE_DIR =
  process.env.ISOLA_GUEST_CACHE ?? path.join(path.dirname(jcoEntry), '..', '..', '..', '.cache', 'isola-guests');
const wasmToolsEntry = createRequire(jcoEntry).resolve('@bytecodealliance/jco-transpile/wasm-tools');
const version = (pkgJson: string): string => (JSON.parse(readFileSync(pkgJson, 'utf8')) as { version: string }).version;
const TOOLS = {
  jco: version(path.join(path.dirname(jcoEntry), '..', 'package.json')),
  wasmTools: version(path.join(path.dirname(wasmToolsEntry), '..', 'package.json')),
  wabt: version(path.join(path.dirname(require.resolve('wabt')), 'package.json')),
};
const WIT_DIR = path.join(path.dirname(jcoEntry), '..', 'lib', 'wit', 'builtin', WASI_WIT_VERSION);

let witPackages: string | undefined;
/** jco's bundled wasi 0.2.12 packages as one WIT source of nested `package … { }` blocks. */
function wasiPackages(): string {
  witPackages ??= readdirSync(WIT_DIR)
    .sort()
    .map((dir) => {
      const text = readFileSync(path.join(WIT_DIR, dir, 'package.wit'), 'utf8');
      const nested = text.replace(/^package ([^;]+);/m, 'package $1 {');
      if (nested === text) throw new Error(`unexpected WIT layout in ${dir}/package.wit`);
      return `${nested}\n}\n`;
    })
    .join('\n');
  return witPackages;
}

/**
 * The default guest world as one WIT source: exports `wasi:http/incoming-handler`, may import
 * everything of `wasi:http/proxy` and `wasi:cli/imports` (environment included). wit-component
 * keeps only the interfaces the core module actually imports.
 */
export function defaultWorld(wasiVersion = WASI_WIT_VERSION): { witSource: string; world: string } {
  if (!/^0\.2\.\d+$/.test(wasiVersion)) throw new Error(`wasi version must be 0.2.x, got ${wasiVersion}`);
  const root = `package isola:guests;

world guest {
  include wasi:http/proxy@${WASI_WIT_VERSION};
  include wasi:cli/imports@${WASI_WIT_VERSION};
}
`;
  const source = `${root}\n${wasiPackages()}`.replaceAll(`@${WASI_WIT_VERSION}`, `@${wasiVersion}`);
  return { witSource: source, world: 'guest' };
}

/** The single wasi version the WAT's `"wasi:…@0.2.x"` names carry, if any. */
function watWasiVersion(wat: string): string | undefined {
  const found = new Set<string>();
  for (const m of wat.matchAll(/"wasi:[a-z-]+\/[a-z-]+@(\d+\.\d+\.\d+)[#"]/g)) if (m[1] !== undefined) found.add(m[1]);
  if (found.size > 1) throw new Error(`WAT mixes wasi versions: ${[...found].join(', ')}`);
  return [...found][0];
}

function resolveWorld(wat: string, opts: WorldOptions = {}): { witSource: string; world: string } {
  if (opts.witSource !== undefined) {
    if (opts.world === undefined) throw new Error('world.world is required with world.witSource');
    return { witSource: opts.witSource, world: opts.world };
  }
  return defaultWorld(opts.wasiVersion ?? watWasiVersion(wat) ?? WASI_WIT_VERSION);
}

let wabt: ReturnType<typeof wabtInit> | undefined;

/**
 * Assembles WAT to a core Wasm module (wabt; multi-value, bulk memory) without componentizing it,
 * e.g. to run a guest's logic against a fake core-ABI host. Errors name the guest.
 */
export async function assembleCore(name: string, wat: string): Promise<Uint8Array> {
  const w = await (wabt ??= wabtInit());
  let mod: ReturnType<typeof w.parseWat> | undefined;
  try {
    mod = w.parseWat(`${name}.wat`, wat, { multi_value: true, bulk_memory: true, mutable_globals: true, sign_extension: true });
    mod.resolveNames();
    mod.validate();
    return mod.toBinary({ write_debug_names: true }).buffer;
  } catch (e) {
    throw new Error(`guest ${name}: invalid WAT: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    mod?.destroy();
  }
}

/** Runs the uncached pipeline: WAT → core module → embed WIT → component. */
async function compile(name: string, wat: string, world: { witSource: string; world: string }): Promise<Uint8Array> {
  const core = await assembleCore(name, wat);
  try {
    const embedded = await componentEmbed({ binary: core, witSource: world.witSource, world: world.world });
    return await componentNew(embedded);
  } catch (e) {
    throw new Error(`guest ${name}: componentize failed: ${e instanceof Error ? e.message : String(e)}`);
  }
}

const inflight = new Map<string, Promise<string>>();

/** Builds (or finds in the cache) and returns the absolute path of the cached `.wasm`. */
function build(name: string, wat: string, opts: BuildOptions = {}): Promise<string> {
  const world = resolveWorld(wat, opts.world);
  const key = createHash('sha256')
    .update(JSON.stringify({ PIPELINE, TOOLS, world: world.world, wit: world.witSource, wat }))
    .digest('hex');
  const file = path.join(CACHE_DIR, `${name.replace(/[^A-Za-z0-9_-]/g, '_')}-${key.slice(0, 16)}.wasm`);
  let job = inflight.get(file);
  if (job === undefined) {
    job = (async () => {
      try {
        await stat(file);
        return file;
      } catch {
        const bytes = await compile(name, wat, world);
        await mkdir(CACHE_DIR, { recursive: true });
        const tmp = `${file}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
        await writeFile(tmp, bytes);
        await rename(tmp, file); // atomic: concurrent test workers never see a partial file
        return file;
      }
    })();
    inflight.set(file, job);
    job.catch(() => inflight.delete(file));
  }
  return job;
}

/**
 * Builds the wasi:http component for guest `name` from `wat` and returns its bytes. The world
 * defaults to `defaultWorld` at the wasi version the WAT uses; see `WorldOptions`.
 */
export async function buildComponent(name: string, wat: string, opts?: BuildOptions): Promise<Uint8Array> {
  return new Uint8Array(await readFile(await build(name, wat, opts)));
}

/** Like `buildComponent`, but returns the absolute path of the cached `.wasm` (do not modify it). */
export async function buildComponentFile(name: string, wat: string, opts?: BuildOptions): Promise<string> {
  return build(name, wat, opts);
}
