/**
 * Prometheus metrics (prom-client), served at `/metrics` on the admin listener. The reference table
 * (every name, type, label and meaning) is in docs/metrics.md.
 *
 * - Per-request data go to a `FunctionMetrics` kept on the deployment (shared by its versions):
 *   plain numbers that prom-client counters read in their `collect()` at scrape time, plus one
 *   histogram observation (duration) on a label set resolved once. A request builds no label
 *   object and hashes nothing for the counters.
 * - State (sandboxes, queues, scheduler) is read from the pools', the sandbox manager's and the
 *   scheduler's snapshots when Prometheus scrapes (gauges with `collect()`), costing nothing between
 *   scrapes.
 * - Label values come from bounded sets only: tenant and function names (which the operator or the
 *   control plane created), status classes, and fixed reason words. Paths, hosts and other request
 *   input never become labels.
 * - Node's process metrics (`process_*`, `nodejs_*`) are included.
 */
import { createRequire } from 'node:module';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { TailHub } from './tail.js';

/** Why isola refused or stopped a request (the `reason` label of `isola_rejections_total`). */
export type RejectReason =
  | 'budget' | 'queue_full' | 'queue_timeout' | 'slot_timeout' | 'unavailable'
  | 'request_body' | 'response_body' | 'cpu' | 'wall_time' | 'memory' | 'fuel';

/** How a guest failed other than by trapping (the `kind` label of `isola_guest_errors_total`). */
export type GuestErrorKind = 'exit' | 'no_response' | 'error_response' | 'bad_response' | 'crashed';

/** A pool as the metrics see it (structurally FunctionPool's snapshot). */
export interface PoolSample {
  idle: number;
  busy: number;
  starting: number;
  recycling: number;
  waiting: number;
  /** Share of recent requests that blocked in host calls, 0–1. */
  blockingShare?: number;
  /** Requests queued on a busy sandbox behind others (pipelining), since the deployment started. */
  pipelined?: number;
}

/** The live state read at scrape time; every part is optional. */
export interface MetricsSources {
  /** Every live function with its pool's state. */
  pools?(): Iterable<{ tenant: string; name: string; stats: PoolSample }>;
  /** The global sandbox pool (SandboxManager.snapshot()). */
  manager?(): { live: number; blank: number; starting: number; memoryBytes: number; maxSandboxes: number; maxMemoryBytes: number; threadStarts?: number };
  /** Per-tenant scheduler state (Scheduler.snapshot()). */
  scheduler?(): Record<string, { running: number; waiting: number; budgetTokensMs: number | null }>;
  /** Run slots of the scheduler. */
  slots?: number;
  tail?: TailHub;
}

const STATUS_CLASSES = ['none', '1xx', '2xx', '3xx', '4xx', '5xx'] as const;
const DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const QUEUE_BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
const START_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

type FnLabels = 'tenant' | 'function';

