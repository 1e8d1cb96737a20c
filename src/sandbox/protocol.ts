/**
 * The message protocol between the main thread and a sandbox (worker thread).
 * Code inside the sandbox imports only this module and the guest ABI hosts (../shared/STYLE.md §6).
 */

/** Everything a guest may learn about a request, sent to the sandbox in one message. */
export interface RequestHead {
  /** The request id (also returned to the client as `x-request-id`). */
  id: string;
  /** Method as sent by the client, e.g. "GET". */
  method: string;
  /** "http" or "https" as seen by the edge listener. */
  scheme: 'http' | 'https';
  /** The Host header value (authority), "" when absent. */
  authority: string;
  /** The request target as received: raw (still percent-encoded) path plus "?query" if any. */
  pathWithQuery: string;
  /** Header lines as received, flat [name, value, name, value, …] (node's rawHeaders): order and duplicates kept. */
  rawHeaders: string[];
  /** HTTP version, e.g. "1.1". */
  httpVersion: string;
  /** Client address and port. */
  remoteAddr: string;
  remotePort: number;
  /** Listener name (the Host header's host, else the bound address) and port, for CGI's SERVER_NAME/SERVER_PORT. */
  serverName: string;
  serverPort: number;
  /** The matched route's fixed prefix without a trailing slash ("" for "/*"); CGI's SCRIPT_NAME. */
  routePrefix: string;
  /** Declared body length (content-length), or -1 when unknown (chunked) ; 0 when there is no body. */
  bodyLength: number;
}
