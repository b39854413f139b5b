import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { accessKeyId, secretKey } from '../helpers/server.ts';
import { closeOciFixture, openCli, openOciFixture, registryFetch, type Cli, type OciFixture } from '../helpers/oci.ts';
import { sha256Digest } from '../helpers/registry-http.ts';

/**
 * helm 3.22.0 end to end with OCI charts over plain HTTP: `helm registry login`, package, push,
 * pull (a given version and the latest one, found through the tags list), show chart.
 */
let fixture: OciFixture;
let helm: Cli;
const chartName = 'astore-demo';
/** The packaged .tgz of each chart version. */
const packages = new Map<string, Buffer>();

/** Writes a minimal chart of `version` and packages it with helm; returns the .tgz bytes. */
async function packageChart(version: string): Promise<Buffer> {
  const dir = join(fixture.work, 'charts', version, chartName);
  await mkdir(join(dir, 'templates'), { recursive: true });
  await writeFile(join(dir, 'Chart.yaml'), `apiVersion: v2\nname: ${chartName}\ndescription: astore end-to-end test chart\ntype: application\nversion: ${version}\nappVersion: "1.0"\n`);
  await writeFile(join(dir, 'values.yaml'), 'greeting: hello\n');
  await writeFile(
    join(dir, 'templates', 'configmap.yaml'),
    'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Release.Name }}-config\ndata:\n  greeting: {{ .Values.greeting | quote }}\n',
  );
  const out = join(fixture.work, 'packages');
  await helm.ok(['package', dir, '-d', out]);
  return readFile(join(out, `${chartName}-${version}.tgz`));
}

const chartRef = () => `oci://${fixture.registry}/charts/${chartName}`;

before(async () => {
  fixture = await openOciFixture('helm');
  helm = openCli('ASTORE_TEST_HELM', fixture);
  await helm.ok(['registry', 'login', fixture.registry, '--insecure', '-u', accessKeyId, '--password-stdin'], { input: secretKey });
  for (const version of ['0.1.0', '0.2.0']) packages.set(version, await packageChart(version));
});
after(() => closeOciFixture(fixture ?? {}));

describe('helm: OCI charts', () => {
  test('registry login with a wrong password fails', async () => {
    const env = { HELM_REGISTRY_CONFIG: join(fixture.work, 'helm-wrong.json') };
    const result = await helm.fails(['registry', 'login', fixture.registry, '--insecure', '-u', accessKeyId, '--password-stdin'], { env, input: 'not-the-secret' });
    assert.match(result.stderr, /401|unauthorized/i);
  });

  test('push --plain-http stores the chart as a helm OCI artifact: the layer is the .tgz, tagged with the version', async () => {
    const tgz = packages.get('0.1.0')!;
    const result = await helm.run(['push', join(fixture.work, 'packages', `${chartName}-0.1.0.tgz`), `oci://${fixture.registry}/charts`, '--plain-http']);
    assert.equal(result.code, 0, result.stderr);
    const digest = /Digest: (sha256:[a-f0-9]{64})/.exec(result.stdout + result.stderr)?.[1];
    assert.ok(digest, `digest in helm's output:\n${result.stdout}${result.stderr}`);

    const res = await registryFetch(fixture, `/v2/charts/${chartName}/manifests/0.1.0`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('docker-content-digest'), digest);
    const manifest = (await res.json()) as { config: { mediaType: string }; layers: Array<{ mediaType: string; digest: string; size: number }> };
    assert.equal(manifest.config.mediaType, 'application/vnd.cncf.helm.config.v1+json');
    assert.deepEqual(manifest.layers.map((l) => [l.mediaType, l.digest, l.size]), [['application/vnd.cncf.helm.chart.content.v1.tar+gzip', sha256Digest(tgz), tgz.length]]);
  });

  test('pull --version into a fresh dir gives back the packaged .tgz byte for byte', async () => {
    const target = join(fixture.work, 'pulled-0.1.0');
    await mkdir(target); // helm pull -d writes into an existing dir
    await helm.ok(['pull', chartRef(), '--version', '0.1.0', '--plain-http', '-d', target]);
    assert.deepEqual(await readdir(target), [`${chartName}-0.1.0.tgz`]);
    assert.ok((await readFile(join(target, `${chartName}-0.1.0.tgz`))).equals(packages.get('0.1.0')!));
  });

  test('show chart reads Chart.yaml from the registry', async () => {
    const chart = await helm.ok(['show', 'chart', chartRef(), '--version', '0.1.0', '--plain-http']);
    assert.match(chart, new RegExp(`^name: ${chartName}$`, 'm'));
    assert.match(chart, /^version: 0\.1\.0$/m);
  });

  test('given two pushed versions, pull without --version picks the latest from the tags list', async () => {
    await helm.ok(['push', join(fixture.work, 'packages', `${chartName}-0.2.0.tgz`), `oci://${fixture.registry}/charts`, '--plain-http']);
    const tags = (await (await registryFetch(fixture, `/v2/charts/${chartName}/tags/list`)).json()) as { tags: string[] };
    assert.deepEqual(tags.tags, ['0.1.0', '0.2.0']);
    const target = join(fixture.work, 'pulled-latest');
    await mkdir(target);
    await helm.ok(['pull', chartRef(), '--plain-http', '-d', target]);
    assert.deepEqual(await readdir(target), [`${chartName}-0.2.0.tgz`]);
    assert.ok((await readFile(join(target, `${chartName}-0.2.0.tgz`))).equals(packages.get('0.2.0')!));
  });
});
