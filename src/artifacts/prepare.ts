/**
 * Artifact preparation (DESIGN.md "control path"): validate an uploaded `.wasm` once, detect its
 * guest ABI, check its imports against what isola offers, and for components transpile it with
 * jco (async instantiation mode, so every instance gets its own state). The result is cached on
 * disk by sha256 under `<dataDir>/artifacts/`, written to a temporary folder and renamed into
 * place so a crash never leaves half an artifact visible.
 */
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fork } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { GuestAbi } from '../config/types.js';
import { IsolaError } from '../errors.js';
import { OFFERED_INTERFACES } from '../sandbox/wasi-http/index.js';
import { splitVersion, wasmKind, worldItems } from './detect.js';
import { leanGlue } from './glue.js';
import { ensureGlueScript } from './glue-script.js';
import { capMemory } from './memory-cap.js';

/** Bumped whenever the cached layout or the transpile options change. */
const FORMAT = 6;
const HANDLER = 'wasi:http/incoming-handler';
const GLUE_FILE = 'guest.mjs';

/** A prepared artifact, as cached on disk. */
export interface Artifact {
  /** sha256 of the uploaded bytes, hex. */
  digest: string;
  abi: GuestAbi;
  /** Size of the uploaded bytes, bytes. */
  size: number;
  /** Imports as the binary names them (`wasi:http/types@0.2.12`, or `wasi_snapshot_preview1.fd_write`). */
  imports: string[];
  /** Folder holding the prepared files. */
  dir: string;
  /** wasi-http: file URL of the jco glue; null for wagi. */
  glueUrl: string | null;
  /**
   * wasi-http: file URL of the glue as a classic script (./glue-script.ts), which sandboxes load
   * with a V8 code cache; null for wagi, or when it could not be made (sandboxes import `glueUrl`).
   */
  glueScriptUrl: string | null;
  /** Core module files in `dir` (wagi: the module itself, as `main.wasm`). */
  coreFiles: string[];
}

interface Meta {
  format: number;
  digest: string;
  abi: GuestAbi;
  size: number;
  imports: string[];
  coreFiles: string[];
  /** Byte size of every file written (core modules, glue): a truncated file is noticed on load. */
  sizes?: Record<string, number>;
}

const inflight = new Map<string, Promise<Artifact>>();

/**
 * Prepares `bytes` (a component or core module) into `cacheDir`, or returns the cached result.
 * `abi` forces the ABI (from config); a mismatch with the bytes throws.
 * Throws IsolaError (status 400, user): ERR_WASM_INVALID, ERR_WASM_NOT_COMPONENT, ERR_WASM_NO_HANDLER,
 * ERR_WASM_UNKNOWN_IMPORT (names every unknown import), ERR_WASM_NOT_WASI_COMMAND, ERR_ABI_MISMATCH;
 * ERR_TRANSPILE (500) when jco fails on a component that passed validation.
 */
export function prepareArtifact(bytes: Uint8Array, cacheDir: string, abi: GuestAbi | null = null): Promise<Artifact> {
  const digest = createHash('sha256').update(bytes).digest('hex');
  const key = `${cacheDir}\0${digest}\0${abi}`;
  let p = inflight.get(key);
  if (!p) {
    p = prepare(bytes, digest, cacheDir, abi).finally(() => inflight.delete(key));
    inflight.set(key, p);
  }
  return p;
}

