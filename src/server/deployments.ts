/**
 * The live deployments: which function version serves which routes, with its pool. `apply`
 * prepares every artifact and warms every pool first, then swaps the route table in one
 * assignment, so no request sees a missing route or a mix of versions; the replaced pools drain
 * (requests already running finish on the old version) and stop.
 *
 * The control plane (`isola serve`) changes one function at a time: `stage` prepares and warms a
 * deployment without routing to it, then `upsert` (or `remove`) builds a new route table and swaps
 * it in one synchronous assignment, leaving every other function's pool untouched. A deployment's
 * identity is its `key`: the function name under `isola dev`, `<tenant>/<name>` under `isola serve`
 * (two tenants may both have a function "hello").
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { FunctionConfig, LimitsConfig } from '../config/types.js';
import { IsolaError } from '../errors.js';
import { meteredArtifact } from '../artifacts/metered.js';
import { SMALL_CORE_BYTES, compileArtifact, compileCoreModules, prepareArtifact, readCoreModules, type Artifact } from '../artifacts/prepare.js';
import { SandboxManager } from '../pool/manager.js';
import { FunctionPool } from '../pool/pool.js';
import { primeGlueCacheSoon } from '../sandbox/glue-prime.js';
import type { Logger } from '../telemetry/log.js';
import type { FunctionMetrics, Metrics } from '../telemetry/metrics.js';
import type { TailChannel, TailHub } from '../telemetry/tail.js';
import { RouteTable, parseRoute, type RoutePattern } from './routes.js';

/** How a version is staged (see Deployments.stage). */
export interface StageOptions {
  primeFirst?: boolean;
}

/** Largest guest stdout+stderr kept per request, bytes. */
export const MAX_LOG_BYTES_PER_REQUEST = 64 * 1024;

/** One function version, live. */
export interface Deployment {
  /** Identity in the live set: the function name (`isola dev`) or `<tenant>/<name>` (`isola serve`). */
  key: string;
  /** The owning tenant under `isola serve`; null under `isola dev`. */
  tenant: string | null;
  name: string;
  config: FunctionConfig;
  artifact: Artifact;
  pool: FunctionPool;
  limits: LimitsConfig;
  /**
   * Which version of the function this is: the store's version number under `isola serve`; under
   * `isola dev`, 1 at start and one more on every `--watch` swap.
   */
  version: number;
  /** The tenant for scheduling, logs and metrics: `tenant`, else `config.tenant`, else the function's name. */
  owner: string;
  /** Child logger with `tenant`, `function` and `version` bound (serialised once). */
  log: Logger;
  /** The function's metric label sets (shared by its versions), when metrics are on. */
  metrics: FunctionMetrics | null;
  /** The function's `isola tail` channel (shared by its versions), when tailing is on. */
  tail: TailChannel | null;
}

/** Where deployments report: metrics and live logs (both optional). */
export interface DeploymentTelemetry {
  metrics?: Metrics;
  tail?: TailHub;
}

export class Deployments {
  /** The current route table; replaced, never mutated. */
  table: RouteTable<Deployment> = new RouteTable([]);
  private live = new Map<string, Deployment>();

  /**
   * @param manager the process-wide sandbox pool (caps, blank sandboxes, LRU eviction); defaults to
   *   one with the documented `[sandboxes]` defaults.
   */
  constructor(
    private readonly cacheDir: string,
    private readonly log: Logger,
    readonly manager: SandboxManager = new SandboxManager({ max: 64, memoryBytes: 4 * 1024 ** 3, blank: 2, heapBytes: 256 * 1024 ** 2 }),
    private readonly telemetry: DeploymentTelemetry = {},
  ) {}

  /**
   * Makes `functions` the live set. Throws IsolaError (user errors for bad modules, with the
   * function named) and leaves the previous set serving when any function cannot be prepared or started.
   */
  async apply(functions: FunctionConfig[], drainMs = 10_000): Promise<void> {
    const next: Deployment[] = [];
    try {
      for (const fn of functions) next.push(await this.prepare(fn, fn.name, null, undefined, this.nextVersion(fn.name)));
      await Promise.all(next.map((d) => d.pool.warm()));
    } catch (err) {
      await Promise.all(next.map((d) => d.pool.close()));
      throw err;
    }
    const old = [...this.live.values()];
    this.swap(new Map(next.map((d) => [d.key, d])));
    await Promise.all(old.map((d) => d.pool.close(drainMs)));
  }

