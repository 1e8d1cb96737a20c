/**
 * Fuel metering over the admin API (issue 6 × issue 4): a tenant deploys with `metering = "fuel"`
 * and a fuel limit; the deployment says so, a runaway guest is stopped at the limit (503
 * ERR_FUEL_LIMIT), and the setting survives a redeploy that leaves it out.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGuestBytes } from './guests/index.js';
import { Api, OPERATOR, edgeGet, startServe, tempDataDir, type Serve } from './support/serve.js';

let server: Serve;
let alice: Api;

beforeAll(async () => {
  server = await startServe(tempDataDir());
  const op = new Api(server.admin, OPERATOR);
  alice = new Api(server.admin, await op.createTenant('alice'));
  expect((await alice.upload('alice', 'spin', await buildGuestBytes('loop'))).status).toBe(201);
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

describe('metering over the admin API', () => {
  it('deploys a metered version and stops it at limits.fuel', async () => {
    const dep = await alice.deploy('alice', 'spin', { routes: ['/spin'], metering: 'fuel', limits: { fuel: 2_000_000, cpu: '20s' } });
    expect(dep.status).toBe(201);
    expect(dep.json.deployment).toMatchObject({ metering: 'fuel', limits: { fuel: 2_000_000 } });
    const res = await edgeGet(server.edgePort, 'alice.localhost', '/spin');
    expect(res.status).toBe(503);
    expect(JSON.parse(res.body).error.code).toBe('ERR_FUEL_LIMIT');
    // Leaving metering out of a redeploy keeps it.
    const again = await alice.deploy('alice', 'spin', {});
    expect(again.json.deployment.metering).toBe('fuel');
  });

  it('refuses a pool larger than the tenant may have (one tenant cannot take the sandbox pool)', async () => {
    const dep = await alice.deploy('alice', 'spin', { pool: { min_warm: 50, max_instances: 50 } });
    expect(dep.status).toBe(400);
    expect(dep.json.error.code).toBe('ERR_TENANT_LIMIT');
    expect(dep.json.error.message).toMatch(/limit of 8 sandboxes/);
  });

  it('rejects a bad metering value with the config loader\'s words', async () => {
    const dep = await alice.deploy('alice', 'spin', { metering: 'gas' });
    expect(dep.status).toBe(400);
    expect(dep.json.error.message).toMatch(/metering/);
  });
});
