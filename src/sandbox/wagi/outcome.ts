/**
 * How a finished WAGI run becomes an HTTP answer. The rule that decides is whether the response
 * head (the CGI header block, ./response.ts) was complete — and so possibly already sent — when
 * the run ended.
 *
 * | the run ended with …                         | head not complete                 | head complete                  |
 * | -------------------------------------------- | --------------------------------- | ------------------------------ |
 * | exit 0                                       | 502 ERR_GUEST_BAD_RESPONSE        | ok                             |
 * | exit ≠ 0 (proc_exit)                         | 500 ERR_GUEST_EXIT                | ok, exit code only logged (1)  |
 * | trap (unreachable, out of bounds, mem cap)   | 500 ERR_GUEST_TRAP                | abort the response (2)         |
 * | CgiResponseError while parsing stdout        | 502 ERR_GUEST_BAD_RESPONSE        | (cannot happen)                |
 * | other IsolaError thrown by the host (3)      | its own status and code           | abort the response             |
 * | anything else thrown                         | 500 ERR_INTERNAL                  | abort the response             |
 *
 * (1) CGI has no channel for the exit status; once a complete response was written the client
 *     gets it, as from Apache or WAGI. Before that, a non-zero exit is reported as the cause
 *     (it explains a missing or partial header block better than "bad response").
 * (2) DESIGN.md decision 5: after the head, a failure aborts the response, never a clean end.
 * (3) e.g. the caller's writeStdout throwing ERR_RESPONSE_BODY_TOO_LARGE.
 */
import { IsolaError, toIsolaError } from '../../errors.js';

/** What the caller does with a finished run. */
export type WagiVerdict =
  | { kind: 'ok'; exitCode: number }
  /** Nothing sent yet: answer `error.status` with `error.toJSON(requestId)`. */
  | { kind: 'error'; error: IsolaError }
  /** The head went out: abort the response (destroy the stream), log `error`. */
  | { kind: 'abort'; error: IsolaError };

/**
 * Classifies a finished run (see the table in the module doc). `thrown` is what runWagi threw
 * (null when it returned), `exitCode` what it returned (null when it threw), `parser` the stdout
 * parser, whose end() this calls when the run itself succeeded (so pass everything in; do not
 * call end() first, or a non-zero exit would be reported as a bad response). Never throws.
 */
export function wagiVerdict(run: {
  thrown: unknown;
  exitCode: number | null;
  parser: { headDone: boolean; end(): void };
}): WagiVerdict {
  const { thrown, exitCode, parser } = run;
  if (thrown !== null && thrown !== undefined) {
    const error = toIsolaError(thrown);
    return parser.headDone ? { kind: 'abort', error } : { kind: 'error', error };
  }
  if (parser.headDone) return { kind: 'ok', exitCode: exitCode ?? 0 };
  if (exitCode !== null && exitCode !== 0) {
    return {
      kind: 'error',
      error: new IsolaError('ERR_GUEST_EXIT', `The guest exited with code ${exitCode} before writing a complete CGI header block`, {
        status: 500,
        user: true,
        details: { exitCode },
      }),
    };
  }
  try {
    parser.end();
  } catch (err) {
    return { kind: 'error', error: toIsolaError(err) };
  }
  return { kind: 'ok', exitCode: exitCode ?? 0 };
}
