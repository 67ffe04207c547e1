/**
 * Retrying NATS requests that failed for a passing reason: a request that timed out (a server
 * busy or frozen for a moment, a reply lost while the connection was being restored), no
 * responders (JetStream electing a leader, a server restarting), a connection dropped mid-request.
 * Only idempotent requests may be retried this way (a read, or a create whose name and config
 * are fixed). Anything else (a permission violation, a missing object, a closed connection, bad
 * input) fails at once.
 */
import pRetry from 'p-retry';

/** nats.js error codes of a failure that may pass (nats' ErrorCode: Timeout, NoResponders /
 * JetStreamNotEnabled, Disconnect, JetStream408RequestTimeout). */
const TRANSIENT_CODES = new Set(['TIMEOUT', '503', 'DISCONNECT', '408']);

/** Whether `err` is a NATS failure that a retry of the same idempotent request may not meet. */
export function isTransientNatsError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const e = err as Error & { code?: unknown; api_error?: { code?: number } };
  if (typeof e.code === 'string' && TRANSIENT_CODES.has(e.code)) return true;
  // JetStream's "temporarily unavailable" (no meta leader, a stream's leader moving) is an API
  // error whose HTTP-like code is 503.
  return e.api_error?.code === 503;
}

export interface NatsRetryOptions {
  /** Attempts in all, the first included (default 4). */
  attempts?: number;
  /** Wait before the first retry, doubled at each further one (default 250 ms, at most 4 s). */
  firstDelayMs?: number;
  signal?: AbortSignal;
  /** Called before each retry (for a log line): the attempt that failed (1-based) and its error. */
  onRetry?: (attempt: number, err: Error) => void;
  /** Called between attempts with the failed one's error, before waiting (e.g. to release what
   * the attempt left behind). */
  cleanup?: (err: Error) => void | Promise<void>;
}

/**
 * Runs `request` (an idempotent NATS request) and retries it while it fails transiently
 * (`isTransientNatsError`), with exponential backoff. The last error is thrown as is.
 */
export async function retryNats<T>(request: (attempt: number) => Promise<T>, opts: NatsRetryOptions = {}): Promise<T> {
  const attempts = Math.max(1, opts.attempts ?? 4);
  const first = opts.firstDelayMs ?? 250;
  return pRetry(request, {
    retries: attempts - 1,
    minTimeout: first,
    maxTimeout: Math.max(first, 4000),
    factor: 2,
    randomize: false,
    signal: opts.signal,
    shouldRetry: ({ error }) => isTransientNatsError(error),
    onFailedAttempt: async ({ error, attemptNumber, retriesLeft }) => {
      if (retriesLeft > 0 && isTransientNatsError(error)) {
        await opts.cleanup?.(error);
        opts.onRetry?.(attemptNumber, error);
      }
    },
  });
}
