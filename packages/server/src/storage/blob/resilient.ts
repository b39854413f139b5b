import type { Readable } from 'node:stream';
import { CircuitState, ConsecutiveBreaker, ExponentialBackoff, circuitBreaker, handleWhen, isBrokenCircuitError, retry, wrap, type IPolicy } from 'cockatiel';
import { AstoreError } from '../../core/errors.ts';
import { BlobNotFoundError, type BlobListing, type BlobStat, type BlobStore, type ByteRange } from './types.ts';

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
 * - A missing blob (BlobNotFoundError) is an answer, not a failure: never retried, never counted.
 * - While the circuit is open every call fails with AstoreError('ServiceUnavailable'), which each
 *   protocol renders as 503 with Retry-After (S3 ServiceUnavailable, OCI UNAVAILABLE).
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
    const failure = handleWhen((err) => !(err instanceof BlobNotFoundError) && !isAbort(err));
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

  put(key: string, body: Readable, signal?: AbortSignal): Promise<BlobStat> {
    return this.run(this.once, () => this.inner.put(key, body, signal), signal);
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

function describe(failure: unknown): string {
  const error = failure && typeof failure === 'object' && 'error' in failure ? (failure as { error: unknown }).error : undefined;
  return error instanceof Error ? error.message : 'repeated failures';
}
