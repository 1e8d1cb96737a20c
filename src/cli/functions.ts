/** `isola functions`: the tenant's functions with their live version and routes. */
import type { Command } from 'commander';
import { AdminClient, CLIENT_OPTIONS, functionPath, output, table, type ClientOptions } from './client.js';
import { defineCommand } from './command.js';

interface FunctionJson { name: string; latest_version: number; live: { version: number; routes: string[]; created_at: string } | null }

/** Registers `isola functions`. */
export function registerFunctions(program: Command): void {
  defineCommand<ClientOptions>(program, {
    name: 'functions',
    summary: 'list your functions: latest and live version, routes',
    options: CLIENT_OPTIONS,
    examples: ['isola functions', 'isola functions --tenant alice --json'],
    run: async (_args, opts) => {
      const client = new AdminClient(opts);
      const res = await client.request<{ functions: FunctionJson[] }>('GET', functionPath(await client.tenant(opts)));
      output(opts, res, () =>
        res.functions.length === 0
          ? ['no functions yet; deploy one with: isola deploy FILE.wasm --name NAME']
          : table([
            ['NAME', 'LATEST', 'LIVE', 'ROUTES'],
            ...res.functions.map((f) => [f.name, String(f.latest_version), f.live ? String(f.live.version) : '-', f.live ? f.live.routes.join(' ') : '']),
          ]),
      );
    },
  });
}