async function prepare(bytes: Uint8Array, digest: string, cacheDir: string, forced: GuestAbi | null): Promise<Artifact> {
  const kind = wasmKind(bytes);
  if (kind === null) {
    throw new IsolaError('ERR_WASM_INVALID', 'not a WebAssembly binary (missing or unknown \\0asm preamble)', { status: 400, user: true });
  }
  const abi: GuestAbi = kind === 'component' ? 'wasi-http' : 'wagi';
  if (forced && forced !== abi) {
    throw new IsolaError('ERR_ABI_MISMATCH', `abi = "${forced}" but the binary is a ${kind === 'component' ? 'component (wasi-http)' : 'core module (wagi)'}`, {
      status: 400, user: true, hint: `remove \`abi\` to detect it, or set abi = "${abi}"`,
    });
  }
  const dir = join(cacheDir, digest);
  const cached = await readMeta(dir);
  if (cached) return withGlueScript(toArtifact(dir, cached));

  const meta = abi === 'wasi-http' ? await checkComponent(bytes, digest) : await checkCoreModule(bytes, digest);
  const tmp = join(cacheDir, `.tmp-${digest}-${process.pid}-${Date.now()}`);
  await mkdir(tmp, { recursive: true });
  try {
    if (abi === 'wasi-http') {
      const files = await transpileComponent(bytes);
      for (const [name, data] of Object.entries(files)) await writeFile(join(tmp, name), data);
      meta.coreFiles = Object.keys(files).filter((f) => f.endsWith('.wasm'));
    } else {
      await writeFile(join(tmp, 'main.wasm'), bytes);
      meta.coreFiles = ['main.wasm'];
    }
    meta.sizes = {};
    for (const name of await readdir(tmp)) meta.sizes[name] = (await stat(join(tmp, name))).size;
    await writeFile(join(tmp, 'meta.json'), JSON.stringify(meta));
    try {
      await rename(tmp, dir);
    } catch (err) {
      // Another process won the race: its copy is identical.
      if (!(await readMeta(dir))) throw err;
    }
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return withGlueScript(toArtifact(dir, meta));
}

/**
 * Sets `glueScriptUrl`, writing the script form first if the folder has none (artifacts cached
 * before it existed get it on their next use). A failure leaves it null: sandboxes then import the
 * glue module, slower to start but equivalent.
 */
export async function withGlueScript(artifact: Artifact): Promise<Artifact> {
  if (artifact.abi !== 'wasi-http') return artifact;
  try {
    return { ...artifact, glueScriptUrl: await ensureGlueScript(artifact.dir, GLUE_FILE) };
  } catch {
    return artifact;
  }
}

/**
 * The cached artifact's meta.json, or null when there is none to use: absent, from another
 * FORMAT, or unreadable (e.g. truncated by a crash: the cache is not fsync'd, it can always be
 * made again from the module). A folder that is there but not usable is removed, so it can be.
 */
async function readMeta(dir: string): Promise<Meta | null> {
  let text: string;
  try {
    text = await readFile(join(dir, 'meta.json'), 'utf8');
  } catch {
    // No folder (nothing to do), or a folder without a readable meta.json: never a whole copy.
    await rm(dir, { recursive: true, force: true });
    return null;
  }
  let meta: Meta | null = null;
  try {
    meta = JSON.parse(text) as Meta;
  } catch {
    meta = null;
  }
  if (meta === null || typeof meta !== 'object' || meta.format !== FORMAT || !(await sizesMatch(dir, meta))) {
    await rm(dir, { recursive: true, force: true });
    return null;
  }
  return meta;
}

/** true when every file meta.json lists has the size it was written with (none missing or cut short). */
async function sizesMatch(dir: string, meta: Meta): Promise<boolean> {
  if (!meta.sizes) return false;
  try {
    for (const [name, size] of Object.entries(meta.sizes)) if ((await stat(join(dir, name))).size !== size) return false;
    return true;
  } catch {
    return false;
  }
}

function toArtifact(dir: string, meta: Meta): Artifact {
  return {
    digest: meta.digest,
    abi: meta.abi,
    size: meta.size,
    imports: meta.imports,
    dir,
    glueUrl: meta.abi === 'wasi-http' ? pathToFileURL(join(dir, GLUE_FILE)).href : null,
    glueScriptUrl: null,
    coreFiles: meta.coreFiles,
  };
}

const JCO_WORKER = new URL(import.meta.url.endsWith('.ts') ? '../../dist/artifacts/jco-worker.js' : './jco-worker.js', import.meta.url);

/**
 * Runs one jco operation in a child process (./jco-worker.ts). A process, not a thread: jco's
 * Wasm tools take ~100 MB+ that a thread's exit does not give back to the OS (the server's RSS
 * stayed ~300 MB higher), while a process's exit does. Rejects with jco's message.
 */
function inJcoWorker<T>(op: 'wit' | 'transpile', bytes: Uint8Array): Promise<T> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(JCO_WORKER), [], { serialization: 'advanced', stdio: ['ignore', 'ignore', 'ignore', 'ipc'] });
    let settled = false;
    child.once('message', (m: { error?: string } & T) => {
      settled = true;
      if (m.error !== undefined) reject(new Error(m.error));
      else resolve(m);
      child.kill();
    });
    child.once('error', (err) => {
      if (!settled) reject(err);
    });
    child.once('exit', (code) => {
      if (!settled) reject(new Error(`jco process exited with code ${code}`));
    });
    child.send({ op, bytes });
  });
}

