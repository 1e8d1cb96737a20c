/**
 * The live deployments: which function version serves which routes, with its pool. `apply`
 * prepares every artifact and warms every pool first, then swaps the route table in one
 * assignment, so no request sees a missing route or a mix of versions; the replaced pools drain
 * (requests already running finish on the old version) and stop.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FunctionConfig, LimitsConfig } from '../config/types.js';
import { IsolaError } from '../errors.js';
import { compileArtifact, prepareArtifact, type Artifact } from '../artifacts/prepare.js';
import { FunctionPool } from '../pool/pool.js';
import type { Logger } from '../telemetry/log.js';
import { RouteTable, parseRoute, type RoutePattern } from './routes.js';

/** Largest guest stdout+stderr kept per request, bytes. */
export const MAX_LOG_BYTES_PER_REQUEST = 64 * 1024;

/** One function version, live. */
export interface Deployment {
  name: string;
  config: FunctionConfig;
  artifact: Artifact;
  pool: FunctionPool;
  limits: LimitsConfig;
}

export class Deployments {
  /** The current route table; replaced, never mutated. */
  table: RouteTable<Deployment> = new RouteTable([]);
  private live: Deployment[] = [];

  constructor(private readonly cacheDir: string, private readonly log: Logger) {}

  /**
   * Makes `functions` the live set. Throws IsolaError (user errors for bad modules, with the
   * function named) and leaves the previous set serving when any function cannot be prepared or started.
   */
  async apply(functions: FunctionConfig[], drainMs = 10_000): Promise<void> {
    const next: Deployment[] = [];
    try {
      for (const fn of functions) next.push(await this.prepare(fn));
      await Promise.all(next.map((d) => d.pool.warm()));
    } catch (err) {
      await Promise.all(next.map((d) => d.pool.close()));
      throw err;
    }
    const entries = next.flatMap((d) => d.config.routes.map((r) => ({ route: parseRoute(r) as RoutePattern, target: d })));
    const old = this.live;
    this.table = new RouteTable(entries);
    this.live = next;
    await Promise.all(old.map((d) => d.pool.close(drainMs)));
  }

  private async prepare(fn: FunctionConfig): Promise<Deployment> {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(fn.wasm);
    } catch (err) {
      throw new IsolaError('ERR_WASM_INVALID', `function "${fn.name}": cannot read ${fn.wasm}: ${(err as Error).message}`, {
        user: true, hint: fn.build ? 'run `isola dev --build` to build it' : 'check the `wasm` path in isola.toml',
      });
    }
    let artifact: Artifact;
    const t0 = performance.now();
    try {
      artifact = await prepareArtifact(bytes, this.cacheDir, fn.abi);
    } catch (err) {
      if (err instanceof IsolaError) {
        throw new IsolaError(err.code, `function "${fn.name}" (${fn.wasm}): ${err.message}`, { status: err.status, user: err.user, hint: err.hint, details: err.details, cause: err });
      }
      throw err;
    }
    let modules: Record<string, WebAssembly.Module>;
    try {
      modules = await compileArtifact(artifact, fn.limits.memoryBytes);
    } catch (err) {
      if (err instanceof IsolaError) throw new IsolaError(err.code, `function "${fn.name}": ${err.message}`, { status: err.status, user: err.user, hint: err.hint, cause: err });
      throw err;
    }
    this.log.debug({ function: fn.name, digest: artifact.digest, abi: artifact.abi, ms: Math.round(performance.now() - t0) }, 'artifact ready');
    const pool = new FunctionPool({
      name: fn.name,
      abi: artifact.abi,
      glueUrl: artifact.glueUrl,
      modules,
      env: fn.env,
      argv: fn.argv,
      files: fn.files,
      maxResponseBodyBytes: fn.limits.maxResponseBodyBytes,
      memoryBytes: fn.limits.memoryBytes,
      maxLogBytes: MAX_LOG_BYTES_PER_REQUEST,
    }, fn.pool, { queueTimeoutMs: fn.limits.timeoutMs });
    return { name: fn.name, config: fn, artifact, pool, limits: fn.limits };
  }

  /** Every live deployment. */
  list(): readonly Deployment[] {
    return this.live;
  }

  /** Stops every pool after draining in-flight requests for up to `drainMs`. */
  async close(drainMs = 0): Promise<void> {
    const old = this.live;
    this.live = [];
    this.table = new RouteTable([]);
    await Promise.all(old.map((d) => d.pool.close(drainMs)));
  }
}

/** Where prepared artifacts are cached under a data directory. */
export function artifactCacheDir(dataDir: string): string {
  return join(dataDir, 'artifacts');
}
