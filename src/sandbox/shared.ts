/**
 * The shared control block between the main thread and one sandbox: an Int32Array over a
 * SharedArrayBuffer. Body bytes travel as whole chunks on message ports; these words carry the
 * signals and the flow-control counters that make both directions apply real backpressure
 * (DESIGN.md "Blocking WASI calls block only the sandbox thread").
 *
 * REQ_QUEUED and REQ_PAUSED belong to the one request with a body a sandbox may hold (requests with
 * a body are never pipelined): the main thread resets them before it posts such a request.
 * RESP_INFLIGHT spans the sandbox's requests: every byte the sandbox adds is taken off again by the
 * main thread (written to the socket, dropped for a gone client, or forgiven when its request ends).
 * Requests are told apart by their sequence number (RequestHead.seq, 1, 2, … per sandbox).
 */

/** Incremented (and notified) by the main thread whenever something the sandbox may wait for changed:
 * request body data or EOF arrived, response credit was returned, or the request was aborted. */
export const SIGNAL = 0;
/** Request body bytes posted by the main thread and not yet taken by the sandbox. */
export const REQ_QUEUED = 1;
/** 1 while the main thread has paused reading the client's body because REQ_QUEUED is over the window. */
export const REQ_PAUSED = 2;
/** Response body bytes posted by the sandbox and not yet handed to the socket by the main thread. */
export const RESP_INFLIGHT = 3;
/**
 * Requests whose client went away, as bits: bit `seq & 31` of a request posted and not yet done.
 * The pool hands out at most PIPELINE_DEPTH (≤ 32, ../pool/policy.ts) at once, so no two of those
 * share a bit. The main thread sets it; the sandbox clears it when that request ends. One case
 * breaks the rule in the thread's view: requests withdrawn from behind a long one (Sandbox.guard)
 * stay in the thread's queue while new ones reuse their bits, and the thread clears a bit when it
 * skips such a request. The worst outcome is a missed abort (a request runs for a client that has
 * gone, and its answer is dropped), never a false one.
 */
export const ABORTED = 4;
/** 1 while the sandbox's guest is blocked in a host call (../sandbox/blocking.ts); read by the pool. */
export const BLOCKED = 5;
/** The sequence number of the request the sandbox is running, or ran last (0 before the first). */
export const CURRENT = 6;
/**
 * Requests with a sequence number up to this one that the sandbox has not begun must not be begun:
 * the main thread withdrew them (they were queued behind a request that runs long) and serves them
 * elsewhere. A request the sandbox finds withdrawn as it begins is answered `withdrawn`.
 */
export const WITHDRAWN = 7;
/** Words 8..15 are a BigInt64Array of four i64 slots (see CPU_BASE). */
export const CONTROL_WORDS = 16;
/** i64 slot 0: the sandbox thread's CPU clock (ns, /proc schedstat) when its current request began. */
export const CPU_BASE = 0;
/** i64 slot 1: when the CURRENT request began, µs since the epoch (`performance.timeOrigin + now()`); 0 once it ended. */
export const WALL_BASE = 1;

/** Bytes of body data allowed in flight in each direction before the producer waits (1 MiB). */
export const BODY_WINDOW_BYTES = 1 << 20;
/** The sandbox batches response writes into messages of about this size (64 KiB). */
export const FLUSH_BYTES = 64 << 10;

/** Allocates a control block for one sandbox. */
export function createControl(): Int32Array {
  return new Int32Array(new SharedArrayBuffer(CONTROL_WORDS * 4));
}

/** The i64 slots of a control block. */
export function wideSlots(ctl: Int32Array): BigInt64Array {
  return new BigInt64Array(ctl.buffer, 8 * 4, 4);
}

/** Now (or the performance.now() reading `now`, ms) as WALL_BASE counts it, µs since the epoch; comparable across threads of one process. */
export function wallMicros(now = performance.now()): bigint {
  return BigInt(Math.round((performance.timeOrigin + now) * 1000));
}

/** Wakes the sandbox: bumps SIGNAL and notifies any waiter. Called by the main thread. */
export function signal(ctl: Int32Array): void {
  Atomics.add(ctl, SIGNAL, 1);
  Atomics.notify(ctl, SIGNAL);
}