async function checkComponent(bytes: Uint8Array, digest: string): Promise<Meta> {
  let wit: string;
  try {
    ({ wit } = await inJcoWorker<{ wit: string }>('wit', bytes));
  } catch (err) {
    throw new IsolaError('ERR_WASM_INVALID', `invalid component: ${err instanceof Error ? err.message : String(err)}`, { status: 400, user: true, cause: err });
  }
  const { imports, exports } = worldItems(wit);
  const handler = exports.map(splitVersion).find((e) => e.name === HANDLER);
  if (!handler || !handler.version?.startsWith('0.2.')) {
    throw new IsolaError('ERR_WASM_NO_HANDLER', `the component does not export ${HANDLER}@0.2.x (it exports: ${exports.join(', ') || 'nothing'})`, {
      status: 400, user: true, hint: 'build it for the wasi:http/proxy world',
    });
  }
  const offered = new Set(OFFERED_INTERFACES);
  const unknown = imports.filter((i) => {
    const { name, version } = splitVersion(i);
    return !offered.has(name) || !version?.startsWith('0.2.');
  });
  if (unknown.length > 0) {
    throw new IsolaError('ERR_WASM_UNKNOWN_IMPORT', `the component imports what isola does not offer: ${unknown.join(', ')}`, {
      status: 400, user: true, details: { unknown }, hint: 'isola offers the wasi:http/proxy world (wasi 0.2.x) plus denied filesystem and sockets',
    });
  }
  return { format: FORMAT, digest, abi: 'wasi-http', size: bytes.byteLength, imports, coreFiles: [] };
}

async function checkCoreModule(bytes: Uint8Array, digest: string): Promise<Meta> {
  let module: WebAssembly.Module;
  try {
    module = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
  } catch (err) {
    throw new IsolaError('ERR_WASM_INVALID', `invalid core module: ${err instanceof Error ? err.message : String(err)}`, { status: 400, user: true, cause: err });
  }
  const imports = WebAssembly.Module.imports(module).map((i) => `${i.module}.${i.name}`);
  const exports = WebAssembly.Module.exports(module);
  const foreign = WebAssembly.Module.imports(module).filter((i) => i.module !== 'wasi_snapshot_preview1');
  if (!exports.some((e) => e.name === '_start' && e.kind === 'function')) {
    throw new IsolaError('ERR_WASM_NOT_WASI_COMMAND', 'the core module does not export a `_start` function, so it is not a WASI command', {
      status: 400, user: true, hint: 'build it as a WASI preview 1 command (e.g. clang --target=wasm32-wasi with a main())',
    });
  }
  if (foreign.length > 0) {
    const names = foreign.map((i) => `${i.module}.${i.name}`);
    throw new IsolaError('ERR_WASM_UNKNOWN_IMPORT', `the core module imports what isola does not offer: ${names.join(', ')}`, {
      status: 400, user: true, details: { unknown: names }, hint: 'a WAGI module may import only wasi_snapshot_preview1',
    });
  }
  return { format: FORMAT, digest, abi: 'wagi', size: bytes.byteLength, imports, coreFiles: [] };
}

