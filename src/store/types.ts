/**
 * The control plane's durable state, behind interfaces (DESIGN.md decision 4): `MetadataStore`
 * (tenants, token hashes, functions, immutable versions, deployments with history, live routes, the
 * audit log) and `ArtifactStore` (a version's `.wasm` bytes, content-addressed by sha256). The
 * embedded implementations are SQLite (`sqlite.ts`) and the local file system (`artifacts.ts`); a
 * multi-node install would implement the same interfaces over a shared database and object store.
 *
 * Every method is async so that a networked implementation fits. Writes are atomic: a method either
 * commits all of its rows (and its audit entry) or none, and resolves only once the commit is
 * durable. Methods throw IsolaError with the codes named in their docs; anything else is a system
 * fault (`ERR_STORE`).
 */
import type { GuestAbi, LimitsConfig, PoolConfig, TenantLimits } from '../config/types.js';

/** Who made a change, as written in the audit log: `operator` or `tenant:<name>`. */
export type Actor = 'operator' | `tenant:${string}`;

export interface TenantRecord {
  /** DNS-label name (`TENANT_NAME_RE`); also the first label of its default host. */
  name: string;
  /** ISO 8601 UTC. */
  createdAt: string;
  limits: TenantLimits;
}

/** Upload-time options of a version (immutable with it). */
export interface VersionSettings {
  /** The ABI the uploader asked for (checked against the bytes), or null when detected. */
  abi: GuestAbi | null;
  /** Free text the uploader attached (Cloudflare's `workers/message` annotation), or null. */
  message: string | null;
}

/** One immutable upload of a function. */
export interface VersionRecord {
  tenant: string;
  function: string;
  /** 1, 2, 3… per function, never reused while the function exists. */
  version: number;
  /** sha256 of the bytes, lowercase hex: the key in the ArtifactStore. */
  digest: string;
  abi: GuestAbi;
  /** Bytes. */
  size: number;
  /** As the binary names them (`wasi:http/types@0.2.3`, `wasi_snapshot_preview1.fd_write`). */
  imports: string[];
  settings: VersionSettings;
  createdAt: string;
}

/** What serves a deployment, besides the code: the runtime settings given at deploy time. */
export interface DeploymentSettings {
  /** The only environment variables the guest sees. */
  env: Record<string, string>;
  /** WAGI only: argv[1..]. */
  argv: string[];
  limits: LimitsConfig;
  pool: PoolConfig;
  /** "fuel": deterministic metering (absent in records written before it existed = "none"). */
  metering?: 'none' | 'fuel';
}

/** One entry of a function's deployment history; the live one is what serves now. */
export interface DeploymentRecord {
  /** Increases with every deployment in the store (order of history). */
  id: number;
  tenant: string;
  function: string;
  version: number;
  /** Resolved route patterns, every one with a host (`alice.localhost/hello/*`). */
  routes: string[];
  settings: DeploymentSettings;
  /** `deploy`, or `rollback` when it restored an earlier deployment. */
  kind: 'deploy' | 'rollback';
  /** For a rollback: the id of the deployment it restored. */
  restores: number | null;
  createdAt: string;
}

export interface FunctionSummary {
  tenant: string;
  name: string;
  createdAt: string;
  /** Highest version number uploaded so far (0 when none is left). */
  latestVersion: number;
  /** The deployment serving now, or null when the function is not deployed. */
  live: DeploymentRecord | null;
}

export interface AuditEntry {
  id: number;
  at: string;
  actor: Actor;
  /** The tenant concerned, or null for operator-wide actions. */
  tenant: string | null;
  /** `tenant.create`, `tenant.delete`, `token.create`, `version.create`, `deployment.create`, `deployment.rollback`, `function.delete`. */
  action: string;
  /** What was acted on, e.g. `alice/hello@3`. */
  target: string;
  details: Record<string, unknown>;
}

export interface NewVersion {
  tenant: string;
  function: string;
  digest: string;
  abi: GuestAbi;
  size: number;
  imports: string[];
  settings: VersionSettings;
}

export interface NewDeployment {
  tenant: string;
  function: string;
  version: number;
  /** Resolved routes (each with a host); the caller has applied the tenancy rules of hosts.ts. */
  routes: string[];
  settings: DeploymentSettings;
  kind: 'deploy' | 'rollback';
  restores: number | null;
}

