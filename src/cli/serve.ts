/**
 * `isola serve`: the multi-tenant production server. Two listeners: the edge (tenants' functions)
 * and the admin API (docs/admin-api.md). State lives in the store under `server.data_dir`
 * (`isola.db` and `blobs/`); at start every live deployment in it serves again. Prints
 * `listening on http://HOST:PORT` (edge) then `admin on http://HOST:PORT`. SIGINT/SIGTERM stop both
 * listeners, let in-flight requests finish for up to `server.drain_timeout`, and exit 0.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { loadConfig, parseConfig } from '../config/load.js';
import { MIN_OPERATOR_TOKEN_LENGTH } from '../config/schema.js';
import type { IsolaConfig } from '../config/types.js';
import { IsolaError } from '../errors.js';
import { startAdmin } from '../server/admin.js';
import { ControlPlane } from '../server/admin-control.js';
import { artifactCacheDir, Deployments } from '../server/deployments.js';
import { defaultScheduler, startEdge } from '../server/edge.js';
import { Readiness } from '../server/ops.js';
import { FsArtifactStore } from '../store/artifacts.js';
import { databasePath, openSqliteStore } from '../store/sqlite.js';
import { createLogger } from '../telemetry/log.js';
import { Metrics } from '../telemetry/metrics.js';
import { TailHub } from '../telemetry/tail.js';
import { defineCommand, parsePort } from './command.js';

export interface ServeOptions {
  config?: string;
  host?: string;
  port?: string;
  adminHost?: string;
  adminPort?: string;
  dataDir?: string;
  baseDomain?: string;
}

/** Registers `isola serve`. */
export function registerServe(program: Command): void {
  defineCommand<ServeOptions>(program, {
    name: 'serve',
    summary: 'run the multi-tenant server: edge and admin API, state from the store',
    options: [
      { flags: '-c, --config <file>', description: 'config file (its [server] table); default ./isola.toml when it exists' },
      { flags: '--host <addr>', description: 'edge address; overrides server.host' },
      { flags: '-p, --port <n>', description: 'edge port (0 picks a free one); overrides server.port' },
      { flags: '--admin-host <addr>', description: 'admin API address; overrides server.admin_host' },
      { flags: '--admin-port <n>', description: 'admin API port (0 picks a free one); overrides server.admin_port' },
      { flags: '--data-dir <dir>', description: 'store and artifact cache; overrides server.data_dir' },
      { flags: '--base-domain <name>', description: 'tenants get <tenant>.<name>; overrides server.base_domain' },
    ],
    examples: [
      'ISOLA_OPERATOR_TOKEN=$(openssl rand -hex 32) isola serve',
      'isola serve --config /etc/isola/isola.toml --port 80 --base-domain fn.example.com',
    ],
    run: (_args, opts) => serve(opts),
  });
}

function readConfig(opts: ServeOptions): IsolaConfig {
  const warn = (formatted: string): void => void process.stderr.write(formatted + '\n');
  const file = opts.config ?? (existsSync('isola.toml') ? 'isola.toml' : null);
  let config: IsolaConfig;
  if (file === null) {
    config = parseConfig('', { path: null, baseDir: process.cwd() }).config!;
  } else {
    config = loadConfig(resolve(file), {
      onWarnings: (w, formatted) => {
        if (w.some((d) => d.key !== 'functions')) warn(formatted);
      },
    });
    if (config.functions.length > 0) {
      warn(`warning: isola serve ignores the ${config.functions.length} [[functions]] in ${file}; deploy them with \`isola deploy\` (or serve the file with \`isola dev\`)`);
    }
  }
  const s = config.server;
  if (opts.host !== undefined) s.host = opts.host;
  if (opts.port !== undefined) s.port = parsePort(opts.port, '--port');
  if (opts.adminHost !== undefined) s.adminHost = opts.adminHost;
  if (opts.adminPort !== undefined) s.adminPort = parsePort(opts.adminPort, '--admin-port');
  if (opts.dataDir !== undefined) s.dataDir = resolve(opts.dataDir);
  if (opts.baseDomain !== undefined) {
    const check = parseConfig(`[server]\nbase_domain = ${JSON.stringify(opts.baseDomain)}\n`, { path: null, baseDir: '/' });
    if (!check.config) throw new IsolaError('ERR_USAGE', `--base-domain: ${check.diagnostics[0]!.message}`, { user: true });
    s.baseDomain = opts.baseDomain;
  }
  const envToken = process.env.ISOLA_OPERATOR_TOKEN;
  if (envToken !== undefined && envToken !== '') {
    if (envToken.length < MIN_OPERATOR_TOKEN_LENGTH || /\s/.test(envToken)) {
      throw new IsolaError('ERR_CONFIG_INVALID', `ISOLA_OPERATOR_TOKEN must be at least ${MIN_OPERATOR_TOKEN_LENGTH} characters without whitespace`, { user: true, hint: 'generate one with: openssl rand -hex 32' });
    }
    s.operatorToken = envToken;
  }
  if (s.operatorToken === null) {
    throw new IsolaError('ERR_CONFIG_INVALID', 'no operator token: the admin API needs one to create tenants', {
      user: true, hint: 'set ISOLA_OPERATOR_TOKEN (e.g. export ISOLA_OPERATOR_TOKEN=$(openssl rand -hex 32)) or server.operator_token',
    });
  }
  return config;
}

