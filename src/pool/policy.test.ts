import { describe, expect, it } from 'vitest';
import { pickIdle, shouldGrow, toEvict } from './policy.js';

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
