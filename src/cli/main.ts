#!/usr/bin/env node
/**
 * The `isola` command line (commander): one file per command, registered here.
 * User errors print what went wrong and how to fix it, without a stack; system errors print the stack.
 */
import { Command } from 'commander';
import { IsolaError } from '../errors.js';
import { registerBuild } from './build.js';
import { registerDelete } from './delete.js';
import { registerDeploy } from './deploy.js';
import { registerDev } from './dev.js';
import { registerInit } from './init.js';
import { registerFunctions } from './functions.js';
import { registerRollback } from './rollback.js';
import { registerServe } from './serve.js';
import { registerTail } from './tail.js';
import { registerTenants } from './tenants.js';
import { registerVersions } from './versions.js';

const program = new Command();
program
  .name('isola')
  .description('WebAssembly sandboxed edge-function runtime')
  .version('0.1.0')
  .showHelpAfterError();
registerDev(program);
registerServe(program);
registerTenants(program);
registerDeploy(program);
registerFunctions(program);
registerVersions(program);
registerRollback(program);
registerDelete(program);
registerTail(program);
registerBuild(program);
registerInit(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof IsolaError && err.user) {
    process.stderr.write(`error[${err.code}]: ${err.message}\n`);
    if (err.hint) process.stderr.write(`hint: ${err.hint}\n`);
  } else {
    process.stderr.write(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  }
  process.exit(1);
});