/** Tenants, tokens, functions, versions, deployments and the audit log. */
export interface MetadataStore {
  /**
   * Creates a tenant and its first API token (only `tokenHash` is stored).
   * @throws IsolaError ERR_TENANT_EXISTS (409) when the name is taken.
   */
  createTenant(input: { name: string; limits: TenantLimits; tokenHash: string }, actor: Actor): Promise<TenantRecord>;
  getTenant(name: string): Promise<TenantRecord | null>;
  /** Every tenant, by name. */
  listTenants(): Promise<TenantRecord[]>;
  /** Deletes a tenant with its tokens, functions, versions and deployments. Resolves false when absent. */
  deleteTenant(name: string, actor: Actor): Promise<boolean>;
  /** Adds an API token (by hash) to a tenant. @throws ERR_TENANT_NOT_FOUND (404). */
  addToken(tenant: string, tokenHash: string, actor: Actor): Promise<void>;
  /** The tenant a token hash belongs to, or null. */
  tenantForToken(tokenHash: string): Promise<string | null>;

  /**
   * Records a new version (numbered after the function's highest), creating the function on its
   * first upload. The artifact bytes must already be durable in the ArtifactStore.
   * @throws IsolaError ERR_TENANT_NOT_FOUND (404); ERR_TENANT_LIMIT (400) when creating the function
   *   would exceed the tenant's `maxFunctions`.
   */
  addVersion(input: NewVersion, actor: Actor): Promise<VersionRecord>;
  listFunctions(tenant: string): Promise<FunctionSummary[]>;
  getFunction(tenant: string, name: string): Promise<FunctionSummary | null>;
  /** Versions of a function, oldest first (empty when the function does not exist). */
  listVersions(tenant: string, fn: string): Promise<VersionRecord[]>;
  getVersion(tenant: string, fn: string, version: number): Promise<VersionRecord | null>;

  /**
   * Records a deployment and makes it the function's live one, replacing its live routes. Checks,
   * in the same transaction, that no route is live for another function of the tenant and that no
   * host overlaps one that another tenant routes.
   * @throws IsolaError ERR_VERSION_NOT_FOUND (404); ERR_ROUTE_CONFLICT (409) naming the other
   *   function; ERR_HOST_CLAIMED (409) naming the host (not the other tenant).
   */
  addDeployment(input: NewDeployment, actor: Actor): Promise<DeploymentRecord>;
  liveDeployment(tenant: string, fn: string): Promise<DeploymentRecord | null>;
  /** A function's deployment history, newest first. */
  listDeployments(tenant: string, fn: string): Promise<DeploymentRecord[]>;
  /**
   * The deployment a rollback restores: the newest one older than the live deployment (older than
   * the one the live deployment itself restored, when it is a rollback), so repeated rollbacks walk
   * back through history. Null when there is none.
   */
  rollbackTarget(tenant: string, fn: string): Promise<DeploymentRecord | null>;
  /** Deletes a function, its versions and deployments (the audit log keeps the history). Resolves false when absent. */
  deleteFunction(tenant: string, fn: string, actor: Actor): Promise<boolean>;
  /** Every live deployment of every tenant: what `isola serve` serves after a restart. */
  allLiveDeployments(): Promise<DeploymentRecord[]>;
  /** Digests some version still refers to (artifacts not in it may be collected). */
  referencedDigests(): Promise<Set<string>>;

  /** Audit entries, newest first; only one tenant's when `tenant` is given. */
  auditLog(filter: { tenant?: string; limit?: number }): Promise<AuditEntry[]>;
  /** Consistency problems found by the backend's own checks (empty when healthy). */
  check(): Promise<string[]>;
  close(): Promise<void>;
}

/** A version's bytes being received: write, then `commit` (durable, visible) or `abort` (gone). */
export interface ArtifactUpload {
  /** Appends bytes (awaits the write: backpressure). */
  write(chunk: Uint8Array): Promise<void>;
  /** Bytes written so far. */
  readonly size: number;
  /** Ends the upload: the sha256 (hex) of every byte written, and the bytes for validation. */
  finish(): Promise<{ digest: string; size: number; bytes: Uint8Array }>;
  /** Makes the artifact durable and visible under its digest (idempotent for identical bytes). */
  commit(): Promise<void>;
  /** Discards what was written; never leaves anything visible. Safe to call more than once. */
  abort(): Promise<void>;
}

/** Content-addressed artifact bytes. */
export interface ArtifactStore {
  /** Prepares the store and deletes what a crash left half-written. Call once, before any upload. */
  recover(): Promise<void>;
  /** Starts receiving one upload. */
  begin(): Promise<ArtifactUpload>;
  /** A local file path holding the bytes of `digest` (a remote store would fetch into a cache first). */
  localPath(digest: string): Promise<string>;
  has(digest: string): Promise<boolean>;
  /** Every digest stored. */
  list(): Promise<string[]>;
  remove(digest: string): Promise<void>;
  /** Digests whose bytes no longer hash to their name (empty when healthy). */
  verify(): Promise<string[]>;
}
