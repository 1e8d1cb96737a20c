/**
 * The control plane behind the admin API (DESIGN.md "control path"): every change to tenants,
 * versions and deployments goes through here, so that the store and the live route table agree.
 *
 * A deploy (or rollback) is done in this order:
 *   1. check the request and the tenancy rules (hosts.ts) without touching anything;
 *   2. stage the version: prepare the artifact, compile, warm its pool (slow; runs concurrently
 *      with other requests and serves nothing yet);
 *   3. in one critical section (a promise chain, so changes from concurrent requests apply one at a
 *      time): record the deployment in the store (which re-checks route and host claims in its
 *      transaction), then swap the route table synchronously.
 * The response is sent only after step 3, so an acknowledged deployment is durable and live; if
 * the process dies between the commit and the swap, start-up (`restore`) serves it from the store.
 * If the store refuses (409), the staged pool is stopped and nothing changes.
 */
import type { TenantLimits } from '../config/types.js';
import { compileArtifact, prepareArtifact, type Artifact } from '../artifacts/prepare.js';
import { FUNCTION_NAME_RE } from '../config/schema.js';
import { IsolaError, toIsolaError } from '../errors.js';
import { resolveRoutes, TENANT_NAME_RE } from '../store/hosts.js';
import { generateToken, hashToken } from '../store/tokens.js';
import type {
  Actor, ArtifactStore, ArtifactUpload, DeploymentRecord, DeploymentSettings, MetadataStore, TenantRecord, VersionRecord,
} from '../store/types.js';
import type { GuestAbi } from '../config/types.js';
import type { Logger } from '../telemetry/log.js';
import { completeSettings, deploySettings } from './admin-settings.js';
import type { Deployment, Deployments, StageOptions } from './deployments.js';

export interface ControlPlaneOptions {
  store: MetadataStore;
  artifacts: ArtifactStore;
  deployments: Deployments;
  log: Logger;
  /** Where prepared artifacts are cached (`artifactCacheDir(dataDir)`). */
  cacheDir: string;
  /** `server.base_domain`. */
  baseDomain: string;
  /** `[server.tenant_limits]`: what a new tenant gets by default. */
  tenantLimits: TenantLimits;
  /** How long a replaced version's running requests may take to finish, ms. */
  drainMs: number;
}

/** The runtime key of a tenant's function in `Deployments`. */
export function deploymentKey(tenant: string, fn: string): string {
  return `${tenant}/${fn}`;
}

/** Throws ERR_BAD_REQUEST (400) unless `name` is a valid function name. */
export function checkFunctionName(name: string): void {
  if (!FUNCTION_NAME_RE.test(name)) {
    throw new IsolaError('ERR_BAD_REQUEST', `"${name}" is not a valid function name: use 1 to 63 lowercase letters, digits and "-", starting with a letter`, { status: 400, user: true });
  }
}

/** See the module docstring. */
export class ControlPlane {
  private chain: Promise<unknown> = Promise.resolve();

  constructor(private readonly o: ControlPlaneOptions) {}

