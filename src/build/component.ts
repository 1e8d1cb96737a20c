/**
 * One ES module (a bundle) → a wasi:http component, with componentize-js 0.23's library API.
 *
 * Builds take 10–25 s, so they are cached twice over, both keyed by the build hash (sha256 of the
 * module text, the tool versions and the WIT):
 * - the output itself carries a custom section `isola:build-hash`; an output whose hash matches
 *   is not rebuilt (a custom section rather than a stamp file, so nothing is left beside it);
 * - a shared, content-addressed cache under node_modules/.cache/isola/components keeps the most
 *   recent builds, so a temp-dir build, or an edit that is undone, costs a file copy.
 */
import { createHash, randomUUID } from 'node:crypto';
import { copyFile, mkdir, open, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { allowShimToRead, packageVersion, prepareWit, TOOL_CACHE, WORLD } from './wit.js';

/** Name of the custom section that records the build hash inside a built component. */
export const BUILD_HASH_SECTION = 'isola:build-hash';

/** Where the shared component cache lives. */
export const COMPONENT_CACHE = join(TOOL_CACHE, 'components');

/** How many components the shared cache keeps (≈13 MB each); the least recently used go first. */
export const COMPONENT_CACHE_ENTRIES = 24;

/** The inputs that, with the module text, decide a build's output. */
export interface BuildKey {
  /** sha256 (hex) over the module text and every tool input. */
  hash: string;
  /** e.g. "0.2.10": the wasi version the component imports and exports. */
  wasiVersion: string;
  /** Absolute WIT directory to build against. */
  witDir: string;
  /** e.g. "componentize-js 0.23.0, jco 1.35.0". */
  tools: string;
}

/**
 * Computes the cache key of building `source`: sha256 over it, the componentize-js version (and
 * jco's, whose preview1 adapter ends up in the component), the WIT digest and the world.
 */
export async function buildKey(source: string): Promise<BuildKey> {
  const [cjs, jco, wit] = await Promise.all([
    packageVersion('@bytecodealliance/componentize-js'),
    packageVersion('@bytecodealliance/jco'),
    prepareWit(),
  ]);
  const hash = createHash('sha256')
    .update(`isola-build v2\0world=${WORLD}\0componentize-js=${cjs}\0jco=${jco}\0wit=${wit.digest}\0`)
    .update(source)
    .digest('hex');
  return { hash, wasiVersion: wit.wasiVersion, witDir: wit.dir, tools: `componentize-js ${cjs}, jco ${jco}` };
}

function leb128(n: number): Buffer {
  const bytes: number[] = [];
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    bytes.push(b);
  } while (n !== 0);
  return Buffer.from(bytes);
}

/** A Wasm custom section (id 0) named `name` holding `payload`. */
export function customSection(name: string, payload: Uint8Array): Buffer {
  const nameBytes = Buffer.from(name, 'utf8');
  const body = Buffer.concat([leb128(nameBytes.length), nameBytes, payload]);
  return Buffer.concat([Buffer.from([0]), leb128(body.length), body]);
}

/**
 * The build hash recorded in a built component (its `isola:build-hash` custom section, which the
 * builder appends last), or undefined when there is none or the file is absent.
 */
export async function readBuildHash(path: string): Promise<string | undefined> {
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

/** Writes `bytes` to `path` atomically (temp file + rename), creating its directory. */
export async function writeAtomic(path: string, bytes: Uint8Array): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.tmp-${process.pid}-${randomUUID()}`;
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

/** Copies a cached component for `hash` to `out`; false when the cache has none. */
export async function fromSharedCache(hash: string, out: string): Promise<boolean> {
  const cached = join(COMPONENT_CACHE, `${hash}.wasm`);
  if ((await readBuildHash(cached)) !== hash) return false;
  await mkdir(dirname(out), { recursive: true });
  const tmp = `${out}.tmp-${process.pid}-${randomUUID()}`;
  try {
    await copyFile(cached, tmp);
    await rename(tmp, out);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  const now = new Date();
  await utimes(cached, now, now).catch(() => {});
  return true;
}

/** Stores a built component in the shared cache and evicts the least recently used beyond the cap. */
export async function toSharedCache(hash: string, bytes: Uint8Array): Promise<void> {
  try {
    await writeAtomic(join(COMPONENT_CACHE, `${hash}.wasm`), bytes);
    const names = (await readdir(COMPONENT_CACHE)).filter((n) => /^[0-9a-f]{64}\.wasm$/.test(n));
    if (names.length <= COMPONENT_CACHE_ENTRIES) return;
    const aged = await Promise.all(names.map(async (n) => ({ n, t: (await stat(join(COMPONENT_CACHE, n)).catch(() => null))?.mtimeMs ?? 0 })));
    aged.sort((a, b) => b.t - a.t);
    await Promise.all(aged.slice(COMPONENT_CACHE_ENTRIES).map(({ n }) => rm(join(COMPONENT_CACHE, n), { force: true })));
  } catch {
    // The shared cache is an optimisation: a read-only or full disk must not fail the build.
  }
}

/** componentize-js's failure, as text: its message without the stack. */
export class ComponentizeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ComponentizeError';
  }
}

/**
 * Runs componentize-js on the ES module at `sourcePath` for the isola guest world and returns the
 * component with the build-hash section appended.
 *
 * @throws ComponentizeError with componentize-js's message (a syntax error, a throw at the
 *   module's top level — which componentize-js runs at build time — or an unknown import)
 */
export async function componentize(sourcePath: string, key: BuildKey): Promise<Buffer> {
  await allowShimToRead(key.witDir);
  const { componentize: run } = await import('@bytecodealliance/componentize-js');
  let component: Uint8Array;
  try {
    ({ component } = await run({ sourcePath, witPath: key.witDir, worldName: WORLD }));
  } catch (err) {
    throw new ComponentizeError(String((err as Error)?.message ?? err).trim());
  }
  return Buffer.concat([Buffer.from(component), customSection(BUILD_HASH_SECTION, Buffer.from(key.hash, 'latin1'))]);
}
