/**
 * The embedded MetadataStore: one SQLite file (`<data_dir>/isola.db`) through better-sqlite3.
 *
 * Durability: WAL journal with `synchronous = FULL`, so a transaction is on disk when its method
 * resolves (SQLite docs, "PRAGMA synchronous": FULL makes WAL commits durable across power loss).
 * Every write method is one transaction that also appends its audit entry. better-sqlite3 is
 * synchronous, so in one process transactions never interleave; a second process opening the same
 * file waits up to `busy_timeout`.
 *
 * Live routes are kept in their own table (`routes`, one row per live route, primary key the route
 * identity), so "is this route or host taken?" is an indexed query inside the deploying transaction.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import type { TenantLimits } from '../config/types.js';
import { routeIdentity } from '../config/routes.js';
import { IsolaError } from '../errors.js';
import { hostname, hostsOverlap, routeHost } from './hosts.js';
import type {
  Actor, AuditEntry, DeploymentRecord, FunctionSummary, MetadataStore, NewDeployment, NewVersion, TenantRecord, VersionRecord,
} from './types.js';

/** Bumped when the schema changes; older files are migrated in `migrate`. */
const SCHEMA_VERSION = 1;

const SCHEMA = `
CREATE TABLE tenants (
  name TEXT PRIMARY KEY,
  created_at TEXT NOT NULL,
  limits TEXT NOT NULL
) STRICT;
CREATE TABLE tokens (
  id INTEGER PRIMARY KEY,
  tenant TEXT NOT NULL REFERENCES tenants(name) ON DELETE CASCADE,
  hash TEXT NOT NULL UNIQUE,
  created_at TEXT NOT NULL
) STRICT;
CREATE TABLE functions (
  tenant TEXT NOT NULL REFERENCES tenants(name) ON DELETE CASCADE,
  name TEXT NOT NULL,
  created_at TEXT NOT NULL,
  last_version INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (tenant, name)
) STRICT;
CREATE TABLE versions (
  tenant TEXT NOT NULL,
  function TEXT NOT NULL,
  version INTEGER NOT NULL,
  digest TEXT NOT NULL,
  abi TEXT NOT NULL,
  size INTEGER NOT NULL,
  imports TEXT NOT NULL,
  settings TEXT NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (tenant, function, version),
  FOREIGN KEY (tenant, function) REFERENCES functions(tenant, name) ON DELETE CASCADE
) STRICT;
CREATE INDEX versions_digest ON versions(digest);
CREATE TABLE deployments (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant TEXT NOT NULL,
  function TEXT NOT NULL,
  version INTEGER NOT NULL,
  routes TEXT NOT NULL,
  settings TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('deploy', 'rollback')),
  restores INTEGER,
  created_at TEXT NOT NULL,
  FOREIGN KEY (tenant, function, version) REFERENCES versions(tenant, function, version) ON DELETE CASCADE
) STRICT;
CREATE INDEX deployments_function ON deployments(tenant, function, id);
CREATE TABLE live (
  tenant TEXT NOT NULL,
  function TEXT NOT NULL,
  deployment INTEGER NOT NULL REFERENCES deployments(id) ON DELETE CASCADE,
  PRIMARY KEY (tenant, function),
  FOREIGN KEY (tenant, function) REFERENCES functions(tenant, name) ON DELETE CASCADE
) STRICT;
CREATE TABLE routes (
  identity TEXT PRIMARY KEY,
  hostname TEXT NOT NULL,
  tenant TEXT NOT NULL,
  function TEXT NOT NULL,
  FOREIGN KEY (tenant, function) REFERENCES functions(tenant, name) ON DELETE CASCADE
) STRICT;
CREATE INDEX routes_hostname ON routes(hostname);
CREATE TABLE audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at TEXT NOT NULL,
  actor TEXT NOT NULL,
  tenant TEXT,
  action TEXT NOT NULL,
  target TEXT NOT NULL,
  details TEXT NOT NULL
) STRICT;
CREATE INDEX audit_tenant ON audit(tenant, id);
`;

