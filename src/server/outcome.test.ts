import { describe, expect, it } from 'vitest';
import { classifyRejection, classifyRun } from './outcome.js';

describe('classifyRun', () => {
  it('names limits by what was hit', () => {
    expect(classifyRun('cpu', 'ERR_CPU_LIMIT', undefined)).toEqual({ outcome: 'limit', limit: 'cpu', reason: 'cpu' });
    expect(classifyRun('timeout', 'ERR_WALL_TIMEOUT', undefined)).toMatchObject({ outcome: 'limit', limit: 'wall_time' });
    expect(classifyRun('body-too-large', undefined, undefined)).toMatchObject({ outcome: 'limit', limit: 'request_body' });
    expect(classifyRun('trap', 'ERR_FUEL_LIMIT', 'fuel limit of 10 reached')).toMatchObject({ outcome: 'limit', limit: 'fuel' });
    expect(classifyRun('trap', 'ERR_MEMORY_LIMIT', undefined)).toMatchObject({ outcome: 'limit', limit: 'memory' });
    expect(classifyRun('bad-response', undefined, 'response body over the 100-byte limit')).toMatchObject({ outcome: 'limit', limit: 'response_body' });
    expect(classifyRun('bad-response', 'ERR_RESPONSE_BODY_TOO_LARGE', 'x')).toMatchObject({ outcome: 'limit', limit: 'response_body' });
  });

  it('tells traps, guest errors and client aborts apart', () => {
    expect(classifyRun('ok', undefined, undefined)).toEqual({ outcome: 'ok' });
    expect(classifyRun('trap', undefined, 'guest trapped: unreachable')).toEqual({ outcome: 'trap' });
    expect(classifyRun('client-abort', undefined, undefined)).toEqual({ outcome: 'client-abort' });
    expect(classifyRun('exit', undefined, undefined)).toEqual({ outcome: 'exit', guestError: 'exit' });
    expect(classifyRun('unfinished-body', undefined, undefined)).toEqual({ outcome: 'bad-response', guestError: 'bad_response' });
    expect(classifyRun('no-response', undefined, undefined)).toEqual({ outcome: 'no-response', guestError: 'no_response' });
    expect(classifyRun('crashed', 'ERR_SANDBOX_CRASHED', undefined)).toEqual({ outcome: 'crashed', guestError: 'crashed' });
  });
});

describe('classifyRejection', () => {
  it('names the reason from the error', () => {
    expect(classifyRejection('ERR_TENANT_BUDGET', 'x')).toEqual({ outcome: 'rejected', reason: 'budget' });
    expect(classifyRejection('ERR_OVERLOADED', 'hello: 256 requests already waiting (max_queue)').reason).toBe('queue_full');
    expect(classifyRejection('ERR_OVERLOADED', 'hello: no sandbox free within 10 ms (queue_timeout)').reason).toBe('queue_timeout');
    expect(classifyRejection('ERR_OVERLOADED', 'tenant "a": no run slot within 30000 ms').reason).toBe('slot_timeout');
    expect(classifyRejection('ERR_SHUTTING_DOWN', 'x').reason).toBe('unavailable');
  });
});
