// Summarises V8 .cpuprofile files (node --cpu-prof): self time per function and per category, and
// inclusive time of chosen functions. Used by bench/profile.mjs.
import { readFileSync } from 'node:fs';

/** Loads a profile and computes self time (µs) per node from samples/timeDeltas. */
export function loadProfile(file) {
  const p = typeof file === 'string' ? JSON.parse(readFileSync(file, 'utf8')) : file.parsed;
  const byId = new Map(p.nodes.map((n) => [n.id, { ...n, self: 0 }]));
  const parent = new Map();
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i + 1] ?? 0; // the delta after a sample is the time it stood for
    byId.get(p.samples[i]).self += dt;
  }
  const total = p.endTime - p.startTime;
  return { nodes: byId, parent, total };
}

/** Classifies a call frame into a coarse category (first match wins). */
export function category(cf, rules) {
  const { functionName: fn, url } = cf;
  if (!url) {
    if (fn === '(idle)') return 'idle';
    if (fn === '(garbage collector)') return 'GC';
    if (fn === '(program)') return 'V8/native (program)';
    if (fn === '(root)') return 'root';
  }
  for (const [name, test] of rules) if (test(fn, url)) return name;
  if (url.startsWith('node:')) return `node: ${url.slice(5).replace(/^internal\//, '')}`;
  if (!url) return `native: ${fn || '(anonymous)'}`;
  const m = url.match(/node_modules\/((?:@[^/]+\/)?[^/]+)/);
  if (m) return `npm: ${m[1]}`;
  return `other: ${url.replace(/^file:\/\/.*?\/(dist|src|bench)\//, '$1/')}`;
}

/** Sums self time by category; returns [[category, µs]] sorted, and the busy (non-idle) total. */
export function byCategory(prof, rules) {
  const sums = new Map();
  for (const n of prof.nodes.values()) {
    if (!n.self) continue;
    const c = category(n.callFrame, rules);
    sums.set(c, (sums.get(c) ?? 0) + n.self);
  }
  const busy = [...sums].filter(([c]) => c !== 'idle').reduce((a, [, v]) => a + v, 0);
  return { rows: [...sums].sort((a, b) => b[1] - a[1]), busy, idle: sums.get('idle') ?? 0 };
}

/** Top functions by self time: [[`fn url:line`, µs]]. */
export function topFunctions(prof, n = 25) {
  const sums = new Map();
  for (const node of prof.nodes.values()) {
    if (!node.self) continue;
    const cf = node.callFrame;
    const key = `${cf.functionName || '(anonymous)'} ${cf.url.replace(/^file:\/\/.*?\/(node_modules|dist)\//, '$1/')}:${cf.lineNumber + 1}`;
    sums.set(key, (sums.get(key) ?? 0) + node.self);
  }
  return [...sums].sort((a, b) => b[1] - a[1]).slice(0, n);
}

/**
 * Inclusive time of every frame matching `test(callFrame)` (a frame nested inside another match
 * is counted once, at the outermost match).
 */
export function inclusive(prof, test) {
  let sum = 0;
  for (const node of prof.nodes.values()) {
    if (!node.self) continue;
    for (let id = node.id; id !== undefined; id = prof.parent.get(id)) {
      if (test(prof.nodes.get(id).callFrame)) {
        // Count only when no outer ancestor also matches.
        let outer = false;
        for (let up = prof.parent.get(id); up !== undefined; up = prof.parent.get(up)) if (test(prof.nodes.get(up).callFrame)) outer = true;
        if (!outer) sum += node.self;
        break;
      }
    }
  }
  return sum;
}
