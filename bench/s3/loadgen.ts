// S3 load generator: runs the workloads of workloads.ts (PUT then GET of each) against one S3 endpoint
// and writes a JSON DriverResult; bench/s3/run.sh runs it against astore, MinIO and a loopback sink, and
// report.ts turns the results into the table. Usable on its own against any S3 endpoint:
//
//   node --import tsx bench/s3/loadgen.ts --endpoint http://127.0.0.1:9000 --access-key K \
//     --secret-key S [--bucket bench] [--server-pid PID] [--out result.json] [--quick] [--no-2g]
//
// Every option also reads an environment variable (BENCH_ENDPOINT, BENCH_ACCESS_KEY, BENCH_SECRET_KEY,
// BENCH_BUCKET, BENCH_REGION, BENCH_VERIFY, BENCH_QUICK=1, BENCH_2G=0). The bucket is created when
// missing and its objects are left in place: point it at a throwaway server or bucket.

import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { runPool, poolOf, type DriverResult, type Op, type PhaseResult } from './phase.ts';
import { currentRssKiB, hwmKiB, RssSampler, servingPid } from './rss.ts';
import { BenchS3Client } from './s3client.ts';
import { formatSize, workloads, type WorkloadSpec } from './workloads.ts';
import type { VerifyMode } from './body.ts';

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
const endpointUrl = new URL(endpoint);
if (endpointUrl.protocol !== 'http:') usage('only http:// endpoints are supported');

const log = (line: string): void => void process.stderr.write(`[${args.target}] ${line}\n`);

const runId = `${Date.now()}-${randomBytes(4).toString('hex')}`;
const client = new BenchS3Client(
  { endpoint: endpointUrl, accessKey, secretKey, region: args.region, bucket: args.bucket },
  runId,
  verify,
);

let sampler: RssSampler | undefined;
const result: DriverResult = {
  target: args.target,
  detail: `${endpoint} bucket=${args.bucket} verify=${verify}`,
  startedAt: new Date().toISOString(),
  phases: [],
  notes: [],
};
if (args['server-pid'] !== undefined) {
  const started = Number(args['server-pid']);
  const serving = servingPid(started, Number(endpointUrl.port || 80));
  log(`RSS of pid ${serving.pid} (${serving.how})`);
  result.serverPid = serving.pid;
  result.notes.push(`RSS sampled from pid ${serving.pid}: ${serving.how}`);
  sampler = new RssSampler(serving.pid);
  const idle = currentRssKiB(serving.pid);
  if (idle !== undefined) result.startRssKiB = idle;
}

let plan: WorkloadSpec[] = workloads({ quick: args.quick, big2g: !args['no-2g'] });
if (args.only !== undefined) {
  const only = new Set(args.only.split(','));
  plan = plan.filter((spec) => only.has(spec.id));
}

/** Keys of objects a PUT phase stored; the GET phase reads these (cycling for ops phases). */
async function runPhase(op: Op, spec: WorkloadSpec, putKeys: string[]): Promise<PhaseResult> {
  const name = `${op} ${spec.id}`;
  const agent = client.agent(spec.concurrency);
  const pool = poolOf(spec);
  const stored: string[] = [];
  if (op === 'GET') {
    if (putKeys.length === 0) throw new Error(`${name}: the PUT phase stored no object`);
    if (spec.kind === 'throughput') pool.maxOps = putKeys.length;
  }
  const startRss = sampler?.resetPhase();
  try {
    const phase = await runPool(name, op, spec, pool, async (index, signal) => {
      if (op === 'PUT') {
        const key = `${spec.id}/${index}`;
        const bytes = await client.putObject(agent, key, spec.size, signal);
        stored.push(key);
        return bytes;
      }
      return client.getObject(agent, putKeys[index % putKeys.length] as string, spec.size, signal);
    });
    if (sampler) {
      phase.peakRssKiB = sampler.phasePeakKiB();
      if (startRss !== undefined) phase.startRssKiB = startRss;
    }
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
  const rss = p.peakRssKiB === undefined ? '' : `, peak RSS ${(p.peakRssKiB / 1024).toFixed(0)} MiB`;
  const bad = `${p.errors ? `, ${p.errors} errors: ${p.firstError}` : ''}${p.timedOut ? ', TIME LIMIT' : ''}`;
  return `${p.name}: ${head}${rss}${bad}`;
}

let exitCode = 0;
try {
  const setup = client.agent(16);
  try {
    await client.createBucket(setup);
    // Warm-up, not recorded: opens connections and lets a JIT-compiled server settle.
    const warm = Array.from({ length: 16 }, (_, i) => `warmup/${i}`);
    await Promise.all(warm.map((key) => client.putObject(setup, key, 64 * 1024)));
    await Promise.all(warm.map((key) => client.getObject(setup, key, 64 * 1024)));
  } finally {
    setup.destroy();
  }
  for (const spec of plan) {
    const keys: string[] = [];
    for (const op of ['PUT', 'GET'] as const) {
      const phase = await runPhase(op, spec, keys).catch((err: unknown): PhaseResult => {
        const message = err instanceof Error ? err.message : String(err);
        return failedPhase(`${op} ${spec.id}`, op, spec, message);
      });
      result.phases.push(phase);
      log(summary(phase));
      if (phase.errors > 0) exitCode = 1;
    }
  }
} catch (err) {
  log(`FAILED: ${err instanceof Error ? err.message : String(err)}`);
  result.notes.push(`run failed: ${err instanceof Error ? err.message : String(err)}`);
  exitCode = 1;
} finally {
  if (sampler) {
    result.peakRssKiB = sampler.runPeakKiB();
    const hwm = hwmKiB(sampler.pid);
    if (hwm !== undefined) result.hwmKiB = hwm;
    await sampler.stop();
  }
  if (args.out !== undefined) writeFileSync(args.out, `${JSON.stringify(result, null, 2)}\n`);
  else process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}
process.exitCode = exitCode;

function failedPhase(name: string, op: Op, spec: WorkloadSpec, message: string): PhaseResult {
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
