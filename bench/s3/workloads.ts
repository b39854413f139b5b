// The benchmark's workloads, shared by every driver (S3 targets, loopback HTTP sink, raw disk) so that a
// row of the report compares the same bytes moved the same way. Every phase is bounded twice: by a
// count and by a time limit, whichever comes first.

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** Large-object phase: `count` objects of `size` bytes, `concurrency` at a time; reports MiB/s. */
export interface ThroughputSpec {
  kind: 'throughput';
  /** Row id, also the key prefix: `1MiB`, `64MiB`, `1GiB`, `2GiB`. */
  id: string;
  size: number;
  count: number;
  concurrency: number;
  maxSeconds: number;
  /** Optional phases are dropped by `--no-2g`; they exist to measure peak RSS on a huge object. */
  optional?: boolean;
}

/** Small-object phase: up to `maxOps` requests or `maxSeconds`; reports ops/s, p50 and p99. */
export interface OpsSpec {
  kind: 'ops';
  /** Row id, also the key prefix: `4KiB-c16`. */
  id: string;
  size: number;
  concurrency: number;
  maxOps: number;
  maxSeconds: number;
}

export type WorkloadSpec = ThroughputSpec | OpsSpec;

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

export function formatSize(bytes: number): string {
  if (bytes >= GiB && bytes % GiB === 0) return `${bytes / GiB} GiB`;
  if (bytes >= MiB && bytes % MiB === 0) return `${bytes / MiB} MiB`;
  if (bytes >= KiB && bytes % KiB === 0) return `${bytes / KiB} KiB`;
  return `${bytes} B`;
}

export { KiB, MiB, GiB };
