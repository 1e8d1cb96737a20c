/**
 * Golden tests for isola.toml (Spin's tests/ui style): golden/valid/<case>.toml with the expected
 * resolved config and warnings in <case>.json; golden/invalid/<case>.toml with the expected
 * formatted diagnostics in <case>.err. Paths resolve against a fake base dir shown as /project.
 * Regenerate with `UPDATE_GOLDEN=1 npx vitest run src/config`, then review the diff.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import nodePath from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { IsolaError } from '../errors.js';
import { formatDiagnostics, loadConfig, parseConfig, type Diagnostic } from './load.js';

const GOLDEN = nodePath.join(nodePath.dirname(fileURLToPath(import.meta.url)), 'golden');
const UPDATE = process.env.UPDATE_GOLDEN === '1';
const BASE = nodePath.resolve('/project');
const opts = { path: nodePath.join(BASE, 'isola.toml'), baseDir: BASE };

/** Shows paths under BASE as /project/…, so the goldens read the same on every machine. */
function machineIndependent(value: unknown): string {
  const json = JSON.stringify(
    value,
    (_key, v: unknown) =>
      typeof v === 'string' && (v === BASE || v.startsWith(BASE + nodePath.sep))
        ? '/project' + v.slice(BASE.length).split(nodePath.sep).join('/')
        : v,
    2,
  );
  return json + '\n';
}

function cases(kind: 'valid' | 'invalid'): string[] {
  return readdirSync(nodePath.join(GOLDEN, kind))
    .filter((f) => f.endsWith('.toml'))
    .map((f) => f.slice(0, -'.toml'.length))
    .sort();
}

function expectGolden(file: string, actual: string): void {
  if (UPDATE) {
    writeFileSync(file, actual);
    return;
  }
  let expected: string;
  try {
    expected = readFileSync(file, 'utf8');
  } catch {
    throw new Error(`missing golden file ${file}; run with UPDATE_GOLDEN=1 and review it`);
  }
  expect(actual).toBe(expected);
}

describe('golden: valid configs', () => {
  for (const name of cases('valid')) {
    it(name, () => {
      const text = readFileSync(nodePath.join(GOLDEN, 'valid', `${name}.toml`), 'utf8');
      const { config, diagnostics } = parseConfig(text, opts);
      expect(diagnostics.filter((d) => d.severity === 'error')).toEqual([]);
      expect(config).not.toBeNull();
      expectGolden(nodePath.join(GOLDEN, 'valid', `${name}.json`), machineIndependent({ diagnostics, config }));
    });
  }
});

describe('golden: invalid configs', () => {
  for (const name of cases('invalid')) {
    it(name, () => {
      const text = readFileSync(nodePath.join(GOLDEN, 'invalid', `${name}.toml`), 'utf8');
      const { config, diagnostics } = parseConfig(text, opts);
      expect(config).toBeNull();
      expect(diagnostics.some((d) => d.severity === 'error')).toBe(true);
      expectGolden(nodePath.join(GOLDEN, 'invalid', `${name}.err`), formatDiagnostics(diagnostics, 'isola.toml', text) + '\n');
    });
  }
});

describe('parseConfig', () => {
  it('reports a TOML syntax error as one diagnostic with the parser position', () => {
    const { config, diagnostics } = parseConfig('[server]\nport = \n', opts);
    expect(config).toBeNull();
    expect(diagnostics).toHaveLength(1);
    expect(diagnostics[0]).toMatchObject({ severity: 'error', key: '', line: 2, column: 8 });
  });

  it('accepts a leading byte order mark', () => {
    const { config } = parseConfig('\uFEFF[server]\nport = 1\n', opts);
    expect(config?.server.port).toBe(1);
  });

  it('keeps "__proto__" and "constructor" as plain env names', () => {
    const text = '[[functions]]\nname = "a"\nwasm = "a.wasm"\nroutes = ["/"]\nenv = { "__proto__" = "x", constructor = "y" }\n';
    const { config } = parseConfig(text, opts);
    const env = config?.functions[0].env;
    expect(Object.keys(env ?? {})).toEqual(['__proto__', 'constructor']);
    expect(Object.getPrototypeOf(env)).toBe(Object.prototype);
  });

  it('copies opts.path and resolves against opts.baseDir', () => {
    const { config } = parseConfig('[server]\ndata_dir = "../state"\n', { path: null, baseDir: nodePath.resolve('/srv/app') });
    expect(config?.path).toBeNull();
    expect(config?.server.dataDir).toBe(nodePath.resolve('/srv/state'));
  });
});

