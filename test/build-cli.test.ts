/**
 * `isola build`'s failures, as a user sees them: every one names the file and line, and none of
 * them gets as far as componentize-js (so each takes well under a second).
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI } from './support/server.js';

/** Writes `files` into a fresh project directory and runs `isola build <entry>` there. */
function build(files: Record<string, string>, entry = 'src/index.ts'): { status: number | null; stderr: string; stdout: string } {
  const dir = mkdtempSync(join(tmpdir(), 'isola-build-test-'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  try {
    const r = spawnSync(process.execPath, [CLI, 'build', entry, '-o', 'out.wasm'], { cwd: dir, encoding: 'utf8' });
    return { status: r.status, stderr: r.stderr, stdout: r.stdout };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('isola build errors', () => {
  it('rejects a Node.js built-in import, naming the module and its file:line:column', () => {
    const r = build({
      'src/index.ts': "import { helper } from './lib.ts';\nexport default { fetch: () => new Response(helper()) };\n",
      'src/lib.ts': "import { readFileSync } from 'node:fs';\nexport const helper = () => String(readFileSync);\n",
    });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('error[ERR_BUILD_FAILED]: cannot bundle src/index.ts');
    expect(r.stderr).toMatch(/src\/lib\.ts:1:30: error: "node:fs" is a Node\.js built-in module/);
    expect(r.stderr).toContain("import { readFileSync } from 'node:fs';");
  });

  it('rejects bare built-in names too (fs, net, child_process)', () => {
    const r = build({ 'src/index.ts': "import net from 'net';\nexport default { fetch: () => new Response(String(net)) };\n" });
    expect(r.stderr).toMatch(/src\/index\.ts:1:17: error: "net" is a Node\.js built-in module/);
  });

  it('reports a TypeScript syntax error with its position and a caret', () => {
    const r = build({ 'src/index.ts': 'export default {\n  fetch(): Response {\n    const x: number = ;\n  },\n};\n' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/src\/index\.ts:3:23: error: Unexpected ";"/);
    expect(r.stderr).toMatch(/\n\s+\^/);
  });

  it('reports an unresolvable import', () => {
    const r = build({ 'src/index.ts': "import x from 'no-such-package';\nexport default x;\n" });
    expect(r.stderr).toMatch(/src\/index\.ts:1:15: error: Could not resolve "no-such-package"/);
  });

  it('rejects a module without a default export before building, saying what to export', () => {
    const r = build({ 'src/index.ts': 'export const handler = { fetch: () => new Response("x") };\n' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/src\/index\.ts: error: no default export\. Export the fetch handler: `export default \{ async fetch\(request, env, ctx\)/);
    expect(r.stderr).toContain('(found: handler)');
  });

  it('reports a missing entry', () => {
    const r = build({}, 'src/missing.ts');
    expect(r.stderr).toContain('cannot build src/missing.ts: no such file');
  });
});
