// Writes the large image's layer files once per run: one set of 5 files per large workload (the sets
// differ, so a registry never sees a layer twice and really stores every push), random bytes that no
// layer can compress, and their sha256 computed while they are written. bench/oci/run.sh runs it before
// any server starts; the load generators and the loopback sink read the resulting images.json.
//
//   node --import tsx bench/oci/layers.ts --dir <dir> --out images.json [--quick]
//
// 1 GiB of files (2 sets of 500 MiB), 100 MiB with --quick. Memory use is one 1 MiB buffer.

import { createHash, randomFillSync } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { ImagesFile, LayerFile } from './image.ts';
import { IMAGE_SETS, layerSizes } from './workloads.ts';

const { values: args } = parseArgs({
  options: {
    dir: { type: 'string' },
    out: { type: 'string' },
    quick: { type: 'boolean', default: process.env['BENCH_QUICK'] === '1' },
  },
  strict: true,
});
if (args.dir === undefined || args.out === undefined) {
  process.stderr.write('layers: --dir and --out are required (see the header of bench/oci/layers.ts)\n');
  process.exit(2);
}
const dir = args.dir;
mkdirSync(dir, { recursive: true });

const CHUNK = 1024 * 1024;
const buffer = Buffer.allocUnsafe(CHUNK);

async function writeLayer(path: string, size: number): Promise<LayerFile> {
  const hash = createHash('sha256');
  const file = await open(path, 'wx');
  try {
    for (let written = 0; written < size; ) {
      const chunk = buffer.subarray(0, Math.min(CHUNK, size - written));
      randomFillSync(chunk);
      hash.update(chunk);
      // Sequential writes of one reused buffer: each write completes before the buffer is refilled.
      await file.write(chunk);
      written += chunk.length;
    }
  } finally {
    await file.close();
  }
  return { path, size, digest: `sha256:${hash.digest('hex')}` };
}

const images: ImagesFile = { sets: {} };
const started = Date.now();
for (const set of IMAGE_SETS) {
  const layers: LayerFile[] = [];
  for (const [i, size] of layerSizes(args.quick).entries()) {
    layers.push(await writeLayer(join(dir, `${set}-layer${i}.bin`), size));
  }
  images.sets[set] = layers;
}
await writeFile(args.out, `${JSON.stringify(images, null, 2)}\n`);
const total = Object.values(images.sets).flat().reduce((sum, l) => sum + l.size, 0);
const seconds = (Date.now() - started) / 1000;
process.stderr.write(`[layers] ${(total / CHUNK).toFixed(0)} MiB of layers in ${seconds.toFixed(1)} s\n`);