  /** Runs `fn` after every change queued before it (the commit-and-swap critical section). */
  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => {});
    return run;
  }

  /**
   * Start-up: deletes what a crash left half-written, collects artifacts no version refers to,
   * and makes every live deployment in the store serve again. A deployment that cannot start is
   * logged and skipped (the others still serve).
   * @returns how many deployments serve, and the keys of those that failed.
   */
  async restore(): Promise<{ live: number; failed: string[] }> {
    await this.o.artifacts.recover();
    const referenced = await this.o.store.referencedDigests();
    for (const digest of await this.o.artifacts.list()) {
      if (!referenced.has(digest)) {
        await this.o.artifacts.remove(digest);
        this.o.log.info({ digest }, 'removed an artifact no version refers to');
      }
    }
    const records = await this.o.store.allLiveDeployments();
    const failed: string[] = [];
    let live = 0;
    const queue = [...records];
    const worker = async (): Promise<void> => {
      for (let r = queue.shift(); r; r = queue.shift()) {
        const key = deploymentKey(r.tenant, r.function);
        try {
          const version = await this.o.store.getVersion(r.tenant, r.function, r.version);
          if (!version) throw new IsolaError('ERR_STORE', `version ${r.version} is missing`);
          const staged = await this.stage(r.tenant, r.function, version, r.routes, completeSettings(r.settings));
          void this.o.deployments.upsert(staged, 0);
          live++;
        } catch (err) {
          failed.push(key);
          this.o.log.error({ function: key, err: toIsolaError(err).message }, 'a deployment could not be restored');
        }
      }
    };
    await Promise.all([worker(), worker()]);
    return { live, failed };
  }

  // ---- tenants --------------------------------------------------------------------------------

  /**
   * Creates a tenant and its first token (returned once, never stored).
   * @throws ERR_BAD_REQUEST (400) for a name that is not a DNS label; ERR_TENANT_EXISTS (409).
   */
  async createTenant(name: string, limits: TenantLimits | undefined, actor: Actor): Promise<{ tenant: TenantRecord; token: string }> {
    if (typeof name !== 'string' || !TENANT_NAME_RE.test(name)) {
      throw new IsolaError('ERR_BAD_REQUEST', `${JSON.stringify(name)} is not a valid tenant name: use 1 to 63 lowercase letters, digits and "-", starting with a letter and not ending with "-" (it becomes a DNS label)`, { status: 400, user: true });
    }
    const token = generateToken();
    const tenant = await this.o.store.createTenant({ name, limits: limits ?? this.o.tenantLimits, tokenHash: hashToken(token) }, actor);
    return { tenant, token };
  }

  /** Adds a token to a tenant (returned once). @throws ERR_TENANT_NOT_FOUND (404). */
  async createToken(tenant: string, actor: Actor): Promise<string> {
    const token = generateToken();
    await this.o.store.addToken(tenant, hashToken(token), actor);
    return token;
  }

  /** The tenant, or ERR_TENANT_NOT_FOUND (404). */
  async tenant(name: string): Promise<TenantRecord> {
    const t = await this.o.store.getTenant(name);
    if (!t) throw new IsolaError('ERR_TENANT_NOT_FOUND', `no tenant named "${name}"`, { status: 404, user: true });
    return t;
  }

  /** Deletes a tenant and stops serving all its functions. @throws ERR_TENANT_NOT_FOUND (404). */
  async deleteTenant(name: string, actor: Actor): Promise<void> {
    await this.exclusive(async () => {
      const functions = await this.o.store.listFunctions(name);
      if (!(await this.o.store.deleteTenant(name, actor))) {
        throw new IsolaError('ERR_TENANT_NOT_FOUND', `no tenant named "${name}"`, { status: 404, user: true });
      }
      for (const f of functions) void this.o.deployments.remove(deploymentKey(name, f.name), this.o.drainMs);
    });
  }

  // ---- versions -------------------------------------------------------------------------------

  /**
   * Validates a received upload and records it as the function's next version (creating the
   * function on its first upload). The bytes are made durable before the version row is written;
   * on any error nothing is kept.
   * @throws ERR_UPLOAD_EMPTY (400); the artifact errors of `prepareArtifact` (400: ERR_WASM_INVALID,
   *   ERR_WASM_NO_HANDLER, ERR_WASM_NOT_WASI_COMMAND, ERR_WASM_UNKNOWN_IMPORT, ERR_ABI_MISMATCH);
   *   ERR_WASM_MEMORY_LIMIT (400) when the module's memory minimum exceeds the tenant's limit;
   *   ERR_TENANT_NOT_FOUND, ERR_TENANT_LIMIT.
   */
  async addVersion(tenantName: string, fn: string, upload: ArtifactUpload, opts: { abi: GuestAbi | null; message: string | null }, actor: Actor): Promise<VersionRecord> {
    try {
      checkFunctionName(fn);
      const tenant = await this.tenant(tenantName);
      const existing = await this.o.store.getFunction(tenantName, fn);
      if (!existing && (await this.o.store.listFunctions(tenantName)).length >= tenant.limits.maxFunctions) {
        // Checked again in the store's transaction; this only saves preparing an upload that cannot be kept.
        throw new IsolaError('ERR_TENANT_LIMIT', `tenant "${tenantName}" already has ${tenant.limits.maxFunctions} functions, its limit`, {
          status: 400, user: true, hint: 'delete a function you no longer need, or ask the operator for a higher max_functions',
        });
      }
      const { digest, size, bytes } = await upload.finish();
      if (size === 0) {
        throw new IsolaError('ERR_UPLOAD_EMPTY', 'the upload is empty: send the .wasm file as the request body', { status: 400, user: true, hint: 'curl --data-binary @fn.wasm -H "content-type: application/wasm" …' });
      }
      const artifact = await prepareArtifact(bytes, this.o.cacheDir, opts.abi);
      await checkMemory(artifact, tenant.limits.memoryBytes, 'your tenant\'s memory limit');
      await upload.commit();
      const version = await this.o.store.addVersion({ tenant: tenantName, function: fn, digest, abi: artifact.abi, size, imports: artifact.imports, settings: { abi: opts.abi, message: opts.message } }, actor);
      this.o.log.info({ function: deploymentKey(tenantName, fn), version: version.version, digest, size, actor }, 'version uploaded');
      return version;
    } finally {
      await upload.abort();
    }
  }

  // ---- deployments ----------------------------------------------------------------------------

  /**
   * Deploys a version (default: the latest) of a function to routes with settings; see the module
   * docstring for the order of steps. Routes left out are kept from the live deployment, or default
   * to `/<name>/*` on the tenant's default host.
   * @throws ERR_FUNCTION_NOT_FOUND, ERR_VERSION_NOT_FOUND (404); ERR_BAD_REQUEST, ERR_TENANT_LIMIT,
   *   ERR_WASM_MEMORY_LIMIT (400); ERR_HOST_CLAIMED, ERR_ROUTE_CONFLICT (409).
   */
  async deploy(tenantName: string, fn: string, body: Record<string, unknown>, actor: Actor): Promise<DeploymentRecord> {
    checkFunctionName(fn);
    const tenant = await this.tenant(tenantName);
    const summary = await this.o.store.getFunction(tenantName, fn);
    if (!summary) throw notFoundFunction(fn);
    let versionNumber = summary.latestVersion;
    if (body.version !== undefined) {
      if (typeof body.version !== 'number' || !Number.isSafeInteger(body.version) || body.version < 1) {
        throw new IsolaError('ERR_BAD_REQUEST', 'version must be a positive integer', { status: 400, user: true });
      }
      versionNumber = body.version;
    }
    const version = await this.o.store.getVersion(tenantName, fn, versionNumber);
    if (!version) throw new IsolaError('ERR_VERSION_NOT_FOUND', `function "${fn}" has no version ${versionNumber}`, { status: 404, user: true, hint: `list them with: isola versions ${fn}` });
    let routes: string[];
    if (body.routes !== undefined) {
      if (!Array.isArray(body.routes)) throw new IsolaError('ERR_BAD_REQUEST', 'routes must be an array of strings such as ["/hello/*"]', { status: 400, user: true });
      routes = resolveRoutes(tenantName, this.o.baseDomain, body.routes as string[]);
    } else routes = summary.live?.routes ?? resolveRoutes(tenantName, this.o.baseDomain, [`/${fn}/*`]);
    const settings = deploySettings(body, summary.live?.settings ?? null, tenant);
    return this.commit(tenantName, fn, version, routes, settings, 'deploy', null, actor);
  }

  /**
   * Restores the deployment before the live one (repeated rollbacks walk further back).
   * @throws ERR_FUNCTION_NOT_FOUND (404); ERR_NO_DEPLOYMENT (409) when not deployed;
   *   ERR_NO_PREVIOUS_DEPLOYMENT (409) when there is nothing older; ERR_HOST_CLAIMED (409) when its
   *   hosts have since been taken by another tenant.
   */
  async rollback(tenantName: string, fn: string, actor: Actor): Promise<DeploymentRecord> {
    checkFunctionName(fn);
    await this.tenant(tenantName);
    for (let attempt = 0; ; attempt++) {
      const summary = await this.o.store.getFunction(tenantName, fn);
      if (!summary) throw notFoundFunction(fn);
      if (!summary.live) throw new IsolaError('ERR_NO_DEPLOYMENT', `function "${fn}" is not deployed, so there is nothing to roll back`, { status: 409, user: true });
      const target = await this.o.store.rollbackTarget(tenantName, fn);
      if (!target) {
        throw new IsolaError('ERR_NO_PREVIOUS_DEPLOYMENT', `function "${fn}" has no deployment before the live one (deployment ${summary.live.id})`, { status: 409, user: true });
      }
      const version = await this.o.store.getVersion(tenantName, fn, target.version);
      if (!version) throw new IsolaError('ERR_VERSION_NOT_FOUND', `version ${target.version} of "${fn}" no longer exists`, { status: 404, user: true });
      try {
        return await this.commit(tenantName, fn, version, target.routes, completeSettings(target.settings), 'rollback', target.id, actor, summary.live.id);
      } catch (err) {
        if (!(err instanceof Moved) || attempt >= 3) throw err instanceof Moved ? new IsolaError('ERR_INTERNAL', 'the function kept changing during the rollback; retry') : err;
      }
    }
  }

  /** Stages, then records and swaps in the critical section; stops the staged pool when refused. */
  private async commit(
    tenant: string, fn: string, version: VersionRecord, routes: string[], settings: DeploymentSettings,
    kind: 'deploy' | 'rollback', restores: number | null, actor: Actor, expectLive?: number,
  ): Promise<DeploymentRecord> {
    const staged = await this.stage(tenant, fn, version, routes, settings, { primeFirst: true });
    try {
      return await this.exclusive(async () => {
        if (expectLive !== undefined && (await this.o.store.liveDeployment(tenant, fn))?.id !== expectLive) throw new Moved();
        const record = await this.o.store.addDeployment({ tenant, function: fn, version: version.version, routes, settings, kind, restores }, actor);
        void this.o.deployments.upsert(staged, this.o.drainMs).catch((err: unknown) => this.o.log.warn({ err: toIsolaError(err).message }, 'draining a replaced version failed'));
        this.o.log.info({ function: deploymentKey(tenant, fn), version: version.version, deployment: record.id, kind, routes, actor }, 'deployed');
        return record;
      });
    } catch (err) {
      await this.o.deployments.discard(staged);
      throw err;
    }
  }

  /** Prepares and warms a version with settings, without routing to it. */
  private async stage(tenant: string, fn: string, version: VersionRecord, routes: string[], settings: DeploymentSettings, options: StageOptions = {}): Promise<Deployment> {
    const wasm = await this.o.artifacts.localPath(version.digest);
    const config = { name: fn, tenant, wasm, build: null, abi: version.abi, metering: settings.metering ?? 'none', routes, env: settings.env, argv: settings.argv, files: {}, limits: settings.limits, pool: settings.pool };
    try {
      return await this.o.deployments.stage(config, deploymentKey(tenant, fn), tenant, `function "${fn}" version ${version.version}`, version.version, options);
    } catch (err) {
      throw memoryError(err, 'limits.memory');
    }
  }

  /**
   * Deletes a function with its versions and deployment history, and stops serving it.
   * @throws ERR_FUNCTION_NOT_FOUND (404).
   */
  async deleteFunction(tenant: string, fn: string, actor: Actor): Promise<void> {
    checkFunctionName(fn);
    await this.exclusive(async () => {
      if (!(await this.o.store.deleteFunction(tenant, fn, actor))) throw notFoundFunction(fn);
      void this.o.deployments.remove(deploymentKey(tenant, fn), this.o.drainMs);
      this.o.log.info({ function: deploymentKey(tenant, fn), actor }, 'function deleted');
    });
  }
}

/** A rollback target computed before staging is stale: the live deployment changed meanwhile. */
class Moved extends Error {}

function notFoundFunction(fn: string): IsolaError {
  return new IsolaError('ERR_FUNCTION_NOT_FOUND', `no function named "${fn}"`, { status: 404, user: true, hint: 'list your functions with: isola functions' });
}

/** Compiles the artifact against a memory cap only to check its minimum fits. */
async function checkMemory(artifact: Artifact, capBytes: number, what: string): Promise<void> {
  try {
    await compileArtifact(artifact, capBytes);
  } catch (err) {
    throw memoryError(err, what);
  }
}

/** Re-codes compileArtifact's memory-minimum error (ERR_WASM_INVALID "needs at least …") as ERR_WASM_MEMORY_LIMIT. */
function memoryError(err: unknown, what: string): unknown {
  if (err instanceof IsolaError && err.code === 'ERR_WASM_INVALID' && /needs at least \d+ bytes of memory/.test(err.message)) {
    return new IsolaError('ERR_WASM_MEMORY_LIMIT', `${err.message} (${what})`, { status: 400, user: true, hint: 'shrink the module\'s initial memory, or raise the limit', cause: err });
  }
  return err;
}
