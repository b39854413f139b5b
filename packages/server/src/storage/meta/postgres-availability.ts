import { debuglog } from 'node:util';
import type { PostgresPool, PostgresPoolClient, PostgresQueryResult } from 'kysely';
import pg from 'pg';
import { AstoreError } from '../../core/errors.ts';
import { nodeNetworkErrorCodes } from '../network-errors.ts';

const debug = debuglog('astore:meta:postgres');

export interface AvailabilityOptions {
  /** Consecutive failures to reach the server (connects or queries) that open the circuit. */
  breakAfterFailures: number;
  /** How long an open circuit refuses at once before one trial connect may close it again. */
  halfOpenAfterMs: number;
}

export const defaultAvailability: AvailabilityOptions = { breakAfterFailures: 5, halfOpenAfterMs: 2000 };

/** What the server looks like from here, for readiness. */
export type MetaBackendState = 'up' | 'down' | 'probing';

/**
 * The pg Pool as Kysely's PostgresDialect uses it, with what a server that is down or goes away needs,
 * in one place under every query (reads, writes, transactions, migrations):
 *
 * - An error that says the server cannot be reached or went away (connection refused or reset, a pool
 *   connect timeout, no answer within query_timeout, the 08 connection-exception SQLSTATEs, 57P01-57P03 shutdown and start-up, 53300
 *   too many connections) becomes AstoreError('ServiceUnavailable'), which each protocol renders as 503
 *   with Retry-After, instead of an internal error. 57014 (statement_timeout) does too, but is not
 *   counted as the server being down.
 * - A circuit breaker: after `breakAfterFailures` such failures in a row, connects are refused at once
 *   for `halfOpenAfterMs`, so a server that does not answer costs each request nothing rather than up
 *   to connectTimeoutMs; then one trial connect (a request's or the readiness probe's) closes it again
 *   on success, while the others are still refused. Unlike cockatiel's breaker (the BlobStore's), callers
 *   do not queue behind the trial, and failures of queries on connections already held count too.
 * - A client whose connection broke is never handed out again: released with `destroy`, so the pool
 *   ends it and opens a new one when the server is back (idle clients the server closed are dropped by
 *   the pool itself). Its error event, which pg emits on a client checked out between two queries and
 *   which would otherwise end the process, is listened to.
 * - Transactions: a statement that fails because the connection broke fails the transaction, which the
 *   server rolls back; Kysely's ROLLBACK on the broken connection fails with the same error, never
 *   success. A COMMIT whose answer was lost may or may not have been applied: its error says so, and a
 *   client that retries repeats the request (an idempotent S3 PUT or registry push lands once).
 */
export class GuardedPool implements PostgresPool {
  readonly options: object;
  private failures = 0;
  /** When the circuit opened; undefined while it is closed. */
  private openedAt: number | undefined;
  private trialInFlight = false;
  private lastFailure: unknown;

  constructor(
    private readonly pool: pg.Pool,
    private readonly limits: AvailabilityOptions = defaultAvailability,
  ) {
    this.options = pool.options;
    pool.on('connect', (client) => client.on('error', (err) => debug('connection lost: %s', err.message)));
  }

  get state(): MetaBackendState {
    if (this.openedAt === undefined) return 'up';
    return this.trialInFlight ? 'probing' : 'down';
  }

  async connect(): Promise<PostgresPoolClient> {
    const trial = this.admit();
    let client: pg.PoolClient;
    try {
      client = await this.pool.connect();
    } catch (err) {
      if (isServerUnavailable(err)) throw this.failed(err, trial);
      // The server answered (e.g. refused the password): it is up, and the error is not a 503.
      this.reached();
      throw err;
    }
    this.reached();
    return new GuardedClient(client, this);
  }

  end(): Promise<void> {
    return this.pool.end();
  }

  /** Whether this connect is the circuit's trial; throws ServiceUnavailable while the circuit refuses. */
  private admit(): boolean {
    if (this.openedAt === undefined) return false;
    if (this.trialInFlight || Date.now() - this.openedAt < this.limits.halfOpenAfterMs) throw this.unavailable();
    this.trialInFlight = true;
    return true;
  }

  /** @internal A connect or a query reached the server (whatever it answered). */
  reached(): void {
    this.failures = 0;
    if (this.openedAt !== undefined) debug('PostgreSQL is reachable again: circuit closed');
    this.openedAt = undefined;
    this.trialInFlight = false;
  }

  /** @internal Counts `err`, a failure to reach the server, and returns the error for the caller. */
  failed(err: unknown, trial = false, during: 'query' | 'commit' = 'query'): AstoreError {
    this.lastFailure = err;
    this.failures++;
    if (trial || (this.openedAt === undefined && this.failures >= this.limits.breakAfterFailures)) {
      if (this.openedAt === undefined) debug('PostgreSQL unreachable after %d failures: circuit open (%s)', this.failures, describe(err));
      this.openedAt = Date.now();
      this.trialInFlight = false;
    }
    const error =
      during === 'commit'
        ? new AstoreError('ServiceUnavailable', `the connection to the PostgreSQL metadata store was lost during COMMIT (${describe(err)}): the change may or may not have been applied; retry shortly`)
        : new AstoreError('ServiceUnavailable', `the PostgreSQL metadata store is unavailable (${describe(err)}); retry shortly`);
    error.cause = err;
    return error;
  }