  /**
   * Prepares `fn` (artifact, compiled modules) and warms its pool, without routing to it.
   * @param key the deployment's identity (see the module docstring); `tenant` is recorded on it.
   * @param label how error messages name it (default `function "<name>" (<wasm path>)`).
   * @param version the version number for logs (default: one more than the live one's, or 1).
   * @param options.primeFirst the component's glue code cache is primed before this resolves
   *   and before its min_warm sandboxes load the glue (a deploy over the admin API); otherwise
   *   only min_warm = 0 components are primed, in the background (restores, `isola dev`).
   * @throws IsolaError as `apply` does; nothing is left running when it throws.
   */
  async stage(fn: FunctionConfig, key: string, tenant: string | null, label?: string, version?: number, options: StageOptions = {}): Promise<Deployment> {
    const d = await this.prepare(fn, key, tenant, label, version ?? this.nextVersion(key), options);
    try {
      await d.pool.warm();
    } catch (err) {
      await d.pool.close();
      throw err;
    }
    return d;
  }

  /**
   * Routes to `d` (from `stage`) instead of the live deployment with the same key, in one
   * synchronous swap of the route table; other functions are untouched. The replaced deployment's
   * pool drains for up to `drainMs` (its running requests finish on it) and stops.
   * @returns resolves when the replaced pool has stopped.
   */
  upsert(d: Deployment, drainMs = 10_000): Promise<void> {
    const next = new Map(this.live);
    const old = next.get(d.key);
    next.set(d.key, d);
    this.swap(next);
    return old && old !== d ? retire(old, drainMs) : Promise.resolve();
  }

  /**
   * Stops routing to the deployment `key` (one synchronous swap) and drains its pool.
   * @returns false when nothing was live under that key.
   */
  async remove(key: string, drainMs = 10_000): Promise<boolean> {
    const old = this.live.get(key);
    if (!old) return false;
    const next = new Map(this.live);
    next.delete(key);
    this.swap(next);
    this.telemetry.metrics?.forget(key);
    await retire(old, drainMs);
    return true;
  }

  /** Stops a staged deployment that will not be routed to (e.g. its store write was refused). */
  async discard(d: Deployment): Promise<void> {
    if (this.live.get(d.key) !== d) await d.pool.close();
  }

  /** The live deployment with this key, if any. */
  get(key: string): Deployment | undefined {
    return this.live.get(key);
  }

  private nextVersion(key: string): number {
    return (this.live.get(key)?.version ?? 0) + 1;
  }

  private swap(next: Map<string, Deployment>): void {
    const entries = [...next.values()].flatMap((d) => d.config.routes.map((r) => ({ route: parseRoute(r) as RoutePattern, target: d })));
    const table = new RouteTable(entries, this.table);
    this.live = next;
    this.table = table;
  }

