/**
 * The admin API's request bodies → resolved settings, and resolved records → response JSON.
 *
 * Deploy settings (`limits`, `pool`, `env`, `argv`) are validated by the config loader itself: the
 * body is written out as the `[[functions]]` table of an `isola.toml` and parsed with `parseConfig`,
 * so the API accepts exactly what the file accepts (`"64MiB"`, `"5s"`, or integers in bytes and
 * milliseconds), applies the same defaults, and words errors the same way (unknown keys with a
 * "did you mean"). Responses use the same snake_case keys, with sizes in bytes and durations in ms,
 * so a response's `limits` can be sent back unchanged.
 */
import { stringify } from 'smol-toml';
import { parseConfig } from '../config/load.js';
import type { FunctionConfig, LimitsConfig, PoolConfig, TenantLimits } from '../config/types.js';
import { IsolaError } from '../errors.js';
import type { AuditEntry, DeploymentRecord, DeploymentSettings, FunctionSummary, TenantRecord, VersionRecord } from '../store/types.js';

/** `[server.tenant_limits] max_instances` for tenants stored before that limit existed. */
const DEFAULT_TENANT_MAX_INSTANCES = 8;

/** Keys a deploy body may have. */
export const DEPLOY_KEYS = ['version', 'routes', 'env', 'argv', 'limits', 'pool', 'metering'] as const;

function badRequest(message: string, hint?: string): IsolaError {
  return new IsolaError('ERR_BAD_REQUEST', message, { status: 400, user: true, hint });
}

/** Whether `v` is a plain JSON object. */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Throws ERR_BAD_REQUEST naming the first key of `body` not in `allowed`. */
export function onlyKeys(body: Record<string, unknown>, allowed: readonly string[], what: string): void {
  for (const key of Object.keys(body)) {
    if (!allowed.includes(key)) throw badRequest(`unknown key "${key}" in ${what}; expected one of: ${allowed.join(', ')}`);
  }
}

/** Rejects JSON nulls anywhere (TOML has none; "leave the key out" is how to ask for a default). */
function noNulls(value: unknown, path: string): void {
  if (value === null) throw badRequest(`${path} is null; leave the key out to get its default`);
  if (Array.isArray(value)) value.forEach((v, i) => noNulls(v, `${path}[${i}]`));
  else if (isObject(value)) for (const [k, v] of Object.entries(value)) noNulls(v, path ? `${path}.${k}` : k);
}

/** Parses one function table through the config loader; throws ERR_BAD_REQUEST listing every problem. */
function parseFunctionTable(table: Record<string, unknown>): FunctionConfig {
  noNulls(table, '');
  let text: string;
  try {
    text = stringify({ functions: [{ name: 'f', wasm: '/f.wasm', routes: ['/f'], ...table }] });
  } catch (err) {
    throw badRequest(`a value cannot be used: ${(err as Error).message}`);
  }
  const { config, diagnostics } = parseConfig(text, { path: null, baseDir: '/' });
  const errors = diagnostics.filter((d) => d.severity === 'error');
  if (config === null || errors.length > 0) {
    const lines = errors.map((d) => `${d.key.replace(/^functions\[0\]\.?/, '') || 'body'}: ${d.message}`);
    throw badRequest(lines.join('; '), 'keys and units are those of [[functions]] in isola.toml (docs/config.md)');
  }
  return config.functions[0]!;
}

/**
 * Checks a deploy body's `routes`, `env`, `argv`, `limits`, `pool` and `metering` the way the
 * server will (config syntax, units, pool.min_warm ≤ pool.max_instances), with no store: the
 * tenant's own limits are the server's to check. `isola deploy` calls it before uploading.
 * @throws IsolaError ERR_BAD_REQUEST listing every problem
 */
export function checkDeployBody(body: Record<string, unknown>): void {
  const table: Record<string, unknown> = {};
  for (const key of ['routes', 'env', 'argv', 'limits', 'pool', 'metering'] as const) if (body[key] !== undefined) table[key] = body[key];
  parseFunctionTable(table);
}

let defaults: FunctionConfig | null = null;
/** The limits and pool a function gets when nothing is said (from the config schema's defaults). */
export function defaultFunction(): FunctionConfig {
  return (defaults ??= parseFunctionTable({}));
}

/**
 * Builds the settings of a deployment from a deploy body. Each of `env`, `argv`, `limits`, `pool`
 * that the body leaves out is kept from `live` (the deployment serving now) when there is one,
 * else defaulted; one it gives replaces the old one entirely. When neither the body nor `live`
 * sets `limits.memory`, the default is lowered to the tenant's memory limit.
 * @throws IsolaError ERR_BAD_REQUEST (400) for bad values; ERR_TENANT_LIMIT (400) when
 *   `limits.memory` exceeds the tenant's limit.
 */
