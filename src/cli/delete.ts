/** `isola delete <name>`: delete a function, its versions and deployments; it stops being served. */
import type { Command } from 'commander';
import { AdminClient, CLIENT_OPTIONS, functionPath, output, type ClientOptions } from './client.js';
import { defineCommand } from './command.js';

/** Registers `isola delete`. */
export function registerDelete(program: Command): void {
  defineCommand<ClientOptions>(program, {
    name: 'delete',
    summary: 'delete a function with all its versions; its routes stop being served',
    args: [{ syntax: '<name>', description: 'function name' }],
    options: CLIENT_OPTIONS,
    examples: ['isola delete hello'],
    run: async ([name], opts) => {
      const client = new AdminClient(opts);
      const res = await client.request('DELETE', functionPath(await client.tenant(opts), name));
      output(opts, res, () => [`deleted function ${name}`]);
    },
  });
}
