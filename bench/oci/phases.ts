// The four kinds of OCI phase: push and pull of the large image (operations are layers), push and pull
// of small manifests (operations are manifests). Each runs on the benchmarks' bounded pool
// (bench/common/phase.ts) with a fresh keep-alive Agent, and records the server's peak RSS over the phase.

import type http from 'node:http';
import { performance } from 'node:perf_hooks';
import { sampledPhase } from '../common/driver.ts';
import { keepAliveAgent } from '../common/http.ts';
import { poolOf, runPool, type PhaseResult, type PoolOptions } from '../common/phase.ts';
import type { ServerMonitor } from '../common/driver.ts';
import type { OciClient } from './client.ts';
import { blobsOf, configBlob, imageManifest, layerBlob, tinyLayer, type ImagesFile } from './image.ts';
import type { ImageWorkload, ManifestWorkload } from './workloads.ts';

export interface PhaseContext {
  /** The registry, or its first replica: setup requests, the image's config blob and manifest. */
  client: OciClient;
  /**
   * Every replica's client, when there are several: operation i of a phase (a layer, a manifest with
   * its blobs) goes to replica i mod n on push and (i + 1) mod n on pull, so a pull reads what another
   * replica stored.
   */
  clients?: readonly OciClient[];
  /** Unique per load generator run; mixed into config blobs so none is ever seen twice. */
  runId: string;
  sampler?: ServerMonitor;
}

/** The client of operation `index` of a push or pull phase (see PhaseContext.clients). */
function clientFor(ctx: PhaseContext, op: 'push' | 'pull', index: number): OciClient {
  const all = ctx.clients ?? [ctx.client];
  return all[(index + (op === 'pull' ? 1 : 0)) % all.length] ?? ctx.client;
}

/** What a push phase stored, for the pull phase after it: one tag for the image, `m-<i>` for manifests. */
export type Pushed = { tag: string; digest: string }[];

const SMALL_REQUEST_MS = 30_000;

/**
 * Pushes the image: its config blob, then the layers through the pool (`concurrency` at a time), then
 * the manifest. MiB/s is the layers' bytes over the wall time of all of it, as a user waiting for
 * `push` sees it; latencies are per layer.
 */
export async function pushImage(
  ctx: PhaseContext,
  spec: ImageWorkload,
  repo: string,
  images: ImagesFile,
): Promise<{ phase: PhaseResult; pushed: Pushed }> {
  const files = images.sets[spec.imageSet];
  if (files === undefined) throw new Error(`images.json has no layer set ${spec.imageSet}`);
  const layers = files.map(layerBlob);
  const config = configBlob(`${ctx.runId}/${spec.id}`, layers);
  const manifest = imageManifest(config, layers);
  const pushed: Pushed = [];
  return measured(ctx, spec.concurrency, async (agent) => {
    const start = performance.now();
    await ctx.client.pushBlob(agent, repo, config, AbortSignal.timeout(SMALL_REQUEST_MS));
    const phase = await runPool(`push ${spec.id}`, 'PUT', spec, poolOf(spec), async (index, signal) => {
      const layer = layers[index];
      if (layer === undefined) throw new Error(`no layer ${index}`);
      if (!(await clientFor(ctx, 'push', index).pushBlob(agent, repo, layer, signal))) {
        throw new Error(`${repo} already had ${layer.digest}: nothing was uploaded`);
      }
      return layer.size;
    });
    if (phase.completed === layers.length) {
      try {
        const signal = AbortSignal.timeout(SMALL_REQUEST_MS);
        pushed.push({ tag: 'latest', digest: await ctx.client.putManifest(agent, repo, 'latest', manifest, signal) });
      } catch (err) {
        recordError(phase, err);
      }
    }
    return { phase: overWallTime(phase, performance.now() - start), pushed };
  });
}

