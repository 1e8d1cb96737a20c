// Scenario 4: fuel metering overhead. Runs the metering suite that issue 6 ships (bench/fuel.mjs:
// a CPU-bound C suite — sha256, nbody, sort, fib — built with clang, run with and without fuel
// instrumentation) and reports its ratios. It instruments with the working tree's dist/ (see that
// script), not the snapshot the HTTP scenarios use.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { at } from '../lib/setup.mjs';

export async function runMetering({ quick, serverCpus, log }) {
  const script = at('bench/fuel.mjs');
  if (!existsSync(script)) return { status: 'not yet', note: 'issue 6: bench/fuel.mjs not in this checkout' };
  const args = [script, '--json', '--runs', quick ? '3' : '7'];
  const [file, argv] = serverCpus ? ['taskset', ['-c', serverCpus, process.execPath, ...args]] : [process.execPath, args];
  try {
    const out = await new Promise((resolve, reject) => {
      execFile(file, argv, { cwd: at('.'), encoding: 'utf8', timeout: 10 * 60_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`${err.message}\n${stderr.slice(-500)}`));
        else resolve(stdout);
      });
    });
    const r = JSON.parse(out);
    for (const row of r.rows) log(`  ${row.name}: wall ×${row.ratio.toFixed(3)}, thread CPU ×${row.cpuRatio.toFixed(3)}`);
    return { status: 'ok', ...r };
  } catch (e) {
    log(`  metering suite failed: ${e.message.split('\n')[0]}`);
    return { status: 'error', note: e.message.split('\n')[0] };
  }
}
