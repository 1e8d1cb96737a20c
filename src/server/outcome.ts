/**
 * How a request ended, in the words of the access log and the metrics. Every routed request gets
 * exactly one outcome:
 *
 * | outcome | when | extra field | metric |
 * | --- | --- | --- | --- |
 * | `ok` | the guest answered | | |
 * | `trap` | the guest trapped (not at a limit) | | `isola_guest_traps_total` |
 * | `limit` | stopped at a limit | `limit`: request_body, response_body, cpu, wall_time, memory, fuel | `isola_rejections_total{reason=<limit>}` |
 * | `rejected` | refused before it ran | `reason`: budget, queue_full, queue_timeout, slot_timeout, unavailable | `isola_rejections_total{reason}` |
 * | `client-abort` | the client went away first | | `isola_client_aborts_total` |
 * | `exit`, `no-response`, `error-response`, `bad-response`, `crashed` | the guest failed otherwise | | `isola_guest_errors_total{kind}` |
 *
 * Pure functions, unit-tested in ./outcome.test.ts.
 */
import type { GuestErrorKind, RejectReason } from '../telemetry/metrics.js';

/** Which limit stopped a request. */
export type LimitKind = 'request_body' | 'response_body' | 'cpu' | 'wall_time' | 'memory' | 'fuel';

/** The access log's and the metrics' view of one request's end. */
export interface Verdict {
  outcome: 'ok' | 'trap' | 'limit' | 'rejected' | 'client-abort' | 'exit' | 'no-response' | 'error-response' | 'bad-response' | 'crashed';
  limit?: LimitKind;
  reason?: RejectReason;
  /** For `isola_guest_errors_total`. */
  guestError?: GuestErrorKind;
}

const OK: Verdict = { outcome: 'ok' };
const TRAP: Verdict = { outcome: 'trap' };
const ABORT: Verdict = { outcome: 'client-abort' };
const limit = (l: LimitKind): Verdict => ({ outcome: 'limit', limit: l, reason: l });
const LIMITS: Record<LimitKind, Verdict> = {
  request_body: limit('request_body'), response_body: limit('response_body'), cpu: limit('cpu'),
  wall_time: limit('wall_time'), memory: limit('memory'), fuel: limit('fuel'),
};
const guestError = (outcome: Verdict['outcome'], kind: GuestErrorKind): Verdict => ({ outcome, guestError: kind });
const EXIT = guestError('exit', 'exit');
const NO_RESPONSE = guestError('no-response', 'no_response');
const ERROR_RESPONSE = guestError('error-response', 'error_response');
const BAD_RESPONSE = guestError('bad-response', 'bad_response');
const CRASHED = guestError('crashed', 'crashed');

/** The response-size limit's message from the wasi:http host (it carries no code). */
const RESPONSE_LIMIT_RE = /^response body over the \d+-byte limit/;

/**
 * Classifies a sandbox run's end (RunResult's `outcome` kind, error `code` and `message`).
 * Returns shared frozen-by-convention objects: no allocation per request.
 */
export function classifyRun(kind: string, code: string | undefined, message: string | undefined): Verdict {
  switch (kind) {
    case 'ok':
      return OK;
    case 'client-abort':
    case 'aborted':
      return ABORT;
    case 'timeout':
      return LIMITS.wall_time;
    case 'cpu':
      return LIMITS.cpu;
    case 'body-too-large':
      return LIMITS.request_body;
    case 'trap':
      if (code === 'ERR_FUEL_LIMIT') return LIMITS.fuel;
      if (code === 'ERR_MEMORY_LIMIT') return LIMITS.memory;
      return TRAP;
    case 'bad-response':
    case 'unfinished-body':
      if (code === 'ERR_RESPONSE_BODY_TOO_LARGE' || (message !== undefined && RESPONSE_LIMIT_RE.test(message))) return LIMITS.response_body;
      return BAD_RESPONSE;
    case 'exit':
      return EXIT;
    case 'no-response':
      return NO_RESPONSE;
    case 'error-response':
      return ERROR_RESPONSE;
    default:
      return CRASHED;
  }
}

/**
 * Classifies a refusal before the guest ran, from the error's code and message: the CPU budget
 * (429), the function's queue (full or waited too long), a run slot not given in time, or no
 * sandbox at all (the function is being replaced, or its sandboxes cannot start).
 */
export function classifyRejection(code: string, message: string): Verdict {
  let reason: RejectReason;
  if (code === 'ERR_TENANT_BUDGET') reason = 'budget';
  else if (code === 'ERR_OVERLOADED') reason = /\(max_queue\)/.test(message) ? 'queue_full' : /\(queue_timeout\)/.test(message) ? 'queue_timeout' : /run slot/.test(message) ? 'slot_timeout' : 'unavailable';
  else reason = 'unavailable';
  return { outcome: 'rejected', reason };
}

/** The Verdict of a request refused for a declared body over `max_request_body` (413 before it ran). */
export const REQUEST_BODY_LIMIT: Verdict = LIMITS.request_body;
