import { describe, expect, it } from 'vitest';
import { blockingShare, cappedNow, isSurplus, COMPUTE_BOUND_BELOW, COMPUTE_BOUND_UNTIL, computeBoundAfter, computeCap, fits, pickIdle, pickVictim, shouldGrow, shouldRecycle, toEvict, cpuAverage, longRunBound, LONG_RUN_MS, CAP_LIFT_RUN_MS, mayPipeline, pickPipelined, PIPELINE_CPU_MS, PIPELINE_DEPTH } from './policy.js';

describe('pickIdle', () => {
  it('picks the most recently idle', () => {
    expect(pickIdle([{ idleSince: 1 }, { idleSince: 5 }, { idleSince: 3 }])).toEqual({ idleSince: 5 });
    expect(pickIdle([])).toBeNull();
  });
});

describe('shouldGrow', () => {
  const base = { idle: 0, live: 1, starting: 0, waiting: 1, maxInstances: 4 };
  it('grows when a request waits and there is room', () => expect(shouldGrow(base)).toBe(true));
  it('not when an idle sandbox exists', () => expect(shouldGrow({ ...base, idle: 1 })).toBe(false));
  it('not at max_instances (starting ones count)', () => {
    expect(shouldGrow({ ...base, live: 4 })).toBe(false);
    expect(shouldGrow({ ...base, live: 3, starting: 1, waiting: 5 })).toBe(false);
  });
  it('not when enough are already starting for the waiters', () => expect(shouldGrow({ ...base, starting: 1 })).toBe(false));
  it('not with nobody waiting', () => expect(shouldGrow({ ...base, waiting: 0 })).toBe(false));
  it('a compute-bound function stops at one sandbox per CPU', () => {
    expect(shouldGrow({ ...base, live: 2, waiting: 9, computeBound: true, cores: 2 })).toBe(false);
    expect(shouldGrow({ ...base, live: 1, starting: 1, waiting: 9, computeBound: true, cores: 2 })).toBe(false);
    expect(shouldGrow({ ...base, live: 1, waiting: 9, computeBound: true, cores: 2 })).toBe(true);
    expect(shouldGrow({ ...base, live: 1, waiting: 9, computeBound: true, cores: 1 })).toBe(false);
    expect(shouldGrow({ ...base, live: 0, waiting: 9, computeBound: true, cores: 1 })).toBe(true);
    expect(shouldGrow({ ...base, live: 3, waiting: 9, computeBound: true, cores: 8 })).toBe(true);
    expect(computeCap(1)).toBe(1);
    expect(computeCap(0)).toBe(1);
    expect(computeCap(16)).toBe(16);
  });
  it('a function whose requests wait grows to max_instances', () => {
    expect(shouldGrow({ ...base, live: 3, waiting: 9, computeBound: false, cores: 2 })).toBe(true);
  });
});

describe('isSurplus', () => {
  const base = { othersLive: 2, minWarm: 1, cores: 2, capped: true };
  it('stops a freed sandbox of a capped function when the others already make the cap', () => expect(isSurplus(base)).toBe(true));
  it('keeps it below the cap, above min_warm, or when the function is not capped', () => {
    expect(isSurplus({ ...base, othersLive: 1 })).toBe(false);
    expect(isSurplus({ ...base, minWarm: 3 })).toBe(false);
    expect(isSurplus({ ...base, capped: false })).toBe(false);
    expect(isSurplus({ ...base, othersLive: 3, cores: 4 })).toBe(false);
  });
});

describe('blockingShare and computeBoundAfter', () => {
  it('a function turns compute-bound after a run of requests that never wait, and back after a few that do', () => {
    let share = 1;
    let bound = false;
    let n = 0;
    while (!bound) {
      share = blockingShare(share, 0);
      bound = computeBoundAfter(bound, share);
      n++;
    }
    expect(n).toBe(147); // (63/64)^147 < 0.1
    let k = 0;
    while (bound) {
      share = blockingShare(share, 50);
      bound = computeBoundAfter(bound, share);
      k++;
    }
    expect(k).toBe(8);
    expect(share).toBeGreaterThan(COMPUTE_BOUND_UNTIL);
  });
  it('does not flip back and forth between the two marks', () => {
    expect(computeBoundAfter(true, (COMPUTE_BOUND_BELOW + COMPUTE_BOUND_UNTIL) / 2)).toBe(true);
    expect(computeBoundAfter(false, (COMPUTE_BOUND_BELOW + COMPUTE_BOUND_UNTIL) / 2)).toBe(false);
  });
  it('a mixed workload where a quarter of the requests wait never turns compute-bound', () => {
    let share = 1;
    let bound = false;
    let seed = 7;
    const rand = () => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
    let ever = false;
    for (let i = 0; i < 20_000; i++) {
      share = blockingShare(share, rand() < 0.25 ? 5 : 0);
      bound = computeBoundAfter(bound, share);
      ever ||= bound;
    }
    expect(ever).toBe(false);
  });
  it('ignores sub-threshold waits', () => expect(blockingShare(0.5, 0.1)).toBeLessThan(0.5));
  it('caps growth only when no request waited for the cool-down', () => {
    expect(cappedNow({ computeBound: true, msSinceWait: Infinity })).toBe(true);
    expect(cappedNow({ computeBound: true, msSinceWait: 0 })).toBe(false);
    expect(cappedNow({ computeBound: true, msSinceWait: 4_999 })).toBe(false);
    expect(cappedNow({ computeBound: true, msSinceWait: 5_000 })).toBe(true);
    expect(cappedNow({ computeBound: false, msSinceWait: Infinity })).toBe(false);
  });
});

