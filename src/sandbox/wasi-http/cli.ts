/**
 * `wasi:cli`, `wasi:clocks`, `wasi:random` and the denied capabilities (`wasi:filesystem`,
 * `wasi:sockets`) for a sandbox. A guest sees only its function's configured environment
 * variables, no arguments, no files and no network; stdout and stderr are captured per request
 * into the request's log (never written to the host's stdout).
 */
import { randomFillSync } from 'node:crypto';
import type { Exchange } from '../exchange.js';
import { InputStream, OutputStream, Pollable, nowNs, type OutputSink } from './io.js';

/** Thrown by `wasi:cli/exit.exit`: unwinds the guest; the instance is discarded afterwards. */
export class GuestExit extends Error {
  constructor(readonly ok: boolean, readonly code: number | null) {
    super(`guest called exit(${code ?? (ok ? 'ok' : 'err')})`);
    this.name = 'GuestExit';
  }
}

/** The request currently being served by this sandbox (null between requests). */
export interface CurrentRequest {
  exchange: Exchange | null;
}

class LogSink implements OutputSink {
  constructor(private readonly current: CurrentRequest, private readonly stream: 'stdout' | 'stderr') {}
  get exchange(): Exchange | null {
    return this.current.exchange;
  }
  capacity(): number {
    return 1 << 16;
  }
  write(bytes: Uint8Array): string | null {
    this.current.exchange?.log(this.stream, bytes);
    return null;
  }
  flush(): string | null {
    return null;
  }
  closedReason(): string | null {
    return null;
  }
}

/** Builds the wasi:cli, clocks and random interfaces for one sandbox. */
export function cliInterfaces(env: Record<string, string>, current: CurrentRequest): Record<string, Record<string, unknown>> {
  const environment: Array<[string, string]> = Object.entries(env);
  const stdout = new OutputStream(new LogSink(current, 'stdout'));
  const stderr = new OutputStream(new LogSink(current, 'stderr'));
  const stdin = new InputStream(null);
  class TerminalInput {}
  class TerminalOutput {}
  const epoch = { seconds: 0n, nanoseconds: 0 };
  return {
    'wasi:cli/environment': {
      getEnvironment: () => environment,
      getArguments: () => [],
      initialCwd: () => undefined,
    },
    'wasi:cli/exit': {
      exit: (status: { tag: 'ok' | 'err' }) => {
        throw new GuestExit(status.tag === 'ok', status.tag === 'ok' ? 0 : 1);
      },
      exitWithCode: (code: number) => {
        throw new GuestExit(code === 0, code);
      },
    },
    'wasi:cli/stdin': { getStdin: () => stdin },
    'wasi:cli/stdout': { getStdout: () => stdout },
    'wasi:cli/stderr': { getStderr: () => stderr },
    'wasi:cli/terminal-input': { TerminalInput },
    'wasi:cli/terminal-output': { TerminalOutput },
    'wasi:cli/terminal-stdin': { getTerminalStdin: () => undefined },
    'wasi:cli/terminal-stdout': { getTerminalStdout: () => undefined },
    'wasi:cli/terminal-stderr': { getTerminalStderr: () => undefined },
    'wasi:clocks/monotonic-clock': {
      now: nowNs,
      resolution: () => 1n,
      subscribeInstant: (at: bigint) => new Pollable(() => nowNs() >= at, at, current.exchange),
      subscribeDuration: (d: bigint) => {
        const at = nowNs() + d;
        return new Pollable(() => nowNs() >= at, at, current.exchange);
      },
    },
    'wasi:clocks/wall-clock': {
      now: () => {
        const ms = Date.now();
        return { seconds: BigInt(Math.floor(ms / 1000)), nanoseconds: (ms % 1000) * 1e6 };
      },
      resolution: () => ({ ...epoch, nanoseconds: 1e6 }),
    },
    'wasi:random/random': {
      getRandomBytes: (len: bigint) => randomFillSync(new Uint8Array(Number(len))),
      getRandomU64: () => randomFillSync(new BigUint64Array(1))[0],
    },
    'wasi:random/insecure': {
      getInsecureRandomBytes: (len: bigint) => randomFillSync(new Uint8Array(Number(len))),
      getInsecureRandomU64: () => randomFillSync(new BigUint64Array(1))[0],
    },
    'wasi:random/insecure-seed': {
      insecureSeed: () => {
        const s = randomFillSync(new BigUint64Array(2));
        return [s[0], s[1]];
      },
    },
  };
}

/**
 * The denied capabilities: a guest that imports them links, sees no preopened directories, and
 * gets `access-denied` (wasi:filesystem, wasi:sockets error-code) from every attempt.
 */
export function deniedInterfaces(): Record<string, Record<string, unknown>> {
  const denied = { tag: 'err', val: 'access-denied' } as const;
  class Descriptor {}
  class DirectoryEntryStream {}
  class Network {}
  class TcpSocket {}
  class UdpSocket {}
  class IncomingDatagramStream {}
  class OutgoingDatagramStream {}
  class ResolveAddressStream {}
  return {
    'wasi:filesystem/preopens': { getDirectories: () => [] },
    'wasi:filesystem/types': { Descriptor, DirectoryEntryStream, filesystemErrorCode: () => undefined },
    'wasi:sockets/network': { Network },
    'wasi:sockets/instance-network': { instanceNetwork: () => new Network() },
    'wasi:sockets/tcp': { TcpSocket },
    'wasi:sockets/udp': { UdpSocket, IncomingDatagramStream, OutgoingDatagramStream },
    'wasi:sockets/tcp-create-socket': { createTcpSocket: () => denied },
    'wasi:sockets/udp-create-socket': { createUdpSocket: () => denied },
    'wasi:sockets/ip-name-lookup': { ResolveAddressStream, resolveAddresses: () => denied },
  };
}
