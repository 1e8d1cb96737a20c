/**
 * Bundles a function's entry (TypeScript or JavaScript) into the one ES module componentize-js
 * builds: esbuild, ESM, one file, the SDK inlined, preceded by a generated entry that exports
 * wasi:http's `incomingHandler` through the SDK's adapter (sdk/src/adapter.ts).
 *
 * - `wasi:*` imports stay imports (componentize-js binds them), with their version rewritten to
 *   the engine's (`wasi:http/types@0.2.3` and `wasi:http/types` both become `…@0.2.10`).
 * - `@isola/sdk` always resolves to this installation's SDK, so a guest needs no npm install.
 * - Node.js built-ins (`fs`, `node:net`, …) are errors naming the import and its file:line: the
 *   sandbox offers Web APIs only.
 * - Packages resolve with the `workerd`, `worker` and `browser` conditions (the ones wrangler
 *   uses), so libraries pick their Web builds; `process.env.NODE_ENV` is "production".
 *
 * esbuild strips TypeScript types without checking them (as wrangler does); run `tsc --noEmit`
 * to type-check.
 */
import { builtinModules } from 'node:module';
import { readFile } from 'node:fs/promises';
import { dirname, join, relative, resolve, sep } from 'node:path';
import type { Message, Plugin } from 'esbuild';
import { ISOLA_ROOT } from './wit.js';

/** The SDK package's source directory (sdk/src in the isola installation). */
export const SDK_SRC = join(ISOLA_ROOT, 'sdk', 'src');

/** A bundling failure: each message formatted "file:line:column: error: text" plus the source line. */
export class BundleError extends Error {
  constructor(readonly messages: string[]) {
    super(messages.join('\n'));
    this.name = 'BundleError';
  }
}

/** What {@link bundle} returns. */
export interface Bundle {
  /** The bundled ES module's text. */
  code: string;
  /** Absolute paths of every file that went into the bundle (the build's real inputs). */
  inputs: string[];
  /** esbuild's warnings, formatted like errors. */
  warnings: string[];
}

const NODE_BUILTINS = new Set(builtinModules.filter((m) => !m.startsWith('_')));

/** Whether `specifier` names a Node.js built-in module (`fs`, `fs/promises`, `node:…`). */
export function isNodeBuiltin(specifier: string): boolean {
  return specifier.startsWith('node:') || NODE_BUILTINS.has(specifier);
}

/**
 * Formats an esbuild message as "file:line:column: kind: text", then the source line and a caret;
 * esbuild's file names (relative to `workingDir`) are shown relative to `cwd`.
 */
export function formatMessage(m: Message, kind: 'error' | 'warning', cwd: string, workingDir: string): string {
  const notes = m.notes.filter((n) => n.text).map((n) => `\n  note: ${n.text}`).join('');
  if (!m.location) return `${kind}: ${m.text}${notes}`;
  const { file, line, column, lineText, length } = m.location;
  const shown = file.includes(':') && !file.startsWith('/') ? file : relativeOrAbsolute(resolve(workingDir, file), cwd);
  const caret = `${' '.repeat(column)}^${'~'.repeat(Math.max(0, length - 1))}`;
  return `${shown}:${line}:${column + 1}: ${kind}: ${m.text}\n  ${lineText}\n  ${caret}${notes}`;
}

function relativeOrAbsolute(file: string, cwd: string): string {
  const rel = relative(cwd, file);
  return rel.startsWith('..') ? file : rel;
}

/** The esbuild plugin for `wasi:*` imports, the SDK, and Node built-ins (see the module comment). */
function isolaPlugin(wasiVersion: string): Plugin {
  return {
    name: 'isola',
    setup(build) {
      build.onResolve({ filter: /^wasi:/ }, (args) => {
        const m = /^(wasi:[a-z0-9-]+\/[a-z0-9-]+)(@0\.2\.\d+)?$/.exec(args.path);
        if (!m) {
          return { errors: [{ text: `"${args.path}" is not a WASI 0.2 interface this build offers (expected e.g. "wasi:http/types@0.2.x")` }] };
        }
        return { path: `${m[1]}@${wasiVersion}`, external: true };
      });
      build.onResolve({ filter: /^@isola\/sdk(\/adapter)?$/ }, (args) => ({
        path: join(SDK_SRC, args.path.endsWith('/adapter') ? 'adapter.ts' : 'index.ts'),
      }));
      build.onResolve({ filter: /^[a-z_:/0-9]+$/ }, async (args) => {
        if (!isNodeBuiltin(args.path) || (args.pluginData as { probing?: boolean } | undefined)?.probing) return undefined;
        if (!args.path.startsWith('node:')) {
          // An npm package of the same name (a Web polyfill such as `events` or `buffer`) is fine.
          const found = await build.resolve(args.path, { kind: args.kind, resolveDir: args.resolveDir, importer: args.importer, pluginData: { probing: true } });
          if (found.errors.length === 0 && found.path !== '' && !found.external) return { path: found.path, sideEffects: found.sideEffects };
        }
        return {
          errors: [
            {
              text:
                `"${args.path}" is a Node.js built-in module, which isola functions cannot use: they run in a WebAssembly ` +
                'sandbox that offers Web APIs (fetch, Request/Response, streams, URL, TextEncoder, crypto, console) and no fs, net or process',
            },
          ],
        };
      });
    },
  };
}

