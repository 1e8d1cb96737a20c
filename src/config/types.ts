/**
 * The resolved configuration: what `isola.toml` becomes after parsing, validation and defaults.
 * The runtime reads only this form (Spin's "locked app"), never raw TOML.
 * Units are in the key names' types: every duration is in milliseconds, every size in bytes.
 */

/** How a guest is called (see ../shared/DESIGN.md "guest ABI"). */
export type GuestAbi = 'wasi-http' | 'wagi';

export interface ServerConfig {
  /** Address the edge listener binds, e.g. "127.0.0.1" or "::1". Default "127.0.0.1". */
  host: string;
  /** Edge port; 0 picks a free port. Default 8787. */
  port: number;
  /** Directory for the artifact cache and (later) the store; absolute. Default "<config dir>/.isola". */
  dataDir: string;
  /** How long a graceful stop waits for in-flight requests, ms. Default 10000. */
  drainTimeoutMs: number;
  /** `isola serve`: address the admin API binds. Default "127.0.0.1" (keep it private). */
  adminHost: string;
  /** `isola serve`: admin API port; 0 picks a free port. Default 8788. */
  adminPort: number;
  /** `isola serve`: every tenant gets the host `<tenant>.<baseDomain>`; names under it are reserved. Default "localhost". */
  baseDomain: string;
  /** `isola serve`: the operator's bearer token (`ISOLA_OPERATOR_TOKEN` overrides it); null when not set here. */
  operatorToken: string | null;
  /** `isola serve`: largest accepted upload (a version's `.wasm`), bytes; larger gets 413. Default 64 MiB. */
  maxUploadBytes: number;
  /** `isola serve`: limits given to a new tenant unless the operator sets others. */
  tenantLimits: TenantLimits;
}

/** What one tenant may use under `isola serve`. */
export interface TenantLimits {
  /** Most linear memory any of its functions may have (uploads needing more are refused), bytes. Default 128 MiB. */
  memoryBytes: number;
  /** Most functions it may own at once. Default 100. */
  maxFunctions: number;
  /** Most sandboxes one of its functions may have: deploys with a larger pool.min_warm or
   * pool.max_instances are refused (absent in tenants stored before it existed: the server default). Default 8. */
  maxInstances?: number;
}

export interface LimitsConfig {
  /** Largest request body accepted, bytes; larger gets 413. Default 1 GiB (1073741824). */
  maxRequestBodyBytes: number;
  /** Largest response body a guest may produce, bytes; past it the response is aborted. Default 1 GiB. */
  maxResponseBodyBytes: number;
  /** Wall-clock deadline per request, ms; past it the sandbox is terminated (504 before the head). Default 30000. */
  timeoutMs: number;
  /** CPU time of the sandbox thread per request, ms; past it the sandbox is terminated (503 before the head). Default 10000. */
  cpuMs: number;
  /** Fuel per request when the function is metered (`metering = "fuel"`): past it the guest traps (503). Default 10^10. */
  fuel: number;
  /** Cap on the guest's linear memory, bytes. Default 128 MiB (134217728). */
  memoryBytes: number;
}

export interface PoolConfig {
  /** Sandboxes kept instantiated and idle. Default 1. */
  minWarm: number;
  /** Most sandboxes of this function alive at once. Default 4. */
  maxInstances: number;
  /** An idle sandbox above minWarm is stopped after this long, ms. Default 300000. */
  idleTimeoutMs: number;
  /** Requests an instance serves before it is replaced by a fresh one, off the critical path;
   * 0 = no limit (default), 1 = a fresh instance per request. */
  maxRequestsPerInstance: number;
  /** Most requests waiting for a sandbox of this function; more get 503 + Retry-After. Default 256. */
  maxQueue: number;
  /** Longest wait for a sandbox, ms; then 503 + Retry-After. Default 10000. */
  queueTimeoutMs: number;
}

/** How guests share the CPU (scheduler/). */
export interface SchedulerConfig {
  /** Requests running in guests at once before tenants queue for a run slot; 0 (the default) = four per CPU core. */
  slots: number;
  /** Half-life of the recent-CPU score that orders waiting tenants, ms. Default 1000. */
  halfLifeMs: number;
  /** Longest wait for a run slot (then 503) or a budget refill (then 429), ms. Default 30000. */
  maxWaitMs: number;
}

/** One tenant's share of the CPU. */
export interface TenantConfig {
  /** ms of CPU per second of wall time the tenant may use (token-bucket rate), or null for no budget. */
  cpuBudgetMsPerSec: number | null;
  /** CPU ms the tenant may save up and spend at once. Default 1000. */
  burstMs: number;
  /** Share weight among tenants waiting for run slots. Default 1. */
  weight: number;
  /** Over budget: "reject" with 429 + Retry-After (default), or "wait" for the refill. */
  overBudget: 'reject' | 'wait';
}

/** The global pool: all sandboxes of the process together. */
export interface SandboxesConfig {
  /** Most live sandboxes (worker threads), blank ones included. Default 64. */
  max: number;
  /** Most memory all sandboxes together may hold (measured JS heap + linear memory), bytes. Default 4 GiB. */
  memoryBytes: number;
  /** Pre-spawned sandboxes not yet bound to a function. Default 2. */
  blank: number;
  /** JS heap cap of each sandbox thread (node's resourceLimits: host objects a guest makes, the jco glue), bytes. Default 256 MiB. */
  heapBytes: number;
}

export interface BuildConfig {
  /** Shell command that produces the function's `.wasm` (run with `cwd` as working directory). */
  command: string;
  /** Working directory of the command; absolute. Default: the config file's directory. */
  cwd: string;
  /**
   * What `isola dev --watch` watches: glob patterns (`*`, `**`, `?`, `{a,b}`; a plain directory
   * means everything under it), made absolute against `cwd`. Empty (the default): not watched.
   */
  watch: string[];
}

export interface FunctionConfig {
  /** Unique name: lowercase letters, digits and '-', starting with a letter, at most 63 chars. */
  name: string;
  /** The tenant it belongs to under `isola dev` (null = the function's own name); CPU budgets and fair shares are per tenant. */
  tenant: string | null;
  /** Absolute path of the function's `.wasm` (component or core module). */
  wasm: string;
  /** Optional build step run by `isola dev` when `wasm` is missing (or with `--build`). */
  build: BuildConfig | null;
  /** Guest ABI; null means "detect from the bytes". */
  abi: GuestAbi | null;
  /** "fuel": deterministic metering by instrumentation (src/artifacts/fuel.ts); "none" (default). */
  metering: 'none' | 'fuel';
  /** Route patterns, as written: `[host]/path`, path may end in `/*` (see server/routes.ts). At least one. */
  routes: string[];
  /** Environment variables the guest sees (and only these). */
  env: Record<string, string>;
  /** WAGI only: argv[1..] defaults (argv[0] is the function name). */
  argv: string[];
  /** WAGI only: read-only files mapped into the guest: guest path → absolute host path (file or folder). */
  files: Record<string, string>;
  limits: LimitsConfig;
  pool: PoolConfig;
}

export interface IsolaConfig {
  /** Absolute path of the config file this came from (null when built in code). */
  path: string | null;
  server: ServerConfig;
  scheduler: SchedulerConfig;
  /** CPU shares of tenants by name (`isola dev`; under `isola serve` the store holds them). */
  tenants: Record<string, TenantConfig>;
  sandboxes: SandboxesConfig;
  functions: FunctionConfig[];
}
