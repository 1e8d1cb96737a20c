import { describe, expect, it } from 'vitest';
import { directHostCalls, stripDebugLog } from './glue.js';

describe('stripDebugLog', () => {
  it('removes call statements with literal arguments', () => {
    const src = "function f(a) {\n  _debugLog('[x] enter', { a, b: [1, 2] });\n  return g(a);\n  _debugLog(\"done\");\n}";
    const r = stripDebugLog(src);
    expect(r.removed).toBe(2);
    expect(r.code).toBe('function f(a) {\n  \n  return g(a);\n  \n}');
  });

  it('keeps the definition, calls inside expressions, and calls with side effects', () => {
    const src = [
      'const _debugLog = (...args) => { console.debug(...args); };',
      'x = y || _debugLog("a");',
      '_debugLog("n", { i: i++ });',
      '_debugLog(`t ${v}`);',
    ].join('\n');
    const r = stripDebugLog(src);
    expect(r.removed).toBe(0);
    expect(r.code).toBe(src);
  });

  it('handles strings containing parentheses and braces', () => {
    const r = stripDebugLog("a();\n_debugLog('(unbalanced {', { s: \"})\" });\nb();");
    expect(r.code).toBe('a();\n\nb();');
  });
});

describe('directHostCalls', () => {
  it('leaves glue it does not recognise unchanged', () => {
    const src = 'export function instantiate() { const _trampoline1 = function() { return 1; }; }';
    expect(directHostCalls(src)).toEqual({ code: src, changed: false });
  });
});