interface DeploymentRow {
  id: number; tenant: string; function: string; version: number; routes: string; settings: string;
  kind: 'deploy' | 'rollback'; restores: number | null; created_at: string;
}
interface VersionRow {
  tenant: string; function: string; version: number; digest: string; abi: string; size: number;
  imports: string; settings: string; created_at: string;
}

const now = (): string => new Date().toISOString();

function toDeployment(r: DeploymentRow): DeploymentRecord {
  return {
    id: r.id, tenant: r.tenant, function: r.function, version: r.version, routes: JSON.parse(r.routes) as string[],
    settings: JSON.parse(r.settings) as DeploymentRecord['settings'], kind: r.kind, restores: r.restores, createdAt: r.created_at,
  };
}

function toVersion(r: VersionRow): VersionRecord {
  return {
    tenant: r.tenant, function: r.function, version: r.version, digest: r.digest, abi: r.abi as VersionRecord['abi'], size: r.size,
    imports: JSON.parse(r.imports) as string[], settings: JSON.parse(r.settings) as VersionRecord['settings'], createdAt: r.created_at,
  };
}

/** The file name of the metadata database under a data directory. */
export function databasePath(dataDir: string): string {
  return join(dataDir, 'isola.db');
}

/**
 * Opens (creating when absent) the SQLite store at `file`.
 * @throws IsolaError ERR_STORE when the file cannot be opened or was written by a newer isola.
 */
export function openSqliteStore(file: string): SqliteStore {
  return new SqliteStore(file);
}

/** MetadataStore on SQLite; see the module docstring. Construct with `openSqliteStore`. */
export class SqliteStore implements MetadataStore {
  private readonly db: Database.Database;

  constructor(readonly file: string) {
    mkdirSync(join(file, '..'), { recursive: true });
    try {
      this.db = new Database(file);
      this.db.pragma('journal_mode = WAL');
      this.db.pragma('synchronous = FULL');
      this.db.pragma('foreign_keys = ON');
      this.db.pragma('busy_timeout = 5000');
      this.migrate();
    } catch (err) {
      if (err instanceof IsolaError) throw err;
      throw new IsolaError('ERR_STORE', `cannot open the store ${file}: ${(err as Error).message}`, { cause: err });
    }
  }

  private migrate(): void {
    const version = this.db.pragma('user_version', { simple: true }) as number;
    if (version > SCHEMA_VERSION) {
      throw new IsolaError('ERR_STORE', `${this.file} has schema ${version}, newer than this isola understands (${SCHEMA_VERSION})`, {
        user: true, hint: 'run the isola version that wrote it, or point server.data_dir elsewhere',
      });
    }
    if (version === 0) {
      this.db.transaction(() => {
        this.db.exec(SCHEMA);
        this.db.pragma(`user_version = ${SCHEMA_VERSION}`);
      }).immediate();
    }
  }

  private audit(actor: Actor, tenant: string | null, action: string, target: string, details: Record<string, unknown> = {}): void {
    this.db.prepare('INSERT INTO audit (at, actor, tenant, action, target, details) VALUES (?, ?, ?, ?, ?, ?)')
      .run(now(), actor, tenant, action, target, JSON.stringify(details));
  }

  private tenantRow(name: string): TenantRecord | null {
    const r = this.db.prepare('SELECT name, created_at, limits FROM tenants WHERE name = ?').get(name) as
      { name: string; created_at: string; limits: string } | undefined;
    return r ? { name: r.name, createdAt: r.created_at, limits: JSON.parse(r.limits) as TenantLimits } : null;
  }

  private requireTenant(name: string): TenantRecord {
    const t = this.tenantRow(name);
    if (!t) throw new IsolaError('ERR_TENANT_NOT_FOUND', `no tenant named "${name}"`, { status: 404, user: true });
    return t;
  }