/**
 * Takes `<dataDir>/serve.pid`, refusing when another live `isola serve` holds it (a pid file left by
 * a killed process is taken over). Returns a function that releases it.
 */
function lockDataDir(dataDir: string): () => void {
  const file = join(dataDir, 'serve.pid');
  try {
    const pid = Number(readFileSync(file, 'utf8'));
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid) {
      let alive = true;
      try {
        process.kill(pid, 0);
      } catch (err) {
        alive = (err as NodeJS.ErrnoException).code === 'EPERM';
      }
      if (alive) {
        throw new IsolaError('ERR_USAGE', `another isola serve (pid ${pid}) is using ${dataDir}`, { user: true, hint: 'stop it, or give this one another --data-dir' });
      }
    }
  } catch (err) {
    if (err instanceof IsolaError) throw err;
  }
  writeFileSync(file, String(process.pid));
  return () => rmSync(file, { force: true });
}

async function serve(opts: ServeOptions): Promise<void> {
  const config = readConfig(opts);
  const s = config.server;
  mkdirSync(s.dataDir, { recursive: true });
  const unlock = lockDataDir(s.dataDir);
  const log = createLogger();
  const store = openSqliteStore(databasePath(s.dataDir));
  const artifacts = new FsArtifactStore(join(s.dataDir, 'blobs'));
  const metrics = new Metrics();
  const tail = new TailHub();
  const deployments = new Deployments(artifactCacheDir(s.dataDir), log, undefined, { metrics, tail });
  const scheduler = defaultScheduler();
  metrics.setSources({
    pools: () => deployments.list().map((d) => ({ tenant: d.owner, name: d.name, stats: d.pool.snapshot() })),
    manager: () => deployments.manager.snapshot(),
    scheduler: () => scheduler.snapshot(),
    tail,
  });
  let listening = false;
  const readiness = new Readiness()
    .check('store', async (): Promise<true> => {
      await store.getTenant('-readyz-');
      return true;
    })
    .check('listeners', () => listening || 'the edge and admin listeners are not up yet');
  const control = new ControlPlane({
    store, artifacts, deployments, log, cacheDir: artifactCacheDir(s.dataDir), baseDomain: s.baseDomain,
    tenantLimits: s.tenantLimits, drainMs: s.drainTimeoutMs,
  });
  const t0 = performance.now();
  const restored = await control.restore();
  log.info({ live: restored.live, failed: restored.failed, ms: Math.round(performance.now() - t0) }, 'deployments restored from the store');
  const edge = await startEdge({ host: s.host, port: s.port, deployments, log, scheduler, metrics });
  const admin = await startAdmin({
    host: s.adminHost, port: s.adminPort, control, store, artifacts, log, operatorToken: s.operatorToken!,
    baseDomain: s.baseDomain, maxUploadBytes: s.maxUploadBytes, tenantLimits: s.tenantLimits,
    ops: { metrics, tail, readiness },
  });
  listening = true;
  process.stdout.write(`listening on ${edge.url}\nadmin on ${admin.url}\n`);

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping: draining in-flight requests');
    readiness.drain();
    tail.closeAll();
    const drain = s.drainTimeoutMs;
    const force = setTimeout(() => process.exit(1), drain + 5000);
    force.unref();
    await Promise.all([admin.close(drain), edge.close(drain)]);
    await deployments.close(0);
    await store.close();
    unlock();
    log.flush();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}
