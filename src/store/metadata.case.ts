/**
 * The MetadataStore conformance suite (STYLE.md: one shared suite that every implementation of an
 * interface passes, like Hono's `common.case.test.ts`). Call `describeMetadataStore` from an
 * implementation's test file with a factory that opens an empty store.
 */
import { describe, expect, it } from 'vitest';
import type { DeploymentSettings, MetadataStore, NewDeployment } from './types.js';

const LIMITS = { memoryBytes: 64 * 1024 * 1024, maxFunctions: 3 };
const SETTINGS: DeploymentSettings = {
  env: { A: '1' }, argv: [],
  limits: { maxRequestBodyBytes: 1024, maxResponseBodyBytes: 1024, timeoutMs: 1000, cpuMs: 1000, fuel: 1000000, memoryBytes: 65536 },
  pool: { minWarm: 0, maxInstances: 1, idleTimeoutMs: 1000, maxRequestsPerInstance: 0, maxQueue: 256, queueTimeoutMs: 1000 },
};
const DIGEST = 'a'.repeat(64);

async function withVersion(store: MetadataStore, tenant: string, fn: string): Promise<number> {
  const v = await store.addVersion({ tenant, function: fn, digest: DIGEST, abi: 'wasi-http', size: 10, imports: ['wasi:http/types@0.2.0'], settings: { abi: null, message: null } }, 'operator');
  return v.version;
}

function deployment(tenant: string, fn: string, version: number, routes: string[], extra: Partial<NewDeployment> = {}): NewDeployment {
  return { tenant, function: fn, version, routes, settings: SETTINGS, kind: 'deploy', restores: null, ...extra };
}

