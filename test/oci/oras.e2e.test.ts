import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { accessKeyId } from '../helpers/server.ts';
import { closeOciFixture, openCli, openOciFixture, registryFetch, type Cli, type OciFixture } from '../helpers/oci.ts';
import { sha256Digest } from '../helpers/registry-http.ts';

/**
 * oras 1.3.6 end to end over plain HTTP with basic auth from a docker config.json: push and pull of
 * an artifact, attach of an SBOM as a referrer (found through the referrers API, not the tag schema
 * fallback), repo tags, manifest fetch, and a push with a wrong password.
 */
let fixture: OciFixture;
let oras: Cli;
const repository = 'oras/artifact';
const artifactType = 'application/vnd.astore.test.bundle';
const files = { 'notes.txt': Buffer.from('release notes ü\n'), 'payload.bin': randomBytes(1024 * 1024 + 17) };
const sbom = Buffer.from(JSON.stringify({ spdxVersion: 'SPDX-2.3', name: 'artifact', packages: [] }));

/** What oras push/attach --format json print. */
interface PushOutput {
  digest: string;
  mediaType: string;
  size: number;
  artifactType?: string;
}

let pushed: PushOutput;
let attached: PushOutput;

before(async () => {
  fixture = await openOciFixture('oras');
  oras = openCli('ASTORE_TEST_ORAS', fixture);
  const source = join(fixture.work, 'source');
  await mkdir(source);
  for (const [name, data] of Object.entries(files)) await writeFile(join(source, name), data);
  await writeFile(join(source, 'sbom.spdx.json'), sbom);
  const ref = `${fixture.registry}/${repository}:v1`;
  // Paths are given relative to `source` so that they are the files' titles.
  pushed = JSON.parse(
    await oras.ok(['push', '--plain-http', '--format', 'json', '--artifact-type', artifactType, ref, 'notes.txt:text/plain', 'payload.bin:application/octet-stream'], { cwd: source }),
  ) as PushOutput;
  attached = JSON.parse(
    await oras.ok(['attach', '--plain-http', '--format', 'json', '--artifact-type', 'application/spdx+json', ref, 'sbom.spdx.json:application/spdx+json'], { cwd: source }),
  ) as PushOutput;
});
after(() => closeOciFixture(fixture ?? {}));

describe('oras: push and pull', () => {
  test('pull into a fresh dir gives back both pushed files byte for byte', async () => {
    const target = join(fixture.work, 'pulled');
    await oras.ok(['pull', '--plain-http', `${fixture.registry}/${repository}:v1`, '-o', target]);
    assert.deepEqual((await readdir(target)).sort(), Object.keys(files).sort());
    for (const [name, data] of Object.entries(files)) assert.ok((await readFile(join(target, name))).equals(data), `${name} pulled byte for byte`);
  });

  test('manifest fetch returns the pushed manifest: its digest, artifact type and one layer per file', async () => {
    const raw = await oras.ok(['manifest', 'fetch', '--plain-http', `${fixture.registry}/${repository}:v1`]);
    assert.equal(sha256Digest(Buffer.from(raw)), pushed.digest, 'fetched bytes hash to the digest oras pushed');
    const manifest = JSON.parse(raw) as { artifactType: string; layers: Array<{ digest: string; size: number; annotations: Record<string, string> }> };
    assert.equal(manifest.artifactType, artifactType);
    assert.deepEqual(
      manifest.layers.map((l) => [l.annotations['org.opencontainers.image.title'], l.digest, l.size]),
      Object.entries(files).map(([name, data]) => [name, sha256Digest(data), data.length]),
    );
    const descriptor = JSON.parse(await oras.ok(['manifest', 'fetch', '--plain-http', '--descriptor', `${fixture.registry}/${repository}@${pushed.digest}`])) as PushOutput;
    assert.deepEqual(descriptor, { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: pushed.digest, size: Buffer.byteLength(raw) });
  });

  test('repo tags lists only v1: the attached referrer added no tag-schema fallback tag', async () => {
    assert.deepEqual((await oras.ok(['repo', 'tags', '--plain-http', `${fixture.registry}/${repository}`])).trim().split('\n'), ['v1']);
  });
});

