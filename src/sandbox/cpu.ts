/**
 * Thread CPU clocks on Linux. Node 20 has no per-thread CPU time (`process.cpuUsage()` in a worker
 * reports the whole process; `threadCpuUsage` arrives in Node 23.9), so isola reads the kernel's
 * `/proc/<pid>/task/<tid>/schedstat`: its first field is the thread's time on CPU in ns. A thread
 * reads its own clock through `/proc/thread-self`; the main thread reads a sandbox's clock by tid,
 * even while the sandbox is stuck in guest code. A read of an open fd costs ~2–3 µs.
 *
 * Elsewhere (no /proc), clocks read as wall time since the thread started: accounting is then wall
 * time, documented as such in the README.
 */
import { closeSync, openSync, readSync, readlinkSync } from 'node:fs';

const buf = Buffer.alloc(64);

/** A CPU clock of one thread. */
export class ThreadClock {
  private constructor(private fd: number | null, private readonly start = process.hrtime.bigint()) {}

  /** The calling thread's own clock. */
  static self(): ThreadClock {
    try {
      return new ThreadClock(openSync('/proc/thread-self/schedstat', 'r'));
    } catch {
      return new ThreadClock(null);
    }
  }

  /** Another thread's clock by its Linux tid (for the main thread watching a sandbox). */
  static ofThread(tid: number): ThreadClock {
    try {
      return new ThreadClock(tid > 0 ? openSync(`/proc/self/task/${tid}/schedstat`, 'r') : null);
    } catch {
      return new ThreadClock(null);
    }
  }

  /** true when this is a real CPU clock (false: wall-time fallback). */
  get isCpu(): boolean {
    return this.fd !== null;
  }

  /**
   * CPU time used by the thread so far, ns (wall time since creation without /proc). Never throws.
   * The kernel updates the figure at scheduler ticks and context switches, not continuously (see
   * FACTS.md), so two reads within one run of the thread may return the same value.
   */
  now(): bigint {
    if (this.fd !== null) {
      try {
        return parseFirstField(buf, readSync(this.fd, buf, 0, buf.length, 0));
      } catch {
        this.close();
      }
    }
    return process.hrtime.bigint() - this.start;
  }

  close(): void {
    if (this.fd !== null) {
      try {
        closeSync(this.fd);
      } catch {
        /* already closed */
      }
      this.fd = null;
    }
  }
}

/**
 * The leading decimal field of `bytes[0, n)` (up to the first space or newline) as a bigint. Reads
 * the digits into a number while it stays exact (15 digits: 11 days of CPU time in ns), which is
 * several times cheaper than building a string for `BigInt()`; longer fields take that path.
 * Throws SyntaxError when the field is empty or not decimal (a /proc format this code does not know).
 */
export function parseFirstField(bytes: Uint8Array, n: number): bigint {
  let v = 0;
  let i = 0;
  for (; i < n; i++) {
    const c = bytes[i]!;
    if (c === 32 || c === 10) break;
    if (c < 48 || c > 57 || i >= 15) return BigInt(Buffer.from(bytes.buffer, bytes.byteOffset, n).toString('latin1').split(/[ \n]/)[0]!);
    v = v * 10 + (c - 48);
  }
  if (i === 0) throw new SyntaxError('empty clock field');
  return BigInt(v);
}

/** The calling thread's Linux tid, or 0 when unknown. */
export function currentTid(): number {
  try {
    return Number(readlinkSync('/proc/thread-self').split('/').pop());
  } catch {
    return 0;
  }
}
