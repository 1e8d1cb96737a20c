/**
 * Lingering close. A server that answers before reading the whole request body (413 for an
 * oversize upload) and then closes the connection with unread bytes still arriving makes the
 * kernel send a TCP reset, and a reset can destroy the answer in the client's receive buffer
 * before the client reads it: the client sees a dropped connection instead of the 413. RFC 9112
 * §9.6 asks servers to close in stages — send the response, shut down the sending side, keep
 * reading (and discarding) for a while, then close — which is what Apache's and nginx's
 * "lingering close" do. This does the same, bounded in time.
 */
import type { ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/** Longest a connection lingers after its response, ms. */
const LINGER_MAX_MS = 2_000;
/** A lingering connection closes once the client has sent nothing for this long, ms. */
const LINGER_IDLE_MS = 250;

const lingering = new WeakSet<Socket>();

/**
 * Makes the connection of `res` close by lingering once the response is out (use with
 * `Connection: close` on a response sent before the request body was read). The unread rest of
 * the body is discarded as it arrives, for up to 2 s, or until the client pauses for 250 ms.
 */
export function lingerAfterResponse(res: ServerResponse): void {
  const socket = res.socket;
  const req = res.req;
  if (!socket || lingering.has(socket) || req.complete) return;
  lingering.add(socket);
  // node's http server calls destroySoon() once a `Connection: close` response has finished.
  socket.destroySoon = function lingerThenDestroy(this: Socket): void {
    this.end(); // FIN after the response bytes
    const done = (): void => {
      clearTimeout(idle);
      clearTimeout(cap);
      this.destroy();
    };
    let idle = setTimeout(done, LINGER_IDLE_MS);
    const cap = setTimeout(done, LINGER_MAX_MS);
    this.on('data', () => idle.refresh());
    this.once('close', () => {
      clearTimeout(idle);
      clearTimeout(cap);
    });
    req.resume(); // the body's bytes are dropped, never buffered
    this.resume();
  };
}
