#!/usr/bin/env node
// Micro-benchmark behind a profile finding: what one request's main ⇄ sandbox handoff costs.
// Compares the MessagePort round trip isola uses today (postMessage a request head, the worker
// answers with one response message) with a SharedArrayBuffer + Atomics handoff (the worker
// blocks in Atomics.wait, the main thread awaits Atomics.waitAsync), at 1 and at 4 workers.
//
//   node bench/micro/handoff.mjs [port|sab] [workers] [roundTrips]
//   taskset -c 0 node bench/micro/handoff.mjs port 4      # everything on one core
// Prints round trips/s and process CPU µs per round trip (all threads).
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';

const HEAD = {
  t: 'request',
  head: {
    id: '6f1c1b0e-6a55-4b56-9a7e-3f1c8f0f9d21', method: 'GET', scheme: 'http', authority: '127.0.0.1:8787',
    pathWithQuery: '/hello', rawHeaders: ['Host', '127.0.0.1:8787', 'User-Agent', 'wrk', 'Accept', '*/*'],
    httpVersion: '1.1', remoteAddr: '127.0.0.1', remotePort: 40000, serverName: '127.0.0.1', serverPort: 8787,
    routePrefix: '/hello', bodyLength: 0,
  },
};
const BODY = new TextEncoder().encode('hello from wat\n');

if (!isMainThread) {
  const { mode, sab } = workerData;
  if (mode === 'port') {
    parentPort.on('message', (m) => {
      parentPort.postMessage({ t: 'res', id: m.head.id, head: { status: 200, headers: ['content-type', 'text/plain', 'content-length', '15'] }, body: [BODY.slice()], end: true, done: { kind: 'ok' } });
    });
  } else {
    // [0] = state (0 idle, 1 request ready, 2 response ready), [1] = length; bytes after 64.
    const ctl = new Int32Array(sab, 0, 4);
    const bytes = new Uint8Array(sab, 64);
    const enc = new TextEncoder();
    const dec = new TextDecoder();
    for (;;) {
      let state;
      while ((state = Atomics.load(ctl, 0)) !== 1 && state !== 3) Atomics.wait(ctl, 0, state);
      if (state === 3) break;
      const req = JSON.parse(dec.decode(bytes.subarray(0, ctl[1])));
      const res = enc.encode(JSON.stringify({ id: req.head.id, status: 200, headers: ['content-type', 'text/plain', 'content-length', '15'], body: 'hello from wat\n' }));
      bytes.set(res);
      ctl[1] = res.length;
      Atomics.store(ctl, 0, 2);
      Atomics.notify(ctl, 0);
    }
  }
} else {
  const mode = process.argv[2] ?? 'port';
  const nWorkers = Number(process.argv[3] ?? 1);
  const total = Number(process.argv[4] ?? 20000);
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  const lanes = [];
  for (let i = 0; i < nWorkers; i++) {
    const sab = new SharedArrayBuffer(64 + 65536);
    const w = new Worker(new URL(import.meta.url), { workerData: { mode, sab } });
    lanes.push({ w, sab, ctl: new Int32Array(sab, 0, 4), bytes: new Uint8Array(sab, 64) });
  }
  const oneTrip = (lane) => {
    if (mode === 'port') {
      return new Promise((resolve) => {
        lane.w.once('message', resolve);
        lane.w.postMessage(HEAD);
      });
    }
    const b = enc.encode(JSON.stringify(HEAD));
    lane.bytes.set(b);
    lane.ctl[1] = b.length;
    Atomics.store(lane.ctl, 0, 1);
    Atomics.notify(lane.ctl, 0);
    const { async, value } = Atomics.waitAsync(lane.ctl, 0, 1);
    const done = () => {
      const res = JSON.parse(dec.decode(lane.bytes.subarray(0, lane.ctl[1])));
      Atomics.store(lane.ctl, 0, 0);
      return res;
    };
    return async ? value.then(done) : Promise.resolve(done());
  };
  const runLane = async (lane, n) => {
    for (let i = 0; i < n; i++) await oneTrip(lane);
  };
  await Promise.all(lanes.map((l) => runLane(l, 500))); // warm-up
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await Promise.all(lanes.map((l) => runLane(l, Math.floor(total / nWorkers))));
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(cpu0);
  const n = Math.floor(total / nWorkers) * nWorkers;
  console.log(JSON.stringify({ mode, workers: nWorkers, roundTrips: n, perSecond: Math.round((n / ms) * 1000), wallUsPerTrip: +((ms * 1000) / n).toFixed(1), cpuUsPerTrip: +((cpu.user + cpu.system) / n).toFixed(1) }));
  for (const l of lanes) {
    if (mode === 'sab') {
      Atomics.store(l.ctl, 0, 3);
      Atomics.notify(l.ctl, 0);
    }
    await l.w.terminate();
  }
}
