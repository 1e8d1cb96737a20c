// Scenario: deploy → first response (issue 5: "first request to a just-deployed small component").
// `isola serve` with an empty data_dir; a tenant uploads and deploys distinct small WAT components
// (each its own artifact: transpiled, code cache primed) through the admin API, one at a time, and
// sends each one request on an already-open keep-alive connection right after the deploy's 201.
// Two pool settings: the default (min_warm = 1: the deploy binds a sandbox before it answers) and
// min_warm = 0 (nothing is bound until the first request, which takes a blank sandbox).
// Two references measured the same way in the same run: a request to a function that already
// served one, sent right after an admin API call (what any request costs after the same pause and
// admin work), and a plain node:http hello after the same pause. On this VM a request that follows
// a pause costs several times one that follows another (wake-ups of idle threads and vCPUs).
import http from 'node:http';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadAvg, startProcess } from '../lib/proc.mjs';
import { startNodeHttp } from '../lib/peers.mjs';
import { BUILD, at } from '../lib/setup.mjs';
import * as setup from '../lib/setup.mjs';
import { pct, summary } from '../lib/stats.mjs';

const OPERATOR = 'bench-operator-token-0123456789abcdef';

/** One request: { status, us, body }. */
function send(url, { method = 'GET', headers = {}, body, agent } = {}) {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const req = http.request(url, { method, headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, us: Number(process.hrtime.bigint() - t0) / 1000, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

/** Pause before each first request's reference request, ms (the blank sandbox taken is replaced meanwhile). */
const PAUSE_MS = 150;

/** node:http hello on `cpus`: `n` requests on one keep-alive connection, each after a PAUSE_MS pause. */
async function nodeAfterPauseRef(n, cpus) {
  const { proc, base } = await startNodeHttp('hello', { cpus });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  try {
    for (let i = 0; i < 20; i++) await send(base, { agent }); // JIT and connection warm
    const us = [];
    for (let i = 0; i < n; i++) {
      await sleep(PAUSE_MS);
      const r = await send(base, { agent });
      if (r.status !== 200) throw new Error(`node:http: ${r.status}`);
      us.push(r.us);
    }
    return { ...summary(us), pct: pct(us) };
  } finally {
    agent.destroy();
    await proc.stop();
  }
}

export async function runDeploy(a, { quick, serverCpus, log }) {
  const n = quick ? 8 : 16;
  const load1 = loadAvg()[0];
  const variants = await Promise.all(Array.from({ length: 2 * n }, (_, i) => a.guests.buildHelloVariant(200 + i)));
  const { readFileSync } = await import('node:fs');
  const dataDir = path.join(BUILD, 'deploy-data');
  rmSync(dataDir, { recursive: true, force: true });
  mkdirSync(dataDir, { recursive: true });
  // The node:http reference first, alone on the server CPU (isola's start-up would share it).
  const nodeAfterPause = await nodeAfterPauseRef(n, serverCpus);
  log(`  node:http hello, one request after a ${PAUSE_MS} ms pause: p50 ${(nodeAfterPause.pct.p50 / 1000).toFixed(2)} ms`);
  const config = path.join(BUILD, 'deploy.toml');
  writeFileSync(config, '[server]\nhost = "127.0.0.1"\n');
  const proc = startProcess(process.execPath, [at('bench/lib/sut-launch.mjs')], {
    cpus: serverCpus,
    env: {
      ISOLA_LOG_LEVEL: 'warn',
      ISOLA_OPERATOR_TOKEN: OPERATOR,
      BENCH_SUT_CLI: setup.ISOLA_CLI,
      BENCH_SUT_ARGS: JSON.stringify(['serve', '--config', config, '--port', '0', '--admin-port', '0', '--data-dir', dataDir]),
    },
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  const out = { load1, n, nodeAfterPause };
  try {
    const edge = (await proc.waitForStdout(/listening on (http:\/\/\S+)/, 120_000))[1];
    const admin = (await proc.waitForStdout(/admin on (http:\/\/\S+)/, 120_000))[1];
    const port = new URL(edge).port;
    const op = { authorization: `Bearer ${OPERATOR}`, 'content-type': 'application/json' };
    const created = await send(`${admin}/v1/tenants`, { method: 'POST', headers: op, body: JSON.stringify({ name: 'bench' }) });
    if (created.status !== 201) throw new Error(`create tenant: ${created.status} ${created.body}`);
    const auth = { authorization: `Bearer ${JSON.parse(created.body).token}` };
    await sleep(500); // the blank sandboxes come up
    let k = 0;
    for (const [label, pool] of [['default pool (min_warm = 1)', undefined], ['min_warm = 0', { min_warm: 0 }]]) {
      const upload = [];
      const deploy = [];
      const first = [];
      const warm = [];
      for (let i = 0; i < n; i++, k++) {
        const fn = `f${k}`;
        const up = await send(`${admin}/v1/tenants/bench/functions/${fn}/versions`, {
          method: 'POST', headers: { ...auth, 'content-type': 'application/wasm' }, body: readFileSync(variants[k]),
        });
        if (up.status !== 201) throw new Error(`upload ${fn}: ${up.status} ${up.body}`);
        const dep = await send(`${admin}/v1/tenants/bench/functions/${fn}/deployments`, {
          method: 'POST', headers: { ...auth, 'content-type': 'application/json' }, body: JSON.stringify({ routes: [`/${fn}`], ...(pool ? { pool } : {}) }),
        });
        if (dep.status !== 201) throw new Error(`deploy ${fn}: ${dep.status} ${dep.body}`);
        const r = await send(`${edge}/${fn}`, { headers: { host: `bench.localhost:${port}` }, agent });
        if (r.status !== 200) throw new Error(`first request to ${fn}: ${r.status} ${r.body}`);
        upload.push(up.us);
        deploy.push(dep.us);
        first.push(r.us);
        await sleep(PAUSE_MS); // the blank sandbox taken is replaced
        // The reference: the same function, now warm, right after an admin API call.
        const who = await send(`${admin}/v1/tenants/bench`, { headers: auth });
        if (who.status !== 200) throw new Error(`GET tenant: ${who.status} ${who.body}`);
        const w = await send(`${edge}/${fn}`, { headers: { host: `bench.localhost:${port}` }, agent });
        if (w.status !== 200) throw new Error(`warm request to ${fn}: ${w.status} ${w.body}`);
        warm.push(w.us);
      }
      const p = pct(first);
      const pw = pct(warm);
      log(`  deploy (${label}): upload p50 ${(pct(upload).p50 / 1000).toFixed(1)} ms, deploy p50 ${(pct(deploy).p50 / 1000).toFixed(1)} ms, first response p50 ${(p.p50 / 1000).toFixed(2)} / p99 ${(p.p99 / 1000).toFixed(2)} ms; warm function after an admin call p50 ${(pw.p50 / 1000).toFixed(2)} ms`);
      out[pool ? 'minWarm0' : 'minWarmDefault'] = { upload: summary(upload), deploy: summary(deploy), first: summary(first), firstPct: p, warm: summary(warm), warmPct: pw };
    }
  } finally {
    agent.destroy();
    await proc.stop();
    rmSync(dataDir, { recursive: true, force: true });
  }
  return out;
}
