import type { Readable } from 'node:stream';
import { CircuitState, ConsecutiveBreaker, ExponentialBackoff, circuitBreaker, handleWhen, isBrokenCircuitError, retry, wrap, type IPolicy } from 'cockatiel';
import { AstoreError } from '../../core/errors.ts';
import { BlobNotFoundError, type BlobListing, type BlobStat, type BlobStore, type ByteRange, type PutOptions } from './types.ts';
import { nodeNetworkErrorCodes } from '../network-errors.ts';

export interface ResilienceOptions {
  /** Attempts of an idempotent call (stat, get, move, delete, a listing page) before it fails. */
  maxAttempts: number;
  /** First retry delay; later ones grow exponentially, with jitter, up to maxDelayMs. */
  initialDelayMs: number;
  maxDelayMs: number;
  /** Consecutive failed calls that open the circuit: calls then fail at once with ServiceUnavailable. */
  breakAfterFailures: number;
  /** How long the circuit stays open before one trial call may close it again. */
  halfOpenAfterMs: number;
}

export const defaultResilience: ResilienceOptions = { maxAttempts: 3, initialDelayMs: 100, maxDelayMs: 2000, breakAfterFailures: 5, halfOpenAfterMs: 5000 };

/** What the backend is doing, for readiness. */
export type BackendState = 'up' | 'down' | 'probing';

/**
 * Wraps any BlobStore with retries (exponential backoff, decorrelated jitter) and a circuit breaker,
 * so a backend that fails is retried a little, then refused quickly with a clear error while it is
 * down, and used again as soon as one trial call succeeds: no restart needed.
 *
 * - Idempotent calls (stat, get, move, delete, listing pages) are retried; `put` is not (its body is a
 *   stream, consumed once): the client's own retry repeats it.
 * - A missing blob (BlobNotFoundError) is an answer, not a failure: never retried, never counted; nor
 *   is an AstoreError (the client's body refused while a put streams it, e.g. EntityTooLarge) or an abort.
 * - While the circuit is open every call fails with AstoreError('ServiceUnavailable'), which each
 *   protocol renders as 503 with Retry-After (S3 ServiceUnavailable, OCI UNAVAILABLE).
 * - Before it opens, a call whose retries are spent because the backend cannot be reached (connection
 *   refused or reset, timeouts) or answers 5xx fails with ServiceUnavailable too, and one the backend
 *   throttled (429, SlowDown) with SlowDown: the client sees the same clear, retryable error from the
 *   first failure on, never a 500. Other errors (a bug, a refused credential) stay as they are.
 */
export class ResilientBlobStore implements BlobStore {
  readonly name: string;
  private readonly breaker;
  private readonly idempotent: IPolicy;
  private readonly once: IPolicy;

  constructor(
    private readonly inner: BlobStore,
    options: ResilienceOptions = defaultResilience,
  ) {
    this.name = inner.name;
    const failure = handleWhen((err) => !(err instanceof BlobNotFoundError) && !(err instanceof AstoreError) && !isAbort(err));
    this.breaker = circuitBreaker(failure, { halfOpenAfter: options.halfOpenAfterMs, breaker: new ConsecutiveBreaker(options.breakAfterFailures) });
    const retries = retry(failure, {
      maxAttempts: options.maxAttempts - 1,
      backoff: new ExponentialBackoff({ initialDelay: options.initialDelayMs, maxDelay: options.maxDelayMs }),
    });
    // The breaker outside the retries: one call that exhausted its retries is one failure, and an
    // open circuit stops a call before it starts retrying.
    this.idempotent = wrap(this.breaker, retries);
    this.once = this.breaker;
  }

  get state(): BackendState {
    const state = this.breaker.state;
    return state === CircuitState.Closed ? 'up' : state === CircuitState.HalfOpen ? 'probing' : 'down';
  }

  stat(key: string, signal?: AbortSignal): Promise<BlobStat | null> {
    return this.run(this.idempotent, () => this.inner.stat(key, signal), signal);
  }

  get(key: string, range?: ByteRange, signal?: AbortSignal): Promise<Readable> {
    return this.run(this.idempotent, () => this.inner.get(key, range, signal), signal);
  }

