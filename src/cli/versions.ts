/** `isola versions <name>`: a function's uploaded versions, oldest first, the live one marked. */
import type { Command } from 'commander';
import { AdminClient, CLIENT_OPTIONS, functionPath, humanBytes, output, table, type ClientOptions } from './client.js';
import { defineCommand } from './command.js';

interface VersionJson { version: number; digest: string; abi: string; size: number; message: string | null; created_at: string }

/** Registers `isola versions`. */
export function registerVersions(program: Command): void {
  defineCommand<ClientOptions>(program, {
    name: 'versions',
    summary: 'list the versions of a function (* marks the live one)',
    args: [{ syntax: '<name>', description: 'function name' }],
    options: CLIENT_OPTIONS,
    examples: ['isola versions hello', 'isola versions hello --tenant alice --json'],
    run: async ([name], opts) => {
      const client = new AdminClient(opts);
      const res = await client.request<{ versions: VersionJson[]; live_version: number | null }>('GET', `${functionPath(await client.tenant(opts), name)}/versions`);
      output(opts, res, () => table([
        ['', 'VERSION', 'ABI', 'SIZE', 'DIGEST', 'CREATED', 'MESSAGE'],
        ...res.versions.map((v) => [v.version === res.live_version ? '*' : '', String(v.version), v.abi, humanBytes(v.size), v.digest.slice(0, 12), v.created_at, v.message ?? '']),
      ]));
    },
  });
}
