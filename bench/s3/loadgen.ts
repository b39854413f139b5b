// S3 load generator: runs the workloads of workloads.ts (PUT then GET of each) against one S3 endpoint
// and writes a JSON DriverResult; bench/s3/run.sh runs it against astore, MinIO and a loopback sink, and
// report.ts turns the results into the table. Usable on its own against any S3 endpoint:
//
//   node --import tsx bench/s3/loadgen.ts --endpoint http://127.0.0.1:9000 --access-key K \
//     --secret-key S [--bucket bench] [--server-pid PID] [--watch name=pid,...] [--out result.json] \
//     [--quick] [--no-2g]
//
// Every option also reads an environment variable (BENCH_ENDPOINT, BENCH_ACCESS_KEY, BENCH_SECRET_KEY,
// BENCH_BUCKET, BENCH_REGION, BENCH_VERIFY, BENCH_QUICK=1, BENCH_2G=0). The bucket is created when
// missing and its objects are left in place: point it at a throwaway server or bucket.
//
// Replicas: `--endpoint http://a,http://b` (and `--server-pid A,B`, one per endpoint) spreads the load
// over several endpoints of one store, round-robin per request: operation i of a phase goes to endpoint
// i mod n for a PUT and (i + 1) mod n for a GET, so with two replicas every GET reads an object the
// other replica wrote. Each endpoint gets its own keep-alive connections (the phase's concurrency
// each). RSS is then the sum over the replicas. `--watch minio=PID,postgres=PID` adds processes (and
// their descendants) whose CPU time each phase records next to the server's and the client's.

import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import {
  errorMessage,
  newDriverResult,
  parseEndpoints,
  runDriver,
  sampledPhase,
  sampleServer,
  serverPids,
  summaryTail,
  targetLog,
  watchOrUsage,
} from '../common/driver.ts';
import { keepAliveAgent } from '../common/http.ts';
import { failedPhase, runPool, poolOf, type Op, type PhaseResult } from '../common/phase.ts';
import { formatSize, type WorkloadSpec } from '../common/workloads.ts';
import type { VerifyMode } from './body.ts';
import { BenchS3Client } from './s3client.ts';
import { workloads } from './workloads.ts';

const env = process.env;
const { values: args } = parseArgs({
  options: {
    target: { type: 'string', default: 'target' },
    endpoint: { type: 'string', default: env['BENCH_ENDPOINT'] },
    'access-key': { type: 'string', default: env['BENCH_ACCESS_KEY'] },
    'secret-key': { type: 'string', default: env['BENCH_SECRET_KEY'] },
    bucket: { type: 'string', default: env['BENCH_BUCKET'] ?? 'bench' },
    region: { type: 'string', default: env['BENCH_REGION'] ?? 'us-east-1' },
    verify: { type: 'string', default: env['BENCH_VERIFY'] ?? 'fast' },
    'server-pid': { type: 'string' },
    watch: { type: 'string' },
    out: { type: 'string' },
    quick: { type: 'boolean', default: env['BENCH_QUICK'] === '1' },
    'no-2g': { type: 'boolean', default: env['BENCH_2G'] === '0' },
    only: { type: 'string' },
  },
  strict: true,
});

function usage(message: string): never {
  process.stderr.write(`loadgen: ${message}\n(see the header of bench/s3/loadgen.ts)\n`);
  process.exit(2);
}

const endpoint = args.endpoint ?? usage('--endpoint (or BENCH_ENDPOINT) is required');
const accessKey = args['access-key'] ?? usage('--access-key (or BENCH_ACCESS_KEY) is required');
const secretKey = args['secret-key'] ?? usage('--secret-key (or BENCH_SECRET_KEY) is required');
const verify = args.verify as VerifyMode;
if (!['off', 'fast', 'full'].includes(verify)) usage(`--verify must be off, fast or full, not ${verify}`);
const endpointUrls = parseEndpoints(endpoint, usage);

const log = targetLog(args.target);