/** The package version, for `isola_build_info`. */
function packageVersion(): string {
  try {
    return (createRequire(import.meta.url)('../../package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/**
 * One function's request metrics. The request path only adds to plain numbers here (no label
 * objects, no hashing, no allocation); the counters read them when Prometheus scrapes. The one
 * histogram observed per request (duration) has its label set resolved once, at creation.
 * Shared by a function's versions (keyed by the deployment key), so totals survive redeploys.
 */
export class FunctionMetrics {
  /** Requests by status class: index 0 = none (client left first), 1..5 = 1xx..5xx. */
  readonly byClass = new Float64Array(6);
  cpuSeconds = 0;
  fuel = 0;
  requestBytes = 0;
  responseBytes = 0;
  traps = 0;
  clientAborts = 0;
  outputDroppedBytes = 0;
  coldStarts = 0;
  recycles = 0;
  readonly rejections: Partial<Record<RejectReason, number>> = {};
  readonly guestErrors: Partial<Record<GuestErrorKind, number>> = {};
  readonly evictions: { idle: number; lru: number; surplus: number } = { idle: 0, lru: 0, surplus: 0 };
  /** `{tenant, function}`, made once for the scrape-time counters. */
  readonly labels: { tenant: string; function: string };
  private readonly duration: Histogram.Internal<FnLabels>;
  private queueWait: Histogram.Internal<FnLabels> | null = null;

  constructor(private readonly m: Metrics, readonly tenant: string, readonly name: string) {
    this.labels = { tenant, function: name };
    this.duration = m.duration.labels(tenant, name);
  }

  /**
   * Counts one request that reached this function, whatever its end: `status` 0 when no status was
   * sent (the client left first). `seconds` is the wall time; the rest may be 0.
   */
  request(status: number, seconds: number, cpuNs: number, requestBytes: number, responseBytes: number, fuel: number | undefined): void {
    this.byClass[status >= 100 && status < 600 ? (status / 100) | 0 : 0]!++;
    this.duration.observe(seconds);
    this.cpuSeconds += cpuNs / 1e9;
    this.requestBytes += requestBytes;
    this.responseBytes += responseBytes;
    if (fuel !== undefined) this.fuel += fuel;
  }

  /** A request waited `ms` for a sandbox (the slow path only). */
  queued(ms: number): void {
    (this.queueWait ??= this.m.queueWait.labels(this.tenant, this.name)).observe(ms / 1000);
  }

  /** isola refused or stopped a request. */
  rejected(reason: RejectReason): void {
    this.rejections[reason] = (this.rejections[reason] ?? 0) + 1;
  }

  /** The guest trapped (not at a limit). */
  trapped(): void {
    this.traps++;
  }

  /** The guest failed another way. */
  guestError(kind: GuestErrorKind): void {
    this.guestErrors[kind] = (this.guestErrors[kind] ?? 0) + 1;
  }

  /** The client went away before the response was complete. */
  clientAborted(): void {
    this.clientAborts++;
  }

  /** Guest output over the per-request cap was dropped. */
  outputDropped(bytes: number): void {
    this.outputDroppedBytes += bytes;
  }

  /** A pool event (FunctionPool's `events` callback). Rejections are counted by the request path. */
  poolEvent(e: { type: 'start'; cold: boolean; fromBlank: boolean; ms: number } | { type: 'evict'; reason: 'idle' | 'lru' | 'surplus' } | { type: 'recycle' } | { type: 'reject'; reason: 'queue-full' | 'queue-timeout' }): void {
    if (e.type === 'start') {
      if (e.cold) this.coldStarts++;
      this.m.sandboxStart.labels(e.fromBlank ? 'blank' : 'new').observe(e.ms / 1000);
    } else if (e.type === 'evict') this.evictions[e.reason]++;
    else if (e.type === 'recycle') this.recycles++;
  }

  /** @internal Removes this function's histogram series (it was deleted; counters follow at the next scrape). */
  remove(): void {
    this.m.duration.remove(this.tenant, this.name);
    this.m.queueWait.remove(this.tenant, this.name);
  }
}

/** The process's metrics: a prom-client registry with isola's metrics and Node's. */
export class Metrics {
  readonly registry = new Registry();
  private readonly functions = new Map<string, FunctionMetrics>();
  private sources: MetricsSources = {};

  /** @internal */ readonly requests: Counter<'tenant' | 'function' | 'status_class'>;
  /** @internal */ readonly unrouted: Counter;
  /** @internal */ readonly duration: Histogram<FnLabels>;
  /** @internal */ readonly queueWait: Histogram<FnLabels>;
  /** @internal */ readonly sandboxStart: Histogram<'source'>;

  /** @param opts.processMetrics include Node's default process metrics (default true). */
  constructor(opts: { processMetrics?: boolean } = {}) {
    const r = [this.registry];
    const fn = ['tenant', 'function'] as const;
    const self = this;
    /** A counter read from every function's FunctionMetrics at scrape time. */
    const fnCounter = <L extends string>(name: string, help: string, extra: L[], read: (f: FunctionMetrics, add: (v: number, more?: Record<L, string>) => void) => void): Counter<FnLabels | L> =>
      new Counter<FnLabels | L>({
        name, help, labelNames: ['tenant', 'function', ...extra], registers: r,
        collect() {
          this.reset();
          for (const f of self.functions.values()) {
            read(f, (v, more) => {
              if (v > 0) this.inc({ ...f.labels, ...more } as Partial<Record<FnLabels | L, string>>, v);
            });
          }
        },
      });
    this.requests = fnCounter('isola_requests_total', 'Requests routed to a function, by status class ("none": the client left before a status was sent)', ['status_class'], (f, add) => {
      for (let i = 0; i < STATUS_CLASSES.length; i++) add(f.byClass[i]!, { status_class: STATUS_CLASSES[i]! });
    });
    this.unrouted = new Counter({ name: 'isola_unrouted_requests_total', help: 'Requests no route matched (404 ERR_ROUTE_NOT_FOUND)', registers: r });
    this.duration = new Histogram({ name: 'isola_request_duration_seconds', help: 'Wall time from the request\'s arrival until the guest was done with it, seconds', labelNames: fn, buckets: DURATION_BUCKETS, registers: r });
    this.queueWait = new Histogram({ name: 'isola_queue_wait_seconds', help: 'Time requests that found no idle sandbox waited for one, seconds', labelNames: fn, buckets: QUEUE_BUCKETS, registers: r });
    fnCounter('isola_cpu_seconds_total', 'CPU time of sandbox threads spent on requests, seconds', [], (f, add) => add(f.cpuSeconds));
    fnCounter('isola_fuel_consumed_total', 'Fuel used by metered functions (metering = "fuel")', [], (f, add) => add(f.fuel));
    fnCounter('isola_request_body_bytes_total', 'Request body bytes passed to guests', [], (f, add) => add(f.requestBytes));
    fnCounter('isola_response_body_bytes_total', 'Response body bytes produced by guests', [], (f, add) => add(f.responseBytes));
    fnCounter('isola_rejections_total', 'Requests isola refused (budget, queue_full, queue_timeout, slot_timeout, unavailable) or stopped at a limit (request_body, response_body, cpu, wall_time, memory, fuel)', ['reason'], (f, add) => {
      for (const [reason, n] of Object.entries(f.rejections)) add(n, { reason });
    });
    fnCounter('isola_guest_traps_total', 'Requests on which the guest trapped (traps at a limit count as rejections instead)', [], (f, add) => add(f.traps));
    fnCounter('isola_guest_errors_total', 'Requests on which the guest failed without trapping: exit, no_response, error_response, bad_response, crashed', ['kind'], (f, add) => {
      for (const [kind, n] of Object.entries(f.guestErrors)) add(n, { kind });
    });
    fnCounter('isola_client_aborts_total', 'Requests whose client went away before the response was complete', [], (f, add) => add(f.clientAborts));
    fnCounter('isola_guest_output_dropped_bytes_total', 'Guest stdout/stderr bytes dropped over the per-request capture limit', [], (f, add) => add(f.outputDroppedBytes));
    fnCounter('isola_cold_starts_total', 'Sandboxes started on demand because a request found none idle', [], (f, add) => add(f.coldStarts));
    fnCounter('isola_recycles_total', 'Instances replaced by a fresh one (trap, exit, or max_requests_per_instance)', [], (f, add) => add(f.recycles));
    fnCounter('isola_evictions_total', 'Sandboxes stopped: "idle" (past idle_timeout), "lru" (to make room under the global caps), "surplus" (over one per CPU for a compute-bound function)', ['reason'], (f, add) => {
      add(f.evictions.idle, { reason: 'idle' });
      add(f.evictions.lru, { reason: 'lru' });
      add(f.evictions.surplus, { reason: 'surplus' });
    });
    this.sandboxStart = new Histogram({ name: 'isola_sandbox_start_duration_seconds', help: 'Time to make a sandbox ready for a function, from a pre-spawned blank thread or a new one, seconds', labelNames: ['source'], buckets: START_BUCKETS, registers: r });

    new Gauge({
      name: 'isola_function_sandboxes', help: 'Sandboxes of live functions by state', labelNames: ['tenant', 'function', 'state'], registers: r,
      collect() {
        this.reset();
        for (const p of self.sources.pools?.() ?? []) {
          this.labels(p.tenant, p.name, 'idle').inc(p.stats.idle);
          this.labels(p.tenant, p.name, 'busy').inc(p.stats.busy);
          this.labels(p.tenant, p.name, 'starting').inc(p.stats.starting);
          this.labels(p.tenant, p.name, 'recycling').inc(p.stats.recycling);
        }
      },
    });
    new Gauge({
      name: 'isola_queue_length', help: 'Requests waiting for a sandbox of the function', labelNames: fn, registers: r,
      collect() {
        this.reset();
        for (const p of self.sources.pools?.() ?? []) this.labels(p.tenant, p.name).inc(p.stats.waiting);
      },
    });
    new Gauge({
      name: 'isola_function_blocking_share',
      help: 'Share of the function\'s recent requests that waited in host calls (0-1); under 0.1 (until it passes 0.2 again) its pool grows only to one sandbox per CPU',
      labelNames: fn, registers: r,
      collect() {
        this.reset();
        for (const p of self.sources.pools?.() ?? []) if (p.stats.blockingShare !== undefined) this.labels(p.tenant, p.name).set(p.stats.blockingShare);
      },
    });
    new Counter({
      name: 'isola_pipelined_requests_total',
      help: 'Requests queued on a busy sandbox behind others (short requests of a compute-bound function at its sandbox cap), by live deployment',
      labelNames: fn, registers: r,
      collect() {
        this.reset();
        for (const p of self.sources.pools?.() ?? []) if (p.stats.pipelined) this.labels(p.tenant, p.name).inc(p.stats.pipelined);
      },
    });
    new Gauge({
      name: 'isola_functions', help: 'Live functions (deployments being served)', registers: r,
      collect() {
        let n = 0;
        for (const _ of self.sources.pools?.() ?? []) n++;
        this.set(n);
      },
    });
    new Gauge({
      name: 'isola_sandboxes', help: 'Sandboxes (worker threads) of the process by state: live (all), blank (not bound to a function), starting', labelNames: ['state'], registers: r,
      collect() {
        const m = self.sources.manager?.();
        if (!m) return;
        this.set({ state: 'live' }, m.live);
        this.set({ state: 'blank' }, m.blank);
        this.set({ state: 'starting' }, m.starting);
      },
    });
    new Gauge({
      name: 'isola_sandboxes_max', help: 'Most live sandboxes ([sandboxes] max)', registers: r,
      collect() {
        const m = self.sources.manager?.();
        if (m) this.set(m.maxSandboxes);
      },
    });
    new Gauge({
      name: 'isola_sandbox_memory_bytes', help: 'Memory held by all sandboxes (measured JS heap + linear memory), bytes', registers: r,
      collect() {
        const m = self.sources.manager?.();
        if (m) this.set(m.memoryBytes);
      },
    });
    new Gauge({
      name: 'isola_sandbox_memory_max_bytes', help: 'Cap on the memory of all sandboxes ([sandboxes] memory), bytes', registers: r,
      collect() {
        const m = self.sources.manager?.();
        if (m) this.set(m.maxMemoryBytes);
      },
    });
    new Gauge({
      name: 'isola_scheduler_running', help: 'Guests running now, by tenant', labelNames: ['tenant'], registers: r,
      collect() {
        this.reset();
        for (const [t, s] of Object.entries(self.sources.scheduler?.() ?? {})) this.set({ tenant: t }, s.running);
      },
    });
    new Gauge({
      name: 'isola_scheduler_waiting', help: 'Requests waiting for a run slot, by tenant', labelNames: ['tenant'], registers: r,
      collect() {
        this.reset();
        for (const [t, s] of Object.entries(self.sources.scheduler?.() ?? {})) this.set({ tenant: t }, s.waiting);
      },
    });
    new Gauge({
      name: 'isola_scheduler_slots', help: 'Run slots: guests that may run at once before tenants queue', registers: r,
      collect() {
        if (self.sources.slots !== undefined) this.set(self.sources.slots);
      },
    });
    new Gauge({
      name: 'isola_tenant_cpu_budget_remaining_seconds', help: 'CPU a budgeted tenant may still spend now (negative: in debt, gets 429), seconds', labelNames: ['tenant'], registers: r,
      collect() {
        this.reset();
        for (const [t, s] of Object.entries(self.sources.scheduler?.() ?? {})) if (s.budgetTokensMs !== null) this.set({ tenant: t }, s.budgetTokensMs / 1000);
      },
    });
    new Gauge({
      name: 'isola_tail_subscribers', help: 'Connected `isola tail` streams', registers: r,
      collect() {
        this.set(self.sources.tail?.subscribers ?? 0);
      },
    });
    new Counter({
      name: 'isola_tail_dropped_records_total', help: 'Log records not sent to a tail subscriber that read too slowly', registers: r,
      collect() {
        this.reset();
        this.inc(self.sources.tail?.droppedRecords ?? 0);
      },
    });
    new Gauge({ name: 'isola_build_info', help: 'isola\'s version (always 1)', labelNames: ['version'], registers: r }).set({ version: packageVersion() }, 1);
    if (opts.processMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }

  /** Where scrape-time gauges read from; call once the pools, manager and scheduler exist. */
  setSources(sources: MetricsSources): void {
    this.sources = sources;
  }

  /** The label sets of a function (created on first use, kept across its versions). */
  forFunction(key: string, tenant: string, name: string): FunctionMetrics {
    let f = this.functions.get(key);
    if (!f) {
      f = new FunctionMetrics(this, tenant, name);
      this.functions.set(key, f);
    }
    return f;
  }

  /** Drops a deleted function's series (a redeploy keeps them: same key). */
  forget(key: string): void {
    const f = this.functions.get(key);
    if (!f) return;
    this.functions.delete(key);
    f.remove();
  }

  /** A request no route matched. */
  unroutedRequest(): void {
    this.unrouted.inc();
  }

  /** The exposition: Prometheus text format. */
  text(): Promise<string> {
    return this.registry.metrics();
  }

  /** The Content-Type of `text()`. */
  get contentType(): string {
    return this.registry.contentType;
  }
}
