/** `isola rollback <name>`: restore the deployment before the live one (repeat to go further back). */
import type { Command } from 'commander';
import { AdminClient, CLIENT_OPTIONS, functionPath, output, type ClientOptions } from './client.js';
import { defineCommand } from './command.js';

/** Registers `isola rollback`. */
export function registerRollback(program: Command): void {
  defineCommand<ClientOptions>(program, {
    name: 'rollback',
    summary: 'roll a function back to its previous deployment (version, routes and settings)',
    args: [{ syntax: '<name>', description: 'function name' }],
    options: CLIENT_OPTIONS,
    examples: ['isola rollback hello'],
    run: async ([name], opts) => {
      const client = new AdminClient(opts);
      const res = await client.request<{ deployment: { id: number; version: number; restores: number; routes: string[] } }>(
        'POST', `${functionPath(await client.tenant(opts), name)}/rollback`,
      );
      const d = res.deployment;
      output(opts, res, () => [`rolled ${name} back to version ${d.version} (deployment ${d.id}, restoring deployment ${d.restores}) on:`, ...d.routes.map((r) => `  ${r}`)]);
    },
  });
}