const runId = `${Date.now()}-${randomBytes(4).toString('hex')}`;
/** One client per endpoint (replicas); the first does the setup. */
const clients = endpointUrls.map(
  (url) => new BenchS3Client({ endpoint: url, accessKey, secretKey, region: args.region, bucket: args.bucket }, runId, verify),
);
const client = clients[0] as BenchS3Client;
/** The client of operation `index` of a phase: round-robin, GETs shifted by one (see the header). */
const clientFor = (op: Op, index: number): BenchS3Client =>
  clients[(index + (op === 'GET' ? 1 : 0)) % clients.length] as BenchS3Client;

const result = newDriverResult(args.target, `${endpoint} bucket=${args.bucket} verify=${verify}`);
const watch = watchOrUsage(args.watch, usage);
const sampler =
  args['server-pid'] === undefined
    ? undefined
    : sampleServer(result, serverPids(args['server-pid'], endpointUrls, usage), log, watch);

let plan: WorkloadSpec[] = workloads({ quick: args.quick, big2g: !args['no-2g'] });
if (args.only !== undefined) {
  const only = new Set(args.only.split(','));
  plan = plan.filter((spec) => only.has(spec.id));
}

/** Keys of objects a PUT phase stored; the GET phase reads these (cycling for ops phases). */
async function runPhase(op: Op, spec: WorkloadSpec, putKeys: string[]): Promise<PhaseResult> {
  const name = `${op} ${spec.id}`;
  const agent = keepAliveAgent(spec.concurrency);
  const pool = poolOf(spec);
  const stored: string[] = [];
  if (op === 'GET') {
    if (putKeys.length === 0) throw new Error(`${name}: the PUT phase stored no object`);
    if (spec.kind === 'throughput') pool.maxOps = putKeys.length;
  }
  try {
    const { phase } = await sampledPhase(sampler, async () => ({
      phase: await runPool(name, op, spec, pool, async (index, signal) => {
        if (op === 'PUT') {
          const key = `${spec.id}/${index}`;
          const bytes = await clientFor(op, index).putObject(agent, key, spec.size, signal);
          stored.push(key);
          return bytes;
        }
        return clientFor(op, index).getObject(agent, putKeys[index % putKeys.length] as string, spec.size, signal);
      }),
    }));
    putKeys.push(...(op === 'PUT' ? stored : []));
    return phase;
  } finally {
    agent.destroy();
  }
}

function summary(p: PhaseResult): string {
  const head =
    p.kind === 'throughput'
      ? `${p.mibPerSec.toFixed(1)} MiB/s (${p.completed}/${p.planned} × ${formatSize(p.size)} in ${(p.elapsedMs / 1000).toFixed(2)} s)`
      : `${p.opsPerSec.toFixed(0)} ops/s p50 ${p.p50Ms.toFixed(2)} ms p99 ${p.p99Ms.toFixed(2)} ms (${p.completed} ops)`;
  return `${p.name}: ${head}${summaryTail(p)}`;
}

process.exitCode = await runDriver(result, sampler, args.out, log, async () => {
  let exitCode = 0;
  const setup = keepAliveAgent(16);
  try {
    await client.createBucket(setup);
    // Warm-up, not recorded: opens connections and lets a JIT-compiled server (every replica) settle.
    const warm = Array.from({ length: 16 }, (_, i) => `warmup/${i}`);
    await Promise.all(warm.map((key, i) => clientFor('PUT', i).putObject(setup, key, 64 * 1024)));
    await Promise.all(warm.map((key, i) => clientFor('GET', i).getObject(setup, key, 64 * 1024)));
  } finally {
    setup.destroy();
  }
  for (const spec of plan) {
    const keys: string[] = [];
    for (const op of ['PUT', 'GET'] as const) {
      const phase = await runPhase(op, spec, keys).catch((err: unknown): PhaseResult => {
        return failedPhase(`${op} ${spec.id}`, op, spec, errorMessage(err));
      });
      result.phases.push(phase);
      log(summary(phase));
      if (phase.errors > 0) exitCode = 1;
    }
  }
  return exitCode;
});
