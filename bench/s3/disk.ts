// The raw disk limit: the benchmark's workloads as plain file I/O in a directory on the same filesystem as
// the servers' data dirs. A "PUT" writes the same bytes the S3 client sends, the way astore's fs blob
// store commits a blob (temp file, fsync, rename, fsync of the directory); a "GET" reads the file back
// into a reused buffer. Reads right after writes come from the page cache, as they do for the servers.
//
//   UV_THREADPOOL_SIZE=64 node --import tsx bench/s3/disk.ts --dir DIR [--out result.json] [--quick] [--no-2g]
//
// fs calls run on libuv's thread pool (4 threads unless UV_THREADPOOL_SIZE says otherwise); run.sh
// raises it so concurrency 16 and 64 really issue that many fsyncs at once.

import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { newDriverResult, writeResult } from '../common/driver.ts';
import { poolOf, runPool, type Op, type PhaseResult } from '../common/phase.ts';
import type { WorkloadSpec } from '../common/workloads.ts';
import { bodyChunks, stampOf } from './body.ts';
import { workloads } from './workloads.ts';

const { values: args } = parseArgs({
  options: {
    dir: { type: 'string' },
    out: { type: 'string' },
    quick: { type: 'boolean', default: process.env['BENCH_QUICK'] === '1' },
    'no-2g': { type: 'boolean', default: process.env['BENCH_2G'] === '0' },
  },
});
if (args.dir === undefined) {
  process.stderr.write('disk: --dir is required\n');
  process.exit(2);
}
const root = args.dir;
const runId = randomBytes(8).toString('hex');
const log = (line: string): void => void process.stderr.write(`[disk] ${line}\n`);

async function fsyncDir(path: string): Promise<void> {
  const dir = await open(path, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

async function writeFile(dir: string, name: string, size: number): Promise<number> {
  const tmp = join(dir, `.tmp-${name}`);
  const file = await open(tmp, 'w');
  try {
    for (const chunk of bodyChunks(size, stampOf(runId, name))) {
      let off = 0;
      while (off < chunk.length) off += (await file.write(chunk, off, chunk.length - off)).bytesWritten;
    }
    await file.sync();
  } finally {
    await file.close();
  }
  await rename(tmp, join(dir, name));
  await fsyncDir(dir);
  return size;
}

async function readFile(path: string, buffer: Buffer): Promise<number> {
  const file = await open(path, 'r');
  try {
    let total = 0;
    for (;;) {
      const { bytesRead } = await file.read(buffer, 0, buffer.length, null);
      if (bytesRead === 0) return total;
      total += bytesRead;
    }
  } finally {
    await file.close();
  }
}

const result = newDriverResult('disk', `${root} (UV_THREADPOOL_SIZE=${process.env['UV_THREADPOOL_SIZE'] ?? '4'})`);

for (const spec of workloads({ quick: args.quick, big2g: !args['no-2g'] }) as WorkloadSpec[]) {
  const dir = join(root, spec.id);
  await mkdir(dir, { recursive: true });
  let written = 0;
  for (const op of ['PUT', 'GET'] as Op[]) {
    const pool = poolOf(spec);
    if (op === 'GET' && spec.kind === 'throughput') pool.maxOps = written;
    // One read buffer per concurrent reader, reused: 1 MiB, or the object size when smaller.
    const buffers = Array.from({ length: spec.concurrency }, () => Buffer.allocUnsafe(Math.min(spec.size, 1 << 20)));
    let nextBuffer = 0;
    const phase: PhaseResult = await runPool(`${op} ${spec.id}`, op, spec, pool, async (index) => {
      if (op === 'PUT') {
        const bytes = await writeFile(dir, String(index), spec.size);
        written++;
        return bytes;
      }
      const buffer = buffers[nextBuffer++ % buffers.length] as Buffer;
      return readFile(join(dir, String(index % Math.max(written, 1))), buffer);
    });
    result.phases.push(phase);
    const figure =
      spec.kind === 'throughput'
        ? `${phase.mibPerSec.toFixed(1)} MiB/s`
        : `${phase.opsPerSec.toFixed(0)} ops/s p50 ${phase.p50Ms.toFixed(2)} ms p99 ${phase.p99Ms.toFixed(2)} ms`;
    log(`${phase.name}: ${figure} (${phase.completed} ops${phase.errors ? `, ${phase.errors} errors: ${phase.firstError}` : ''})`);
  }
  // Free the space before the next workload; the 2 GiB file alone is large.
  await rm(dir, { recursive: true, force: true });
}

writeResult(result, args.out);