/**
 * Bundles `entry` with the adapter in front, for a guest built against wasi `wasiVersion`.
 *
 * @param entry absolute path of the function's entry module (.ts, .js, .mjs, .tsx, .jsx)
 * @param wasiVersion the engine's wasi version, e.g. "0.2.10"
 * @param cwd the directory file names in messages are shown relative to
 * @throws BundleError listing every problem with its file:line (syntax, unresolved or Node-only
 *   imports)
 */
export async function bundle(entry: string, wasiVersion: string, cwd = process.cwd()): Promise<Bundle> {
  const esbuild = await import('esbuild');
  const entryPath = resolve(entry);
  const workingDir = dirname(entryPath);
  const contents = [
    `import { adapt } from ${JSON.stringify(join(SDK_SRC, 'adapter.ts'))};`,
    `import * as guest from ${JSON.stringify(entryPath)};`,
    `export const incomingHandler = adapt(guest, ${JSON.stringify(relativeOrAbsolute(entryPath, workingDir))});`,
    '',
  ].join('\n');
  let result;
  try {
    result = await esbuild.build({
      stdin: { contents, resolveDir: workingDir, sourcefile: 'isola-entry.js', loader: 'js' },
      absWorkingDir: workingDir,
      bundle: true,
      write: false,
      format: 'esm',
      platform: 'browser',
      conditions: ['workerd', 'worker', 'browser'],
      target: 'es2022',
      define: { 'process.env.NODE_ENV': '"production"' },
      metafile: true,
      logLevel: 'silent',
      plugins: [isolaPlugin(wasiVersion)],
    });
  } catch (err) {
    const failure = err as { errors?: Message[] };
    if (!Array.isArray(failure.errors)) throw err;
    throw new BundleError(failure.errors.map((m) => formatMessage(m, 'error', cwd, workingDir)));
  }
  const code = result.outputFiles[0]!.text;
  const inputs = Object.keys(result.metafile.inputs)
    .filter((p) => !p.startsWith('<stdin>') && !p.includes(':'))
    .map((p) => resolve(workingDir, p));
  await checkExports(esbuild, entryPath, inputs, workingDir, cwd);
  return { code, inputs, warnings: result.warnings.map((m) => formatMessage(m, 'warning', cwd, workingDir)) };
}

/**
 * Fails fast, before the 10–25 s componentize step, when the entry has neither a default export
 * nor an `incomingHandler` export (`export *` never re-exports a default, so the entry's own
 * exports decide) and none of the function's own files (outside node_modules and the SDK) calls
 * `addEventListener` (service-worker syntax). Whether what it found is a usable handler is
 * checked when the module loads, at build time.
 */
async function checkExports(esbuild: typeof import('esbuild'), entryPath: string, inputs: string[], workingDir: string, cwd: string): Promise<void> {
  const result = await esbuild.build({
    entryPoints: [entryPath], absWorkingDir: workingDir, bundle: true, external: ['*'], write: false,
    format: 'esm', platform: 'neutral', metafile: true, logLevel: 'silent', outdir: 'out',
  });
  const exports = Object.values(result.metafile.outputs).flatMap((o) => o.exports);
  if (exports.includes('default') || exports.includes('incomingHandler')) return;
  const own = inputs.filter((p) => !p.startsWith(SDK_SRC + sep) && !p.split(sep).includes('node_modules'));
  for (const file of own) {
    if ((await readFile(file, 'utf8').catch(() => '')).includes('addEventListener(')) return;
  }
  const shown = relativeOrAbsolute(entryPath, cwd);
  throw new BundleError([
    `${shown}: error: no default export. Export the fetch handler: \`export default { async fetch(request, env, ctx) { … } }\`, ` +
      `a Hono app (\`export default app\`), \`export default function (request, env, ctx) { … }\`, or register a listener with \`addEventListener('fetch', …)\`` +
      (exports.length > 0 ? ` (found: ${exports.join(', ')})` : ''),
  ]);
}