describe('docs/config.md', () => {
  const doc = readFileSync(nodePath.join(GOLDEN, '..', '..', '..', 'docs', 'config.md'), 'utf8');
  const examples = [...doc.matchAll(/```toml\n([\s\S]*?)```/g)].map((m) => m[1]);

  it('has TOML examples', () => {
    expect(examples.length).toBeGreaterThanOrEqual(2);
  });

  it.each(examples.map((text, i) => [i, text]))('example %i is valid without warnings', (_i, text) => {
    const { config, diagnostics } = parseConfig(text, opts);
    expect(diagnostics).toEqual([]);
    expect(config).not.toBeNull();
  });
});

describe('formatDiagnostics', () => {
  const diags: Diagnostic[] = [
    { severity: 'error', key: 'a.b', line: 2, column: 3, message: 'bad' },
    { severity: 'warning', key: 'c', line: null, column: null, message: 'meh' },
  ];

  it('prints a header per diagnostic, the source line and a caret', () => {
    expect(formatDiagnostics(diags, 'x.toml', '[a]\n\t b = 1\n')).toBe(
      'x.toml:2:3: error: a.b: bad\n  2 | \t b = 1\n    | \t ^\nx.toml: warning: c: meh',
    );
  });

  it('prints headers only without the source', () => {
    expect(formatDiagnostics(diags, 'x.toml')).toBe('x.toml:2:3: error: a.b: bad\nx.toml: warning: c: meh');
  });

  it('prints nothing for no diagnostics', () => {
    expect(formatDiagnostics([], 'x.toml')).toBe('');
  });
});

describe('loadConfig', () => {
  const dir = mkdtempSync(nodePath.join(tmpdir(), 'isola-config-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function write(name: string, text: string): string {
    const file = nodePath.join(dir, name);
    mkdirSync(nodePath.dirname(file), { recursive: true });
    writeFileSync(file, text);
    return file;
  }

  function thrown(fn: () => unknown): IsolaError {
    try {
      fn();
    } catch (err) {
      expect(err).toBeInstanceOf(IsolaError);
      return err as IsolaError;
    }
    throw new Error('expected an IsolaError');
  }

  it('resolves paths against the file’s directory and reports warnings', () => {
    const file = write('app/isola.toml', '[[functions]]\nname = "a"\nwasm = "a.wasm"\nroutes = ["/"]\nabi = "wasi-http"\nargv = ["x"]\n');
    const warnings: Diagnostic[] = [];
    const config = loadConfig(file, { onWarnings: (w) => warnings.push(...w) });
    expect(config.path).toBe(file);
    expect(config.functions[0].wasm).toBe(nodePath.join(dir, 'app', 'a.wasm'));
    expect(config.server.dataDir).toBe(nodePath.join(dir, 'app', '.isola'));
    expect(warnings.map((w) => w.key)).toEqual(['functions[0].argv']);
  });

  it('throws ERR_CONFIG_NOT_FOUND for a missing file or a directory', () => {
    for (const target of [nodePath.join(dir, 'nope.toml'), dir]) {
      const err = thrown(() => loadConfig(target));
      expect(err.code).toBe('ERR_CONFIG_NOT_FOUND');
      expect(err.user).toBe(true);
    }
  });

  it('throws ERR_CONFIG_PARSE with line and column on a syntax error', () => {
    const err = thrown(() => loadConfig(write('syntax.toml', 'a = 1\nb = [1,\n')));
    expect(err.code).toBe('ERR_CONFIG_PARSE');
    expect(err.user).toBe(true);
    expect(err.details).toMatchObject({ line: 3, column: 1 });
    expect(err.message).toMatch(/syntax\.toml:3:1: error: invalid TOML: /);
  });

  it('throws ERR_CONFIG_INVALID with every diagnostic', () => {
    const err = thrown(() => loadConfig(write('bad.toml', '[server]\nport = -1\nhots = "x"\n')));
    expect(err.code).toBe('ERR_CONFIG_INVALID');
    expect(err.user).toBe(true);
    const diagnostics = (err.details as { diagnostics: Diagnostic[] }).diagnostics;
    expect(diagnostics.map((d) => [d.key, d.line])).toEqual([
      ['server.port', 2],
      ['server.hots', 3],
      ['functions', null],
    ]);
    expect(err.message).toContain('bad.toml:2:1: error: server.port: expected an integer from 0 to 65535');
  });
});