  private async prepare(fn: FunctionConfig, key: string, tenant: string | null, label = `function "${fn.name}" (${fn.wasm})`, version = 1, options: StageOptions = {}): Promise<Deployment> {
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
      if (fn.metering === 'fuel') artifact = await meteredArtifact(artifact, this.cacheDir);
    } catch (err) {
      if (err instanceof IsolaError) {
        throw new IsolaError(err.code, `${label}: ${err.message}`, { status: err.status, user: err.user, hint: err.hint, details: err.details, cause: err });
      }
      throw err;
    }
    if (artifact.abi === 'wasi-http' && (fn.argv.length > 0 || Object.keys(fn.files).length > 0)) {
      this.log.warn({ function: fn.name }, 'argv and files apply to WAGI modules only; this function is a component, so they are ignored');
    }
    if (artifact.abi === 'wagi') {
      for (const [guest, hostPath] of Object.entries(fn.files)) {
        if (!existsSync(hostPath)) {
          throw new IsolaError('ERR_CONFIG_INVALID', `${label}: files."${guest}" points at ${hostPath}, which does not exist`, {
            user: true, status: 400, hint: 'fix the host path in `files`, relative to isola.toml',
          });
        }
      }
    }
    let modules: Record<string, WebAssembly.Module> | null = null;
    let compile = () => compileArtifact(artifact, fn.limits.memoryBytes);
    try {
      // Pre-warmed functions compile now; the others only when their first sandbox is made (and
      // drop the compiled code with their last sandbox), from bytes kept in memory when small.
      if (fn.pool.minWarm > 0) modules = await compileArtifact(artifact, fn.limits.memoryBytes);
      else {
        const core = await readCoreModules(artifact, fn.limits.memoryBytes);
        // Preparation validated the modules (jco, or WebAssembly.compile for WAGI); capping keeps them valid.
        if (Object.values(core).reduce((n, b) => n + b.byteLength, 0) <= SMALL_CORE_BYTES) compile = async () => compileCoreModules(core);
      }
    } catch (err) {
      if (err instanceof IsolaError) throw new IsolaError(err.code, `${label.replace(/ \(.*\)$/, '')}: ${err.message}`, { status: err.status, user: err.user, hint: err.hint, cause: err });
      throw err;
    }
    this.log.debug({ function: fn.name, digest: artifact.digest, abi: artifact.abi, ms: Math.round(performance.now() - t0) }, 'artifact ready');
    // The glue's code cache is primed (if it has none) so a first request runs compiled glue:
    // min_warm = 0 components in the background; with `primeFirst` (an admin-API deploy) every
    // component, awaited — before its min_warm sandboxes load the glue, and before the deploy's
    // answer, since the priming thread's start-up would otherwise share the CPU with the first
    // request, which typically follows the answer at once.
    if (artifact.glueScriptUrl && (fn.pool.minWarm === 0 || options.primeFirst)) {
      const primed = primeGlueCacheSoon(artifact.glueScriptUrl, artifact.glueUrl!);
      if (options.primeFirst) await primed;
    }
    // Under isola dev a function without `tenant` is its own tenant: fair shares and budgets keep
    // one function's load from stalling another's.
    const owner = tenant ?? fn.tenant ?? fn.name;
    const metrics = this.telemetry.metrics?.forFunction(key, owner, fn.name) ?? null;
    const pool = new FunctionPool({
      name: fn.name,
      abi: artifact.abi,
      glueUrl: artifact.glueUrl,
      glueScriptUrl: artifact.glueScriptUrl,
      modules,
      compile,
      env: fn.env,
      argv: fn.argv,
      files: fn.files,
      maxResponseBodyBytes: fn.limits.maxResponseBodyBytes,
      memoryBytes: fn.limits.memoryBytes,
      fuelLimit: fn.metering === 'fuel' ? fn.limits.fuel : null,
      maxLogBytes: MAX_LOG_BYTES_PER_REQUEST,
      cpuLimitMs: fn.limits.cpuMs,
    }, fn.pool, this.manager, (e) => {
      metrics?.poolEvent(e);
      this.log.debug({ function: fn.name, tenant, event: e.type, ...e }, `pool ${e.type}`);
    });
    return {
      key, tenant, name: fn.name, config: fn, artifact, pool, limits: fn.limits, version, owner,
      log: this.log.child({ tenant: owner, function: fn.name, version }),
      metrics,
      tail: this.telemetry.tail?.channel(key) ?? null,
    };
  }

  /** Every live deployment. */
  list(): readonly Deployment[] {
    return [...this.live.values()];
  }

  /** Stops every pool after draining in-flight requests for up to `drainMs`. */
  async close(drainMs = 0): Promise<void> {
    const old = [...this.live.values()];
    this.swap(new Map());
    await Promise.all(old.map((d) => d.pool.close(drainMs)));
    await this.manager.close();
  }
}

/**
 * Stops a deployment the route table no longer points at. Requests that matched it before the
 * swap and are queued for a sandbox are still served by it (closing the pool at once would fail
 * them with 503 ERR_SHUTTING_DOWN in the middle of a deploy); once its queue is empty, the pool
 * drains its running requests for what is left of `drainMs` and stops.
 */
async function retire(old: Deployment, drainMs: number): Promise<void> {
  const deadline = Date.now() + drainMs;
  while (old.pool.snapshot().waiting > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
  await old.pool.close(Math.max(0, deadline - Date.now()));
}

/** Where prepared artifacts are cached under a data directory. */
export function artifactCacheDir(dataDir: string): string {
  return join(dataDir, 'artifacts');
}
