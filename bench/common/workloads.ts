// The shape of a benchmark phase, shared by both benchmarks' plans (bench/s3/workloads.ts,
// bench/oci/workloads.ts) and by the bounded pool that runs them (phase.ts). Every phase is bounded
// twice: by a count and by a time limit, whichever comes first.

const KiB = 1024;
const MiB = 1024 * KiB;
const GiB = 1024 * MiB;

/** Large-object phase: `count` objects of `size` bytes, `concurrency` at a time; reports MiB/s. */
export interface ThroughputSpec {
  kind: 'throughput';
  /** Row id, the join key between drivers and, in the S3 benchmark, the key prefix: `1MiB`, `image-c1`. */
  id: string;
  size: number;
  count: number;
  concurrency: number;
  maxSeconds: number;
  /** Optional phases are dropped by the S3 benchmark's `--no-2g`; they measure peak RSS on a huge object. */
  optional?: boolean;
}

/** Small-object phase: up to `maxOps` requests or `maxSeconds`; reports ops/s, p50 and p99. */
export interface OpsSpec {
  kind: 'ops';
  /** Row id, as for ThroughputSpec: `4KiB-c16`, `manifests-c16`. */
  id: string;
  size: number;
  concurrency: number;
  maxOps: number;
  maxSeconds: number;
}

export type WorkloadSpec = ThroughputSpec | OpsSpec;

export function formatSize(bytes: number): string {
  if (bytes >= GiB && bytes % GiB === 0) return `${bytes / GiB} GiB`;
  if (bytes >= MiB && bytes % MiB === 0) return `${bytes / MiB} MiB`;
  if (bytes >= KiB && bytes % KiB === 0) return `${bytes / KiB} KiB`;
  return `${bytes} B`;
}

export { KiB, MiB, GiB };
