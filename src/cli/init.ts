/**
 * `isola init <dir>`: scaffold a function (like `wrangler init` or `spin new`) that builds and
 * runs with two commands: `cd <dir>` and `isola dev --watch`.
 *
 * Writes src/index.ts (a Workers-style handler), isola.toml (build command, watch globs, route,
 * an env var), tsconfig.json (types for @isola/sdk and the Web APIs), README.md and .gitignore.
 * Refuses to write into a directory that exists and is not empty.
 */
import { existsSync, readdirSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { basename, delimiter, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { FUNCTION_NAME_RE } from '../config/schema.js';
import { IsolaError } from '../errors.js';
import { SDK_SRC } from '../build/bundle.js';

/** Options of `isola init`. */
export interface InitOptions {
  port?: string;
}

/** Registers `isola init` on the program. */
export function registerInit(program: Command): void {
  program
    .command('init')
    .description('create a new function (TypeScript, Workers-style) in a new directory')
    .argument('<dir>', 'directory to create; its name is the function\'s name')
    .option('-p, --port <n>', 'port the generated isola.toml serves on', '8787')
    .addHelpText('after', '\nExample:\n  isola init hello && cd hello && isola dev --watch')
    .action((dir: string, opts: InitOptions) => init(dir, opts));
}

/** The files of a new function called `name`, by relative path. */
export function scaffold(name: string, port: number, sdkTypes: string): Record<string, string> {
  return {
    'src/index.ts': `/**
 * ${name}: an isola function. \`fetch\` is called for every request, as on Cloudflare Workers.
 * Edit it while \`isola dev --watch\` runs: the function is rebuilt and swapped in on save.
 */
import type { Env, ExecutionContext } from '@isola/sdk';

export default {
  async fetch(request: Request, env: Env, ctx: ExecutionContext): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === '/json') {
      return Response.json({ name: ${JSON.stringify(name)}, method: request.method, path: url.pathname });
    }
    return new Response(\`\${env.GREETING}, you asked for \${url.pathname}\\n\`, {
      headers: { 'content-type': 'text/plain; charset=utf-8' },
    });
  },
};
`,
    'isola.toml': `# isola configuration; every key is described in isola's docs/config.md.
[server]
host = "127.0.0.1"
port = ${port}

[[functions]]
name = ${JSON.stringify(name)}
wasm = "dist/${name}.wasm"
routes = ["/*"]
env = { GREETING = "Hello from ${name}" }

# \`isola dev\` runs the command when the .wasm is missing (or always with --build);
# \`isola dev --watch\` runs it again whenever a watched file changes.
[functions.build]
command = "isola build src/index.ts -o dist/${name}.wasm"
watch = ["src/**"]
`,
    'tsconfig.json': `${JSON.stringify(
      {
        compilerOptions: {
          target: 'ES2022',
          module: 'ESNext',
          moduleResolution: 'Bundler',
          lib: ['ES2023', 'DOM', 'DOM.Iterable'],
          types: [],
          strict: true,
          noEmit: true,
          skipLibCheck: true,
          allowImportingTsExtensions: true,
          isolatedModules: true,
          paths: { '@isola/sdk': [sdkTypes] },
        },
        include: ['src'],
      },
      null,
      2,
    )}\n`,
    'README.md': `# ${name}

An isola edge function, written Workers-style in TypeScript.

\`\`\`sh
isola dev --watch          # builds src/index.ts (about 15 s the first time), serves http://127.0.0.1:${port}
curl http://127.0.0.1:${port}/hello
curl http://127.0.0.1:${port}/json
\`\`\`

Edit \`src/index.ts\` and save: \`isola dev --watch\` rebuilds the function and swaps it in without
dropping requests; if the build fails, the last good version keeps serving and the error is printed.

- \`export default { fetch(request, env, ctx) }\` answers every request; \`env\` holds the
  variables of \`env = { … }\` in isola.toml. A Hono app (\`export default app\`) works as is.
- Web APIs: Request, Response, Headers, streams, URL, TextEncoder/TextDecoder, crypto, console
  (its output goes to isola's log). No Node.js modules (\`fs\`, \`net\`, …); no outbound fetch yet.
- \`isola build src/index.ts -o dist/${name}.wasm\` builds the component alone; it is a standard
  \`wasi:http\` component that other wasi:http hosts run too.
- \`npx tsc\` type-checks (the build itself does not).
`,
    '.gitignore': 'dist/\n.isola/\nnode_modules/\n',
  };
}

async function init(dir: string, opts: InitOptions): Promise<void> {
  const target = resolve(dir);
  const name = basename(target);
  if (!FUNCTION_NAME_RE.test(name)) {
    const lower = name.toLowerCase().replace(/[^a-z0-9-]/g, '-');
    throw new IsolaError('ERR_CONFIG_INVALID', `"${name}" cannot be a function name: use 1 to 63 lowercase letters, digits and "-", starting with a letter`, {
      user: true, hint: FUNCTION_NAME_RE.test(lower) ? `try \`isola init ${lower}\`` : 'pick a name such as `my-function`',
    });
  }
  const port = Number(opts.port ?? '8787');
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new IsolaError('ERR_CONFIG_INVALID', `--port must be 0..65535, got ${opts.port}`, { user: true });
  if (existsSync(target) && readdirSync(target).length > 0) {
    throw new IsolaError('ERR_CONFIG_INVALID', `${dir} already exists and is not empty`, { user: true, hint: 'choose a new directory name' });
  }
  const sdkIndex = join(SDK_SRC, 'index.ts');
  const rel = relative(target, sdkIndex);
  const sdkTypes = isAbsolute(rel) || rel.split(/[\\/]/).filter((s) => s === '..').length > 4 ? sdkIndex : rel;
  const files = scaffold(name, port, sdkTypes);
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(target, path, '..'), { recursive: true });
    await writeFile(join(target, path), text);
  }
  const shown = relative(process.cwd(), target) || '.';
  const invoked = onPath('isola') ? 'isola' : `node ${fileURLToPath(new URL('./main.js', import.meta.url))}`;
  process.stdout.write(
    [
      `created ${shown}/: ${Object.keys(files).join(', ')}`,
      '',
      'next:',
      `  cd ${shown}`,
      `  ${invoked} dev --watch     # builds, then serves http://127.0.0.1:${port}; edit src/index.ts and save to update`,
      '',
    ].join('\n'),
  );
}

/** Whether an executable called `name` is on PATH (so the printed next steps work as typed). */
function onPath(name: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => dir !== '' && existsSync(join(dir, name)));
}
