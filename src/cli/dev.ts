/**
 * `isola dev`: serve the functions declared in `isola.toml` locally, with one implicit tenant.
 * Prints `listening on http://HOST:PORT` then one line per route on stdout, and `admin on
 * http://HOST:PORT` (the admin listener: /metrics, /healthz, /readyz, `isola tail`) on stderr; on
 * SIGINT/SIGTERM stops accepting, lets in-flight requests finish (up to `server.drain_timeout`)
 * and exits. Logs are pino-pretty lines when stderr is a terminal, JSON lines otherwise.
 */
import { IsolaError } from '../errors.js';
import { availableParallelism } from 'node:os';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { SandboxManager } from '../pool/manager.js';
import { artifactCacheDir, Deployments } from '../server/deployments.js';
import { startDevAdmin } from '../server/dev-admin.js';
import { startEdge } from '../server/edge.js';
import { Readiness } from '../server/ops.js';
import { schedulerFor } from '../scheduler/from-config.js';
import { createLogger } from '../telemetry/log.js';
import { Metrics } from '../telemetry/metrics.js';
import { TailHub } from '../telemetry/tail.js';
import { parsePort } from './command.js';
import { runBuilds } from './builds.js';
import { watchFunctions } from './watch.js';

export interface DevOptions {
  config: string;
  port?: string;
  host?: string;
  adminPort?: string;
  adminHost?: string;
  build?: boolean;
  watch?: boolean;
}

/** Registers `isola dev` on the program. */
export function registerDev(program: Command): void {
  program
    .command('dev')
    .description('serve the functions in isola.toml locally')
    .option('-c, --config <file>', 'config file', 'isola.toml')
    .option('-p, --port <n>', 'edge port (0 picks a free one); overrides server.port')
    .option('--host <addr>', 'edge address; overrides server.host')
    .option('--admin-port <n>', 'admin listener port (metrics, health, tail; 0 picks a free one); default server.admin_port (8788), or a free port when that is taken')
    .option('--admin-host <addr>', 'admin listener address; overrides server.admin_host')
    .option('--build', 'run every function\'s build command first, even if its .wasm exists')
    .option('--watch', 'rebuild a function when its [functions.build] watch files change, and swap it in without dropping requests')
    .addHelpText('after', '\nExamples:\n  isola dev\n  isola dev --config examples/wagi-c/isola.toml --port 0')
    .action((opts: DevOptions) => dev(opts));
}

async function dev(opts: DevOptions): Promise<void> {
  const config = loadConfig(resolve(opts.config), {
    onWarnings: (_w, formatted) => process.stderr.write(formatted + '\n'),
  });
  if (opts.port !== undefined) {
    const port = Number(opts.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new IsolaError('ERR_USAGE', `--port must be an integer from 0 to 65535, got ${opts.port}`, { user: true, hint: 'use --port 0 for any free port' });
    config.server.port = port;
  }
  if (opts.host !== undefined) config.server.host = opts.host;
  if (opts.adminHost !== undefined) config.server.adminHost = opts.adminHost;
  if (opts.adminPort !== undefined) config.server.adminPort = parsePort(opts.adminPort, '--admin-port');
  const log = createLogger({ format: process.stderr.isTTY ? 'pretty' : 'json' });
  const metrics = new Metrics();
  const tail = new TailHub();
  const manager = new SandboxManager(config.sandboxes);
  const deployments = new Deployments(artifactCacheDir(config.server.dataDir), log, manager, { metrics, tail });
  const scheduler = schedulerFor(config);
  metrics.setSources({
    pools: () => deployments.list().map((d) => ({ tenant: d.owner, name: d.name, stats: d.pool.snapshot() })),
    manager: () => manager.snapshot(),
    scheduler: () => scheduler.snapshot(),
    slots: config.scheduler.slots > 0 ? config.scheduler.slots : availableParallelism(),
    tail,
  });
  let edgeUp = false;
  let applied = false;
  const readiness = new Readiness()
    .check('deployments', () => applied || 'functions are being built, prepared and warmed')
    .check('edge', () => edgeUp || 'the edge listener is not up');
  // The admin listener comes first, so /healthz answers (and /readyz says why not) during builds.
  const admin = await startDevAdmin({
    host: config.server.adminHost, port: config.server.adminPort, fallback: opts.adminPort === undefined, deployments, ops: { metrics, tail, readiness },
  });
  process.stderr.write(`admin on ${admin.url}\n`);
  await runBuilds(config.functions, opts.build === true, (line) => process.stderr.write(line + '\n'));
  await deployments.apply(config.functions);
  applied = true;
  const edge = await startEdge({ host: config.server.host, port: config.server.port, deployments, log, scheduler, metrics });
  edgeUp = true;
  const lines = [`listening on ${edge.url}`];
  for (const { route, target } of deployments.table.entries) lines.push(`  ${route.source} -> ${target.name} (${target.artifact.abi})`);
  process.stdout.write(lines.join('\n') + '\n');
  const say = (line: string) => process.stderr.write(line + '\n');
  const watcher = opts.watch ? await watchFunctions({ functions: config.functions, deployments, drainMs: config.server.drainTimeoutMs, say }) : undefined;

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping: draining in-flight requests');
    readiness.drain();
    const drain = config.server.drainTimeoutMs;
    const force = setTimeout(() => process.exit(1), drain + 5000);
    force.unref();
    watcher?.close();
    await edge.close(drain);
    await admin.close();
    await deployments.close(0);
    log.flush();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}
