// The OCI benchmark's phases, shared by every target (astore, Distribution, the loopback sink) so that a
// row of the report compares the same requests. Each workload is a push phase into a fresh repository,
// then a pull phase of what it pushed. Every phase is bounded twice: by a count and by a time limit.
//
// The phases share the S3 benchmark's WorkloadSpec and pool (bench/common/): a large workload is a
// `throughput` spec whose operations are the image's layers, a small one an `ops` spec whose operations
// are whole manifests (one tiny image each).

import { MiB, type OpsSpec, type ThroughputSpec } from '../common/workloads.ts';

/** The large image: 5 layers, 500 MiB in all (50 MiB with BENCH_QUICK=1). */
export function layerSizes(quick: boolean): number[] {
  return [60, 80, 100, 120, 140].map((mib) => (quick ? mib / 10 : mib) * MiB);
}

/** Large-image workload: its operations are layers, `concurrency` of them in flight. */
export interface ImageWorkload extends ThroughputSpec {
  /** Which generated layer set it pushes (image.ts), distinct per workload so no blob is pushed twice. */
  imageSet: string;
}

/** Small-manifest workload: its operations are manifests `m-<i>`, each with its own config blob. */
export type ManifestWorkload = OpsSpec;

export type OciWorkload = ImageWorkload | ManifestWorkload;

/** Layer sets the generator must write, one per large workload. */
export const IMAGE_SETS = ['c1', 'c5'] as const;

/**
 * The plan, in the order it runs: the large image one layer at a time, then one layer per worker, then
 * the small manifests one at a time and 16 at a time. Ids are the join key between targets.
 */
export function workloads(quick: boolean): OciWorkload[] {
  const sizes = layerSizes(quick);
  const imageBytes = sizes.reduce((a, b) => a + b, 0);
  const plan: OciWorkload[] = IMAGE_SETS.map((set) => ({
    kind: 'throughput' as const,
    id: `image-${set}`,
    imageSet: set,
    size: imageBytes,
    count: sizes.length,
    concurrency: set === 'c1' ? 1 : sizes.length,
    maxSeconds: quick ? 60 : 240,
  }));
  for (const concurrency of [1, 16]) {
    plan.push({
      kind: 'ops',
      id: `manifests-c${concurrency}`,
      size: 0, // manifests are a few hundred bytes; the figure is manifests per second
      concurrency,
      maxOps: quick ? 40 : 200,
      maxSeconds: quick ? 15 : 60,
    });
  }
  return plan;
}