/** Registers the suite for one implementation; `open` returns a fresh, empty store. */
export function describeMetadataStore(name: string, open: () => Promise<MetadataStore>): void {
  describe(`MetadataStore: ${name}`, () => {
    it('creates, finds and lists tenants; a second tenant of the same name is ERR_TENANT_EXISTS', async () => {
      const s = await open();
      const t = await s.createTenant({ name: 'alice', limits: LIMITS, tokenHash: 'h1' }, 'operator');
      expect(t).toMatchObject({ name: 'alice', limits: LIMITS });
      await expect(s.createTenant({ name: 'alice', limits: LIMITS, tokenHash: 'h2' }, 'operator')).rejects.toMatchObject({ code: 'ERR_TENANT_EXISTS', status: 409 });
      await s.createTenant({ name: 'bob', limits: LIMITS, tokenHash: 'h3' }, 'operator');
      expect((await s.listTenants()).map((x) => x.name)).toEqual(['alice', 'bob']);
      expect(await s.tenantForToken('h1')).toBe('alice');
      expect(await s.tenantForToken('h2')).toBeNull();
      await s.addToken('bob', 'h4', 'tenant:bob');
      expect(await s.tenantForToken('h4')).toBe('bob');
      await expect(s.addToken('nobody', 'h5', 'operator')).rejects.toMatchObject({ code: 'ERR_TENANT_NOT_FOUND' });
      await s.close();
    });

    it('numbers versions per function, creates functions on first upload, and enforces max_functions', async () => {
      const s = await open();
      await s.createTenant({ name: 'alice', limits: LIMITS, tokenHash: 'h1' }, 'operator');
      await s.createTenant({ name: 'bob', limits: LIMITS, tokenHash: 'h2' }, 'operator');
      expect(await withVersion(s, 'alice', 'hello')).toBe(1);
      expect(await withVersion(s, 'alice', 'hello')).toBe(2);
      expect(await withVersion(s, 'bob', 'hello')).toBe(1);
      await withVersion(s, 'alice', 'b');
      await withVersion(s, 'alice', 'c');
      await expect(withVersion(s, 'alice', 'd')).rejects.toMatchObject({ code: 'ERR_TENANT_LIMIT' });
      expect(await withVersion(s, 'alice', 'c')).toBe(2);
      expect((await s.listVersions('alice', 'hello')).map((v) => v.version)).toEqual([1, 2]);
      expect((await s.listFunctions('alice')).map((f) => [f.name, f.latestVersion, f.live])).toEqual([['b', 1, null], ['c', 2, null], ['hello', 2, null]]);
      await expect(withVersion(s, 'carol', 'x')).rejects.toMatchObject({ code: 'ERR_TENANT_NOT_FOUND' });
      await s.close();
    });

    it('deploys, keeps history, and walks back through it on repeated rollbacks', async () => {
      const s = await open();
      await s.createTenant({ name: 'alice', limits: LIMITS, tokenHash: 'h1' }, 'operator');
      for (let i = 0; i < 3; i++) await withVersion(s, 'alice', 'hello');
      const d1 = await s.addDeployment(deployment('alice', 'hello', 1, ['alice.localhost/hello']), 'tenant:alice');
      const d2 = await s.addDeployment(deployment('alice', 'hello', 2, ['alice.localhost/hello']), 'tenant:alice');
      const d3 = await s.addDeployment(deployment('alice', 'hello', 3, ['alice.localhost/hello']), 'tenant:alice');
      expect((await s.liveDeployment('alice', 'hello'))?.id).toBe(d3.id);
      expect((await s.rollbackTarget('alice', 'hello'))?.id).toBe(d2.id);
      const r1 = await s.addDeployment({ ...d2, kind: 'rollback', restores: d2.id }, 'tenant:alice');
      expect((await s.liveDeployment('alice', 'hello'))).toMatchObject({ id: r1.id, version: 2, kind: 'rollback', restores: d2.id });
      expect((await s.rollbackTarget('alice', 'hello'))?.id).toBe(d1.id);
      await s.addDeployment({ ...d1, kind: 'rollback', restores: d1.id }, 'tenant:alice');
      expect(await s.rollbackTarget('alice', 'hello')).toBeNull();
      expect((await s.listDeployments('alice', 'hello')).map((d) => d.version)).toEqual([1, 2, 3, 2, 1]);
      await expect(s.addDeployment(deployment('alice', 'hello', 9, ['/x']), 'tenant:alice')).rejects.toMatchObject({ code: 'ERR_VERSION_NOT_FOUND', status: 404 });
      await s.close();
    });

    it('refuses a route another function of the tenant serves, and a host another tenant routes', async () => {
      const s = await open();
      for (const t of ['alice', 'bob']) await s.createTenant({ name: t, limits: LIMITS, tokenHash: t }, 'operator');
      for (const f of ['one', 'two']) await withVersion(s, 'alice', f);
      await withVersion(s, 'bob', 'one');
      await s.addDeployment(deployment('alice', 'one', 1, ['api.example.com/v1/*', 'alice.localhost/one']), 'tenant:alice');
      await expect(s.addDeployment(deployment('alice', 'two', 1, ['API.example.com/v1/*']), 'tenant:alice')).rejects.toMatchObject({ code: 'ERR_ROUTE_CONFLICT', status: 409 });
      // Same host, other path: fine within one tenant.
      await s.addDeployment(deployment('alice', 'two', 1, ['api.example.com/v2/*']), 'tenant:alice');
      await expect(s.addDeployment(deployment('bob', 'one', 1, ['api.example.com/other']), 'tenant:bob')).rejects.toMatchObject({ code: 'ERR_HOST_CLAIMED', status: 409 });
      await expect(s.addDeployment(deployment('bob', 'one', 1, ['*.example.com/*']), 'tenant:bob')).rejects.toMatchObject({ code: 'ERR_HOST_CLAIMED' });
      await expect(s.addDeployment(deployment('bob', 'one', 1, ['api.example.com:8080/x']), 'tenant:bob')).rejects.toMatchObject({ code: 'ERR_HOST_CLAIMED' });
      await s.addDeployment(deployment('bob', 'one', 1, ['www.example.com/*']), 'tenant:bob');
      // A redeploy of the same function may keep its own routes.
      await s.addDeployment(deployment('alice', 'one', 1, ['api.example.com/v1/*']), 'tenant:alice');
      // Once alice stops routing the host, bob may take it.
      await s.deleteFunction('alice', 'one', 'tenant:alice');
      await expect(s.addDeployment(deployment('bob', 'one', 1, ['api.example.com/*']), 'tenant:bob')).rejects.toMatchObject({ code: 'ERR_HOST_CLAIMED' });
      await s.deleteFunction('alice', 'two', 'tenant:alice');
      await s.addDeployment(deployment('bob', 'one', 1, ['api.example.com/*']), 'tenant:bob');
      expect(await s.check()).toEqual([]);
      await s.close();
    });

    it('deletes a tenant with everything it owns; the audit log keeps the history', async () => {
      const s = await open();
      await s.createTenant({ name: 'alice', limits: LIMITS, tokenHash: 'h1' }, 'operator');
      await withVersion(s, 'alice', 'hello');
      await s.addDeployment(deployment('alice', 'hello', 1, ['alice.localhost/*']), 'tenant:alice');
      expect((await s.allLiveDeployments()).length).toBe(1);
      expect(await s.referencedDigests()).toEqual(new Set([DIGEST]));
      expect(await s.deleteTenant('alice', 'operator')).toBe(true);
      expect(await s.deleteTenant('alice', 'operator')).toBe(false);
      expect(await s.getTenant('alice')).toBeNull();
      expect(await s.tenantForToken('h1')).toBeNull();
      expect(await s.allLiveDeployments()).toEqual([]);
      expect(await s.referencedDigests()).toEqual(new Set());
      expect((await s.auditLog({ tenant: 'alice' })).map((e) => e.action)).toEqual(['tenant.delete', 'deployment.create', 'version.create', 'tenant.create']);
      expect(await s.check()).toEqual([]);
      await s.close();
    });
  });
}
