/**
 * Runs functions' `build` commands (Spin's `spin build`): before `isola dev` serves, each function
 * whose `.wasm` is missing — or every function with a build command, when forced — is built with
 * its command in its working directory. Output goes to stderr, so stdout stays the CLI's own.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { FunctionConfig } from '../config/types.js';
import { IsolaError } from '../errors.js';

/** Builds what needs building. Throws IsolaError ERR_BUILD_FAILED naming the function and exit code. */
export async function runBuilds(functions: FunctionConfig[], force: boolean, say: (line: string) => void): Promise<void> {
  for (const fn of functions) {
    if (!fn.build) continue;
    if (!force && existsSync(fn.wasm)) continue;
    say(`building ${fn.name}: ${fn.build.command}`);
    const code = await new Promise<number>((resolve, reject) => {
      const child = spawn(withThisIsola(fn.build!.command), { cwd: fn.build!.cwd, shell: true, stdio: ['ignore', 2, 2] });
      child.once('error', reject);
      child.once('exit', (c, sig) => resolve(c ?? (sig ? 128 : 1)));
    });
    if (code !== 0) {
      throw new IsolaError('ERR_BUILD_FAILED', `build of "${fn.name}" failed: \`${fn.build.command}\` exited with code ${code}`, {
        user: true, hint: 'see the build output above',
      });
    }
    if (!existsSync(fn.wasm)) {
      throw new IsolaError('ERR_BUILD_FAILED', `build of "${fn.name}" succeeded but did not produce ${fn.wasm}`, { user: true, hint: 'make the build command write the `wasm` path' });
    }
  }
}

/** Quotes `arg` for a POSIX shell. */
function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_./:=@%+-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}

/**
 * A build command that starts with `isola ` runs this very isola (the same Node.js and CLI), so
 * `command = "isola build src/index.ts -o fn.wasm"` works whether or not `isola` is on PATH, and
 * builds with the SDK and componentize-js of the isola that serves it.
 */
export function withThisIsola(command: string): string {
  const m = /^\s*isola(\s|$)/.exec(command);
  if (!m) return command;
  const cli = fileURLToPath(new URL('./main.js', import.meta.url));
  return `${shellQuote(process.execPath)} ${shellQuote(cli)}${command.slice(m[0].length - m[1]!.length)}`;
}