/** Pulls the image: manifest, config blob, then the layers through the pool; timed like pushImage. */
export async function pullImage(
  ctx: PhaseContext,
  spec: ImageWorkload,
  repo: string,
  pushed: Pushed,
): Promise<{ phase: PhaseResult }> {
  const image = pushed[0];
  if (image === undefined) throw new Error('the push phase stored no image');
  return measured(ctx, spec.concurrency, async (agent) => {
    const start = performance.now();
    const signal = AbortSignal.timeout(SMALL_REQUEST_MS);
    const manifest = await ctx.client.getManifest(agent, repo, image.tag, image.digest, signal);
    const [config, ...layers] = blobsOf(manifest);
    if (config !== undefined) await ctx.client.pullBlob(agent, repo, config, signal);
    const pool: PoolOptions = { ...poolOf(spec), maxOps: layers.length };
    const phase = await runPool(`pull ${spec.id}`, 'GET', spec, pool, async (index, signal) => {
      const layer = layers[index];
      if (layer === undefined) throw new Error(`no layer ${index}`);
      return clientFor(ctx, 'pull', index).pullBlob(agent, repo, layer, signal);
    });
    return { phase: overWallTime(phase, performance.now() - start) };
  });
}

/**
 * Pushes manifests `m-<i>` as a client pushing a tiny image would: HEAD of the layer they all share
 * (pushed once before the phase, so it is found), HEAD + upload of the manifest's own config blob, PUT
 * of the manifest. ops/s is manifests per second.
 */
export async function pushManifests(
  ctx: PhaseContext,
  spec: ManifestWorkload,
  repo: string,
): Promise<{ phase: PhaseResult; pushed: Pushed }> {
  const layer = tinyLayer();
  const pushed: Pushed = [];
  return measured(ctx, spec.concurrency, async (agent) => {
    await ctx.client.pushBlob(agent, repo, layer, AbortSignal.timeout(SMALL_REQUEST_MS));
    const phase = await runPool(`push ${spec.id}`, 'PUT', spec, poolOf(spec), async (index, signal) => {
      const config = configBlob(`${ctx.runId}/${spec.id}/${index}`, [layer]);
      const manifest = imageManifest(config, [layer]);
      const client = clientFor(ctx, 'push', index);
      if (await client.pushBlob(agent, repo, layer, signal)) {
        throw new Error(`HEAD of the shared layer ${layer.digest} answered 404 after it was pushed`);
      }
      await client.pushBlob(agent, repo, config, signal);
      const tag = `m-${index}`;
      pushed.push({ tag, digest: await client.putManifest(agent, repo, tag, manifest, signal) });
      return config.size + manifest.length;
    });
    return { phase, pushed };
  });
}

/** Pulls every manifest the push phase stored, once each: GET of the manifest, then of its blobs. */
export async function pullManifests(
  ctx: PhaseContext,
  spec: ManifestWorkload,
  repo: string,
  pushed: Pushed,
): Promise<{ phase: PhaseResult }> {
  if (pushed.length === 0) throw new Error('the push phase stored no manifest');
  return measured(ctx, spec.concurrency, async (agent) => {
    const pool: PoolOptions = { ...poolOf(spec), maxOps: pushed.length };
    const phase = await runPool(`pull ${spec.id}`, 'GET', spec, pool, async (index, signal) => {
      const item = pushed[index];
      if (item === undefined) throw new Error(`no manifest ${index}`);
      const client = clientFor(ctx, 'pull', index);
      const manifest = await client.getManifest(agent, repo, item.tag, item.digest, signal);
      let bytes = manifest.length;
      for (const blob of blobsOf(manifest)) bytes += await client.pullBlob(agent, repo, blob, signal);
      return bytes;
    });
    return { phase };
  });
}

/** Runs a phase with its own Agent and stamps the server's RSS over it onto the result. */
async function measured<T extends { phase: PhaseResult }>(
  ctx: PhaseContext,
  concurrency: number,
  run: (agent: http.Agent) => Promise<T>,
): Promise<T> {
  const agent = keepAliveAgent(concurrency);
  try {
    return await sampledPhase(ctx.sampler, () => run(agent));
  } finally {
    agent.destroy();
  }
}

/** Rates over the whole image transfer (manifest and config included), not only the pool's span. */
function overWallTime(phase: PhaseResult, wallMs: number): PhaseResult {
  const seconds = Math.max(wallMs, 0.001) / 1000;
  return {
    ...phase,
    elapsedMs: wallMs,
    mibPerSec: phase.bytes / (1024 * 1024) / seconds,
    opsPerSec: phase.completed / seconds,
  };
}

function recordError(phase: PhaseResult, err: unknown): void {
  phase.errors++;
  phase.firstError ??= err instanceof Error ? err.message : String(err);
}
