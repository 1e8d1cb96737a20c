/**
 * `isola dev`: serve the functions declared in `isola.toml` locally, with one implicit tenant.
 * Prints `listening on http://HOST:PORT` then one line per route; on SIGINT/SIGTERM stops
 * accepting, lets in-flight requests finish (up to `server.drain_timeout`) and exits.
 */
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../config/load.js';
import { SandboxManager } from '../pool/manager.js';
import { artifactCacheDir, Deployments } from '../server/deployments.js';
import { startEdge } from '../server/edge.js';
import { schedulerFor } from '../scheduler/from-config.js';
import { createLogger } from '../telemetry/log.js';
import { runBuilds } from './builds.js';
import { watchFunctions } from './watch.js';

export interface DevOptions {
  config: string;
  port?: string;
  host?: string;
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
    .option('--build', 'run every function\'s build command first, even if its .wasm exists')
    .option('--watch', 'rebuild a function when its [functions.build] watch files change, and swap it in without dropping requests')
    .addHelpText('after', '\nExamples:\n  isola dev\n  isola dev --config examples/isola.toml --port 0')
    .action((opts: DevOptions) => dev(opts));
}

async function dev(opts: DevOptions): Promise<void> {
  const config = loadConfig(resolve(opts.config), {
    onWarnings: (_w, formatted) => process.stderr.write(formatted + '\n'),
  });
  if (opts.port !== undefined) {
    const port = Number(opts.port);
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port must be 0..65535, got ${opts.port}`);
    config.server.port = port;
  }
  if (opts.host !== undefined) config.server.host = opts.host;
  const log = createLogger();
  await runBuilds(config.functions, opts.build === true, (line) => process.stderr.write(line + '\n'));
  const deployments = new Deployments(artifactCacheDir(config.server.dataDir), log, new SandboxManager(config.sandboxes));
  await deployments.apply(config.functions);
  const edge = await startEdge({ host: config.server.host, port: config.server.port, deployments, log, scheduler: schedulerFor(config) });
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
    const drain = config.server.drainTimeoutMs;
    const force = setTimeout(() => process.exit(1), drain + 5000);
    force.unref();
    watcher?.close();
    await edge.close(drain);
    await deployments.close(0);
    log.flush();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}
