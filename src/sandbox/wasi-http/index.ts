/**
 * The wasi:http host: the imports object handed to a jco-transpiled component (async
 * instantiation mode). Keys are interface names without version, which is how jco's glue asks for
 * them, so any wasi 0.2.x patch version links (FACTS.md: jco ignores the patch version).
 */
import type { Exchange } from '../exchange.js';
import { cliInterfaces, deniedInterfaces, type CurrentRequest } from './cli.js';
import { Fields } from './fields.js';
import {
  FutureIncomingResponse, FutureTrailers, IncomingBody, IncomingRequest, IncomingResponse, OutgoingBody,
  OutgoingRequest, OutgoingResponse, RequestOptions, ResponseOutparam, httpErrorCode, outgoingHandle,
} from './http.js';
import { InputStream, IoError, OutputStream, Pollable, poll } from './io.js';

/** Interfaces isola offers to components; a component importing anything else is rejected at upload. */
export const OFFERED_INTERFACES: readonly string[] = [
  'wasi:http/types', 'wasi:http/outgoing-handler',
  'wasi:io/error', 'wasi:io/poll', 'wasi:io/streams',
  'wasi:cli/environment', 'wasi:cli/exit', 'wasi:cli/stdin', 'wasi:cli/stdout', 'wasi:cli/stderr',
  'wasi:cli/terminal-input', 'wasi:cli/terminal-output', 'wasi:cli/terminal-stdin',
  'wasi:cli/terminal-stdout', 'wasi:cli/terminal-stderr',
  'wasi:clocks/monotonic-clock', 'wasi:clocks/wall-clock',
  'wasi:random/random', 'wasi:random/insecure', 'wasi:random/insecure-seed',
  'wasi:filesystem/preopens', 'wasi:filesystem/types',
  'wasi:sockets/network', 'wasi:sockets/instance-network', 'wasi:sockets/tcp', 'wasi:sockets/udp',
  'wasi:sockets/tcp-create-socket', 'wasi:sockets/udp-create-socket', 'wasi:sockets/ip-name-lookup',
];

export interface WasiHttpHost {
  imports: Record<string, Record<string, unknown>>;
  current: CurrentRequest;
  /** Makes the guest-facing resources for one request. */
  begin(exchange: Exchange): { request: IncomingRequest; outparam: ResponseOutparam };
  end(): void;
}

/** Builds the host for one sandbox (one function version): env vars are fixed for its life. */
export function createWasiHttpHost(env: Record<string, string>): WasiHttpHost {
  const current: CurrentRequest = { exchange: null };
  const imports: Record<string, Record<string, unknown>> = {
    'wasi:http/types': {
      Fields, IncomingRequest, IncomingBody, FutureTrailers, OutgoingResponse, OutgoingBody,
      ResponseOutparam, OutgoingRequest, RequestOptions, IncomingResponse, FutureIncomingResponse,
      httpErrorCode,
    },
    'wasi:http/outgoing-handler': { handle: outgoingHandle },
    'wasi:io/error': { Error: IoError },
    'wasi:io/poll': { Pollable, poll },
    'wasi:io/streams': { InputStream, OutputStream },
    ...cliInterfaces(env, current),
    ...deniedInterfaces(),
  };
  return {
    imports,
    current,
    begin(exchange) {
      current.exchange = exchange;
      return { request: new IncomingRequest(exchange), outparam: new ResponseOutparam(exchange) };
    },
    end() {
      current.exchange = null;
    },
  };
}
