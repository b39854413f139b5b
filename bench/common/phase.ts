// Runs one bounded phase (a pool of `concurrency` workers issuing numbered operations) and turns the
// samples into a PhaseResult. Shared by both benchmarks' load generators and the S3 raw disk driver.

import { setMaxListeners } from 'node:events';
import { performance } from 'node:perf_hooks';
import type { CpuUsage } from './cpu.ts';
import type { WorkloadSpec } from './workloads.ts';

export type Op = 'PUT' | 'GET';

/** One row's figures for one driver; what the report reads (JSON files under the run's tmp dir). */
export interface PhaseResult {
  /** `PUT 1MiB`, `GET 4KiB-c16`...: `<op> <workload id>`, the join key between drivers. */
  name: string;
  op: Op;
  kind: WorkloadSpec['kind'];
  size: number;
  concurrency: number;
  /** Operations the phase meant to do (throughput) or was allowed to do (ops). */
  planned: number;
  completed: number;
  errors: number;
  firstError?: string;
  /** True when the time limit, not the count, ended the phase. */
  timedOut: boolean;
  elapsedMs: number;
  bytes: number;
  mibPerSec: number;
  opsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** Peak RSS of the server process during this phase, and its RSS when the phase began. */
  peakRssKiB?: number;
  startRssKiB?: number;
  /** CPU seconds of the server (`server`, its replicas summed), its backends and the client over the phase. */
  cpu?: CpuUsage;
}

export interface DriverResult {
  /** `astore`, `minio`, `distribution`, `loopback`, `disk`, `astore-2g`... */
  target: string;
  detail: string;
  startedAt: string;
  phases: PhaseResult[];
  serverPid?: number;
  /**
   * Peak RSS over the whole run (100 ms polling) and the kernel's high-water mark at the end; both summed
   * over the replicas when there are several.
   */
  peakRssKiB?: number;
  hwmKiB?: number;
  /** RSS when the load generator attached, before its warm-up: the server's idle footprint. */
  startRssKiB?: number;
  notes: string[];
}

export interface PoolOptions {
  concurrency: number;
  /** Upper bound on operations started. */
  maxOps: number;
  maxSeconds: number;
  /**
   * What the time limit does. `abort`: cancel in-flight operations through the signal (large objects:
   * a stuck 1 GiB transfer must not hold the run). `drain`: start no new operation, let the in-flight
   * ones finish (small objects; their latency belongs in the figures).
   */
  onDeadline: 'abort' | 'drain';
}

/** Bytes moved by one finished operation. */
export type Operation = (index: number, signal: AbortSignal) => Promise<number>;

/** Grace after the deadline for `drain` before in-flight operations are aborted anyway. */
const DRAIN_GRACE_MS = 10_000;

export async function runPool(
  name: string,
  op: Op,
  spec: WorkloadSpec,
  pool: PoolOptions,
  operation: Operation,
): Promise<PhaseResult> {
  const controller = new AbortController();
  // Every in-flight request listens on the phase's signal (node:http and the body writer): up to 2 per
  // worker, more than the default warning threshold of 10.
  setMaxListeners(4 * pool.concurrency + 10, controller.signal);
  const latencies: number[] = [];
  let next = 0;
  let completed = 0;
  let errors = 0;
  let bytes = 0;
  let firstError: string | undefined;
  let timedOut = false;
  let deadlinePassed = false;

  const start = performance.now();
  let lastEnd = start;
  const deadline = setTimeout(() => {
    deadlinePassed = true;
    timedOut = next < pool.maxOps;
    if (pool.onDeadline === 'abort') controller.abort(new Error(`${name}: time limit ${pool.maxSeconds} s`));
    else setTimeout(() => controller.abort(new Error(`${name}: drain grace exceeded`)), DRAIN_GRACE_MS).unref();
  }, pool.maxSeconds * 1000);

  const worker = async (): Promise<void> => {
    while (!deadlinePassed && !controller.signal.aborted && next < pool.maxOps) {
      const index = next++;
      const t0 = performance.now();
      try {
        // Not `bytes += await ...`: that reads `bytes` before the await and loses the other workers' adds.
        const moved = await operation(index, controller.signal);
        bytes += moved;
        const t1 = performance.now();
        latencies.push(t1 - t0);
        completed++;
        lastEnd = t1;
      } catch (err) {
        if (controller.signal.aborted) {
          timedOut = true;
          return;
        }
        errors++;
        firstError ??= err instanceof Error ? err.message : String(err);
        // One failing request is a finding; a run of them means the target is gone. Stop the phase.
        if (errors >= 10) controller.abort(new Error(`${name}: too many errors`));
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.max(1, pool.concurrency) }, worker));
  } finally {
    clearTimeout(deadline);
  }

  // Throughput over the span in which operations completed; a timed-out phase still reports what it did.
  const elapsedMs = Math.max(lastEnd - start, 0.001);
  latencies.sort((a, b) => a - b);
  return {
    name,
    op,
    kind: spec.kind,
    size: spec.size,
    concurrency: pool.concurrency,
    planned: pool.maxOps,
    completed,
    errors,
    ...(firstError === undefined ? {} : { firstError }),
    timedOut,
    elapsedMs,
    bytes,
    mibPerSec: bytes / (1024 * 1024) / (elapsedMs / 1000),
    opsPerSec: completed / (elapsedMs / 1000),
    p50Ms: percentile(latencies, 0.5),
    p99Ms: percentile(latencies, 0.99),
  };
}

/** Nearest-rank percentile of sorted values; NaN when there are none. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil(p * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] ?? Number.NaN;
}

/** Pool options of a workload: throughput phases abort at their limit, ops phases drain. */
export function poolOf(spec: WorkloadSpec): PoolOptions {
  return spec.kind === 'throughput'
    ? { concurrency: spec.concurrency, maxOps: spec.count, maxSeconds: spec.maxSeconds, onDeadline: 'abort' }
    : { concurrency: spec.concurrency, maxOps: spec.maxOps, maxSeconds: spec.maxSeconds, onDeadline: 'drain' };
}

/** The result of a phase that threw before it could run: one error, nothing done, no figures. */
export function failedPhase(name: string, op: Op, spec: WorkloadSpec, message: string): PhaseResult {
  return {
    name,
    op,
    kind: spec.kind,
    size: spec.size,
    concurrency: spec.concurrency,
    planned: 0,
    completed: 0,
    errors: 1,
    firstError: message,
    timedOut: false,
    elapsedMs: 0,
    bytes: 0,
    mibPerSec: Number.NaN,
    opsPerSec: Number.NaN,
    p50Ms: Number.NaN,
    p99Ms: Number.NaN,
  };
}
