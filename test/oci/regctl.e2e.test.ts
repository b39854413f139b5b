import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { accessKeyId, secretKey } from '../helpers/server.ts';
import { buildOciImage, closeOciFixture, openCli, openOciFixture, writeOciLayout, type Cli, type OciFixture, type OciImage } from '../helpers/oci.ts';
import { sha256Digest } from '../helpers/registry-http.ts';

/**
 * regctl 0.11.7 (regclient) end to end over plain HTTP, logged in with `regctl registry login`: image
 * copy from an OCI layout and between repositories, tag ls, manifest get, blob get, tag delete. Blobs
 * over 64 KiB are pushed in 64 KiB chunks (blobMax/blobChunk), so uploads take several PATCHes.
 */
let fixture: OciFixture;
let regctl: Cli;
let image: OciImage;
const chunkSize = 64 * 1024;
/** regctl's debug log of the copy from the OCI layout to regctl/source:v1. */
let seedLog = '';

const ref = (name: string) => `${fixture.registry}/${name}`;
const tags = async (repository: string) => (await regctl.ok(['tag', 'ls', ref(repository)])).trim().split('\n').filter(Boolean);
const digestOf = async (reference: string) => (await regctl.ok(['image', 'digest', ref(reference)])).trim();

before(async () => {
  fixture = await openOciFixture('regctl');
  regctl = openCli('ASTORE_TEST_REGCTL', fixture);
  // Random data does not compress: the second layer stays ~3.5 chunks long.
  image = buildOciImage([{ 'bin/tool': '#!/bin/sh\necho regctl\n' }, { 'data/blob.bin': randomBytes(3 * chunkSize + 1234) }]);
  await writeOciLayout(join(fixture.work, 'layout'), image, 'v1');
  const chunking = ['--blob-chunk', String(chunkSize), '--blob-max', String(chunkSize)];
  await regctl.ok(['registry', 'set', '--tls', 'disabled', '--skip-check', ...chunking, fixture.registry]);
  await regctl.ok(['registry', 'login', '-u', accessKeyId, '--pass-stdin', fixture.registry], { input: secretKey });
  const copy = await regctl.run(['image', 'copy', '-v', 'debug', `ocidir://${join(fixture.work, 'layout')}:v1`, ref('regctl/source:v1')]);
  assert.equal(copy.code, 0, copy.stderr);
  seedLog = copy.stderr;
});
after(() => closeOciFixture(fixture ?? {}));

describe('regctl: login', () => {
  test('registry login with a wrong password exits non-zero: unauthorized', async () => {
    const env = { REGCTL_CONFIG: join(fixture.work, 'regctl-wrong.json') };
    await regctl.ok(['registry', 'set', '--tls', 'disabled', '--skip-check', fixture.registry], { env });
    const result = await regctl.fails(['registry', 'login', '-u', accessKeyId, '--pass-stdin', fixture.registry], { env, input: 'not-the-secret' });
    assert.match(result.stderr, /unauthorized/i);
  });
});

describe('regctl: images', () => {
  test('image copy from an OCI layout (chunked blob uploads) keeps the manifest byte for byte', async () => {
    // One "next chunk" per PATCH after the first: the 3.5-chunk layer takes three.
    assert.ok((seedLog.match(/Next chunk upload location received/g) ?? []).length >= 3, `chunked upload in:\n${seedLog}`);
    const raw = await regctl.bytes(['manifest', 'get', '--format', 'raw-body', ref('regctl/source:v1')]);
    assert.ok(raw.equals(image.manifest), 'manifest bytes');
    assert.equal(await digestOf('regctl/source:v1'), image.manifestDigest);
  });

  test('image copy to another repository: manifest get there returns the same manifest and digest', async () => {
    await regctl.ok(['image', 'copy', ref('regctl/source:v1'), ref('regctl/target:v1')]);
    const raw = await regctl.bytes(['manifest', 'get', '--format', 'raw-body', ref('regctl/target:v1')]);
    assert.equal(sha256Digest(raw), image.manifestDigest);
    const parsed = JSON.parse(await regctl.ok(['manifest', 'get', '--format', '{{json .}}', ref('regctl/target:v1')])) as { layers: Array<{ digest: string }> };
    assert.deepEqual(parsed.layers.map((l) => l.digest), image.layers.map((l) => l.digest));
  });

  test('blob get returns every layer and the config byte for byte', async () => {
    for (const [digest, data] of image.blobs) {
      const blob = await regctl.bytes(['blob', 'get', ref('regctl/target'), digest]);
      assert.equal(blob.length, data.length, `size of ${digest}`);
      assert.ok(blob.equals(data), `blob ${digest} byte for byte`);
    }
  });

  test('tag ls lists the tags of a repository in order', async () => {
    await regctl.ok(['image', 'copy', ref('regctl/source:v1'), ref('regctl/source:v2')]);
    await regctl.ok(['image', 'copy', ref('regctl/source:v1'), ref('regctl/source:latest')]);
    assert.deepEqual(await tags('regctl/source'), ['latest', 'v1', 'v2']);
  });
});

describe('regctl: tag delete', () => {
  test('tag delete uses the OCI tag delete API and removes only that tag; the manifest stays by digest and other tags', async () => {
    await regctl.ok(['image', 'copy', ref('regctl/source:v1'), ref('regctl/tagged:keep')]);
    await regctl.ok(['image', 'copy', ref('regctl/source:v1'), ref('regctl/tagged:drop')]);
    // Without registry support regctl falls back silently to pushing a dummy manifest and deleting that by digest.
    const result = await regctl.run(['tag', 'delete', '-v', 'trace', ref('regctl/tagged:drop')]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stderr, new RegExp(`req-method=DELETE req-url=http://${fixture.registry}/v2/regctl/tagged/manifests/drop .*resp-status="202 Accepted"`));
    assert.doesNotMatch(result.stderr, /req-method=PUT/, 'no dummy manifest pushed');

    assert.deepEqual(await tags('regctl/tagged'), ['keep']);
    const gone = await regctl.fails(['manifest', 'get', ref('regctl/tagged:drop')]);
    assert.match(gone.stderr, /not found|MANIFEST_UNKNOWN/i);
    assert.equal(await digestOf(`regctl/tagged@${image.manifestDigest}`), image.manifestDigest);
    assert.equal(await digestOf('regctl/tagged:keep'), image.manifestDigest);
  });
});
