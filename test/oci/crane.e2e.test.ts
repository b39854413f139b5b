import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { closeOciFixture, openCli, openOciFixture, tarArchive, untar, type Cli, type OciFixture } from '../helpers/oci.ts';
import { sha256Digest } from '../helpers/registry-http.ts';

/**
 * crane 0.22.1 (go-containerregistry) end to end over plain HTTP (`--insecure`) with basic auth from a
 * docker config.json: push of a docker tarball built by `crane append`, pull back to a tarball, ls,
 * digest, manifest, copy across repositories (blob mount) and tags, delete by digest, catalog.
 */
let fixture: OciFixture;
let crane: Cli;
const layerTar = tarArchive({ 'etc/hello.txt': 'hello from crane\n', 'data/random.bin': randomBytes(64 * 1024) });

/** The image pushed from a tarball in `before`: `crane/app:v1`. */
let app: { ref: string; digest: string; layerDigest: string; configDigest: string };

interface Manifest {
  mediaType: string;
  config: { mediaType: string; digest: string };
  layers: Array<{ mediaType: string; digest: string; size: number }>;
}

const ref = (name: string) => `${fixture.registry}/${name}`;
const manifestOf = async (reference: string) => JSON.parse(await crane.ok(['manifest', '--insecure', reference])) as Manifest;
const digestOf = async (reference: string) => (await crane.ok(['digest', '--insecure', reference])).trim();

before(async () => {
  fixture = await openOciFixture('crane');
  crane = openCli('ASTORE_TEST_CRANE', fixture);
  const layerFile = join(fixture.work, 'layer.tar');
  const imageFile = join(fixture.work, 'image.tar');
  await writeFile(layerFile, layerTar);
  // Without --base, append starts from an empty (scratch) image; with -o it writes a tarball instead of pushing.
  await crane.ok(['append', '-f', layerFile, '-t', ref('crane/app:v1'), '-o', imageFile]);
  await crane.ok(['push', '--insecure', imageFile, ref('crane/app:v1')]);
  const manifest = await manifestOf(ref('crane/app:v1'));
  app = { ref: ref('crane/app:v1'), digest: await digestOf(ref('crane/app:v1')), layerDigest: manifest.layers[0]!.digest, configDigest: manifest.config.digest };
});
after(() => closeOciFixture(fixture ?? {}));

describe('crane: push and pull', () => {
  test("push of the tarball: the registry serves a docker manifest with the tarball's config and layer", async () => {
    const pushed = untar(await readFile(join(fixture.work, 'image.tar')));
    const [entry] = JSON.parse(pushed.get('manifest.json')!.toString()) as Array<{ Config: string; Layers: string[] }>;
    const manifest = await manifestOf(app.ref);
    assert.equal(manifest.mediaType, 'application/vnd.docker.distribution.manifest.v2+json');
    assert.equal(manifest.layers.length, 1);
    assert.equal(sha256Digest(pushed.get(entry!.Layers[0]!)!), app.layerDigest, 'the registry holds the layer the tarball had');
    assert.equal(manifest.config.digest, entry!.Config);
  });

  test('pull to a tarball gives the same layer digest and bytes, and the config', async () => {
    const pulledFile = join(fixture.work, 'pulled.tar');
    await crane.ok(['pull', '--insecure', app.ref, pulledFile]);
    const pulled = untar(await readFile(pulledFile));
    const [entry] = JSON.parse(pulled.get('manifest.json')!.toString()) as Array<{ Config: string; Layers: string[] }>;
    assert.equal(entry!.Layers.length, 1);
    const layer = pulled.get(entry!.Layers[0]!)!;
    assert.equal(sha256Digest(layer), app.layerDigest);
    assert.ok(gunzipSync(layer).equals(layerTar), 'the pulled layer decompresses to the appended tar');
    assert.equal(sha256Digest(pulled.get(entry!.Config)!), app.configDigest);
  });

  test('append without -o pushes an OCI image directly; digest is the sha256 of the manifest bytes', async () => {
    const layerFile = join(fixture.work, 'layer.tar');
    await crane.ok(['append', '--insecure', '--oci-empty-base', '-f', layerFile, '-t', ref('crane/oci:v1')]);
    const raw = await crane.ok(['manifest', '--insecure', ref('crane/oci:v1')]);
    const manifest = JSON.parse(raw) as Manifest;
    assert.equal(manifest.mediaType, 'application/vnd.oci.image.manifest.v1+json');
    assert.equal(manifest.layers[0]!.mediaType, 'application/vnd.oci.image.layer.v1.tar+gzip');
    assert.equal(manifest.layers[0]!.digest, app.layerDigest, 'same tar, same gzip layer');
    assert.equal(await digestOf(ref('crane/oci:v1')), sha256Digest(Buffer.from(raw)));
  });
});

describe('crane: copy, ls, delete, catalog', () => {
  test('copy to another tag: ls lists both tags, which resolve to the same digest', async () => {
    await crane.ok(['copy', '--insecure', app.ref, ref('crane/app:v2')]);
    assert.deepEqual((await crane.ok(['ls', '--insecure', ref('crane/app')])).trim().split('\n'), ['v1', 'v2']);
    assert.equal(await digestOf(ref('crane/app:v2')), app.digest);
  });

  test('copy to another repository mounts the blobs instead of uploading them', async () => {
    const result = await crane.run(['copy', '--insecure', app.ref, ref('crane/copy:v1')]);
    assert.equal(result.code, 0, result.stderr);
    for (const digest of [app.configDigest, app.layerDigest]) {
      assert.match(result.stderr, new RegExp(`mounted blob: ${digest}`), `blob ${digest} mounted from crane/app`);
    }
    assert.equal(await digestOf(ref('crane/copy:v1')), app.digest);
    assert.deepEqual((await crane.ok(['ls', '--insecure', ref('crane/copy')])).trim().split('\n'), ['v1']);
  });

  test('delete by digest: the manifest and its tag are gone from that repository only', async () => {
    await crane.ok(['copy', '--insecure', app.ref, ref('crane/doomed:v1')]);
    await crane.ok(['delete', '--insecure', ref(`crane/doomed@${app.digest}`)]);
    for (const gone of [ref(`crane/doomed@${app.digest}`), ref('crane/doomed:v1')]) {
      const result = await crane.fails(['manifest', '--insecure', gone]);
      assert.match(result.stderr, /MANIFEST_UNKNOWN/, `${gone} after delete`);
    }
    assert.equal((await crane.ok(['ls', '--insecure', ref('crane/doomed')])).trim(), '');
    assert.equal(await digestOf(app.ref), app.digest, 'the same manifest in crane/app is untouched');
  });

  test('catalog lists the repositories pushed to, in lexical order', async () => {
    const repositories = (await crane.ok(['catalog', '--insecure', fixture.registry])).trim().split('\n');
    for (const name of ['crane/app', 'crane/copy', 'crane/oci']) assert.ok(repositories.includes(name), `${name} in ${repositories.join(', ')}`);
    assert.deepEqual(repositories, [...repositories].sort());
  });
});
