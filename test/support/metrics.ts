/**
 * Scrapes a `/metrics` endpoint and parses it with a real Prometheus text-format parser
 * (parse-prometheus-text-format, prom2json's output shape), for tests that check counters moved by
 * exact amounts.
 */
import parsePrometheusTextFormat from 'parse-prometheus-text-format';

interface Family {
  name: string;
  type: string;
  metrics: Array<{ labels?: Record<string, string>; value?: string; count?: string; sum?: string; buckets?: Record<string, string> }>;
}

/** A parsed scrape: look up a sample by family name and (a subset of) its labels. */
export class Scrape {
  readonly families: Family[];
  /** The same text with histogram families untyped, so `<name>_count` / `_sum` are plain families. */
  private readonly flat: Family[];

  constructor(readonly text: string) {
    this.families = parsePrometheusTextFormat(text) as Family[];
    // parse-prometheus-text-format merges a histogram's samples into one object and drops their
    // labels when there is more than one label set; read labelled histograms through their
    // `_count` and `_sum` series instead (the exposition is the same text).
    this.flat = parsePrometheusTextFormat(text.replace(/^# (TYPE|HELP) \S+ .*$/gm, '')) as Family[];
  }

  private find(name: string, labels: Record<string, string>) {
    const samples = this.families.filter((f) => f.name === name).flatMap((f) => f.metrics);
    return samples.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));
  }

  /** The value of a counter or gauge sample, 0 when absent. */
  value(name: string, labels: Record<string, string> = {}): number {
    const m = this.find(name, labels);
    return m?.value === undefined ? 0 : Number(m.value);
  }

  /** A histogram's observation count (its `<name>_count` series), 0 when absent. */
  count(name: string, labels: Record<string, string> = {}): number {
    const samples = this.flat.filter((f) => f.name === `${name}_count`).flatMap((f) => f.metrics);
    const m = samples.find((s) => Object.entries(labels).every(([k, v]) => s.labels?.[k] === v));
    return m?.value === undefined ? 0 : Number(m.value);
  }

  /** The family's type (counter, gauge, histogram, summary), or undefined when it is not exposed. */
  type(name: string): string | undefined {
    return this.families.find((f) => f.name === name)?.type;
  }
}

/** GETs `url` (with a bearer token when given) and parses the exposition. */
export async function scrape(url: string, token?: string): Promise<Scrape> {
  const res = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
  if (res.status !== 200) throw new Error(`GET ${url}: ${res.status} ${await res.text()}`);
  const text = await res.text();
  return new Scrape(text);
}