async function transpileComponent(bytes: Uint8Array): Promise<Record<string, Uint8Array>> {
  let out: { files: Record<string, Uint8Array> };
  try {
    out = await inJcoWorker<{ files: Record<string, Uint8Array> }>('transpile', bytes);
  } catch (err) {
    throw new IsolaError('ERR_TRANSPILE', `jco could not transpile the component: ${err instanceof Error ? err.message : String(err)}`, { status: 500, cause: err });
  }
  const files: Record<string, Uint8Array> = {};
  for (const [name, data] of Object.entries(out.files)) {
    if (name === 'guest.js') files[GLUE_FILE] = new TextEncoder().encode(leanGlue(new TextDecoder().decode(data)));
    else if (name.endsWith('.wasm')) files[name] = data;
  }
  if (!files[GLUE_FILE]) throw new IsolaError('ERR_TRANSPILE', 'jco produced no glue module');
  return files;
}

/**
 * Checks that every core module of the artifact fits under `memoryCapBytes` without compiling
 * anything (deploy-time validation for functions whose modules are compiled lazily).
 * Throws IsolaError ERR_WASM_INVALID (400) when a module's initial memory is over the cap.
 */
export async function checkArtifactMemory(artifact: Artifact, memoryCapBytes: number): Promise<void> {
  await readCoreModules(artifact, memoryCapBytes);
}

/**
 * Core modules totalling up to this many bytes are small: a function with `min_warm = 0` keeps
 * their (capped) bytes in memory from deploy on and compiles them synchronously when its first
 * sandbox is made (`compileCoreModules`), instead of reading and compiling them then. 1,000
 * deployed functions hold at most 64 MiB of bytes this way, and far less for typical small
 * components (the 7.5 KB WAT hello has 3.3 KB of core modules); a compiled module would hold
 * ~23 KB of V8 metadata each even before any of its code is compiled.
 */
export const SMALL_CORE_BYTES = 64 * 1024;

/**
 * Reads every core module of the artifact with every defined memory capped at `memoryCapBytes`.
 * @returns the capped bytes by core file name
 * @throws IsolaError ERR_WASM_INVALID (400) when a module's initial memory is over the cap
 */
export async function readCoreModules(artifact: Artifact, memoryCapBytes: number): Promise<Record<string, Uint8Array>> {
  const out: Record<string, Uint8Array> = {};
  for (const f of artifact.coreFiles) out[f] = capMemory(await readFile(join(artifact.dir, f)), memoryCapBytes);
  return out;
}

/**
 * Compiles core modules synchronously on the calling thread (for small modules: V8 compiles their
 * functions lazily, so this takes ~0.1 ms for a few KB and saves the file reads and the task hops
 * of `compileArtifact` on a cold start).
 * @param bytes capped module bytes by file name (from `readCoreModules`)
 * @throws IsolaError ERR_WASM_INVALID (400) naming the file when a module does not compile
 */
export function compileCoreModules(bytes: Record<string, Uint8Array>): Record<string, WebAssembly.Module> {
  const modules: Record<string, WebAssembly.Module> = {};
  for (const [f, b] of Object.entries(bytes)) {
    try {
      modules[f] = new WebAssembly.Module(b as Uint8Array<ArrayBuffer>);
    } catch (err) {
      throw new IsolaError('ERR_WASM_INVALID', `core module ${f} does not compile: ${err instanceof Error ? err.message : String(err)}`, { status: 400, user: true, cause: err });
    }
  }
  return modules;
}

/**
 * Compiles an artifact's core modules once (main thread), with every defined memory capped at
 * `memoryCapBytes`; the Modules are posted to sandboxes, which share the compiled code.
 * Throws IsolaError ERR_WASM_INVALID (400) when a module's initial memory is over the cap.
 */
export async function compileArtifact(artifact: Artifact, memoryCapBytes: number): Promise<Record<string, WebAssembly.Module>> {
  const modules: Record<string, WebAssembly.Module> = {};
  for (const f of artifact.coreFiles) {
    const bytes = capMemory(await readFile(join(artifact.dir, f)), memoryCapBytes);
    modules[f] = await WebAssembly.compile(bytes as Uint8Array<ArrayBuffer>);
  }
  return modules;
}
