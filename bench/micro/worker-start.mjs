#!/usr/bin/env node
// Micro-benchmark behind a profile finding: what a sandbox thread's start costs with and without
// loading @wasmer/wasi (a 450 KB CommonJS bundle that Node's ESM loader lexes for named exports).
// Measures new Worker → first message, N times each, alternating; prints the medians.
//   node bench/micro/worker-start.mjs [N]
import { Worker } from 'node:worker_threads';

const n = Number(process.argv[2] ?? 10);
const bodies = {
  empty: `import { parentPort } from 'node:worker_threads'; parentPort.postMessage(1);`,
  'with @wasmer/wasi': `import { parentPort } from 'node:worker_threads'; import { init, WASI } from '@wasmer/wasi'; parentPort.postMessage(1);`,
};
const times = Object.fromEntries(Object.keys(bodies).map((k) => [k, []]));
for (let i = 0; i < n; i++) {
  for (const [k, code] of Object.entries(bodies)) {
    const t0 = performance.now();
    // A data: URL cannot resolve bare specifiers; evaluate as a module file next to node_modules instead.
    const w = new Worker(new URL(`data:text/javascript,${encodeURIComponent(code.replace("'@wasmer/wasi'", `'${import.meta.resolve('@wasmer/wasi')}'`))}`));
    await new Promise((r) => w.once('message', r));
    times[k].push(performance.now() - t0);
    await w.terminate();
  }
}
const med = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1];
for (const [k, v] of Object.entries(times)) console.log(`${k.padEnd(20)} median ${med(v).toFixed(1)} ms (min ${Math.min(...v).toFixed(1)}, max ${Math.max(...v).toFixed(1)})`);
