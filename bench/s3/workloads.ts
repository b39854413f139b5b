// The S3 benchmark's workloads, shared by every driver (S3 targets, loopback HTTP sink, raw disk) so that
// a row of the report compares the same bytes moved the same way. The phase shapes, each bounded by a
// count and a time limit, are bench/common/workloads.ts.

import { formatSize, GiB, KiB, MiB, type WorkloadSpec } from '../common/workloads.ts';

export interface WorkloadOptions {
  /** Smaller counts and shorter limits, for trying the harness out (BENCH_QUICK=1). */
  quick: boolean;
  /** Include the single 2 GiB object (peak RSS acceptance check). On by default. */
  big2g: boolean;
}

/**
 * The plan, in the order it runs. Large objects first (1 GiB right after 64 MiB so the peak-RSS window
 * of interest is clean), then small objects, then the optional 2 GiB object last.
 */
export function workloads(options: WorkloadOptions): WorkloadSpec[] {
  const q = options.quick;
  const plan: WorkloadSpec[] = [
    { kind: 'throughput', id: '1MiB', size: MiB, count: q ? 16 : 64, concurrency: 8, maxSeconds: 30 },
    { kind: 'throughput', id: '64MiB', size: 64 * MiB, count: q ? 2 : 8, concurrency: 4, maxSeconds: 60 },
    { kind: 'throughput', id: '1GiB', size: q ? 256 * MiB : GiB, count: 1, concurrency: 1, maxSeconds: 90 },
  ];
  for (const concurrency of [1, 16, 64]) {
    plan.push({
      kind: 'ops',
      id: `4KiB-c${concurrency}`,
      size: 4 * KiB,
      concurrency,
      maxOps: q ? 500 : 5000,
      maxSeconds: q ? 3 : 10,
    });
  }
  if (options.big2g) {
    plan.push({
      kind: 'throughput',
      id: '2GiB',
      size: q ? 512 * MiB : 2 * GiB,
      count: 1,
      concurrency: 1,
      maxSeconds: 150,
      optional: true,
    });
  }
  return plan;
}

/** Human label of a phase, used in the report: `PUT 64 MiB ×8 (c=4)`. */
export function describe(op: string, spec: WorkloadSpec): string {
  if (spec.kind === 'ops') return `${op} ${formatSize(spec.size)} c=${spec.concurrency}`;
  const times = spec.count > 1 ? ` ×${spec.count}` : '';
  return `${op} ${formatSize(spec.size)}${times} (c=${spec.concurrency})`;
}
