// OCI load generator: runs the workloads of workloads.ts (push, then pull of what was pushed) against one
// registry and writes a JSON DriverResult (bench/common/phase.ts); bench/oci/run.sh runs it against astore,
// the CNCF Distribution registry and a loopback sink, and report.ts turns the results into the table.
// Usable on its own against any registry that needs no auth or takes HTTP Basic:
//
//   node --import tsx bench/oci/loadgen.ts --endpoint http://127.0.0.1:5000 --images images.json \
//     [--basic-auth] [--server-pid PID] [--watch name=pid,...] [--out result.json] [--quick] [--target NAME]
//
// Replicas: `--endpoint http://a,http://b` (and `--server-pid A,B`) spreads the phases' operations over
// several endpoints of one registry, round-robin (phases.ts PhaseContext.clients: a pull reads what
// another replica pushed); RSS is then the sum over the replicas. `--watch minio=PID,postgres=PID` adds
// processes (and their descendants) whose CPU time each phase records next to the server's and client's.
//
// images.json comes from layers.ts. With --basic-auth the credentials are read from BENCH_ACCESS_KEY and
// BENCH_SECRET_KEY (the environment, not argv, so `ps` does not show them). Repositories are named
// bench/<workload>-<run id>, fresh per run; their contents are left in place: use a throwaway registry.
//
// One operation, the unit of the latency columns: in a large workload, one layer (push: HEAD, POST, PUT
// of 60-140 MiB; pull: GET); in a small one, one manifest (push: HEAD of the shared layer, HEAD + POST +
// PUT of its own config blob, PUT of the manifest; pull: GET of the manifest, then of its two blobs).

import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import {
  errorMessage,
  newDriverResult,
  parseEndpoints,
  runDriver,
  sampleServer,
  serverPids,
  summaryTail,
  targetLog,
  watchOrUsage,
} from '../common/driver.ts';
import { keepAliveAgent } from '../common/http.ts';
import { failedPhase, type PhaseResult } from '../common/phase.ts';
import { OciClient } from './client.ts';
import { loadImages } from './image.ts';
import { pullImage, pullManifests, pushImage, pushManifests, type PhaseContext, type Pushed } from './phases.ts';
import { workloads, type OciWorkload } from './workloads.ts';

const env = process.env;
const { values: args } = parseArgs({
  options: {
    target: { type: 'string', default: 'target' },
    endpoint: { type: 'string', default: env['BENCH_ENDPOINT'] },
    images: { type: 'string' },
    'basic-auth': { type: 'boolean', default: false },
    'server-pid': { type: 'string' },
    watch: { type: 'string' },
    out: { type: 'string' },
    quick: { type: 'boolean', default: env['BENCH_QUICK'] === '1' },
  },
  strict: true,
});

function usage(message: string): never {
  process.stderr.write(`loadgen: ${message}\n(see the header of bench/oci/loadgen.ts)\n`);
  process.exit(2);
}

const endpoint = args.endpoint ?? usage('--endpoint (or BENCH_ENDPOINT) is required');
const imagesPath = args.images ?? usage('--images (written by bench/oci/layers.ts) is required');
const bases = parseEndpoints(endpoint, usage);
let basicAuth: { user: string; password: string } | undefined;
if (args['basic-auth']) {
  const user = env['BENCH_ACCESS_KEY'] ?? usage('--basic-auth needs BENCH_ACCESS_KEY');
  const password = env['BENCH_SECRET_KEY'] ?? usage('--basic-auth needs BENCH_SECRET_KEY');
  basicAuth = { user, password };
}

const log = targetLog(args.target);
const runId = `${Date.now().toString(36)}${randomBytes(3).toString('hex')}`;
const clients = bases.map((base) => new OciClient({ base, ...(basicAuth ? { basicAuth } : {}) }));
const client = clients[0] as OciClient;
const images = loadImages(imagesPath);

const result = newDriverResult(args.target, `${endpoint}${basicAuth ? ' (HTTP Basic)' : ''}`);
const watch = watchOrUsage(args.watch, usage);
const sampler =
  args['server-pid'] === undefined
    ? undefined
    : sampleServer(result, serverPids(args['server-pid'], bases, usage), log, watch);

const ctx: PhaseContext = { client, runId, ...(clients.length > 1 ? { clients } : {}), ...(sampler ? { sampler } : {}) };

async function runWorkload(spec: OciWorkload): Promise<PhaseResult[]> {
  const repo = `bench/${spec.id}-${runId}`;
  const push = await guarded(`push ${spec.id}`, spec, () =>
    'imageSet' in spec ? pushImage(ctx, spec, repo, images) : pushManifests(ctx, spec, repo),
  );
  const pull = await guarded(`pull ${spec.id}`, spec, async (): Promise<{ phase: PhaseResult }> => {
    if (push.pushed === undefined) throw new Error('the push phase stored nothing to pull');
    return 'imageSet' in spec ? pullImage(ctx, spec, repo, push.pushed) : pullManifests(ctx, spec, repo, push.pushed);
  });
  return [push.phase, pull.phase];
}

/** Runs a phase; an exception becomes a failed phase in the results, so the other phases still run. */
async function guarded(
  name: string,
  spec: OciWorkload,
  run: () => Promise<{ phase: PhaseResult; pushed?: Pushed }>,
): Promise<{ phase: PhaseResult; pushed?: Pushed }> {
  try {
    return await run();
  } catch (err) {
    return { phase: failedPhase(name, name.startsWith('push') ? 'PUT' : 'GET', spec, errorMessage(err)) };
  }
}

function summary(p: PhaseResult): string {
  const head =
    p.kind === 'throughput'
      ? `${p.mibPerSec.toFixed(1)} MiB/s (${p.completed}/${p.planned} layers in ${(p.elapsedMs / 1000).toFixed(2)} s)`
      : `${p.opsPerSec.toFixed(0)} manifests/s (${p.completed}/${p.planned})`;
  const latency = `p50 ${p.p50Ms.toFixed(1)} ms p99 ${p.p99Ms.toFixed(1)} ms`;
  return `${p.name}: ${head} ${latency}${summaryTail(p)}`;
}

process.exitCode = await runDriver(result, sampler, args.out, log, async () => {
  let exitCode = 0;
  const setup = keepAliveAgent(4);
  try {
    for (const c of clients) await c.ping(setup, AbortSignal.timeout(10_000));
  } finally {
    setup.destroy();
  }
  // Warm-up, not recorded: opens connections and lets a JIT-compiled server (every replica) settle.
  const warm = { kind: 'ops', id: 'warmup', size: 0, concurrency: 4, maxOps: 16, maxSeconds: 20 } as const;
  const warmCtx: PhaseContext = { client, runId, ...(clients.length > 1 ? { clients } : {}) };
  const warmed = await pushManifests(warmCtx, warm, `bench/warmup-${runId}`);
  await pullManifests(warmCtx, warm, `bench/warmup-${runId}`, warmed.pushed);
  if (warmed.phase.errors > 0) throw new Error(`warm-up push failed: ${warmed.phase.firstError}`);

  for (const spec of workloads(args.quick)) {
    for (const phase of await runWorkload(spec)) {
      result.phases.push(phase);
      log(summary(phase));
      if (phase.errors > 0 || phase.completed < phase.planned) exitCode = 1;
    }
  }
  return exitCode;
});
