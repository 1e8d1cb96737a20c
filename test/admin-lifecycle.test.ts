/**
 * The control plane end to end (issue 4), against the real `isola serve` and its SQLite file: two
 * tenants with a function of the same name, upload → deploy → request → new version → rollback →
 * request, host claims across tenants, the CLI commands, deploys under load (no request sees a
 * missing route or a mix of versions), and a restart that keeps everything.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildGuestBytes } from './guests/index.js';
import { Api, OPERATOR, cli, edgeGet, startServe, tempDataDir, wagiText, type Serve } from './support/serve.js';

let server: Serve;
let op: Api;
let alice: Api;
let bob: Api;
let aliceToken: string;
const dataDir = tempDataDir();
const guests: Record<string, Uint8Array> = {};
const noWarm = { pool: { min_warm: 0 } };

beforeAll(async () => {
  guests.v1 = await wagiText('v1\n');
  guests.v2 = await wagiText('v2\n');
  guests.bob = await wagiText('bob\n');
  guests.hello = await buildGuestBytes('hello');
  server = await startServe(dataDir);
  op = new Api(server.admin, OPERATOR);
  aliceToken = await op.createTenant('alice');
  alice = new Api(server.admin, aliceToken);
  bob = new Api(server.admin, await op.createTenant('bob'));
}, 120_000);

afterAll(async () => {
  await server?.stop();
});

const get = (host: string, path: string) => edgeGet(server.edgePort, host, path);

describe('upload, deploy, new version, rollback', () => {
  it('serves each tenant its own "hello" on its default host', async () => {
    const up = await alice.upload('alice', 'hello', guests.v1!, '?message=first');
    expect(up.status).toBe(201);
    expect(up.json.version).toMatchObject({ function: 'hello', version: 1, abi: 'wagi', size: guests.v1!.byteLength, message: 'first' });
    expect(up.json.version.digest).toMatch(/^[0-9a-f]{64}$/);
    const dep = await alice.deploy('alice', 'hello', { routes: ['/hello/*'], env: { WHO: 'alice' } });
    expect(dep.status).toBe(201);
    expect(dep.json.deployment).toMatchObject({ function: 'hello', version: 1, routes: ['alice.localhost/hello/*'], env: { WHO: 'alice' }, kind: 'deploy' });

    expect((await bob.upload('bob', 'hello', guests.bob!)).status).toBe(201);
    expect((await bob.deploy('bob', 'hello', { routes: ['/hello/*'] })).status).toBe(201);

    expect(await get('alice.localhost', '/hello')).toEqual({ status: 200, body: 'v1\n' });
    expect(await get('alice.localhost:8787', '/hello/x')).toEqual({ status: 200, body: 'v1\n' });
    expect(await get('bob.localhost', '/hello')).toEqual({ status: 200, body: 'bob\n' });
    expect((await get('carol.localhost', '/hello')).status).toBe(404);
    expect((await get('localhost', '/hello')).status).toBe(404);
  });

  it('deploys a new version, keeping routes and env, then rolls back, then walks further back', async () => {
    expect((await alice.upload('alice', 'hello', guests.v2!)).status).toBe(201);
    const dep = await alice.deploy('alice', 'hello');
    expect(dep.status).toBe(201);
    expect(dep.json.deployment).toMatchObject({ version: 2, routes: ['alice.localhost/hello/*'], env: { WHO: 'alice' } });
    expect((await get('alice.localhost', '/hello')).body).toBe('v2\n');

    const rb = await alice.req('POST', '/v1/tenants/alice/functions/hello/rollback');
    expect(rb.status).toBe(201);
    expect(rb.json.deployment).toMatchObject({ version: 1, kind: 'rollback', restores: 1 });
    expect((await get('alice.localhost', '/hello')).body).toBe('v1\n');

    const again = await alice.req('POST', '/v1/tenants/alice/functions/hello/rollback');
    expect(again.status).toBe(409);
    expect(again.json.error.code).toBe('ERR_NO_PREVIOUS_DEPLOYMENT');

    const versions = await alice.req('GET', '/v1/tenants/alice/functions/hello/versions');
    expect(versions.json.versions.map((v: { version: number }) => v.version)).toEqual([1, 2]);
    expect(versions.json.live_version).toBe(1);
    const history = await alice.req('GET', '/v1/tenants/alice/functions/hello/deployments');
    expect(history.json.deployments.map((d: { version: number; kind: string }) => `${d.kind}@${d.version}`)).toEqual(['rollback@1', 'deploy@2', 'deploy@1']);
  });

  it('gives a function /<name>/* on the default host when no route is given', async () => {
    expect((await alice.upload('alice', 'greet', guests.hello!)).status).toBe(201);
    const dep = await alice.deploy('alice', 'greet', noWarm);
    expect(dep.json.deployment.routes).toEqual(['alice.localhost/greet/*']);
    expect(await get('alice.localhost', '/greet')).toEqual({ status: 200, body: 'hello from wat\n' });
  });
});

describe('hosts and routes across tenants', () => {
  it('lets the first tenant to route a custom host keep it: 409 for the other, also through a wildcard', async () => {
    expect((await alice.upload('alice', 'api', guests.v1!)).status).toBe(201);
    expect((await alice.deploy('alice', 'api', { routes: ['api.example.com/v1/*'], ...noWarm })).status).toBe(201);
    expect(await get('api.example.com', '/v1/x')).toEqual({ status: 200, body: 'v1\n' });

    expect((await bob.upload('bob', 'api', guests.bob!)).status).toBe(201);
    for (const route of ['api.example.com/v2/*', 'API.EXAMPLE.COM:8080/x', '*.example.com/*']) {
      const r = await bob.deploy('bob', 'api', { routes: [route] });
      expect(r.status, route).toBe(409);
      expect(r.json.error.code).toBe('ERR_HOST_CLAIMED');
    }
    const reserved = await bob.deploy('bob', 'api', { routes: ['alice.localhost/steal/*'] });
    expect(reserved.status).toBe(409);
    expect(reserved.json.error.code).toBe('ERR_HOST_CLAIMED');
    expect((await get('alice.localhost', '/steal/x')).status).toBe(404);

    const sameTenant = await alice.deploy('alice', 'greet', { routes: ['api.example.com/v1/*'] });
    expect(sameTenant.status).toBe(409);
    expect(sameTenant.json.error.code).toBe('ERR_ROUTE_CONFLICT');
    expect((await get('api.example.com', '/v1/x')).body).toBe('v1\n');
  });

  it('refuses limits over the tenant limit and malformed settings with 400, naming the key', async () => {
    const tooMuch = await alice.deploy('alice', 'api', { limits: { memory: '1GiB' } });
    expect(tooMuch.status).toBe(400);
    expect(tooMuch.json.error.code).toBe('ERR_TENANT_LIMIT');
    const typo = await alice.deploy('alice', 'api', { limits: { timout: '1s' } });
    expect(typo.status).toBe(400);
    expect(typo.json.error.message).toMatch(/limits\.timout: unknown key "timout"; did you mean "timeout"\?/);
    const unknown = await alice.deploy('alice', 'api', { files: { '/etc': '/etc' } });
    expect(unknown.status).toBe(400);
    expect(unknown.json.error.message).toMatch(/unknown key "files"/);
  });

  it('deletes a function: its routes stop, its host is free for others', async () => {
    const del = await alice.req('DELETE', '/v1/tenants/alice/functions/api');
    expect(del.status).toBe(200);
    expect((await get('api.example.com', '/v1/x')).status).toBe(404);
    expect((await bob.deploy('bob', 'api', { routes: ['api.example.com/*'], ...noWarm })).status).toBe(201);
    expect((await get('api.example.com', '/v1/x')).body).toBe('bob\n');
    expect((await alice.req('DELETE', '/v1/tenants/alice/functions/api')).status).toBe(404);
  });
});

describe('tenants', () => {
  it('deleting a tenant stops its functions at once and revokes its tokens', async () => {
    const dave = new Api(server.admin, await op.createTenant('dave'));
    expect((await dave.upload('dave', 'site', guests.v1!)).status).toBe(201);
    expect((await dave.deploy('dave', 'site', { routes: ['/*'], ...noWarm })).status).toBe(201);
    expect((await get('dave.localhost', '/')).status).toBe(200);
    expect((await op.req('DELETE', '/v1/tenants/dave')).status).toBe(200);
    expect((await get('dave.localhost', '/')).status).toBe(404);
    expect((await dave.req('GET', '/v1/whoami')).status).toBe(401);
    expect((await op.req('DELETE', '/v1/tenants/dave')).json.error.code).toBe('ERR_TENANT_NOT_FOUND');
  });

  it('refuses a second tenant of the same name, and names that are not DNS labels', async () => {
    expect((await op.req('POST', '/v1/tenants', { name: 'alice' })).json.error.code).toBe('ERR_TENANT_EXISTS');
    for (const name of ['Alice', 'a_b', 'ends-', '1abc', '']) {
      const r = await op.req('POST', '/v1/tenants', { name });
      expect(r.status, name).toBe(400);
      expect(r.json.error.code).toBe('ERR_BAD_REQUEST');
    }
  });
});

describe('isola serve start-up', () => {
  it('refuses to start without an operator token, or on a data directory another server uses', () => {
    const noToken = cli(['serve', '--port', '0', '--admin-port', '0', '--data-dir', tempDataDir()], { ISOLA_OPERATOR_TOKEN: '' });
    expect(noToken.status).toBe(1);
    expect(noToken.stderr).toMatch(/error\[ERR_CONFIG_INVALID\]: no operator token.*\nhint: set ISOLA_OPERATOR_TOKEN/);
    const second = cli(['serve', '--port', '0', '--admin-port', '0', '--data-dir', dataDir], { ISOLA_OPERATOR_TOKEN: OPERATOR });
    expect(second.status).toBe(1);
    expect(second.stderr).toMatch(/another isola serve \(pid \d+\) is using/);
  });
});

describe('deploys under load', () => {
  it('never serves a missing route or anything but one of the two versions while switching', async () => {
    const statuses = new Map<string, number>();
    let stop = false;
    const hammer = async (): Promise<void> => {
      while (!stop) {
        const r = await get('alice.localhost', '/hello');
        const key = `${r.status} ${r.body.trim()}`;
        statuses.set(key, (statuses.get(key) ?? 0) + 1);
      }
    };
    // One sandbox per version and six clients: requests are always queued on the version being replaced.
    const clients = Array.from({ length: 6 }, hammer);
    for (let i = 0; i < 6; i++) {
      const r = await alice.deploy('alice', 'hello', { version: (i % 2) + 1, pool: { min_warm: 1, max_instances: 1 } });
      expect(r.status).toBe(201);
      await new Promise((res) => setTimeout(res, 30));
    }
    stop = true;
    await Promise.all(clients);
    expect([...statuses.keys()].sort()).toEqual(['200 v1', '200 v2']);
  });
});

describe('the CLI', () => {
  it('creates a tenant, deploys, lists, rolls back and deletes, with errors that say how to fix them', async () => {
    const env = { ISOLA_URL: server.admin, ISOLA_TOKEN: OPERATOR };
    const created = cli(['tenants', 'create', 'carol', '--memory', '64MiB'], env);
    expect(created.status, created.stderr).toBe(0);
    const token = /token: (isola_\S+)/.exec(created.stdout)![1]!;
    expect(cli(['tenants', 'list'], env).stdout).toMatch(/carol\s+carol\.localhost\s+64\.0 MiB/);

    const dir = tempDataDir();
    const { mkdirSync, writeFileSync } = await import('node:fs');
    mkdirSync(dir, { recursive: true });
    writeFileSync(`${dir}/a.wasm`, guests.v1!);
    writeFileSync(`${dir}/b.wasm`, guests.v2!);
    const carol = { ISOLA_URL: server.admin, ISOLA_TOKEN: token };
    const d1 = cli(['deploy', `${dir}/a.wasm`, '--name', 'site', '--route', '/*', '--min-warm', '0'], carol);
    expect(d1.status, d1.stderr).toBe(0);
    expect(d1.stdout).toMatch(/uploaded site version 1 \(wagi/);
    expect(d1.stdout).toMatch(/carol\.localhost\/\*/);
    // Flags are checked before anything is uploaded…
    const badEnv = cli(['deploy', `${dir}/b.wasm`, '-n', 'site', '--env', 'NOEQUALS'], carol);
    expect(badEnv.status).toBe(1);
    expect(badEnv.stderr).toMatch(/error\[ERR_USAGE\]: --env NOEQUALS: write KEY=VALUE/);
    const badWarm = cli(['deploy', `${dir}/b.wasm`, '-n', 'site', '--min-warm', 'two'], carol);
    expect(badWarm.stderr).toMatch(/error\[ERR_USAGE\]: --min-warm two: give a whole number/);
    // …as the server would check them (config syntax and units).
    for (const flags of [['--route', 'noslash'], ['--timeout', '5parsecs'], ['--min-warm', '3', '--max-instances', '2'], ['--env', '1A=v']]) {
      const bad = cli(['deploy', `${dir}/b.wasm`, '-n', 'site', ...flags], carol);
      expect(bad.status, flags.join(' ')).toBe(1);
      expect(bad.stderr, flags.join(' ')).toMatch(/error\[ERR_USAGE\]: nothing was uploaded: /);
    }
    expect(cli(['versions', 'site'], carol).stdout).not.toMatch(/^\s*\*?\s*2\s/m);
    // …and a deploy the server refuses says the upload was kept but not deployed.
    const tooMany = cli(['deploy', `${dir}/b.wasm`, '-n', 'site', '--max-instances', '1000'], carol);
    expect(tooMany.status).toBe(1);
    expect(tooMany.stderr).toMatch(/error\[ERR_TENANT_LIMIT\]: version 2 of site was uploaded but not deployed: /);
    expect((await get('carol.localhost', '/anything')).body).toBe('v1\n');
    expect(cli(['deploy', `${dir}/b.wasm`, '-n', 'site'], carol).status).toBe(0);
    expect((await get('carol.localhost', '/anything')).body).toBe('v2\n');
    // Version 2 is the refused one (kept, never live); 3 is live.
    expect(cli(['functions'], carol).stdout).toMatch(/site\s+3\s+3\s+carol\.localhost\/\*/);
    expect(cli(['versions', 'site'], carol).stdout).toMatch(/\*\s+3\s+wagi/);
    const rb = cli(['rollback', 'site'], carol);
    expect(rb.stdout).toMatch(/rolled site back to version 1/);
    expect((await get('carol.localhost', '/anything')).body).toBe('v1\n');
    expect(JSON.parse(cli(['functions', '--json'], carol).stdout).functions[0].live.version).toBe(1);

    const forbidden = cli(['tenants', 'list'], carol);
    expect(forbidden.status).toBe(1);
    expect(forbidden.stderr).toMatch(/error\[ERR_FORBIDDEN\]: only the operator may do this\nhint: /);
    const badToken = cli(['functions'], { ...carol, ISOLA_TOKEN: 'isola_nope' });
    expect(badToken.stderr).toMatch(/error\[ERR_UNAUTHORIZED\].*\nhint: set ISOLA_TOKEN/);
    const unreachable = cli(['functions'], { ...carol, ISOLA_URL: 'http://127.0.0.1:9' });
    expect(unreachable.stderr).toMatch(/error\[ERR_ADMIN_UNREACHABLE\]: cannot reach the admin API at http:\/\/127\.0\.0\.1:9.*\nhint: is `isola serve` running\?/);
    const noToken = cli(['functions'], { ISOLA_URL: server.admin, ISOLA_TOKEN: '' });
    expect(noToken.stderr).toMatch(/error\[ERR_USAGE\]: no API token/);
    const operatorNoTenant = cli(['functions'], env);
    expect(operatorNoTenant.stderr).toMatch(/pass --tenant NAME/);
    expect(cli(['functions', '--tenant', 'carol'], env).stdout).toMatch(/site/);

    expect(cli(['delete', 'site'], carol).stdout).toMatch(/deleted function site/);
    expect((await get('carol.localhost', '/anything')).status).toBe(404);
    expect(cli(['tenants', 'delete', 'carol'], env).status).toBe(0);
    expect(cli(['functions'], carol).stderr).toMatch(/ERR_UNAUTHORIZED/);
  });
});

