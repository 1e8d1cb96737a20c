import { mkdtempSync, readFileSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Script } from 'node:vm';
import { describe, expect, it } from 'vitest';
import { ensureGlueScript, GLUE_SCRIPT_FILE, isSealedScript } from './glue-script.js';

const GLUE = "const x = 41;\nexport function instantiate(getCoreModule, imports) {\n  return x + 1;\n}\n";

function artifactDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'isola-glue-script-'));
  writeFileSync(join(dir, 'guest.mjs'), GLUE);
  return dir;
}

describe('ensureGlueScript', () => {
  it('writes a sealed script that evaluates to the module\'s exports', async () => {
    const dir = artifactDir();
    expect(await ensureGlueScript(dir, 'guest.mjs')).toMatch(new RegExp(`/${GLUE_SCRIPT_FILE.replaceAll('.', '\\.')}$`));
    const text = readFileSync(join(dir, GLUE_SCRIPT_FILE), 'utf8');
    expect(isSealedScript(text)).toBe(true);
    const exports = (new Script(text).runInThisContext() as () => { instantiate: () => number })();
    expect(exports.instantiate()).toBe(42);
  });

  it.each([
    ['truncated', (f: string) => truncateSync(f, 40)],
    ['emptied', (f: string) => writeFileSync(f, '')],
    ['altered', (f: string) => writeFileSync(f, readFileSync(f, 'utf8').replace('x + 1', 'x + 2'))],
    ['unsealed (an older build)', (f: string) => writeFileSync(f, readFileSync(f, 'utf8').replace(/\n\/\/# isola-glue-script .*\n$/, '\n'))],
  ])('writes a %s script form again', async (_name, damage) => {
    const dir = artifactDir();
    await ensureGlueScript(dir, 'guest.mjs');
    const file = join(dir, GLUE_SCRIPT_FILE);
    const good = readFileSync(file, 'utf8');
    damage(file);
    expect(isSealedScript(readFileSync(file, 'utf8'))).toBe(false);
    await ensureGlueScript(dir, 'guest.mjs');
    expect(readFileSync(file, 'utf8')).toBe(good);
  });

  it('still notices damage to a script form it checked before (remembered by size and mtime)', async () => {
    const dir = artifactDir();
    await ensureGlueScript(dir, 'guest.mjs');
    const file = join(dir, GLUE_SCRIPT_FILE);
    const good = readFileSync(file, 'utf8');
    const old = new Date(Date.now() - 60_000);
    utimesSync(file, old, old); // written a while ago: the check is remembered
    await ensureGlueScript(dir, 'guest.mjs');
    await ensureGlueScript(dir, 'guest.mjs');
    truncateSync(file, 40);
    await ensureGlueScript(dir, 'guest.mjs');
    expect(readFileSync(file, 'utf8')).toBe(good);
  });
});
