/**
 * Runs one WAGI request in the calling thread: a fresh @wasmer/wasi instance of a compiled WASI
 * preview 1 command module, with CGI argv/env, the request body on stdin and stdout/stderr
 * streamed to the caller as the guest writes them (see ./shim.ts for how, since @wasmer/wasi
 * itself only offers whole buffers before/after the run).
 *
 * Meant for the sandbox worker: it blocks its thread for the whole run (readStdin/writeStdout
 * may block on Atomics.wait). Call {@link initWagi} once per thread first.
 *
 * Memory cap: a module that defines its own memory (what clang/rustc emit) carries its maximum
 * in its bytes; JS cannot lower it, and Node 20 cannot read it from a WebAssembly.Module. So
 * `memoryMaxBytes` is checked before the run (initial size), at every WASI call, and after the
 * run; a guest that grows past it without calling WASI is stopped only at its next call. The hard
 * bound must come from the artifact step rewriting the module's declared maximum (DESIGN.md,
 * "prepare artifact").
 */
import { init, WASI } from '@wasmer/wasi';
import { IsolaError } from '../../errors.js';
import { copyFilesIn } from './files.js';
import { memoryCapError, shimWasiImports } from './shim.js';

/** Options of one run; see runWagi. */
export interface WagiRunOptions {
  /** argv, argv[0] included (see cgiArgv). */
  args: string[];
  /** The whole environment (see cgiEnvironment). */
  env: Record<string, string>;
  /** Read-only files: absolute guest path → host path (file or folder), copied in per run. */
  files: Record<string, string>;
  /** Blocks until 1..max bytes of the request body are available; null (or empty) at EOF. */
  readStdin(max: number): Uint8Array | null;
  /** Guest stdout, as written; a view into guest memory valid only during the call. May block or throw. */
  writeStdout(chunk: Uint8Array): void;
  /** Guest stderr, same rules as writeStdout. */
  writeStderr(chunk: Uint8Array): void;
  /** Cap on the guest's linear memory, bytes (see the module doc for how it is enforced). */
  memoryMaxBytes: number;
  /** How `sleep()` (poll_oneoff on a clock) waits: until the monotonic deadline, ns; may throw to stop the guest. */
  sleepUntil?(deadlineNs: bigint): void;
  /** The fuel counter of a metered module (src/artifacts/fuel.ts), imported as `isola.fuel`. */
  fuel?: WebAssembly.Global;
}

let ready: Promise<void> | null = null;
let initialized = false;

/** Loads @wasmer/wasi's own Wasm into this thread (~50 ms, once). Safe to call repeatedly. */
export function initWagi(): Promise<void> {
  ready ??= init().then(() => {
    initialized = true;
  });
  return ready;
}

const checked = new WeakSet<WebAssembly.Module>();

/** Checks the module is a WASI preview 1 command; throws ERR_WASM_NOT_WASI_COMMAND (user). */
function checkCommand(module: WebAssembly.Module): void {
  if (checked.has(module)) return;
  const fail = (why: string): never => {
    throw new IsolaError('ERR_WASM_NOT_WASI_COMMAND', `Not a WASI preview 1 command module: ${why}`, {
      status: 500,
      user: true,
      hint: 'Build for wasm32-wasi (wasm32-wasip1) as a command: it must export "_start" and "memory" and import only from wasi_snapshot_preview1.',
    });
  };
  const exports = WebAssembly.Module.exports(module);
  if (!exports.some((e) => e.name === '_start' && e.kind === 'function')) fail('no exported function "_start"');
  if (!exports.some((e) => e.name === 'memory' && e.kind === 'memory')) fail('no exported memory "memory"');
  for (const i of WebAssembly.Module.imports(module)) {
    if (i.module === 'isola' && i.name === 'fuel' && i.kind === 'global') continue; // fuel metering
    if (i.module !== 'wasi_snapshot_preview1' || i.kind !== 'function') fail(`it imports ${i.module}.${i.name} (${i.kind})`);
  }
  checked.add(module);
}

