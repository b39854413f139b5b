import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { RegistryHttp, sha256Digest } from '../helpers/registry-http.ts';
import { startServer, type TestServer } from '../helpers/server.ts';

/**
 * Online GC under load: rounds of image pushes run while the garbage collector passes back to back.
 * Each round pushes images that share a base layer with the previous round (the client finds it by
 * HEAD and skips the upload, racing the collector for it) and deletes the previous round's images.
 * Afterwards every live image pulls byte for byte and the deleted images' bytes are gone from disk.
 */
const graceSeconds = 2;
const rounds = 6;
const imagesPerRound = 3;

let server: TestServer;
let registry: RegistryHttp;

before(async () => {
  server = await startServer({ gc: { enabled: false, graceSeconds, untaggedManifestsAfterSeconds: 0 } });
  registry = new RegistryHttp(server.endpoint);
});

after(async () => {
  await server?.stop();
});

/** The blobs the store holds and their total size, listed through the BlobStore: any driver. */
async function diskUsage(): Promise<{ files: Set<string>; bytes: number }> {
  const files = new Set<string>();
  let bytes = 0;
  for await (const { key, size } of server.app.blobs.list('blobs/sha256/')) {
    files.add(`sha256:${key.split('/').at(-1)}`);
    bytes += size;
  }
  return { files, bytes };
}

test('pushes and deletes race the garbage collector without losing a live image', { timeout: 180_000 }, async () => {
  const gc = server.app.gc;
  let collecting = true;
  let passes = 0;
  const collector = (async () => {
    while (collecting) {
      await gc.runOnce();
      passes++;
      await sleep(20);
    }
  })();

  type Image = { repository: string; tag: string; digest: string; layers: Buffer[] };
  let previous: Image[] = [];
  const deleted: Image[] = [];
  try {
    for (let round = 0; round < rounds; round++) {
      // The base layer changes every other round: half the rounds reuse what the previous one pushed.
      const base = Buffer.alloc(256 * 1024, Math.floor(round / 2) + 1);
      const current: Image[] = [];
      await Promise.all(
        Array.from({ length: imagesPerRound }, async (_, i) => {
          const repository = `gc/app${i}`;
          const tag = `r${round}`;
          const layers = [base, randomBytes(64 * 1024 + round * 1000 + i)];
          const pushed = await registry.pushImage(repository, tag, layers);
          current.push({ repository, tag, digest: pushed.digest, layers });
        }),
      );
      for (const image of previous) {
        await registry.deleteManifest(image.repository, image.digest);
        deleted.push(image);
      }
      for (const image of current) {
        const pulled = await registry.pullImage(image.repository, image.tag);
        assert.deepEqual(pulled, image.layers, `${image.repository}:${image.tag} pulls byte for byte in round ${round}`);
      }
      previous = current;
      await sleep(400);
    }
  } finally {
    collecting = false;
    await collector;
  }
  assert.ok(passes >= rounds, `the collector ran throughout (${passes} passes)`);

  // Past the grace period, two passes: the first unlinks deleted images' layers, the second (after
  // the blobs' own grace) removes their bytes.
  await sleep(graceSeconds * 1000 + 200);
  await gc.runOnce();
  await sleep(graceSeconds * 1000 + 200);
  const report = await gc.runOnce();

  for (const image of previous) {
    assert.deepEqual(await registry.pullImage(image.repository, image.tag), image.layers, `${image.repository}:${image.tag} still pulls`);
  }
  const live = new Set(previous.flatMap((image) => image.layers.map((layer) => sha256Digest(layer))));
  const { files, bytes } = await diskUsage();
  for (const image of deleted) {
    const unique = image.layers[1]!;
    assert.ok(!files.has(sha256Digest(unique)), `the deleted image ${image.repository}:${image.tag} left its own layer behind`);
  }
  for (const digest of live) assert.ok(files.has(digest), `live layer ${digest} is on disk`);
  // What remains: the live images' layers and configs (one config per live image).
  assert.equal(files.size, live.size + previous.length, `only live blobs remain (${[...files].join(', ')}); last pass: ${JSON.stringify(report)}`);
  const liveBytes = [...new Set(previous.flatMap((image) => image.layers))].reduce((n, layer) => n + layer.length, 0);
  assert.ok(bytes < liveBytes + 64 * 1024, `reclaimed space is freed: ${bytes} bytes on disk for ${liveBytes} live layer bytes`);
});
