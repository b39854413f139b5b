// What every load generator (bench/s3/loadgen.ts, bench/oci/loadgen.ts) does around its phases: the
// DriverResult it fills, the server's RSS sampled while it runs, the tail of a phase's one-line summary,
// and the JSON written at the end, whatever happened before it.

import { writeFileSync } from 'node:fs';
import type { DriverResult, PhaseResult } from './phase.ts';
import { currentRssKiB, hwmKiB, RssSampler, servingPid } from './rss.ts';

export type Log = (line: string) => void;

/** Progress lines on stderr, prefixed with the target: `[astore] PUT 1MiB: ...`. */
export function targetLog(target: string): Log {
  return (line) => void process.stderr.write(`[${target}] ${line}\n`);
}

export function newDriverResult(target: string, detail: string): DriverResult {
  return { target, detail, startedAt: new Date().toISOString(), phases: [], notes: [] };
}

/**
 * Samples the RSS of the process serving `port` (the started process or one of its descendants, see
 * servingPid), records which one it is and its idle RSS now, before any warm-up.
 */
export function sampleServer(result: DriverResult, startedPid: number, port: number, log: Log): RssSampler {
  const serving = servingPid(startedPid, port);
  log(`RSS of pid ${serving.pid} (${serving.how})`);
  result.serverPid = serving.pid;
  result.notes.push(`RSS sampled from pid ${serving.pid}: ${serving.how}`);
  const sampler = new RssSampler(serving.pid);
  const idle = currentRssKiB(serving.pid);
  if (idle !== undefined) result.startRssKiB = idle;
  return sampler;
}

/**
 * Runs a phase in a fresh RSS window of `sampler` (when there is one) and stamps the server's peak RSS
 * over it, and its RSS when it began, onto the phase's result.
 */
export async function sampledPhase<T extends { phase: PhaseResult }>(
  sampler: RssSampler | undefined,
  run: () => Promise<T>,
): Promise<T> {
  const startRss = sampler?.resetPhase();
  const out = await run();
  if (sampler) {
    out.phase.peakRssKiB = sampler.phasePeakKiB();
    if (startRss !== undefined) out.phase.startRssKiB = startRss;
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
  sampler: RssSampler | undefined,
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
    if (sampler) {
      result.peakRssKiB = sampler.runPeakKiB();
      const hwm = hwmKiB(sampler.pid);
      if (hwm !== undefined) result.hwmKiB = hwm;
      await sampler.stop();
    }
    writeResult(result, out);
  }
}

/** The result as JSON, to `out` or, without one, to stdout. */
export function writeResult(result: DriverResult, out: string | undefined): void {
  if (out !== undefined) writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  else process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
}

/** What a phase summary ends with: its peak RSS, then what went wrong: `, peak RSS 131 MiB, 2 errors: ...`. */
export function summaryTail(p: PhaseResult): string {
  const rss = p.peakRssKiB === undefined ? '' : `, peak RSS ${(p.peakRssKiB / 1024).toFixed(0)} MiB`;
  const bad = `${p.errors ? `, ${p.errors} errors: ${p.firstError}` : ''}${p.timedOut ? ', TIME LIMIT' : ''}`;
  return `${rss}${bad}`;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
