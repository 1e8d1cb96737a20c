/**
 * A thin layer over @wasmer/wasi's `wasi_snapshot_preview1` imports (WASI preview 1, the
 * witx-defined ABI) that gives isola what @wasmer/wasi 1.2.2 lacks:
 *
 * - Streaming stdio. @wasmer/wasi keeps stdin/stdout/stderr in in-memory pipes that JS can only
 *   fill before `start()` (setStdinBuffer) and drain after it (getStdoutBuffer): calling either
 *   during `start()` throws "recursive use of an object detected" (the WASI object is mutably
 *   borrowed for the whole run). So fd_read on fd 0 and fd_write on fds 1/2 are answered here,
 *   straight from and into guest memory, via the caller's blocking callbacks: nothing is buffered.
 * - A read-only filesystem. Its MemFS is writable; every call that would change it is refused
 *   here: path_open asking for write rights, O_CREAT/O_TRUNC/O_EXCL or O_APPEND → ERRNO_ROFS;
 *   path_create_directory, path_link, path_remove_directory, path_rename, path_symlink,
 *   path_unlink_file, path_filestat_set_times, fd_filestat_set_times → ERRNO_ROFS; fd_write,
 *   fd_pwrite, fd_allocate, fd_filestat_set_size on fds ≥ 3 → ERRNO_BADF.
 * - A check of the linear-memory cap on every WASI call (see run.ts for why only then).
 *
 * Everything else (args, environ, clocks, random, fd_seek/fd_readdir/path_open for reading,
 * proc_exit, poll_oneoff) is @wasmer/wasi's. Known gaps: fd_renumber involving fds 0–2 (dup2
 * onto stdio) → ERRNO_NOTSUP; poll_oneoff on fd 0/1 sees @wasmer/wasi's empty pipes, not the
 * streams; fd_pread/fd_pwrite on stdio go to those pipes (pread reads nothing).
 */
import { IsolaError } from '../../errors.js';
import { blockOn } from '../blocking.js';

type WasiFn = (...args: any[]) => any;

// witx errno values (wasi_snapshot_preview1)
const SUCCESS = 0;
const BADF = 8;
const FAULT = 21;
const INVAL = 28;
/** A private word to Atomics.wait on when no sleepUntil is given. */
const SLEEPER = new Int32Array(new SharedArrayBuffer(4));
const NOTSUP = 58;
const ROFS = 69;
const OFLAGS_WRITE = 0b1101; // CREAT | EXCL | TRUNC
const FDFLAGS_APPEND = 0b1;
// rights: FD_WRITE (6), FD_ALLOCATE (8), FD_FILESTAT_SET_SIZE (22)
const RIGHTS_WRITE = (1n << 6n) | (1n << 8n) | (1n << 22n);

const ROFS_CALLS = [
  'path_create_directory', 'path_link', 'path_remove_directory', 'path_rename', 'path_symlink',
  'path_unlink_file', 'path_filestat_set_times', 'fd_filestat_set_times',
];

/** The caller's side of stdio, see runWagi. */
export interface ShimIo {
  readStdin(max: number): Uint8Array | null;
  writeStdout(chunk: Uint8Array): void;
  writeStderr(chunk: Uint8Array): void;
  memoryMaxBytes: number;
  /** Blocks the thread until `deadlineNs` (monotonic, process.hrtime) passes; may throw to stop the guest. */
  sleepUntil?(deadlineNs: bigint): void;
}

/** State of one shimmed run. */
export interface ShimState {
  /** Must be set (to the instance's exported memory) before the guest runs. */
  memory: WebAssembly.Memory | null;
  /** The first error thrown by a host callback or the memory check; sticky. */
  hostError: unknown;
  /** Throws if the memory is over the cap (records it as hostError). */
  checkMemory(): void;
}

/** Builds the cap error (ERR_MEMORY_LIMIT, 503). */
export function memoryCapError(bytes: number, max: number): IsolaError {
  return new IsolaError('ERR_MEMORY_LIMIT', `The guest's linear memory (${bytes} bytes) exceeds its cap of ${max} bytes`, {
    status: 503,
    user: true,
    details: { memoryBytes: bytes, memoryMaxBytes: max },
  });
}