  async createTenant(input: { name: string; limits: TenantLimits; tokenHash: string }, actor: Actor): Promise<TenantRecord> {
    return this.db.transaction(() => {
      if (this.tenantRow(input.name)) {
        throw new IsolaError('ERR_TENANT_EXISTS', `a tenant named "${input.name}" already exists`, { status: 409, user: true, hint: 'pick another name, or delete the existing tenant first' });
      }
      const createdAt = now();
      this.db.prepare('INSERT INTO tenants (name, created_at, limits) VALUES (?, ?, ?)').run(input.name, createdAt, JSON.stringify(input.limits));
      this.db.prepare('INSERT INTO tokens (tenant, hash, created_at) VALUES (?, ?, ?)').run(input.name, input.tokenHash, createdAt);
      this.audit(actor, input.name, 'tenant.create', input.name, { limits: input.limits });
      return { name: input.name, createdAt, limits: input.limits };
    }).immediate();
  }

  async getTenant(name: string): Promise<TenantRecord | null> {
    return this.tenantRow(name);
  }

  async listTenants(): Promise<TenantRecord[]> {
    const rows = this.db.prepare('SELECT name FROM tenants ORDER BY name').all() as Array<{ name: string }>;
    return rows.map((r) => this.tenantRow(r.name)!);
  }

  async deleteTenant(name: string, actor: Actor): Promise<boolean> {
    return this.db.transaction(() => {
      if (!this.tenantRow(name)) return false;
      const functions = (this.db.prepare('SELECT name FROM functions WHERE tenant = ?').all(name) as Array<{ name: string }>).map((r) => r.name);
      // Children first: the composite foreign keys cascade from functions, not from tenants.
      this.db.prepare('DELETE FROM functions WHERE tenant = ?').run(name);
      this.db.prepare('DELETE FROM tenants WHERE name = ?').run(name);
      this.audit(actor, name, 'tenant.delete', name, { functions });
      return true;
    }).immediate();
  }

  async addToken(tenant: string, tokenHash: string, actor: Actor): Promise<void> {
    this.db.transaction(() => {
      this.requireTenant(tenant);
      this.db.prepare('INSERT INTO tokens (tenant, hash, created_at) VALUES (?, ?, ?)').run(tenant, tokenHash, now());
      this.audit(actor, tenant, 'token.create', tenant);
    }).immediate();
  }

  async tenantForToken(tokenHash: string): Promise<string | null> {
    const r = this.db.prepare('SELECT tenant FROM tokens WHERE hash = ?').get(tokenHash) as { tenant: string } | undefined;
    return r?.tenant ?? null;
  }

  async addVersion(input: NewVersion, actor: Actor): Promise<VersionRecord> {
    return this.db.transaction(() => {
      const tenant = this.requireTenant(input.tenant);
      const fn = this.db.prepare('SELECT last_version FROM functions WHERE tenant = ? AND name = ?').get(input.tenant, input.function) as
        { last_version: number } | undefined;
      if (!fn) {
        const count = (this.db.prepare('SELECT count(*) AS n FROM functions WHERE tenant = ?').get(input.tenant) as { n: number }).n;
        if (count >= tenant.limits.maxFunctions) {
          throw new IsolaError('ERR_TENANT_LIMIT', `tenant "${input.tenant}" already has ${count} functions, its limit`, {
            status: 400, user: true, hint: 'delete a function you no longer need, or ask the operator for a higher max_functions',
          });
        }
        this.db.prepare('INSERT INTO functions (tenant, name, created_at) VALUES (?, ?, ?)').run(input.tenant, input.function, now());
      }
      const version = (fn?.last_version ?? 0) + 1;
      const createdAt = now();
      this.db.prepare('UPDATE functions SET last_version = ? WHERE tenant = ? AND name = ?').run(version, input.tenant, input.function);
      this.db.prepare('INSERT INTO versions (tenant, function, version, digest, abi, size, imports, settings, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)')
        .run(input.tenant, input.function, version, input.digest, input.abi, input.size, JSON.stringify(input.imports), JSON.stringify(input.settings), createdAt);
      this.audit(actor, input.tenant, 'version.create', `${input.tenant}/${input.function}@${version}`, { digest: input.digest, size: input.size, abi: input.abi });
      return { ...input, version, createdAt };
    }).immediate();
  }

  private summary(tenant: string, name: string): FunctionSummary | null {
    const r = this.db.prepare('SELECT tenant, name, created_at, last_version FROM functions WHERE tenant = ? AND name = ?').get(tenant, name) as
      { tenant: string; name: string; created_at: string; last_version: number } | undefined;
    if (!r) return null;
    return { tenant: r.tenant, name: r.name, createdAt: r.created_at, latestVersion: r.last_version, live: this.live(tenant, name) };
  }