  private unavailable(): AstoreError {
    const error = new AstoreError('ServiceUnavailable', `the PostgreSQL metadata store is unavailable (${describe(this.lastFailure)}); retry shortly`);
    error.cause = this.lastFailure;
    return error;
  }
}

/** One checkout of a pool client, as Kysely's PostgresConnection uses it (plain queries; no cursors). */
class GuardedClient implements PostgresPoolClient {
  /** The failure that broke this connection: every later query on it fails with it, ROLLBACK included. */
  private broken: AstoreError | undefined;

  constructor(
    private readonly client: pg.PoolClient,
    private readonly guard: GuardedPool,
  ) {}

  get processID(): number | undefined {
    return (this.client as { processID?: number }).processID;
  }

  /** Kysely's interface also takes a cursor; this store configures none, so only (sql, parameters) come. */
  readonly query = ((sql: string, parameters: ReadonlyArray<unknown>) => this.run(sql, parameters)) as PostgresPoolClient['query'];

  private async run(sql: string, parameters: ReadonlyArray<unknown>): Promise<PostgresQueryResult<unknown>> {
    if (typeof sql !== 'string') throw new Error('cursors are not supported by this store');
    if (this.broken) throw this.broken;
    try {
      const result = await this.client.query(sql, parameters as unknown[]);
      this.guard.reached();
      return result as unknown as PostgresQueryResult<unknown>;
    } catch (err) {
      if (isServerUnavailable(err)) {
        // Kysely commits with exactly this statement (PostgresDriver.commitTransaction). A COMMIT pg did
        // not even send (the connection was known broken) certainly did not apply: the server rolled the
        // transaction back when the connection went.
        const unsent = err instanceof Error && notQueryable.test(err.message);
        this.broken = this.guard.failed(err, false, sql === 'commit' && !unsent ? 'commit' : 'query');
        throw this.broken;
      }
      // Otherwise the server answered, refusing the statement (a constraint, a lock lost to another
      // transaction...): the error is the caller's to handle, as it is.
      if (err instanceof pg.DatabaseError) this.guard.reached();
      if (isStatementTimeout(err)) {
        const error = new AstoreError('ServiceUnavailable', `the PostgreSQL metadata store did not answer in time (${describe(err)}); retry shortly`);
        error.cause = err;
        throw error;
      }
      throw err;
    }
  }

  release(destroy?: boolean): void {
    this.client.release(destroy === true || this.broken !== undefined);
  }
}

/** SQLSTATEs of a server that is going away, starting, or refusing connections (class 08 besides). */
const unavailableStates: ReadonlySet<string> = new Set([
  '57P01', // admin_shutdown: the server is stopping (fast shutdown) or the session was terminated
  '57P02', // crash_shutdown: another backend crashed, the server is restarting
  '57P03', // cannot_connect_now: starting up, shutting down, in recovery
  '53300', // too_many_connections
]);

const networkErrors = nodeNetworkErrorCodes;

/**
 * pg's and pg-pool's own messages for a connection that broke, could not be made in time or did not
 * answer within query_timeout (its query may still be running: the client is discarded), and Kysely's
 * for a connection it discarded after a failed ROLLBACK. They carry no code.
 */
const lostConnection =
  /^(Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error and is not queryable|Client was closed and is not queryable|Query read timeout|Postgres connection has been discarded)/;

/** pg's refusal to send a query on a client whose connection already broke. */
const notQueryable = /is not queryable$/;

/** Whether `err` says the server cannot be reached or went away (rather than refused a statement). */
export function isServerUnavailable(err: unknown, depth = 0): boolean {
  if (!(err instanceof Error) || err instanceof AstoreError || depth > 4) return false;
  const code = (err as { code?: unknown }).code;
  if (err instanceof pg.DatabaseError) return typeof code === 'string' && (code.startsWith('08') || unavailableStates.has(code));
  if (typeof code === 'string' && networkErrors.has(code)) return true;
  if (lostConnection.test(err.message)) return true;
  if (err instanceof AggregateError && err.errors.some((inner) => isServerUnavailable(inner, depth + 1))) return true;
  return isServerUnavailable(err.cause, depth + 1);
}

function isStatementTimeout(err: unknown): boolean {
  return err instanceof pg.DatabaseError && err.code === '57014';
}

function describe(err: unknown): string {
  if (!(err instanceof Error)) return 'repeated failures';
  const code = (err as { code?: unknown }).code;
  // Node's AggregateError of a refused connection to every address has an empty message.
  const message = err.message || (err instanceof AggregateError ? err.errors.map((inner: unknown) => (inner instanceof Error ? inner.message : String(inner))).join('; ') : '');
  return typeof code === 'string' && !message.includes(code) ? `${code}: ${message}` : message || String(code ?? err.name);
}
