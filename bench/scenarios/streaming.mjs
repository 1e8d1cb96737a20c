// Scenario 3: body streaming. A large POST through an echo function (the body streamed back),
// sent by a separate client process (pinned to the load core). Peak server RSS is sampled from
// /proc every 50 ms; VmHWM (the kernel's own peak) is read at the end. issue 2's check: RSS stays
// under 300 MB for a 1 GiB body.
import { execFile } from 'node:child_process';
import { at } from '../lib/setup.mjs';
import { hasTaskset, loadAvg, rssSampler, treeHwm, treeRss } from '../lib/proc.mjs';
import { isolaConfig, startIsola, startNodeHttp } from '../lib/peers.mjs';
import { summary } from '../lib/stats.mjs';

function postStream(url, bytes, cpus) {
  const args = [at('bench/clients/post-stream.mjs'), url, String(bytes)];
  const [file, argv] = cpus && hasTaskset ? ['taskset', ['-c', cpus, process.execPath, ...args]] : [process.execPath, args];
  return new Promise((resolve, reject) => {
    execFile(file, argv, { encoding: 'utf8', timeout: 15 * 60_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`client failed: ${err.message}\n${stderr}`));
      else resolve(JSON.parse(stdout.trim().split('\n').pop()));
    });
  });
}

export async function runStreaming(a, { bytes, reps, serverCpus, loadCpus, log }) {
  const limits = { max_request_body: '4GiB', max_response_body: '4GiB', timeout: '10m' };
  const peers = [
    { id: 'node-echo', label: 'node:http echo (req.pipe(res), ceiling)', start: () => startNodeHttp('echo', { cpus: serverCpus }), path: '/' },
    { id: 'isola-js-echo', label: 'isola + examples/echo (componentize-js)', path: '/echo',
      start: () => startIsola(isolaConfig('echo-js.toml', [{ name: 'echo', wasm: a.jsEcho, routes: ['/echo'], limits }]), { cpus: serverCpus }) },
    { id: 'isola-wat-echo', label: 'isola + WAT echo component', path: '/echo',
      start: () => startIsola(isolaConfig('echo-wat.toml', [{ name: 'echo', wasm: a.watEcho, routes: ['/echo'], limits }]), { cpus: serverCpus }) },
  ];
  const out = [];
  for (const p of peers) {
    const s = await p.start();
    const pid = s.proc.pid;
    try {
      // One small request first so the instance exists before the baseline reading.
      await (await fetch(s.base + p.path, { method: 'POST', body: 'x' })).arrayBuffer();
      const rssBefore = treeRss(pid);
      const runs = [];
      for (let i = 0; i < reps; i++) {
        const load1 = loadAvg()[0];
        const sampler = rssSampler(pid, 50);
        const r = await postStream(s.base + p.path, bytes, loadCpus);
        const peak = sampler.stop();
        const ok = r.status === 200 && r.received === bytes;
        runs.push({ ...r, ok, load1, mibPerS: bytes / 1048576 / r.seconds, rssPeakBytes: peak });
        log(`  ${p.id} run ${i + 1}: ${ok ? 'ok' : `FAILED (${JSON.stringify(r)})`} ${(bytes / 1048576 / r.seconds).toFixed(0)} MiB/s, peak RSS ${(peak / 1048576).toFixed(0)} MiB`);
      }
      out.push({
        id: p.id,
        label: p.label,
        bytes,
        ok: runs.every((r) => r.ok),
        mibPerS: summary(runs.map((r) => r.mibPerS)),
        rssBeforeBytes: rssBefore,
        rssPeakBytes: Math.max(...runs.map((r) => r.rssPeakBytes)),
        hwmBytes: treeHwm(pid),
        runs,
      });
    } finally {
      await s.proc.stop();
    }
  }
  return out;
}
