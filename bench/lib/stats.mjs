// Small statistics and formatting helpers for the benchmark tables.
export function median(xs) {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}
export const min = (xs) => Math.min(...xs.filter(Number.isFinite));
export const max = (xs) => Math.max(...xs.filter(Number.isFinite));
/**
 * { median, min, max, n, q1, q3 } of a list: q1/q3 are the medians of the lower and upper halves
 * (the middle half of the rounds lies between them).
 */
export function summary(xs) {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  const h = v.length >> 1;
  return { median: median(v), min: min(v), max: max(v), n: v.length, q1: median(v.slice(0, h)), q3: median(v.slice(v.length - h)) };
}
/** { p50, p99 } of a list: the value at index floor(q × n) of the sorted list (the last one at most). */
export function pct(xs) {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return { p50: at(0.5), p99: at(0.99) };
}

export function fmtInt(n) {
  return Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–';
}
export function fmtMs(us) {
  if (!Number.isFinite(us)) return '–';
  const ms = us / 1000;
  return ms >= 100 ? `${ms.toFixed(0)} ms` : ms >= 10 ? `${ms.toFixed(1)} ms` : `${ms.toFixed(2)} ms`;
}
export function fmtMiB(bytes) {
  return Number.isFinite(bytes) ? `${(bytes / 1048576).toFixed(0)} MiB` : '–';
}
/** A ratio: one decimal from 10 up, else `digits` decimals (three under 0.1). */
export function fmtRatio(r, digits = 2) {
  if (!Number.isFinite(r)) return '–';
  return r >= 10 ? `${r.toFixed(1)}×` : r >= 0.1 ? `${r.toFixed(digits)}×` : `${r.toFixed(3)}×`;
}
/** "median (min–max)" with a formatter; `middle`: also the middle half, "median (min–max; middle half q1–q3)". */
export function fmtRange(s, f, middle = false) {
  if (!s || !Number.isFinite(s.median)) return '–';
  if (s.n < 2) return f(s.median);
  const mid = middle && s.n >= 4 && Number.isFinite(s.q1) ? `; middle half ${f(s.q1)}–${f(s.q3)}` : '';
  return `${f(s.median)} (${f(s.min)}–${f(s.max)}${mid})`;
}
/** A Markdown table from a header row and rows of cells. */
export function mdTable(header, rows) {
  const line = (cells) => `| ${cells.join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}
