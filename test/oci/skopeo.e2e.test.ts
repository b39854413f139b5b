import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { accessKeyId, secretKey } from '../helpers/server.ts';
import {
  buildOciImage,
  buildOciIndex,
  closeOciFixture,
  openCli,
  openOciFixture,
  readOciLayoutBlob,
  readOciLayoutIndex,
  registryFetch,
  writeOciLayout,
  type Cli,
  type OciFixture,
  type OciImage,
} from '../helpers/oci.ts';
import { sha256Digest } from '../helpers/registry-http.ts';

/**
 * skopeo 1.9.3 (containers/image) end to end over plain HTTP with explicit credentials: an OCI image
 * layout written by the test is copied to astore, from astore into a fresh layout, and back to another
 * repository; every copy keeps the manifest's digest (same format, no recompression).
 */
let fixture: OciFixture;
let skopeo: Cli;
let image: OciImage;
const creds = `${accessKeyId}:${secretKey}`;
/** Flags every skopeo call takes: a policy accepting any image, kept in the work dir. */
let policy: string[];

const ref = (name: string) => `docker://${fixture.registry}/${name}`;

/** `skopeo inspect --raw`: the manifest bytes exactly as the registry serves them. */
const rawManifest = async (name: string) => Buffer.from(await skopeo.ok([...policy, 'inspect', '--raw', '--tls-verify=false', '--creds', creds, ref(name)]), 'utf8');

before(async () => {
  fixture = await openOciFixture('skopeo');
  skopeo = openCli('ASTORE_TEST_SKOPEO', fixture);
  const policyFile = join(fixture.work, 'policy.json');
  await writeFile(policyFile, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
  policy = ['--policy', policyFile];
  image = buildOciImage([{ 'app/run.sh': '#!/bin/sh\necho skopeo\n' }, { 'app/data.bin': randomBytes(48 * 1024) }], { 'org.opencontainers.image.title': 'skopeo fixture' });
  await writeOciLayout(join(fixture.work, 'source-layout'), image, 'v1');
});
after(() => closeOciFixture(fixture ?? {}));

describe('skopeo: OCI layout ⇄ astore', () => {
  test('copy from an OCI layout dir to astore: inspect --raw serves the manifest with its digest, blobs byte for byte', async () => {
    await skopeo.ok([...policy, 'copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${join(fixture.work, 'source-layout')}:v1`, ref('skopeo/from-layout:v1')]);
    const raw = await rawManifest('skopeo/from-layout:v1');
    assert.equal(sha256Digest(raw), image.manifestDigest);
    assert.ok(raw.equals(image.manifest), 'the manifest bytes are unchanged');
    for (const [digest, data] of image.blobs) {
      const res = await registryFetch(fixture, `/v2/skopeo/from-layout/blobs/${digest}`);
      assert.equal(res.status, 200, digest);
      assert.ok(Buffer.from(await res.arrayBuffer()).equals(data), `blob ${digest} byte for byte`);
    }
    const inspected = JSON.parse(await skopeo.ok([...policy, 'inspect', '--tls-verify=false', '--creds', creds, ref('skopeo/from-layout:v1')])) as { Digest: string; RepoTags: string[]; Layers: string[] };
    assert.equal(inspected.Digest, image.manifestDigest);
    assert.deepEqual(inspected.RepoTags, ['v1']);
    assert.deepEqual(inspected.Layers, image.layers.map((l) => l.digest));
  });

  test('copy from astore to a fresh OCI layout dir: index.json names the same digest and every blob is the original', async () => {
    const target = join(fixture.work, 'pulled-layout');
    await skopeo.ok([...policy, 'copy', '--src-tls-verify=false', '--src-creds', creds, ref('skopeo/from-layout:v1'), `oci:${target}:pulled`]);
    assert.deepEqual(await readOciLayoutIndex(target), [{ mediaType: image.mediaType, digest: image.manifestDigest, size: image.manifest.length, tag: 'pulled' }]);
    assert.ok((await readOciLayoutBlob(target, image.manifestDigest)).equals(image.manifest));
    for (const [digest, data] of image.blobs) assert.ok((await readOciLayoutBlob(target, digest)).equals(data), `blob ${digest} byte for byte`);
  });

  test('the pulled layout copied back to another repository keeps the digest; list-tags shows the tag', async () => {
    const target = join(fixture.work, 'pulled-layout');
    await skopeo.ok([...policy, 'copy', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${target}:pulled`, ref('skopeo/round-trip:v2')]);
    assert.equal(sha256Digest(await rawManifest('skopeo/round-trip:v2')), image.manifestDigest);
    const tags = JSON.parse(await skopeo.ok([...policy, 'list-tags', '--tls-verify=false', '--creds', creds, ref('skopeo/round-trip')])) as { Tags: string[] };
    assert.deepEqual(tags.Tags, ['v2']);
  });
});

describe('skopeo: image index', () => {
  test('copy --all of an index from a layout keeps the index and its images; delete removes the index', async () => {
    const arm64 = buildOciImage([{ 'app/run.sh': '#!/bin/sh\necho arm64\n' }]);
    const index = buildOciIndex([
      { image, os: 'linux', architecture: 'amd64' },
      { image: arm64, os: 'linux', architecture: 'arm64' },
    ]);
    await writeOciLayout(join(fixture.work, 'index-layout'), index, 'multi');
    await skopeo.ok([...policy, 'copy', '--all', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${join(fixture.work, 'index-layout')}:multi`, ref('skopeo/multi:v1')]);
    assert.ok((await rawManifest('skopeo/multi:v1')).equals(index.manifest), 'the index bytes are unchanged');
    for (const child of [image, arm64]) assert.ok((await rawManifest(`skopeo/multi@${child.manifestDigest}`)).equals(child.manifest), `image ${child.manifestDigest}`);

    await skopeo.ok([...policy, 'delete', '--tls-verify=false', '--creds', creds, ref('skopeo/multi:v1')]);
    const gone = await skopeo.fails([...policy, 'inspect', '--raw', '--tls-verify=false', '--creds', creds, ref('skopeo/multi:v1')]);
    assert.match(gone.stderr, /manifest unknown/i);
    const byDigest = await registryFetch(fixture, `/v2/skopeo/multi/manifests/${index.manifestDigest}`, { method: 'HEAD' });
    assert.equal(byDigest.status, 404, 'skopeo delete removes the index by digest');
  });
});

describe('skopeo: registry to registry', () => {
  test('copy between two astore repositories keeps the digest', async () => {
    await skopeo.ok([
      ...policy, 'copy',
      '--src-tls-verify=false', '--src-creds', creds,
      '--dest-tls-verify=false', '--dest-creds', creds,
      ref('skopeo/from-layout:v1'), ref('skopeo/mirror:v1'),
    ]);
    assert.equal(sha256Digest(await rawManifest('skopeo/mirror:v1')), image.manifestDigest);
  });

  test('inspect with a wrong password fails with an authentication error', async () => {
    const result = await skopeo.fails([...policy, 'inspect', '--raw', '--tls-verify=false', '--creds', `${accessKeyId}:wrong`, ref('skopeo/from-layout:v1')]);
    assert.match(result.stderr, /unauthorized|authentication required|401/i);
  });
});