  put(key: string, body: Readable, signal?: AbortSignal, options?: PutOptions): Promise<BlobStat> {
    return this.run(this.once, () => this.inner.put(key, body, signal, options), signal);
  }

  move(from: string, to: string, signal?: AbortSignal): Promise<void> {
    return this.run(this.idempotent, () => this.inner.move(from, to, signal), signal);
  }

  delete(key: string, signal?: AbortSignal): Promise<void> {
    return this.run(this.idempotent, () => this.inner.delete(key, signal), signal);
  }

  async *list(prefix: string, signal?: AbortSignal): AsyncIterable<BlobListing> {
    // A listing is consumed lazily: each step (one page from the backend) goes through the breaker.
    const iterator = this.inner.list(prefix, signal)[Symbol.asyncIterator]();
    for (;;) {
      const step = await this.run(this.idempotent, () => iterator.next(), signal);
      if (step.done) return;
      yield step.value;
    }
  }

  presignGet?: (key: string, expiresInSeconds: number) => Promise<string>;

  close(): Promise<void> {
    return this.inner.close();
  }

  private async run<T>(policy: IPolicy, call: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    try {
      return await policy.execute(call, signal);
    } catch (err) {
      if (isBrokenCircuitError(err)) {
        throw new AstoreError('ServiceUnavailable', `the ${this.name} blob store is unavailable (${describe(this.breaker.lastFailure)}); retry shortly`);
      }
      const code = backendFailure(err);
      if (code) {
        const error = new AstoreError(code, `the ${this.name} blob store failed (${(err as Error).message}); retry shortly`);
        error.cause = err;
        throw error;
      }
      throw err;
    }
  }
}

/** Binds the optional presignGet of the inner store, when it has one. */
export function resilient(inner: BlobStore, options?: ResilienceOptions): ResilientBlobStore {
  const store = new ResilientBlobStore(inner, options);
  if (inner.presignGet) store.presignGet = (key, seconds) => inner.presignGet!(key, seconds);
  return store;
}

function isAbort(err: unknown): boolean {
  return err instanceof Error && (err.name === 'AbortError' || (err instanceof AstoreError && err.code === 'IncompleteBody'));
}

/** Node and undici errors of a backend that cannot be reached or went away mid-request. */
const networkErrors: ReadonlySet<string> = new Set([
  ...nodeNetworkErrorCodes,
  'ERR_STREAM_PREMATURE_CLOSE',
  'REQUEST_SEND_ERROR', // Azure: the request could not be sent
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
]);

/**
 * Which retryable error the client should see for a backend failure, or undefined when `err` is not
 * one (then it stays an internal error). Looks at the HTTP status the SDKs attach (S3 `$metadata`,
 * Azure `statusCode`, GCS a numeric `code`), the network error code, and the cause chain.
 */
export function backendFailure(err: unknown, depth = 0): 'ServiceUnavailable' | 'SlowDown' | undefined {
  if (!(err instanceof Error) || err instanceof AstoreError || depth > 4) return undefined;
  const fields = err as Error & { code?: unknown; statusCode?: unknown; Code?: unknown; $metadata?: { httpStatusCode?: number } };
  const status = fields.$metadata?.httpStatusCode ?? (typeof fields.statusCode === 'number' ? fields.statusCode : typeof fields.code === 'number' ? fields.code : undefined);
  if (status === 429 || err.name === 'SlowDown' || fields.Code === 'SlowDown') return 'SlowDown';
  if (status !== undefined && status >= 500) return 'ServiceUnavailable';
  if (typeof fields.code === 'string' && networkErrors.has(fields.code)) return 'ServiceUnavailable';
  if (err.name === 'TimeoutError') return 'ServiceUnavailable';
  if (err instanceof AggregateError) {
    for (const inner of err.errors) {
      const code = backendFailure(inner, depth + 1);
      if (code) return code;
    }
  }
  return backendFailure(err.cause, depth + 1);
}

function describe(failure: unknown): string {
  const error = failure && typeof failure === 'object' && 'error' in failure ? (failure as { error: unknown }).error : undefined;
  return error instanceof Error ? error.message : 'repeated failures';
}