  private live(tenant: string, fn: string): DeploymentRecord | null {
    const r = this.db.prepare('SELECT d.* FROM live l JOIN deployments d ON d.id = l.deployment WHERE l.tenant = ? AND l.function = ?').get(tenant, fn) as
      DeploymentRow | undefined;
    return r ? toDeployment(r) : null;
  }

  async listFunctions(tenant: string): Promise<FunctionSummary[]> {
    const rows = this.db.prepare('SELECT name FROM functions WHERE tenant = ? ORDER BY name').all(tenant) as Array<{ name: string }>;
    return rows.map((r) => this.summary(tenant, r.name)!);
  }

  async getFunction(tenant: string, name: string): Promise<FunctionSummary | null> {
    return this.summary(tenant, name);
  }

  async listVersions(tenant: string, fn: string): Promise<VersionRecord[]> {
    return (this.db.prepare('SELECT * FROM versions WHERE tenant = ? AND function = ? ORDER BY version').all(tenant, fn) as VersionRow[]).map(toVersion);
  }

  async getVersion(tenant: string, fn: string, version: number): Promise<VersionRecord | null> {
    const r = this.db.prepare('SELECT * FROM versions WHERE tenant = ? AND function = ? AND version = ?').get(tenant, fn, version) as VersionRow | undefined;
    return r ? toVersion(r) : null;
  }

  async addDeployment(input: NewDeployment, actor: Actor): Promise<DeploymentRecord> {
    return this.db.transaction(() => {
      const { tenant, function: fn } = input;
      if (!this.db.prepare('SELECT 1 FROM versions WHERE tenant = ? AND function = ? AND version = ?').get(tenant, fn, input.version)) {
        throw new IsolaError('ERR_VERSION_NOT_FOUND', `function "${fn}" has no version ${input.version}`, { status: 404, user: true });
      }
      this.checkRoutes(tenant, fn, input.routes);
      const createdAt = now();
      const info = this.db.prepare('INSERT INTO deployments (tenant, function, version, routes, settings, kind, restores, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)')
        .run(tenant, fn, input.version, JSON.stringify(input.routes), JSON.stringify(input.settings), input.kind, input.restores, createdAt);
      const id = Number(info.lastInsertRowid);
      this.db.prepare('INSERT INTO live (tenant, function, deployment) VALUES (?, ?, ?) ON CONFLICT (tenant, function) DO UPDATE SET deployment = excluded.deployment')
        .run(tenant, fn, id);
      this.db.prepare('DELETE FROM routes WHERE tenant = ? AND function = ?').run(tenant, fn);
      const insertRoute = this.db.prepare('INSERT INTO routes (identity, hostname, tenant, function) VALUES (?, ?, ?, ?)');
      for (const r of input.routes) insertRoute.run(routeIdentity(r), hostname(routeHost(r) ?? ''), tenant, fn);
      const action = input.kind === 'rollback' ? 'deployment.rollback' : 'deployment.create';
      this.audit(actor, tenant, action, `${tenant}/${fn}@${input.version}`, { deployment: id, routes: input.routes, restores: input.restores });
      return { ...input, id, createdAt };
    }).immediate();
  }

  /** Throws when a route is live for another function of the tenant, or a host overlaps another tenant's. */
  private checkRoutes(tenant: string, fn: string, routes: string[]): void {
    const byIdentity = this.db.prepare('SELECT tenant, function FROM routes WHERE identity = ?');
    const others = this.db.prepare('SELECT DISTINCT hostname FROM routes WHERE tenant <> ?').all(tenant) as Array<{ hostname: string }>;
    for (const route of routes) {
      const name = hostname(routeHost(route) ?? '');
      const clash = others.find((o) => hostsOverlap(o.hostname, name));
      if (clash) {
        throw new IsolaError('ERR_HOST_CLAIMED', `host "${name}" ${clash.hostname === name ? 'is' : `overlaps "${clash.hostname}", which is`} routed by another tenant`, {
          status: 409, user: true, details: { host: name, route }, hint: 'a host (and every name a wildcard covers) can belong to one tenant only',
        });
      }
      const owner = byIdentity.get(routeIdentity(route)) as { tenant: string; function: string } | undefined;
      if (owner && owner.function !== fn) {
        throw new IsolaError('ERR_ROUTE_CONFLICT', `route "${route}" is already served by your function "${owner.function}"`, {
          status: 409, user: true, details: { route, function: owner.function }, hint: `deploy "${owner.function}" without it first, or pick another route`,
        });
      }
    }
  }

