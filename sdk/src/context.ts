/** The per-request `ExecutionContext` given to `fetch` (Workers' `ctx`). */
import type { ExecutionContext } from './index.ts';

/** An ExecutionContext that collects `waitUntil` promises for the adapter to await at the end. */
export class RequestContext implements ExecutionContext {
  readonly props: Record<string, unknown> = {};
  /** The promises passed to waitUntil, in order. */
  readonly pending: Promise<unknown>[] = [];

  /** Keeps the request alive until `promise` settles (see ExecutionContext.waitUntil). */
  waitUntil(promise: Promise<unknown>): void {
    this.pending.push(Promise.resolve(promise));
  }

  /** No origin to pass through to on isola: a no-op kept for Workers compatibility. */
  passThroughOnException(): void {}

  /**
   * Waits for every waitUntil promise, including ones added while waiting; logs each rejection
   * to stderr (the function's log) instead of throwing.
   */
  async settle(): Promise<void> {
    for (let done = 0; done < this.pending.length; ) {
      const batch = this.pending.slice(done);
      done = this.pending.length;
      const results = await Promise.allSettled(batch);
      for (const r of results) {
        if (r.status === 'rejected') console.error('Uncaught (in waitUntil)', describeError(r.reason));
      }
    }
  }
}

/** An error as a log line: its stack when it has one (SpiderMonkey stacks omit the message). */
export function describeError(err: unknown): string {
  if (err instanceof Error) {
    const head = `${err.name}: ${err.message}`;
    const stack = err.stack?.trim();
    return stack ? `${head}\n${stack}` : head;
  }
  return String(err);
}
