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

  /** CPU time used by the thread so far, ns (wall time since creation without /proc). Never throws. */
  now(): bigint {
    if (this.fd !== null) {
      try {
        const n = readSync(this.fd, buf, 0, buf.length, 0);
        const sp = buf.indexOf(32);
        return BigInt(buf.toString('latin1', 0, sp > 0 && sp < n ? sp : n));
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

/** The calling thread's Linux tid, or 0 when unknown. */
export function currentTid(): number {
  try {
    return Number(readlinkSync('/proc/thread-self').split('/').pop());
  } catch {
    return 0;
  }
}
