/**
 * `isola deploy <file.wasm> --name NAME [--route R]…`: uploads the file as the function's next
 * version (`POST …/versions`), then deploys it (`POST …/deployments`). Routes, env and limits left
 * out are kept from the live deployment (see docs/admin-api.md); `--limit`-style flags given
 * together replace the function's limits, the ones not given returning to their defaults.
 */
import { readFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { IsolaError } from '../errors.js';
import { AdminClient, CLIENT_OPTIONS, functionPath, humanBytes, output, type ClientOptions } from './client.js';
import { checkDeployBody } from '../server/admin-settings.js';
import { defineCommand } from './command.js';

interface DeployOptions extends ClientOptions {
  name?: string;
  route?: string[];
  env?: string[];
  abi?: string;
  message?: string;
  memory?: string;
  timeout?: string;
  maxRequestBody?: string;
  maxResponseBody?: string;
  minWarm?: string;
  maxInstances?: string;
}

/** A size or duration flag: digits are bytes/ms, anything else is passed as written ("64MiB", "5s"). */
const unit = (v: string): string | number => (/^\d+$/.test(v) ? Number(v) : v);

/**
 * The deploy request's settings from the flags (routes, env, limits, pool), checked locally.
 * Throws IsolaError ERR_USAGE for a malformed `--env` or a pool flag that is not a whole number.
 */
function deploySettings(opts: DeployOptions): Record<string, unknown> {
  const body: Record<string, unknown> = {};
  if (opts.route) body.routes = opts.route;
  if (opts.env) {
    body.env = Object.fromEntries(opts.env.map((kv) => {
      const eq = kv.indexOf('=');
      if (eq <= 0) throw new IsolaError('ERR_USAGE', `--env ${kv}: write KEY=VALUE`, { user: true });
      return [kv.slice(0, eq), kv.slice(eq + 1)];
    }));
  }
  const limits: Record<string, unknown> = {};
  if (opts.memory) limits.memory = unit(opts.memory);
  if (opts.timeout) limits.timeout = unit(opts.timeout);
  if (opts.maxRequestBody) limits.max_request_body = unit(opts.maxRequestBody);
  if (opts.maxResponseBody) limits.max_response_body = unit(opts.maxResponseBody);
  if (Object.keys(limits).length > 0) body.limits = limits;
  const pool: Record<string, unknown> = {};
  const count = (flag: string, v: string): number => {
    if (!/^\d+$/.test(v)) throw new IsolaError('ERR_USAGE', `${flag} ${v}: give a whole number`, { user: true });
    return Number(v);
  };
  if (opts.minWarm) pool.min_warm = count('--min-warm', opts.minWarm);
  if (opts.maxInstances) pool.max_instances = count('--max-instances', opts.maxInstances);
  if (Object.keys(pool).length > 0) body.pool = pool;
  return body;
}

/** Registers `isola deploy`. */
export function registerDeploy(program: Command): void {
  defineCommand<DeployOptions>(program, {
    name: 'deploy',
    summary: 'upload a .wasm as a new version of a function and deploy it',
    args: [{ syntax: '<file>', description: 'the function: a wasi:http component or a WASI command module (.wasm)' }],
    options: [
      { flags: '-n, --name <name>', description: 'function name (created on first deploy)' },
      { flags: '-r, --route <route>', description: 'route, repeatable; without a host it is on your default host (default: kept, or /<name>/*)', repeatable: true },
      { flags: '-e, --env <KEY=VALUE>', description: 'environment variable, repeatable (given: replaces all; default: kept)', repeatable: true },
      { flags: '--abi <abi>', description: 'wasi-http or wagi (default: detected)' },
      { flags: '-m, --message <text>', description: 'note stored with the version' },
      { flags: '--memory <size>', description: 'limits.memory, e.g. 64MiB' },
      { flags: '--timeout <duration>', description: 'limits.timeout, e.g. 5s' },
      { flags: '--max-request-body <size>', description: 'limits.max_request_body' },
      { flags: '--max-response-body <size>', description: 'limits.max_response_body' },
      { flags: '--min-warm <n>', description: 'pool.min_warm' },
      { flags: '--max-instances <n>', description: 'pool.max_instances' },
      ...CLIENT_OPTIONS,
    ],
    examples: [
      'isola deploy hello.wasm --name hello --route "/hello/*"',
      'isola deploy api.wasm -n api -r "api.example.com/*" -e MODE=prod --memory 64MiB --timeout 5s',
    ],
    run: async ([file], opts) => {
      if (!opts.name) throw new IsolaError('ERR_USAGE', 'missing --name', { user: true, hint: 'isola deploy FILE --name NAME [--route ROUTE]' });
      let bytes: Uint8Array;
      try {
        bytes = await readFile(file!);
      } catch (err) {
        throw new IsolaError('ERR_USAGE', `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { user: true, hint: 'give the path of a built .wasm file' });
      }
      // The flags are checked as the server will check them (config syntax and units) before the
      // upload, so a typo does not leave a new version behind; only the tenant's limits (and
      // routes another tenant holds) are left for the server to refuse.
      const settings = deploySettings(opts);
      try {
        checkDeployBody(settings);
      } catch (err) {
        const e = err as IsolaError;
        throw new IsolaError('ERR_USAGE', `nothing was uploaded: ${e.message}`, { user: true, hint: e.hint, cause: err });
      }
      const client = new AdminClient(opts);
      const tenant = await client.tenant(opts);
      const query = new URLSearchParams();
      if (opts.abi) query.set('abi', opts.abi);
      if (opts.message) query.set('message', opts.message);
      const q = query.size > 0 ? `?${query}` : '';
      const uploaded = await client.request<{ version: { version: number; digest: string; abi: string; size: number } }>(
        'POST', `${functionPath(tenant, opts.name)}/versions${q}`, { wasm: bytes },
      );
      const v = uploaded.version;
      if (!opts.json) process.stdout.write(`uploaded ${opts.name} version ${v.version} (${v.abi}, ${humanBytes(v.size)}, sha256:${v.digest.slice(0, 12)})\n`);
      let deployed: { deployment: { id: number; version: number; routes: string[] } };
      try {
        deployed = await client.request('POST', `${functionPath(tenant, opts.name)}/deployments`, { json: { version: v.version, ...settings } });
      } catch (err) {
        // The server refused the settings (a route taken by another tenant, a limit over the
        // tenant's): the version is stored, the live deployment unchanged. Say so.
        if (err instanceof IsolaError) {
          throw new IsolaError(err.code, `version ${v.version} of ${opts.name} was uploaded but not deployed: ${err.message}`, {
            status: err.status, user: err.user, cause: err,
            hint: `${err.hint ? `${err.hint}; then ` : ''}run isola deploy again (a new version), or deploy version ${v.version} as it is with POST ${functionPath(tenant, opts.name)}/deployments {"version": ${v.version}, …} (docs/admin-api.md)`,
          });
        }
        throw err;
      }
      output(opts, { version: v, deployment: deployed.deployment }, () => [
        `deployed ${opts.name} version ${deployed.deployment.version} (deployment ${deployed.deployment.id}) on:`,
        ...deployed.deployment.routes.map((r) => `  ${r}`),
      ]);
    },
  });
}
