/**
 * A new user's loop, with the real CLI: `isola init`, then `isola dev --watch` (which builds the
 * function with `isola build` on first start), edit the source and see the new response; a request
 * in flight during the swap finishes on the old version; a broken edit prints the error and keeps
 * the last good version serving.
 *
 * The project lives at a fixed path under node_modules/.cache/isola-test (re-created each run), so
 * its two builds hit the shared component cache on later runs.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { TEST_CACHE } from './support/sdk-build.js';
import { CLI, startIsola, until, type Isola } from './support/server.js';

const WORK = join(TEST_CACHE, 'init');
const PROJECT = join(WORK, 'my-fn');
let isola: Isola | undefined;

afterAll(async () => {
  await isola?.stop();
});

/** Sends a POST whose body the test writes piece by piece; resolves the response text at the end. */
function openUpload(url: string): { write(text: string): void; end(): Promise<{ status: number; text: string }> } {
  let resolveResponse!: (r: { status: number; text: string }) => void;
  let rejectResponse!: (e: unknown) => void;
  const response = new Promise<{ status: number; text: string }>((res, rej) => {
    resolveResponse = res;
    rejectResponse = rej;
  });
  const req = request(url, { method: 'POST', headers: { 'content-type': 'text/plain' } }, (res) => {
    let text = '';
    res.setEncoding('utf8').on('data', (d: string) => (text += d));
    res.on('end', () => resolveResponse({ status: res.statusCode ?? 0, text }));
    res.on('error', rejectResponse);
  });
  req.on('error', rejectResponse);
  req.flushHeaders();
  return {
    write: (text) => void req.write(text),
    end: () => {
      req.end();
      return response;
    },
  };
}

describe('isola init + isola dev --watch', () => {
  it('scaffolds a project that builds and serves, rebuilds on save, and swaps without dropping requests', async () => {
    rmSync(WORK, { recursive: true, force: true });
    mkdirSync(WORK, { recursive: true });

    const init = spawnSync(process.execPath, [CLI, 'init', 'my-fn', '--port', '0'], { cwd: WORK, encoding: 'utf8' });
    expect(init.status).toBe(0);
    expect(init.stdout).toContain('created my-fn/');
    for (const file of ['src/index.ts', 'isola.toml', 'tsconfig.json', 'README.md', '.gitignore']) expect(existsSync(join(PROJECT, file))).toBe(true);
    expect(spawnSync(process.execPath, [CLI, 'init', 'my-fn'], { cwd: WORK, encoding: 'utf8' }).stderr).toMatch(/already exists and is not empty/);
    expect(spawnSync(process.execPath, [CLI, 'init', 'My_Fn'], { cwd: WORK, encoding: 'utf8' }).stderr).toMatch(/cannot be a function name/);

    // Version one: the scaffold plus a route whose request body the test controls.
    const source = join(PROJECT, 'src', 'index.ts');
    const scaffold = readFileSync(source, 'utf8');
    const v1 = scaffold.replace(
      'const url = new URL(request.url);',
      "const url = new URL(request.url);\n    if (url.pathname === '/slow') return new Response(`version one: ${await request.text()}`);",
    );
    expect(v1).not.toBe(scaffold);
    writeFileSync(source, v1);

    // `isola dev` builds the function first (its .wasm is missing): allow for a loaded machine.
    isola = await startIsola(join(PROJECT, 'isola.toml'), ['--watch'], {}, 180_000);
    const running = isola;
    expect(running.stderr()).toContain('building my-fn: isola build src/index.ts -o dist/my-fn.wasm');
    expect(await (await fetch(`${running.url}/hello`)).text()).toBe('Hello from my-fn, you asked for /hello\n');
    expect(await (await fetch(`${running.url}/json`)).json()).toEqual({ name: 'my-fn', method: 'GET', path: '/json' });
    await until(() => running.stderr().includes('watch: my-fn rebuilds when src/** change'), 5000, 'the watch line');

    // A request in flight on version one while version two is built and swapped in.
    const upload = openUpload(`${running.url}/slow`);
    upload.write('a');
    await new Promise((r) => setTimeout(r, 300));
    writeFileSync(source, v1.replace('you asked for', 'version two serves').replace('version one:', 'version two:'));
    await until(() => running.stderr().includes('watch: my-fn updated in'), 120_000, 'the rebuild');
    expect(running.stderr()).toContain('watch: src/index.ts changed; rebuilding my-fn');
    expect(await (await fetch(`${running.url}/hello`)).text()).toBe('Hello from my-fn, version two serves /hello\n');
    upload.write('b');
    expect(await upload.end()).toEqual({ status: 200, text: 'version one: ab' });

    // A broken edit: the error is printed with its file and line; version two keeps serving.
    writeFileSync(source, v1.replace('const url = new URL(request.url);', 'const url = new URL(request.url;'));
    await until(() => running.stderr().includes('still serving the last good version of my-fn'), 60_000, 'the failed build');
    expect(running.stderr()).toMatch(/src\/index\.ts:\d+:\d+: error: /);
    expect(await (await fetch(`${running.url}/hello`)).text()).toBe('Hello from my-fn, version two serves /hello\n');
    expect(running.logs().filter((l) => l.outcome !== undefined && l.outcome !== 'ok')).toEqual([]);
  }, 360_000);
});