describe('toEvict', () => {
  const idle = [{ idleSince: 0 }, { idleSince: 500 }, { idleSince: 900 }];
  it('evicts only sandboxes idle past the timeout, oldest first', () => {
    expect(toEvict(idle, 3, 0, 400, 1000)).toEqual([{ idleSince: 0 }, { idleSince: 500 }]);
  });
  it('keeps min_warm alive', () => {
    expect(toEvict(idle, 3, 2, 0, 1000)).toEqual([{ idleSince: 0 }]);
    expect(toEvict(idle, 3, 3, 0, 1000)).toEqual([]);
  });
});

describe('shouldRecycle', () => {
  it('never with 0, every request with 1, every n-th with n', () => {
    expect([1, 2, 100].map((n) => shouldRecycle(n, 0))).toEqual([false, false, false]);
    expect([1, 2].map((n) => shouldRecycle(n, 1))).toEqual([true, true]);
    expect([1, 2, 3].map((n) => shouldRecycle(n, 3))).toEqual([false, false, true]);
  });
});

describe('pickVictim', () => {
  it('takes the least recently used, preferring pools above min_warm', () => {
    const a = { idleSince: 1, aboveMinWarm: false };
    const b = { idleSince: 5, aboveMinWarm: true };
    const c = { idleSince: 3, aboveMinWarm: true };
    expect(pickVictim([a, b, c])).toBe(c);
    expect(pickVictim([a, { idleSince: 0, aboveMinWarm: false }])).toEqual({ idleSince: 0, aboveMinWarm: false });
    expect(pickVictim([])).toBeNull();
  });
});

describe('fits', () => {
  it('checks both the sandbox count and the memory budget', () => {
    expect(fits({ live: 1, memory: 10, estimate: 5, max: 2, maxMemory: 20 })).toBe(true);
    expect(fits({ live: 2, memory: 10, estimate: 5, max: 2, maxMemory: 20 })).toBe(false);
    expect(fits({ live: 1, memory: 16, estimate: 5, max: 2, maxMemory: 20 })).toBe(false);
  });
});

describe('pipelining', () => {
  const base = { capped: true, canGrow: false, cpuMs: 0.05 };
  it('queues on a busy sandbox only for a capped function that cannot grow and whose requests are short', () => {
    expect(mayPipeline(base)).toBe(true);
    expect(mayPipeline({ ...base, capped: false })).toBe(false); // its requests wait on something
    expect(mayPipeline({ ...base, canGrow: true })).toBe(false); // a new sandbox is better
    expect(mayPipeline({ ...base, cpuMs: PIPELINE_CPU_MS })).toBe(false); // long requests: no head-of-line wait
    expect(mayPipeline({ ...base, cpuMs: Infinity })).toBe(false); // not known yet
  });

  it('picks the pipelinable sandbox with the fewest requests, below the depth', () => {
    const a = { name: 'a', pipelinable: true };
    const b = { name: 'b', pipelinable: true };
    const body = { name: 'body', pipelinable: false };
    expect(pickPipelined([[a, 3], [b, 2], [body, 1]])).toBe(b);
    expect(pickPipelined([[a, 1], [b, 1]])).toBe(a);
    expect(pickPipelined([[body, 1]])).toBeNull();
    expect(pickPipelined([[a, PIPELINE_DEPTH]])).toBeNull();
    expect(pickPipelined([[a, PIPELINE_DEPTH - 1]])).toBe(a);
    expect(pickPipelined([])).toBeNull();
    // Each request handed out has its own abort bit in the control block's 32-bit ABORTED word.
    expect(PIPELINE_DEPTH).toBeLessThanOrEqual(32);
  });

  it('averages CPU per request with weight 1/16, starting from the first request', () => {
    expect(cpuAverage(Infinity, 2)).toBe(2);
    expect(cpuAverage(2, 18)).toBe(3);
    let avg = cpuAverage(Infinity, 0.1);
    for (let i = 0; i < 100; i++) avg = cpuAverage(avg, 5);
    expect(avg).toBeGreaterThan(4.9);
  });
});

describe('longRunBound', () => {
  it('is longer than LONG_RUN_MS and ten times the average CPU', () => {
    const isLong = (ms: number, avg: number) => ms > longRunBound(avg);
    expect(isLong(LONG_RUN_MS + 1, 0.05)).toBe(true);
    expect(isLong(LONG_RUN_MS - 1, 0.05)).toBe(false);
    expect(isLong(150, 20)).toBe(false); // a heavy function's usual request
    expect(isLong(250, 20)).toBe(true);
    expect(isLong(1000, Infinity)).toBe(false); // nothing known yet: not long
    expect(longRunBound(0.05, CAP_LIFT_RUN_MS)).toBe(CAP_LIFT_RUN_MS);
  });
});
