// Process helpers for the benchmarks: start servers in their own process group (so a server that
// spawns children — jco serve, npx — is stopped whole), optional CPU pinning with taskset, and
// /proc readers for CPU time and memory of a process tree (all threads, all descendants).
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, openSync, readFileSync, readdirSync, closeSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export const CLK_TCK = (() => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

export const hasTaskset = (() => {
  try {
    execFileSync('taskset', ['-c', '0', 'true']);
    return true;
  } catch {
    return false;
  }
})();

/** Every live process started by this benchmark run, stopped on exit whatever happens. */
const live = new Set();
let hooked = false;
function hookExit() {
  if (hooked) return;
  hooked = true;
  const killAll = () => {
    for (const p of live) {
      try {
        process.kill(-p.pid, 'SIGKILL');
      } catch {}
    }
  };
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
    process.on(sig, () => {
      killAll();
      process.exit(130);
    });
  }
}

/**
 * Starts `cmd args` in a new process group, pinned to `cpus` ("0", "1", "0,1") when given and
 * taskset exists. stdout is piped (for readiness lines); stderr goes to `stderr` ('ignore', a file
 * descriptor, or 'pipe').
 */
export function startProcess(cmd, args, { cpus, env, cwd, stderr = 'ignore' } = {}) {
  hookExit();
  const [file, argv] = cpus && hasTaskset ? ['taskset', ['-c', cpus, cmd, ...args]] : [cmd, args];
  const child = spawn(file, argv, {
    cwd,
    env: { ...process.env, ...env },
    detached: true, // own process group: stop() reaches the children too
    stdio: ['ignore', 'pipe', stderr],
  });
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d) => {
    if (out.length < 1 << 16) out += d;
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const proc = {
    pid: child.pid,
    child,
    exited,
    get stdout() {
      return out;
    },
    /** Resolves with the first match of `re` on stdout, rejects on exit or timeout. */
    async waitForStdout(re, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      let gone = false;
      exited.then(() => (gone = true));
      while (Date.now() < deadline) {
        const m = out.match(re);
        if (m) return m;
        if (gone) throw new Error(`${cmd} exited before printing ${re}: ${out.slice(-500)}`);
        await sleep(5);
      }
      throw new Error(`${cmd}: no ${re} on stdout within ${timeoutMs} ms`);
    },
    /** SIGTERM to the whole group, SIGKILL after `graceMs`. */
    async stop(graceMs = 3000) {
      if (!live.has(proc)) return;
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {}
      const t = setTimeout(() => {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {}
      }, graceMs);
      await exited;
      clearTimeout(t);
      // Anything left in the group (a child that ignored SIGTERM) goes too.
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
      live.delete(proc);
    },
  };
  live.add(proc);
  return proc;
}

/** pid and its descendants (by scanning /proc for ppid links). */
export function processTree(pid) {
  const children = new Map();
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = readStat(Number(name));
    if (!st) continue;
    if (!children.has(st.ppid)) children.set(st.ppid, []);
    children.get(st.ppid).push(Number(name));
  }
  const out = [];
  const todo = [pid];
  while (todo.length) {
    const p = todo.pop();
    out.push(p);
    for (const c of children.get(p) ?? []) todo.push(c);
  }
  return out;
}

function readStat(pid) {
  let text;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  // comm may contain spaces: fields start after the last ')'.
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: f[0], ppid: Number(f[1]), utime: Number(f[11]), stime: Number(f[12]) };
}

/** true when process `pid` exists and is not a zombie (killed, not yet reaped by its parent). */
export function isRunning(pid) {
  const st = readStat(pid);
  return st !== null && st.state !== 'Z';
}

/** CPU time (user+system, all threads) of a process tree, µs. Resolution: 1/CLK_TCK s. */
export function treeCpuMicros(pid) {
  let ticks = 0;
  for (const p of processTree(pid)) {
    const st = readStat(p);
    if (st) ticks += st.utime + st.stime;
  }
  return (ticks * 1e6) / CLK_TCK;
}

function statusField(pid, field) {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/** Resident memory of a process tree, bytes (sum of VmRSS). */
export function treeRss(pid) {
  let sum = 0;
  for (const p of processTree(pid)) sum += statusField(p, 'VmRSS');
  return sum;
}

/** Peak resident memory of a process tree, bytes (sum of each process's VmHWM). */
export function treeHwm(pid) {
  let sum = 0;
  for (const p of processTree(pid)) sum += statusField(p, 'VmHWM');
  return sum;
}

/** Samples the tree's RSS every `everyMs` until stopped; returns the peak seen. */
export function rssSampler(pid, everyMs = 50) {
  // The tree is listed once a second (scanning /proc is the costly part), sampled every everyMs.
  let tree = processTree(pid);
  let listed = Date.now();
  const rss = () => {
    if (Date.now() - listed > 1000) {
      tree = processTree(pid);
      listed = Date.now();
    }
    let sum = 0;
    for (const p of tree) sum += statusField(p, 'VmRSS');
    return sum;
  };
  let peak = rss();
  const timer = setInterval(() => {
    const r = rss();
    if (r > peak) peak = r;
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      const r = treeRss(pid);
      if (r > peak) peak = r;
      return peak;
    },
  };
}

/** Load averages from /proc/loadavg ([1, 5, 15] minutes). */
export function loadAvg() {
  return readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
}

/** Polls `url` until it answers (any status), or throws after `timeoutMs`. Returns the status. */
export async function waitForHttp(url, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      const r = await fetch(url);
      await r.arrayBuffer();
      return r.status;
    } catch (e) {
      last = e;
      await sleep(20);
    }
  }
  throw new Error(`${url} did not answer within ${timeoutMs} ms: ${last?.message}`);
}

export { existsSync, openSync, closeSync };
