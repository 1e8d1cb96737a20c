// Load generation: wrk (Debian's package) when installed, else autocannon (npm) when installed.
// Both give the same result shape: requests, req/s, latency percentiles (µs), errors.
import { execFile, execFileSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { hasTaskset } from './proc.mjs';

const REPORT_LUA = fileURLToPath(new URL('./wrk-report.lua', import.meta.url));

function which(cmd) {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** 'wrk' | 'autocannon' | null, with a hint when neither is there. */
export async function pickLoadGenerator() {
  if (which('wrk')) return { name: 'wrk', version: execFileSync('sh', ['-c', 'wrk --version 2>&1 | head -1'], { encoding: 'utf8' }).trim().split(' [')[0] };
  try {
    await import('autocannon');
    return { name: 'autocannon', version: 'npm' };
  } catch {
    return null;
  }
}

/**
 * Runs one load test against `url` for `seconds` with `connections` keep-alive connections
 * (one wrk thread), pinned to `cpus` when given. Returns { requests, rps, p50_us, p99_us, ... }.
 */
export async function runLoad(gen, url, { seconds, connections, cpus }) {
  if (gen.name === 'wrk') {
    const args = ['-t1', `-c${connections}`, `-d${seconds}s`, '--timeout', '10s', '-s', REPORT_LUA, url];
    const [file, argv] = cpus && hasTaskset ? ['taskset', ['-c', cpus, 'wrk', ...args]] : ['wrk', args];
    const out = await new Promise((resolve, reject) => {
      execFile(file, argv, { encoding: 'utf8', timeout: (seconds + 30) * 1000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`wrk failed: ${err.message}\n${stderr}`));
        else resolve(stdout);
      });
    });
    const line = out.split('\n').find((l) => l.startsWith('WRKJSON '));
    if (!line) throw new Error(`wrk printed no report:\n${out}`);
    const r = JSON.parse(line.slice(8));
    const errors = r.errors.connect + r.errors.read + r.errors.write + r.errors.timeout;
    return {
      requests: r.requests,
      seconds: r.duration_us / 1e6,
      rps: r.requests / (r.duration_us / 1e6),
      p50_us: r.p50_us,
      p90_us: r.p90_us,
      p99_us: r.p99_us,
      max_us: r.max_us,
      non2xx: r.errors.status,
      errors,
    };
  }
  // autocannon: in-process (it shares the bench process's core; pinning does not apply).
  const { default: autocannon } = await import('autocannon');
  const r = await autocannon({ url, connections, duration: seconds, pipelining: 1 });
  return {
    requests: r.requests.total,
    seconds: r.duration,
    rps: r.requests.total / r.duration,
    p50_us: r.latency.p50 * 1000,
    p90_us: r.latency.p90 * 1000,
    p99_us: r.latency.p99 * 1000,
    max_us: r.latency.max * 1000,
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
  };
}
