/**
 * `isola tenants create|list|delete` (operator token): manage tenants through the admin API.
 * `create` prints the new tenant's token once; it is never shown again (only its hash is stored).
 */
import type { Command } from 'commander';
import { AdminClient, CLIENT_OPTIONS, humanBytes, output, table, type ClientOptions } from './client.js';
import { defineCommand } from './command.js';

interface TenantJson {
  name: string;
  default_host: string;
  created_at: string;
  limits: { memory: number; max_functions: number };
}

interface CreateOptions extends ClientOptions {
  memory?: string;
  maxFunctions?: string;
}

/** Registers `isola tenants create|list|delete`. */
export function registerTenants(program: Command): void {
  defineCommand<CreateOptions>(program, {
    name: 'tenants create',
    group: 'manage tenants (operator token): create, list, delete',
    summary: 'create a tenant and print its API token (shown once)',
    args: [{ syntax: '<name>', description: 'tenant name: a DNS label (lowercase letters, digits, "-"); its default host is <name>.<base_domain>' }],
    options: [
      { flags: '--memory <size>', description: 'most linear memory per function, e.g. 64MiB (default: server.tenant_limits.memory)' },
      { flags: '--max-functions <n>', description: 'most functions the tenant may own (default: server.tenant_limits.max_functions)' },
      ...CLIENT_OPTIONS,
    ],
    examples: ['ISOLA_TOKEN=$ISOLA_OPERATOR_TOKEN isola tenants create alice', 'isola tenants create bob --memory 64MiB --max-functions 10 --json'],
    run: async ([name], opts) => {
      const client = new AdminClient(opts);
      const limits: Record<string, unknown> = {};
      if (opts.memory !== undefined) limits.memory = /^\d+$/.test(opts.memory) ? Number(opts.memory) : opts.memory;
      if (opts.maxFunctions !== undefined) limits.max_functions = Number(opts.maxFunctions);
      const res = await client.request<{ tenant: TenantJson; token: string }>('POST', '/v1/tenants', {
        json: { name, ...(Object.keys(limits).length > 0 ? { limits } : {}) },
      });
      output(opts, res, () => [
        `created tenant ${res.tenant.name} (default host ${res.tenant.default_host})`,
        `token: ${res.token}`,
        'This token is shown only once: store it now (e.g. export ISOLA_TOKEN=…).',
      ]);
    },
  });

  defineCommand<ClientOptions>(program, {
    name: 'tenants list',
    summary: 'list tenants with their default host and limits',
    options: CLIENT_OPTIONS,
    examples: ['isola tenants list', 'isola tenants list --json'],
    run: async (_args, opts) => {
      const res = await new AdminClient(opts).request<{ tenants: TenantJson[] }>('GET', '/v1/tenants');
      output(opts, res, () =>
        res.tenants.length === 0
          ? ['no tenants yet; create one with: isola tenants create NAME']
          : table([
            ['NAME', 'DEFAULT HOST', 'MEMORY', 'MAX FUNCTIONS', 'CREATED'],
            ...res.tenants.map((t) => [t.name, t.default_host, humanBytes(t.limits.memory), String(t.limits.max_functions), t.created_at]),
          ]),
      );
    },
  });

  defineCommand<ClientOptions>(program, {
    name: 'tenants delete',
    summary: 'delete a tenant with its tokens, functions, versions and deployments (stops serving them)',
    args: [{ syntax: '<name>', description: 'tenant name' }],
    options: CLIENT_OPTIONS,
    examples: ['isola tenants delete alice'],
    run: async ([name], opts) => {
      const res = await new AdminClient(opts).request('DELETE', `/v1/tenants/${encodeURIComponent(name!)}`);
      output(opts, res, () => [`deleted tenant ${name}`]);
    },
  });
}
