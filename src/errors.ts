/**
 * isola's one error type. Every failure that can reach a user carries a stable `ERR_*` code
 * (the same code in logs, JSON error bodies and CLI output) and says whether it is the user's
 * to fix (`user: true`: bad config, bad module, bad request — printed without a stack) or a
 * system fault (`user: false`: logged with its stack). Shape follows miniflare's `ERR_*` codes
 * and Hono's `HTTPException(status, {message, cause})`.
 */
export type ErrorCode =
  | 'ERR_CONFIG_PARSE'
  | 'ERR_CONFIG_INVALID'
  | 'ERR_CONFIG_NOT_FOUND'
  | 'ERR_BUILD_FAILED'
  | 'ERR_WASM_INVALID'
  | 'ERR_WASM_NOT_COMPONENT'
  | 'ERR_WASM_NO_HANDLER'
  | 'ERR_WASM_UNKNOWN_IMPORT'
  | 'ERR_WASM_NOT_WASI_COMMAND'
  | 'ERR_ABI_MISMATCH'
  | 'ERR_TRANSPILE'
  | 'ERR_ROUTE_NOT_FOUND'
  | 'ERR_ROUTE_CONFLICT'
  | 'ERR_REQUEST_BODY_TOO_LARGE'
  | 'ERR_RESPONSE_BODY_TOO_LARGE'
  | 'ERR_GUEST_TRAP'
  | 'ERR_GUEST_NO_RESPONSE'
  | 'ERR_GUEST_ERROR_RESPONSE'
  | 'ERR_GUEST_BAD_RESPONSE'
  | 'ERR_GUEST_EXIT'
  | 'ERR_WALL_TIMEOUT'
  | 'ERR_CPU_LIMIT'
  | 'ERR_MEMORY_LIMIT'
  | 'ERR_FUEL_LIMIT'
  | 'ERR_TENANT_BUDGET'
  | 'ERR_SANDBOX_CRASHED'
  | 'ERR_OVERLOADED'
  | 'ERR_SHUTTING_DOWN'
  // control plane (admin API, store, CLI client)
  | 'ERR_UNAUTHORIZED'
  | 'ERR_FORBIDDEN'
  | 'ERR_NOT_FOUND'
  | 'ERR_BAD_REQUEST'
  | 'ERR_TENANT_NOT_FOUND'
  | 'ERR_TENANT_EXISTS'
  | 'ERR_TENANT_LIMIT'
  | 'ERR_FUNCTION_NOT_FOUND'
  | 'ERR_VERSION_NOT_FOUND'
  | 'ERR_NO_DEPLOYMENT'
  | 'ERR_NO_PREVIOUS_DEPLOYMENT'
  | 'ERR_HOST_CLAIMED'
  | 'ERR_UPLOAD_EMPTY'
  | 'ERR_UPLOAD_TOO_LARGE'
  | 'ERR_UPLOAD_CONTENT_TYPE'
  | 'ERR_WASM_MEMORY_LIMIT'
  | 'ERR_STORE'
  | 'ERR_ADMIN_UNREACHABLE'
  | 'ERR_USAGE'
  | 'ERR_INTERNAL';

export interface IsolaErrorOptions {
  /** HTTP status to answer with when this error ends a request (default 500). */
  status?: number;
  /** true when the user (config author, tenant, client) can fix it; false for system faults. */
  user?: boolean;
  /** A short hint on how to fix it, printed after the message by the CLI. */
  hint?: string;
  /** Structured details (key names, line numbers, import names) for logs and JSON bodies. */
  details?: Record<string, unknown>;
  cause?: unknown;
}

export class IsolaError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly user: boolean;
  readonly hint: string | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: IsolaErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'IsolaError';
    this.code = code;
    this.status = options.status ?? 500;
    this.user = options.user ?? false;
    this.hint = options.hint;
    this.details = options.details;
  }

  /** The JSON error body isola sends: `{ error: { code, message, request_id? } }`. */
  toJSON(requestId?: string): { error: { code: ErrorCode; message: string; request_id?: string } } {
    return { error: { code: this.code, message: this.message, ...(requestId ? { request_id: requestId } : {}) } };
  }
}

/** Wraps anything thrown into an IsolaError (non-IsolaErrors become `ERR_INTERNAL`, status 500). */
export function toIsolaError(err: unknown): IsolaError {
  if (err instanceof IsolaError) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new IsolaError('ERR_INTERNAL', message, { cause: err });
}
