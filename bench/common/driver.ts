// What every load generator (bench/s3/loadgen.ts, bench/oci/loadgen.ts) does around its phases: the
// DriverResult it fills, the server's RSS sampled while it runs and the CPU time of the server, its
// backends and the load generator per phase, the tail of a phase's one-line summary, and the JSON
// written at the end, whatever happened before it.

import { writeFileSync } from 'node:fs';
import { CpuWatch, parseWatch, type CpuTarget } from './cpu.ts';
import type { DriverResult, PhaseResult } from './phase.ts';
import { RssSampler, servingPid } from './rss.ts';

export type Log = (line: string) => void;

/** Progress lines on stderr, prefixed with the target: `[astore] PUT 1MiB: ...`. */
export function targetLog(target: string): Log {
  return (line) => void process.stderr.write(`[${target}] ${line}\n`);
}

export function newDriverResult(target: string, detail: string): DriverResult {
  return { target, detail, startedAt: new Date().toISOString(), phases: [], notes: [] };
}

/** The server's RSS (summed over its replicas) and the CPU time of it, its backends and the client. */
export interface ServerMonitor {
  rss: RssSampler;
  cpu: CpuWatch;
}

/**
 * Samples the RSS of the processes serving `ports` (for each, the started process or one of its
 * descendants, see servingPid; several for replicas, whose RSS is summed), records which ones they are
 * and their idle RSS now, before any warm-up. CPU time is accounted per phase for them (`server`), for
 * `watch` (backends: MinIO, PostgreSQL) and for the load generator (`client`).
 */
export function sampleServer(
  result: DriverResult,
  started: readonly { pid: number; port: number }[],
  log: Log,
  watch: readonly CpuTarget[] = [],
): ServerMonitor {
  const pids: number[] = [];
  for (const { pid, port } of started) {
    const serving = servingPid(pid, port);
    log(`RSS of pid ${serving.pid} (${serving.how})`);
    result.notes.push(`RSS sampled from pid ${serving.pid}: ${serving.how}`);
    pids.push(serving.pid);
  }
  result.serverPid = pids[0] as number;
  if (pids.length > 1) result.notes.push(`RSS figures are the sum over the ${pids.length} replicas`);
  const rss = new RssSampler(pids);
  result.startRssKiB = rss.now();
  const cpu = new CpuWatch([{ name: 'server', pids, tree: false }, ...watch]);
  return { rss, cpu };
}

/**
 * Runs a phase in a fresh RSS window of `monitor` (when there is one) and stamps the server's peak RSS
 * over it, its RSS when it began and the CPU time used meanwhile onto the phase's result.
 */
export async function sampledPhase<T extends { phase: PhaseResult }>(
  monitor: ServerMonitor | undefined,
  run: () => Promise<T>,
): Promise<T> {
  const startRss = monitor?.rss.resetPhase();
  const cpuBefore = monitor?.cpu.snapshot();
  const out = await run();
  if (monitor) {
    out.phase.peakRssKiB = monitor.rss.phasePeakKiB();
    if (startRss !== undefined) out.phase.startRssKiB = startRss;
    if (cpuBefore !== undefined) out.phase.cpu = monitor.cpu.since(cpuBefore);
  }
  return out;
}

/**
 * Runs the load generator's phases, which resolve with its exit code. A throw ends the run as failed (in
 * the log and the result's notes); either way the run's peak RSS is recorded, the sampler stopped and
 * the result written. Resolves with the exit code.
 */
export async function runDriver(
  result: DriverResult,
  monitor: ServerMonitor | undefined,
  out: string | undefined,
  log: Log,
  phases: () => Promise<number>,
): Promise<number> {
  try {
    return await phases();
  } catch (err) {
    log(`FAILED: ${errorMessage(err)}`);
    result.notes.push(`run failed: ${errorMessage(err)}`);
    return 1;
  } finally {
    if (monitor) {
      result.peakRssKiB = monitor.rss.runPeakKiB();
      const hwm = monitor.rss.hwmKiB();
      if (hwm !== undefined) result.hwmKiB = hwm;
      await monitor.rss.stop();
    }
    writeResult(result, out);
  }
}

/** The result as JSON, to `out` or, without one, to stdout. */
export function writeResult(result: DriverResult, out: string | undefined): void {
  if (out !== undefined) writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  else process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

/**
 * What a phase summary ends with: its peak RSS, the CPU used (as % of one core over the phase), then
 * what went wrong: `, peak RSS 131 MiB, CPU server 95 % client 30 %, 2 errors: ...`.
 */
export function summaryTail(p: PhaseResult): string {
  const rss = p.peakRssKiB === undefined ? '' : `, peak RSS ${(p.peakRssKiB / 1024).toFixed(0)} MiB`;
  const cpu =
    p.cpu === undefined
      ? ''
      : `, CPU ${Object.entries(p.cpu.seconds)
          .map(([name, s]) => `${name} ${((100 * s) / Math.max(p.cpu!.wallMs / 1000, 0.001)).toFixed(0)} %`)
          .join(' ')}`;
  const bad = `${p.errors ? `, ${p.errors} errors: ${p.firstError}` : ''}${p.timedOut ? ', TIME LIMIT' : ''}`;
  return `${rss}${cpu}${bad}`;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * `--endpoint` as a list: one URL, or several separated by commas (replicas of one server, which the
 * load generator takes turns with, request by request). Only http:// is supported.
 */
export function parseEndpoints(spec: string, usage: (message: string) => never): URL[] {
  const urls = spec.split(',').map((text) => {
    let url: URL;
    try {
      url = new URL(text.trim());
    } catch {
      usage(`not a URL: ${text}`);
    }
    if (url.protocol !== 'http:') usage('only http:// endpoints are supported');
    return url;
  });
  if (urls.length === 0) usage('--endpoint is empty');
  return urls;
}

/** `--server-pid` as a list, one pid per endpoint (in the same order). */
export function serverPids(spec: string, endpoints: readonly URL[], usage: (message: string) => never): { pid: number; port: number }[] {
  const pids = spec.split(',').map(Number);
  if (pids.length !== endpoints.length || pids.some((p) => !Number.isInteger(p) || p <= 0)) {
    usage(`--server-pid needs one pid per endpoint (${endpoints.length}), got ${spec}`);
  }
  return pids.map((pid, i) => ({ pid, port: Number(endpoints[i]?.port || 80) }));
}

/** `--watch name=pid,...` (cpu.ts parseWatch), a usage error when malformed. */
export function watchOrUsage(spec: string | undefined, usage: (message: string) => never): CpuTarget[] {
  try {
    return parseWatch(spec);
  } catch (err) {
    return usage(errorMessage(err));
  }
}