/**
 * Runs `module`'s `_start` once, in a fresh instance, and returns its exit code (0 when `_start`
 * returns, else the proc_exit code).
 *
 * Throws:
 * - IsolaError `ERR_GUEST_TRAP` (500) when the guest traps (unreachable, out-of-bounds access,
 *   stack overflow…) or its memory exceeds `memoryMaxBytes`;
 * - whatever a callback (readStdin, writeStdout, writeStderr) threw, unchanged — the guest is
 *   unwound at that point (use it to stop a guest: response too large, bad CGI header, client gone);
 * - IsolaError `ERR_WASM_NOT_WASI_COMMAND` (user) when the module is not a WASI command, or imports
 *   a WASI function @wasmer/wasi does not provide; `ERR_CONFIG_INVALID` for unreadable `files`;
 * - IsolaError `ERR_INTERNAL` when initWagi() has not completed.
 */
export function runWagi(module: WebAssembly.Module, opts: WagiRunOptions): { exitCode: number } {
  if (!initialized) throw new IsolaError('ERR_INTERNAL', 'runWagi called before initWagi() completed');
  checkCommand(module);
  const wasi = new WASI({ args: opts.args, env: opts.env, preopens: { '/': '/' } });
  try {
    if (Object.keys(opts.files).length > 0) {
      // Each read of `wasi.fs` makes a new JS handle holding a reference to the MemFS: free it,
      // or the filesystem (and every file copied in) outlives the run in @wasmer/wasi's memory.
      const fs = wasi.fs;
      try {
        copyFilesIn(fs, opts.files);
      } finally {
        fs.free();
      }
    }
    const imports = wasi.getImports(module) as Record<string, Record<string, (...a: any[]) => any>>;
    const state = shimWasiImports(imports.wasi_snapshot_preview1, opts);
    if (opts.fuel) (imports as Record<string, unknown>).isola = { fuel: opts.fuel };
    let instance: WebAssembly.Instance;
    try {
      instance = new WebAssembly.Instance(module, imports as WebAssembly.Imports);
    } catch (err) {
      throw new IsolaError('ERR_WASM_NOT_WASI_COMMAND', `Cannot instantiate the WASI module: ${(err as Error).message}`, {
        status: 500,
        user: true,
        cause: err,
      });
    }
    state.memory = instance.exports.memory as WebAssembly.Memory;
    state.checkMemory();
    wasi.instantiate(instance);
    let exitCode: number;
    try {
      exitCode = wasi.start();
    } catch (err) {
      if (state.hostError !== undefined) throw state.hostError;
      // One line only: @wasmer/wasi's message can carry a JS stack with host paths, which clients must not see.
      const message = (err as Error).message.replace(/^Error while running start function: /, '').split('\n')[0]!.replace(/\s+at .*$/, '').replace(/JsValue\((.*?)\)?$/, '$1').replace(/^(\w*Error: )\1/, '$1').slice(0, 300);
      // A trap with memory at its cap: the guest's allocation failed (e.g. malloc → abort).
      if (state.memory && state.memory.buffer.byteLength + 65536 > opts.memoryMaxBytes) {
        throw new IsolaError('ERR_MEMORY_LIMIT', `memory limit of ${opts.memoryMaxBytes} bytes reached (the guest trapped: ${message})`, { status: 503, user: true, cause: err });
      }
      throw new IsolaError('ERR_GUEST_TRAP', `The guest trapped: ${message}`, { status: 500, user: true, cause: err });
    }
    if (state.hostError !== undefined) throw state.hostError;
    const bytes = state.memory.buffer.byteLength;
    if (bytes > opts.memoryMaxBytes) throw memoryCapError(bytes, opts.memoryMaxBytes);
    return { exitCode };
  } finally {
    wasi.free();
  }
}