export function deploySettings(body: Record<string, unknown>, live: DeploymentSettings | null, tenant: TenantRecord): DeploymentSettings {
  const table: Record<string, unknown> = {};
  for (const key of ['env', 'argv', 'limits', 'pool', 'metering'] as const) if (body[key] !== undefined) table[key] = body[key];
  const parsed = parseFunctionTable(table);
  const base = defaultFunction();
  const settings: DeploymentSettings = {
    env: body.env !== undefined ? parsed.env : (live?.env ?? {}),
    argv: body.argv !== undefined ? parsed.argv : (live?.argv ?? []),
    limits: body.limits !== undefined ? parsed.limits : { ...base.limits, ...live?.limits },
    pool: body.pool !== undefined ? parsed.pool : { ...base.pool, ...live?.pool },
    metering: body.metering !== undefined ? parsed.metering : (live?.metering ?? 'none'),
  };
  const memoryGiven = isObject(body.limits) && body.limits.memory !== undefined;
  if (!memoryGiven && live === null) settings.limits.memoryBytes = Math.min(settings.limits.memoryBytes, tenant.limits.memoryBytes);
  const maxInstances = tenant.limits.maxInstances ?? DEFAULT_TENANT_MAX_INSTANCES;
  for (const [key, value] of [['min_warm', settings.pool.minWarm], ['max_instances', settings.pool.maxInstances]] as const) {
    if (value > maxInstances) {
      throw new IsolaError('ERR_TENANT_LIMIT', `pool.${key} of ${value} is over your tenant's limit of ${maxInstances} sandboxes per function`, {
        status: 400, user: true, hint: 'ask for fewer, or ask the operator to raise your tenant\'s max_instances',
      });
    }
  }
  if (settings.limits.memoryBytes > tenant.limits.memoryBytes) {
    throw new IsolaError('ERR_TENANT_LIMIT', `limits.memory of ${settings.limits.memoryBytes} bytes is over your tenant's limit of ${tenant.limits.memoryBytes} bytes`, {
      status: 400, user: true, hint: 'ask for less memory, or ask the operator to raise your tenant\'s memory limit',
    });
  }
  return settings;
}

/** Stored settings with defaults for keys added since they were written (forward compatibility). */
export function completeSettings(s: DeploymentSettings): DeploymentSettings {
  const base = defaultFunction();
  return { env: s.env, argv: s.argv, limits: { ...base.limits, ...s.limits }, pool: { ...base.pool, ...s.pool }, metering: s.metering ?? 'none' };
}

/**
 * Tenant limits from a create-tenant body's `limits` (`{memory, max_functions}`, config syntax),
 * each key left out taken from `defaults` (`[server.tenant_limits]`).
 */
export function tenantLimits(body: unknown, defaults: TenantLimits): TenantLimits {
  if (body === undefined) return { ...defaults };
  if (!isObject(body)) throw badRequest('limits must be an object such as {"memory": "64MiB", "max_functions": 10}');
  noNulls(body, 'limits');
  let text: string;
  try {
    text = stringify({ server: { tenant_limits: body } });
  } catch (err) {
    throw badRequest(`a value cannot be used: ${(err as Error).message}`);
  }
  const { config, diagnostics } = parseConfig(text, { path: null, baseDir: '/' });
  const errors = diagnostics.filter((d) => d.severity === 'error');
  if (config === null || errors.length > 0) {
    throw badRequest(errors.map((d) => `${d.key.replace(/^server\.tenant_/, '')}: ${d.message}`).join('; '));
  }
  return {
    memoryBytes: body.memory !== undefined ? config.server.tenantLimits.memoryBytes : defaults.memoryBytes,
    maxFunctions: body.max_functions !== undefined ? config.server.tenantLimits.maxFunctions : defaults.maxFunctions,
    maxInstances: body.max_instances !== undefined ? config.server.tenantLimits.maxInstances : defaults.maxInstances,
  };
}

/** `maxRequestBodyBytes` → `max_request_body`, `timeoutMs` → `timeout`: the config file's key for a resolved field. */
export function configKey(field: string): string {
  return field.replace(/(Bytes|Ms)$/, '').replace(/[A-Z]/g, (c) => '_' + c.toLowerCase());
}

function snake(obj: LimitsConfig | PoolConfig | TenantLimits): Record<string, number> {
  return Object.fromEntries(Object.entries(obj).map(([k, v]) => [configKey(k), v as number]));
}

/** JSON of a tenant. */
export function tenantView(t: TenantRecord, baseDomain: string): Record<string, unknown> {
  return { name: t.name, default_host: `${t.name}.${baseDomain}`, created_at: t.createdAt, limits: snake(t.limits) };
}

/** JSON of a version. */
export function versionView(v: VersionRecord): Record<string, unknown> {
  return {
    function: v.function, version: v.version, digest: v.digest, abi: v.abi, size: v.size, imports: v.imports,
    message: v.settings.message, created_at: v.createdAt,
  };
}

/** JSON of a deployment. */
export function deploymentView(d: DeploymentRecord): Record<string, unknown> {
  const s = completeSettings(d.settings);
  return {
    id: d.id, function: d.function, version: d.version, routes: d.routes, env: s.env, argv: s.argv,
    limits: snake(s.limits), pool: snake(s.pool), metering: s.metering, kind: d.kind, restores: d.restores, created_at: d.createdAt,
  };
}

/** JSON of a function. */
export function functionView(f: FunctionSummary): Record<string, unknown> {
  return { name: f.name, created_at: f.createdAt, latest_version: f.latestVersion, live: f.live ? deploymentView(f.live) : null };
}

/** JSON of an audit entry. */
export function auditView(e: AuditEntry): Record<string, unknown> {
  return { id: e.id, at: e.at, actor: e.actor, tenant: e.tenant, action: e.action, target: e.target, details: e.details };
}