/**
 * Replaces functions of `ns` (the `wasi_snapshot_preview1` object from `WASI#getImports`) in
 * place, as described in the module doc, and returns the run's state. Host errors (a callback
 * throwing, the memory cap) are recorded in `hostError` and rethrown, which unwinds the guest;
 * once recorded, every later WASI call throws the same error (a guest built with exception
 * handling cannot swallow it). The chunks given to writeStdout/writeStderr are views into guest
 * memory, valid only during the call.
 */
export function shimWasiImports(ns: Record<string, WasiFn>, io: ShimIo): ShimState {
  const closed = [false, false, false];
  let eof = false;
  let view: DataView | null = null;
  const state: ShimState = {
    memory: null,
    hostError: undefined,
    checkMemory() {
      const bytes = state.memory ? state.memory.buffer.byteLength : 0;
      if (bytes > io.memoryMaxBytes) throw (state.hostError ??= memoryCapError(bytes, io.memoryMaxBytes));
    },
  };
  const dv = (): DataView => {
    const buffer = state.memory!.buffer;
    if (view === null || view.buffer !== buffer) view = new DataView(buffer);
    return view;
  };
  /** Reads the iovec array; null when any part lies outside memory (→ EFAULT). */
  const iovecs = (ptr: number, count: number): [number, number][] | null => {
    const d = dv();
    if (ptr < 0 || count < 0 || ptr + count * 8 > d.byteLength) return null;
    const list: [number, number][] = [];
    for (let i = 0; i < count; i++) {
      const base = d.getUint32(ptr + i * 8, true);
      const len = d.getUint32(ptr + i * 8 + 4, true);
      if (base + len > d.byteLength) return null;
      list.push([base, len]);
    }
    return list;
  };
  const putU32 = (ptr: number, value: number): number => {
    const d = dv();
    if (ptr < 0 || ptr + 4 > d.byteLength) return FAULT;
    d.setUint32(ptr, value, true);
    return SUCCESS;
  };

  const own: Record<string, WasiFn> = {
    fd_write(fd: number, iovs: number, count: number, nwritten: number): number {
      if (fd >= 3) return BADF;
      if (fd === 0 || closed[fd]) return BADF;
      const list = iovecs(iovs, count);
      if (list === null) return FAULT;
      const sink = fd === 1 ? io.writeStdout : io.writeStderr;
      let total = 0;
      for (const [base, len] of list) {
        if (len === 0) continue;
        sink(new Uint8Array(state.memory!.buffer, base, len));
        total += len;
      }
      return putU32(nwritten, total);
    },
    fd_read(fd: number, iovs: number, count: number, nread: number): number {
      if (fd !== 0) return orig.fd_read(fd, iovs, count, nread);
      if (closed[0]) return BADF;
      const list = iovecs(iovs, count);
      if (list === null) return FAULT;
      const capacity = list.reduce((sum, [, len]) => sum + len, 0);
      if (eof || capacity === 0) return putU32(nread, 0);
      const chunk = io.readStdin(capacity);
      if (chunk === null || chunk.length === 0) {
        eof = true;
        return putU32(nread, 0);
      }
      if (chunk.length > capacity) throw new IsolaError('ERR_INTERNAL', `readStdin returned ${chunk.length} bytes, more than the ${capacity} asked for`);
      const memory = new Uint8Array(state.memory!.buffer);
      let offset = 0;
      for (const [base, len] of list) {
        if (offset >= chunk.length) break;
        const n = Math.min(len, chunk.length - offset);
        memory.set(chunk.subarray(offset, offset + n), base);
        offset += n;
      }
      return putU32(nread, chunk.length);
    },
    /**
     * poll_oneoff (WASI preview 1): @wasmer/wasi traps on clock subscriptions (`sleep()` in C), so
     * isola answers it. fd subscriptions are reported ready at once (stdin reads block, stdout never
     * does); otherwise the thread sleeps until the earliest clock deadline, which also fires.
     * Layouts: subscription 48 bytes (userdata u64, tag u8 @8, clock id u32 @16, timeout u64 @24,
     * flags u16 @40: 1 = absolute), event 32 bytes (userdata u64, error u16 @8, type u8 @10).
     */
    poll_oneoff(inPtr: number, outPtr: number, count: number, neventsPtr: number): number {
      const d = dv();
      if (count <= 0) return INVAL;
      if (inPtr < 0 || inPtr + count * 48 > d.byteLength || outPtr < 0 || outPtr + count * 32 > d.byteLength) return FAULT;
      const now = process.hrtime.bigint();
      const wall = BigInt(Date.now()) * 1_000_000n;
      let events = 0;
      const emit = (sub: number, type: number): void => {
        const at = outPtr + events * 32;
        d.setBigUint64(at, d.getBigUint64(sub, true), true);
        d.setUint16(at + 8, 0, true);
        d.setUint8(at + 10, type);
        for (let i = 11; i < 32; i++) d.setUint8(at + i, 0);
        events++;
      };
      for (let i = 0; i < count; i++) {
        const sub = inPtr + i * 48;
        const tag = d.getUint8(sub + 8);
        if (tag === 1 || tag === 2) emit(sub, tag);
      }
      if (events === 0) {
        let deadline: bigint | null = null;
        let first = -1;
        for (let i = 0; i < count; i++) {
          const sub = inPtr + i * 48;
          if (d.getUint8(sub + 8) !== 0) continue;
          const clock = d.getUint32(sub + 16, true);
          const timeout = d.getBigUint64(sub + 24, true);
          const absolute = (d.getUint16(sub + 40, true) & 1) === 1;
          const at = absolute ? now + (timeout - (clock === 0 ? wall : now)) : now + timeout;
          if (deadline === null || at < deadline) {
            deadline = at;
            first = i;
          }
        }
        if (deadline === null) return INVAL;
        if (io.sleepUntil) io.sleepUntil(deadline);
        else while (process.hrtime.bigint() < deadline) blockOn(SLEEPER, 0, 0, Number(deadline - process.hrtime.bigint()) / 1e6);
        emit(inPtr + first * 48, 0);
      }
      return putU32(neventsPtr, events);
    },
    fd_close(fd: number): number {
      if (fd >= 0 && fd <= 2) closed[fd] = true;
      return orig.fd_close(fd);
    },
    fd_renumber(from: number, to: number): number {
      if (from <= 2 || to <= 2) return NOTSUP;
      return orig.fd_renumber(from, to);
    },
    fd_pwrite: (fd: number, ...rest: unknown[]) => (fd >= 3 ? BADF : orig.fd_pwrite(fd, ...rest)),
    fd_allocate: (fd: number, ...rest: unknown[]) => (fd >= 3 ? BADF : orig.fd_allocate(fd, ...rest)),
    fd_filestat_set_size: (fd: number, ...rest: unknown[]) => (fd >= 3 ? BADF : orig.fd_filestat_set_size(fd, ...rest)),
    path_open(dirfd: number, dirflags: number, path: number, pathLen: number, oflags: number, rightsBase: bigint, rightsInheriting: bigint, fdflags: number, fdOut: number): number {
      if ((oflags & OFLAGS_WRITE) !== 0 || (BigInt(rightsBase) & RIGHTS_WRITE) !== 0n || (fdflags & FDFLAGS_APPEND) !== 0) return ROFS;
      return orig.path_open(dirfd, dirflags, path, pathLen, oflags, rightsBase, rightsInheriting, fdflags, fdOut);
    },
  };
  for (const name of ROFS_CALLS) own[name] = () => ROFS;

  const orig: Record<string, WasiFn> = { ...ns };
  for (const name of Object.keys(ns)) {
    const fn = own[name] ?? orig[name];
    ns[name] = (...args: unknown[]) => {
      if (state.hostError !== undefined) throw state.hostError;
      state.checkMemory();
      try {
        return fn(...args);
      } catch (err) {
        // Errors from our own code and callbacks are host errors; @wasmer/wasi's proc_exit also
        // throws (to unwind the guest) and must pass through untouched.
        if (own[name] !== undefined) state.hostError ??= err;
        throw err;
      }
    };
  }
  return state;
}