describe('restart', () => {
  it('keeps tenants, tokens, versions, deployments and the audit log; every deployment serves again', async () => {
    const before = {
      alice: (await alice.req('GET', '/v1/tenants/alice/functions')).json,
      bob: (await bob.req('GET', '/v1/tenants/bob/functions')).json,
      hello: (await get('alice.localhost', '/hello')).body,
    };
    expect(await server.stop('SIGTERM')).toBe(0);
    server = await startServe(dataDir);
    alice = new Api(server.admin, aliceToken);
    bob = new Api(server.admin, bob.token);
    op = new Api(server.admin, OPERATOR);
    expect((await alice.req('GET', '/v1/tenants/alice/functions')).json).toEqual(before.alice);
    expect((await bob.req('GET', '/v1/tenants/bob/functions')).json).toEqual(before.bob);
    expect((await get('alice.localhost', '/hello')).body).toBe(before.hello);
    expect((await get('alice.localhost', '/greet')).body).toBe('hello from wat\n');
    expect((await get('bob.localhost', '/hello')).body).toBe('bob\n');
    expect((await get('api.example.com', '/x')).body).toBe('bob\n');
    const audit = await op.req('GET', '/v1/audit?limit=1000');
    const actions = audit.json.entries.map((e: { action: string }) => e.action);
    expect(actions).toContain('tenant.delete');
    expect(actions.filter((a: string) => a === 'tenant.create').length).toBe(4); // alice, bob, dave, carol
  });
});