describe('oras: referrers', () => {
  test('discover --format json lists the attached SBOM as a referrer of the artifact', async () => {
    assert.equal(attached.artifactType, 'application/spdx+json');
    const tree = JSON.parse(await oras.ok(['discover', '--plain-http', '--format', 'json', `${fixture.registry}/${repository}:v1`])) as {
      digest: string;
      referrers: Array<{ digest: string; artifactType: string; mediaType: string }>;
    };
    assert.equal(tree.digest, pushed.digest);
    assert.deepEqual(
      tree.referrers.map((r) => [r.digest, r.artifactType, r.mediaType]),
      [[attached.digest, 'application/spdx+json', 'application/vnd.oci.image.manifest.v1+json']],
    );
  });

  test('GET /v2/<repo>/referrers/<digest> is an OCI index holding the SBOM manifest, filterable by artifactType', async () => {
    const res = await registryFetch(fixture, `/v2/${repository}/referrers/${pushed.digest}`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'application/vnd.oci.image.index.v1+json');
    const index = (await res.json()) as { schemaVersion: number; manifests: Array<{ digest: string; size: number; artifactType: string }> };
    assert.equal(index.schemaVersion, 2);
    assert.deepEqual(index.manifests.map((m) => [m.digest, m.size, m.artifactType]), [[attached.digest, attached.size, 'application/spdx+json']]);

    const filtered = await registryFetch(fixture, `/v2/${repository}/referrers/${pushed.digest}?artifactType=${encodeURIComponent('application/vnd.other')}`);
    assert.equal(filtered.headers.get('oci-filters-applied'), 'artifactType');
    assert.deepEqual(((await filtered.json()) as { manifests: unknown[] }).manifests, []);
  });

  test('the SBOM manifest names the artifact as its subject and its layer is the SBOM', async () => {
    const raw = await oras.ok(['manifest', 'fetch', '--plain-http', `${fixture.registry}/${repository}@${attached.digest}`]);
    const manifest = JSON.parse(raw) as { subject: { digest: string }; layers: Array<{ digest: string }> };
    assert.equal(manifest.subject.digest, pushed.digest);
    assert.deepEqual(manifest.layers.map((l) => l.digest), [sha256Digest(sbom)]);
  });
});

describe('oras: copy', () => {
  test('cp -r to another repository mounts the blobs and brings the SBOM referrer along', async () => {
    const result = await oras.run(['cp', '-r', '--from-plain-http', '--to-plain-http', `${fixture.registry}/${repository}:v1`, `${fixture.registry}/oras/copy:v1`]);
    assert.equal(result.code, 0, result.stderr);
    for (const digest of [...Object.values(files).map(sha256Digest), sha256Digest(sbom)]) {
      assert.match(result.stdout, new RegExp(`^Mounted +${digest.slice('sha256:'.length, 'sha256:'.length + 12)} `, 'm'), `blob ${digest} mounted`);
    }
    const tree = JSON.parse(await oras.ok(['discover', '--plain-http', '--format', 'json', `${fixture.registry}/oras/copy:v1`])) as { digest: string; referrers: Array<{ digest: string }> };
    assert.equal(tree.digest, pushed.digest);
    assert.deepEqual(tree.referrers.map((r) => r.digest), [attached.digest]);
  });
});

describe('oras: authentication', () => {
  test('a push with a wrong password exits non-zero with a 401 and creates no tag', async () => {
    const source = join(fixture.work, 'source');
    const result = await oras.fails(
      ['push', '--plain-http', '-u', accessKeyId, '--password-stdin', `${fixture.registry}/${repository}:denied`, 'notes.txt:text/plain'],
      { cwd: source, input: 'not-the-secret\n' },
    );
    assert.match(result.stderr, /401|unauthorized/i);
    assert.deepEqual((await oras.ok(['repo', 'tags', '--plain-http', `${fixture.registry}/${repository}`])).trim().split('\n'), ['v1']);
  });

  test('an unauthenticated GET /v2/ is 401 with a Bearer challenge naming the token endpoint', async () => {
    const res = await registryFetch(fixture, '/v2/', { auth: false });
    assert.equal(res.status, 401);
    assert.match(res.headers.get('www-authenticate') ?? '', /^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/v2\/token",service="astore"$/);
  });
});