  async liveDeployment(tenant: string, fn: string): Promise<DeploymentRecord | null> {
    return this.live(tenant, fn);
  }

  async listDeployments(tenant: string, fn: string): Promise<DeploymentRecord[]> {
    return (this.db.prepare('SELECT * FROM deployments WHERE tenant = ? AND function = ? ORDER BY id DESC').all(tenant, fn) as DeploymentRow[]).map(toDeployment);
  }

  async rollbackTarget(tenant: string, fn: string): Promise<DeploymentRecord | null> {
    const current = this.live(tenant, fn);
    if (!current) return null;
    const before = current.restores ?? current.id;
    const r = this.db.prepare('SELECT * FROM deployments WHERE tenant = ? AND function = ? AND id < ? ORDER BY id DESC LIMIT 1').get(tenant, fn, before) as
      DeploymentRow | undefined;
    return r ? toDeployment(r) : null;
  }

  async deleteFunction(tenant: string, fn: string, actor: Actor): Promise<boolean> {
    return this.db.transaction(() => {
      const info = this.db.prepare('DELETE FROM functions WHERE tenant = ? AND name = ?').run(tenant, fn);
      if (info.changes === 0) return false;
      this.audit(actor, tenant, 'function.delete', `${tenant}/${fn}`);
      return true;
    }).immediate();
  }

  async allLiveDeployments(): Promise<DeploymentRecord[]> {
    return (this.db.prepare('SELECT d.* FROM live l JOIN deployments d ON d.id = l.deployment ORDER BY d.id').all() as DeploymentRow[]).map(toDeployment);
  }

  async referencedDigests(): Promise<Set<string>> {
    return new Set((this.db.prepare('SELECT DISTINCT digest FROM versions').all() as Array<{ digest: string }>).map((r) => r.digest));
  }

  async auditLog(filter: { tenant?: string; limit?: number }): Promise<AuditEntry[]> {
    const limit = Math.max(1, Math.min(filter.limit ?? 100, 1000));
    const rows = (filter.tenant === undefined
      ? this.db.prepare('SELECT * FROM audit ORDER BY id DESC LIMIT ?').all(limit)
      : this.db.prepare('SELECT * FROM audit WHERE tenant = ? ORDER BY id DESC LIMIT ?').all(filter.tenant, limit)) as Array<{
      id: number; at: string; actor: Actor; tenant: string | null; action: string; target: string; details: string;
    }>;
    return rows.map((r) => ({ id: r.id, at: r.at, actor: r.actor, tenant: r.tenant, action: r.action, target: r.target, details: JSON.parse(r.details) as Record<string, unknown> }));
  }

  async check(): Promise<string[]> {
    const problems: string[] = [];
    const integrity = this.db.pragma('integrity_check') as Array<{ integrity_check: string }>;
    for (const r of integrity) if (r.integrity_check !== 'ok') problems.push(`integrity: ${r.integrity_check}`);
    const fk = this.db.pragma('foreign_key_check') as Array<{ table: string; rowid: number; parent: string }>;
    for (const r of fk) problems.push(`foreign key: ${r.table} row ${r.rowid} refers to a missing ${r.parent}`);
    const liveRoutes = this.db.prepare(`SELECT count(*) AS n FROM routes r LEFT JOIN live l ON l.tenant = r.tenant AND l.function = r.function WHERE l.deployment IS NULL`).get() as { n: number };
    if (liveRoutes.n > 0) problems.push(`${liveRoutes.n} route rows belong to no live deployment`);
    return problems;
  }

  async close(): Promise<void> {
    this.db.close();
  }
}
