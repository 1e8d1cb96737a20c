// A wasi:http guest that answers every request with a greeting.
//
// It exports `incomingHandler` (wasi:http/incoming-handler) explicitly instead of using
// `addEventListener('fetch')`, so that one instance can answer many requests.

import { getEnvironment } from 'wasi:cli/environment@0.2.10';
import { Fields, OutgoingBody, OutgoingResponse, ResponseOutparam } from 'wasi:http/types@0.2.10';

const encoder = new TextEncoder();

/** Returns the value of the environment variable `name`, or undefined when it is not set. */
function env(name) {
  const entry = getEnvironment().find(([key]) => key === name);
  return entry?.[1];
}

/** The wasi:http/incoming-handler export: called once per request. */
export const incomingHandler = {
  /**
   * Answers 200 text/plain "Hello from isola!\n", followed by $GREETING (and a newline) when set.
   *
   * @param {IncomingRequest} request the request (unused)
   * @param {ResponseOutparam} responseOutparam where the response is delivered
   */
  handle(request, responseOutparam) {
    const greeting = env('GREETING');
    const text = `Hello from isola!\n${greeting ? `${greeting}\n` : ''}`;
    const body = encoder.encode(text);

    const headers = Fields.fromList([
      ['content-type', encoder.encode('text/plain')],
      ['content-length', encoder.encode(String(body.length))],
    ]);
    const response = new OutgoingResponse(headers);
    response.setStatusCode(200);
    const outgoingBody = response.body();
    ResponseOutparam.set(responseOutparam, { tag: 'ok', val: response });

    const stream = outgoingBody.write();
    stream.blockingWriteAndFlush(body); // small enough: up to 4096 bytes per call
    stream[Symbol.dispose]();
    OutgoingBody.finish(outgoingBody, undefined);
  },
};
