import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  type S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { basicAuth, buildOciImage, closeOciFixture, openCli, openOciFixture, registryFetch, writeOciLayout, type Cli, type OciFixture } from '../helpers/oci.ts';
import { RegistryHttp, sha256Digest } from '../helpers/registry-http.ts';
import { sdkClient } from '../helpers/sdk-js.ts';
import { apiCall } from '../helpers/api.ts';

/**
 * SBOMs end to end: what oras attaches to an image is parsed, recorded and found again (oras
 * discover, oras pull, the records API, byte for byte); a malformed SBOM refuses the push with
 * MANIFEST_INVALID and leaves nothing behind; the package query over a deterministic corpus of SPDX
 * 2.3 and CycloneDX 1.5/1.6 SBOMs attached to ~60 S3 objects in two buckets and 10 images answers
 * exactly the artifacts whose SBOMs list a package (by purl, purl and version range, name and range,
 * narrowed by bucket and repository), pages without loss or duplicates, and hides what the caller may
 * not read; "everything attached to a digest" lists signatures, SBOMs and attestations from every
 * bucket and repository holding those bytes.
 */
let f: OciFixture;
let oras: Cli;
let root: S3Client;
let registry: RegistryHttp;

const auditorPassword = 'auditor-password-0123';
const outsiderPassword = 'outsider-password-0123';
let auditorAuth: string;
let outsiderAuth: string;

const api = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => apiCall(f.server.endpoint, method, path, body, headers);

/** A query string; undefined values are left out. */
const qs = (params: Record<string, string | number | undefined>) =>
  new URLSearchParams(Object.entries(params).flatMap(([k, v]): [string, string][] => (v === undefined ? [] : [[k, String(v)]]))).toString();

before(async () => {
  f = await openOciFixture('supplychain-sbom');
  oras = openCli('ASTORE_TEST_ORAS', f);
  root = sdkClient(f.server.endpoint);
  registry = new RegistryHttp(f.server.endpoint);
  await root.send(new CreateBucketCommand({ Bucket: 'bucket-a' }));
  await root.send(new CreateBucketCommand({ Bucket: 'bucket-b' }));

  // An auditor who may read the evidence of bucket-a only (and use the two query routes), and an
  // outsider with the same artifact grant but not the packages route itself.
  for (const [name, password] of [['auditor', auditorPassword], ['outsider', outsiderPassword]] as const) {
    const created = await api('POST', '/api/v1/users', { name, password });
    assert.equal(created.status, 201, created.text);
  }
  const auditor = await api('PUT', '/api/v1/policies/sbom-auditor', {
    statements: [
      { effect: 'allow', principals: ['user:auditor'], actions: ['supplychain:read'], resources: ['s3:bucket-a/*', 'api:supplychain/packages', 'api:supplychain/records'] },
    ],
  });
  assert.equal(auditor.status, 201, auditor.text);
  const outsider = await api('PUT', '/api/v1/policies/sbom-outsider', {
    statements: [{ effect: 'allow', principals: ['user:outsider'], actions: ['supplychain:read'], resources: ['s3:bucket-a/*'] }],
  });
  assert.equal(outsider.status, 201, outsider.text);
  auditorAuth = basicAuth('auditor', auditorPassword);
  outsiderAuth = basicAuth('outsider', outsiderPassword);
});

after(async () => {
  root?.destroy();
  await closeOciFixture(f ?? {});
});

// ------------------------------------------------------------------------------------------------
// SBOM documents, written the way syft / cyclonedx-maven-plugin write them (pretty-printed, so a
// re-serialisation anywhere would show in the byte-for-byte checks).

interface Pkg {
  name: string;
  version?: string;
  purl: string;
  group?: string;
  license?: string;
  /** CycloneDX only: nested under the previous top-level component. */
  nested?: boolean;
}

function spdxDocument(name: string, packages: Pkg[]): Buffer {
  const doc = {
    spdxVersion: 'SPDX-2.3',
    dataLicense: 'CC0-1.0',
    SPDXID: 'SPDXRef-DOCUMENT',
    name,
    documentNamespace: `https://astore.test/spdx/${encodeURIComponent(name)}`,
    creationInfo: { created: '2026-01-02T03:04:05Z', creators: ['Tool: astore-test-generator-1.0'] },
    packages: packages.map((p, i) => ({
      name: p.name,
      SPDXID: `SPDXRef-Package-${i}`,
      ...(p.version !== undefined && { versionInfo: p.version }),
      downloadLocation: 'NOASSERTION',
      filesAnalyzed: false,
      licenseConcluded: p.license ?? 'NOASSERTION',
      licenseDeclared: p.license ?? 'NOASSERTION',
      externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: p.purl }],
    })),
    relationships: packages.map((_, i) => ({ spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: `SPDXRef-Package-${i}` })),
  };
  return Buffer.from(`${JSON.stringify(doc, null, 2)}\n`);
}

function cycloneDxDocument(specVersion: '1.5' | '1.6', name: string, packages: Pkg[], serial: number): Buffer {
  const component = (p: Pkg) => ({
    type: 'library',
    'bom-ref': p.purl,
    ...(p.group !== undefined && { group: p.group }),
    name: p.name,
    ...(p.version !== undefined && { version: p.version }),
    purl: p.purl,
    ...(p.license !== undefined && { licenses: [{ license: { id: p.license } }] }),
  });
  const components: Array<ReturnType<typeof component> & { components?: unknown[] }> = [];
  for (const p of packages) {
    const parent = components.at(-1);
    if (p.nested && parent) (parent.components ??= []).push(component(p));
    else components.push(component(p));
  }
  const doc = {
    bomFormat: 'CycloneDX',
    specVersion,
    serialNumber: `urn:uuid:00000000-0000-4000-8000-${serial.toString(16).padStart(12, '0')}`,
    version: 1,
    metadata: { timestamp: '2026-01-02T03:04:05Z', component: { type: 'application', name } },
    components,
  };
  return Buffer.from(`${JSON.stringify(doc, null, 2)}\n`);
}

/** A signed DSSE envelope of a SLSA provenance v1 statement about `digest` (ECDSA P-256 over the PAE). */
function provenanceEnvelope(digest: string, name: string): Buffer {
  const statement = {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name, digest: { sha256: digest.slice('sha256:'.length) } }],
    predicateType: 'https://slsa.dev/provenance/v1',
    predicate: {
      buildDefinition: {
        buildType: 'https://astore.test/buildtypes/make@v1',
        externalParameters: { target: name },
        resolvedDependencies: [{ uri: 'git+https://astore.test/app@refs/heads/main', digest: { gitCommit: 'a'.repeat(40) } }],
      },
      runDetails: { builder: { id: 'https://astore.test/ci/builder@v1' } },
    },
  };
  const payloadType = 'application/vnd.in-toto+json';
  const payload = Buffer.from(JSON.stringify(statement));
  const pae = Buffer.concat([Buffer.from(`DSSEv1 ${payloadType.length} ${payloadType} ${payload.length} `), payload]);
  const signature = sign('sha256', pae, attestationKey.privateKey);
  return Buffer.from(JSON.stringify({ payloadType, payload: payload.toString('base64'), signatures: [{ keyid: 'astore-test', sig: signature.toString('base64') }] }));
}
const attestationKey = generateKeyPairSync('ec', { namedCurve: 'P-256' });

interface RecordView {
  id: string;
  subject: string;
  kind: string;
  format: string;
  mediaType: string;
  contentDigest: string;
  size: number;
  bucket?: string;
  key?: string;
  repository?: string;
  sourceManifest?: string;
}

interface Match {
  subject: string;
  recordId: string;
  name: string;
  version?: string;
  purl?: string;
  licenses: string[];
  bucket?: string;
  key?: string;
  repository?: string;
}

interface DiscoverTree {
  digest: string;
  referrers?: Array<{ digest: string; artifactType: string; mediaType: string }>;
}

interface OrasPush {
  digest: string;
  mediaType: string;
  size: number;
  artifactType?: string;
}

async function referrers(repository: string, digest: string): Promise<string[]> {
  const res = await registryFetch(f, `/v2/${repository}/referrers/${digest}`);
  assert.equal(res.status, 200);
  return ((await res.json()) as { manifests: Array<{ digest: string }> }).manifests.map((m) => m.digest).sort();
}

async function recordsOf(params: Record<string, string>, auth = basicAuth()): Promise<RecordView[]> {
  const all: RecordView[] = [];
  let after: string | undefined;
  for (let page = 0; page < 100; page++) {
    const res = await api('GET', `/api/v1/supplychain/records?${qs({ ...params, ...(after !== undefined && { after }) })}`, undefined, { authorization: auth });
    assert.equal(res.status, 200, res.text);
    all.push(...(res.json.records as RecordView[]));
    after = res.json.next;
    if (after === undefined) return all;
  }
  assert.fail('records: more than 100 pages');
}

// ================================================================================================
// 1. oras attach, discover, pull; the records API

describe('SBOMs attached with oras', () => {
  const repository = 'sc/app';
  const image = buildOciImage([{ 'usr/bin/app': '#!/bin/sh\necho app 1.0\n', 'etc/app.conf': 'level=info\n' }]);
  const digest = image.manifestDigest;
  const spdx = spdxDocument('sc-app-1.0', [
    { name: 'left-pad', version: '1.3.0', purl: 'pkg:npm/left-pad@1.3.0', license: 'WTFPL' },
    { name: 'jackson-databind', version: '2.15.2', purl: 'pkg:maven/com.fasterxml.jackson.core/jackson-databind@2.15.2', license: 'Apache-2.0' },
    { name: 'requests', version: '2.31.0', purl: 'pkg:pypi/requests@2.31.0', license: 'Apache-2.0' },
  ]);
  const cdx = cycloneDxDocument('1.6', 'sc-app-1.0', [
    { group: 'io.astore.test', name: 'oras-only-marker', version: '7.7.7', purl: 'pkg:maven/io.astore.test/oras-only-marker@7.7.7', license: 'MIT' },
    { group: 'org.slf4j', name: 'slf4j-api', version: '2.0.9', purl: 'pkg:maven/org.slf4j/slf4j-api@2.0.9', nested: true },
  ], 1);
  let spdxPush: OrasPush;
  let cdxPush: OrasPush;
  let source: string;

  before(async () => {
    const layout = join(f.work, 'layout');
    await writeOciLayout(layout, image, 'v1');
    await oras.ok(['cp', '--from-oci-layout', '--to-plain-http', `${layout}:v1`, `${f.registry}/${repository}:v1`]);
    const head = await registryFetch(f, `/v2/${repository}/manifests/v1`, { method: 'HEAD', headers: { accept: image.mediaType } });
    assert.equal(head.headers.get('docker-content-digest'), digest);

    source = join(f.work, 'sboms');
    await mkdir(source);
    await writeFile(join(source, 'sbom.spdx.json'), spdx);
    await writeFile(join(source, 'bom.json'), cdx);
    // By digest, the file untyped (oras gives it application/vnd.oci.image.layer.v1.tar) ...
    spdxPush = JSON.parse(
      await oras.ok(['attach', '--plain-http', '--format', 'json', '--artifact-type', 'application/spdx+json', `${f.registry}/${repository}@${digest}`, 'sbom.spdx.json'], { cwd: source }),
    ) as OrasPush;
    // ... and by tag, the file typed.
    cdxPush = JSON.parse(
      await oras.ok(
        ['attach', '--plain-http', '--format', 'json', '--artifact-type', 'application/vnd.cyclonedx+json', `${f.registry}/${repository}:v1`, 'bom.json:application/vnd.cyclonedx+json'],
        { cwd: source },
      ),
    ) as OrasPush;
  });

  test('oras attach pushed two referrer manifests; oras discover --format json lists both with their artifact types', async () => {
    assert.equal(spdxPush.artifactType, 'application/spdx+json');
    assert.equal(cdxPush.artifactType, 'application/vnd.cyclonedx+json');
    assert.notEqual(spdxPush.digest, cdxPush.digest);
    const tree = JSON.parse(await oras.ok(['discover', '--plain-http', '--format', 'json', `${f.registry}/${repository}:v1`])) as DiscoverTree;
    assert.equal(tree.digest, digest);
    assert.deepEqual(
      (tree.referrers ?? []).map((r) => [r.digest, r.artifactType, r.mediaType]).sort(),
      [
        [spdxPush.digest, 'application/spdx+json', 'application/vnd.oci.image.manifest.v1+json'],
        [cdxPush.digest, 'application/vnd.cyclonedx+json', 'application/vnd.oci.image.manifest.v1+json'],
      ].sort(),
    );
    // Filtered by artifact type, as `oras discover --artifact-type` asks the referrers API.
    const onlySpdx = JSON.parse(await oras.ok(['discover', '--plain-http', '--format', 'json', '--artifact-type', 'application/spdx+json', `${f.registry}/${repository}@${digest}`])) as DiscoverTree;
    assert.deepEqual((onlySpdx.referrers ?? []).map((r) => r.digest), [spdxPush.digest]);
  });

  test('the records API lists two SBOM records for the image (spdx, cyclonedx), by digest and by tag', async () => {
    const records = await recordsOf({ repository, reference: digest });
    assert.equal(records.length, 2, JSON.stringify(records));
    const byFormat = new Map(records.map((r) => [r.format, r]));
    assert.deepEqual([...byFormat.keys()].sort(), ['cyclonedx', 'spdx']);
    for (const [format, pushed, bytes, mediaType] of [
      ['spdx', spdxPush, spdx, 'application/spdx+json'],
      ['cyclonedx', cdxPush, cdx, 'application/vnd.cyclonedx+json'],
    ] as const) {
      const record = byFormat.get(format)!;
      assert.equal(record.kind, 'sbom');
      assert.equal(record.subject, digest);
      assert.equal(record.repository, repository);
      assert.equal(record.bucket, undefined);
      assert.equal(record.sourceManifest, pushed.digest, `${format} was read from the manifest oras pushed`);
      assert.equal(record.contentDigest, sha256Digest(bytes));
      assert.equal(record.size, bytes.length);
      assert.equal(record.mediaType, mediaType);
    }
    const byTag = await recordsOf({ repository, reference: 'v1' });
    assert.deepEqual(byTag.map((r) => r.id).sort(), records.map((r) => r.id).sort());
    const sbomsOnly = await recordsOf({ repository, reference: digest, kind: 'sbom' });
    assert.equal(sbomsOnly.length, 2);
    assert.deepEqual(await recordsOf({ repository, reference: digest, kind: 'signature' }), []);
  });

  test('GET /records/<id>/content returns each SBOM byte for byte', async () => {
    const records = await recordsOf({ repository, reference: digest });
    for (const record of records) {
      const expected = record.format === 'spdx' ? spdx : cdx;
      const content = await api('GET', `/api/v1/supplychain/records/${record.id}/content`);
      assert.equal(content.status, 200);
      assert.ok(content.bytes.equals(expected), `${record.format} content differs: ${content.text.slice(0, 200)}`);
      assert.equal(content.headers.get('content-type')?.split(';')[0], record.mediaType);
      assert.equal(content.headers.get('docker-content-digest'), sha256Digest(expected));
      const one = await api('GET', `/api/v1/supplychain/records/${record.id}`);
      assert.equal(one.status, 200);
      assert.equal(one.json.id, record.id);
    }
  });

  test('oras pull of each SBOM referrer gives the file back byte for byte', async () => {
    for (const [pushed, name, bytes] of [
      [spdxPush, 'sbom.spdx.json', spdx],
      [cdxPush, 'bom.json', cdx],
    ] as const) {
      const target = join(f.work, `pulled-${name}`);
      await oras.ok(['pull', '--plain-http', `${f.registry}/${repository}@${pushed.digest}`, '-o', target]);
      assert.deepEqual(await readdir(target), [name]);
      assert.ok((await readFile(join(target, name))).equals(bytes), `${name} pulled byte for byte`);
    }
  });

  test('the packages of the oras-attached SBOMs are indexed: a package query finds the image', async () => {
    for (const purl of ['pkg:npm/left-pad@1.3.0', 'pkg:maven/io.astore.test/oras-only-marker@7.7.7', 'pkg:maven/org.slf4j/slf4j-api@2.0.9']) {
      const res = await api('GET', `/api/v1/supplychain/packages?${qs({ purl, repository: 'sc/' })}`);
      assert.equal(res.status, 200, res.text);
      const matches = res.json.matches as Match[];
      assert.equal(matches.length, 1, `${purl}: ${res.text}`);
      assert.equal(matches[0]!.subject, digest);
      assert.equal(matches[0]!.repository, repository);
      assert.equal(matches[0]!.purl, purl);
    }
  });
});

// ================================================================================================
// 2. Malformed SBOMs are refused, on the registry and on the API

describe('malformed SBOMs are refused with nothing stored', () => {
  const repository = 'sc/app';
  let digest: string;
  let before_: { referrers: string[]; records: string[] };
  let source: string;

  before(async () => {
    const head = await registryFetch(f, `/v2/${repository}/manifests/v1`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(head.status, 200);
    digest = head.headers.get('docker-content-digest')!;
    before_ = { referrers: await referrers(repository, digest), records: (await recordsOf({ repository, reference: digest })).map((r) => r.id).sort() };
    assert.equal(before_.referrers.length, 2, 'the two SBOMs attached above');
    source = join(f.work, 'bad-sboms');
    await mkdir(source);
  });

  async function nothingStored(marker: string): Promise<void> {
    assert.deepEqual(await referrers(repository, digest), before_.referrers, 'referrers unchanged');
    assert.deepEqual((await recordsOf({ repository, reference: digest })).map((r) => r.id).sort(), before_.records, 'records unchanged');
    const found = await api('GET', `/api/v1/supplychain/packages?${qs({ purl: marker })}`);
    assert.equal(found.status, 200);
    assert.deepEqual(found.json.matches, [], `${marker} indexed from a refused document`);
  }

  const badVersion = spdxDocument('bad-version', [{ name: 'bad-version-marker', version: '1.0.0', purl: 'pkg:npm/bad-version-marker@1.0.0' }]);
  const badVersionDoc = Buffer.from(badVersion.toString('utf8').replace('"SPDX-2.3"', '"SPDX-9.9"'));
  const badPurl = cycloneDxDocument('1.5', 'bad-purl', [
    { name: 'bad-purl-marker', version: '1.0.0', purl: 'pkg:npm/bad-purl-marker@1.0.0' },
    { name: 'log4j-core', version: '2.14.1', purl: 'log4j-core@2.14.1' },
  ], 2);

  test('oras attach of an SPDX document with spdxVersion SPDX-9.9 exits non-zero with MANIFEST_INVALID naming the version', async () => {
    assert.match(badVersionDoc.toString('utf8'), /"spdxVersion": "SPDX-9\.9"/);
    await writeFile(join(source, 'bad.spdx.json'), badVersionDoc);
    // --debug: oras logs the registry's answer to its manifest PUT, so the wire error code shows.
    const result = await oras.fails(['attach', '--plain-http', '--debug', '--artifact-type', 'application/spdx+json', `${f.registry}/${repository}@${digest}`, 'bad.spdx.json'], { cwd: source });
    assert.match(result.stderr, /Response Status: "400 Bad Request"/, result.stderr);
    assert.match(result.stderr, /\{"errors":\[\{"code":"MANIFEST_INVALID","message":"the SPDX document has spdxVersion/, result.stderr);
    // oras renders the error code MANIFEST_INVALID as "manifest invalid", then the registry's message.
    assert.match(result.stderr, /Error response from registry: manifest invalid: the SPDX document has spdxVersion "SPDX-9\.9"; supported: SPDX-2\.2, SPDX-2\.3/, result.stderr);
    await nothingStored('pkg:npm/bad-version-marker@1.0.0');
  });

  test('oras attach of a CycloneDX document with an invalid purl exits non-zero with MANIFEST_INVALID naming the component and purl', async () => {
    await writeFile(join(source, 'bad-purl.cdx.json'), badPurl);
    const result = await oras.fails(
      ['attach', '--plain-http', '--debug', '--artifact-type', 'application/vnd.cyclonedx+json', `${f.registry}/${repository}:v1`, 'bad-purl.cdx.json:application/vnd.cyclonedx+json'],
      { cwd: source },
    );
    assert.match(result.stderr, /\{"errors":\[\{"code":"MANIFEST_INVALID","message":"component /, result.stderr);
    assert.match(result.stderr, /Error response from registry: manifest invalid: component "log4j-core" \(components\[1\]\) has an invalid purl "log4j-core@2\.14\.1"/, result.stderr);
    await nothingStored('pkg:npm/bad-purl-marker@1.0.0');
  });

  test('the registry answers the manifest PUT itself with 400 MANIFEST_INVALID and the reason; no manifest is stored', async () => {
    const layer = await registry.pushBlob(repository, badVersionDoc);
    const empty = Buffer.from('{}');
    await registry.pushBlob(repository, empty);
    const subject = await registryFetch(f, `/v2/${repository}/manifests/${digest}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    const subjectBytes = Buffer.from(await subject.arrayBuffer());
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType: 'application/spdx+json',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256Digest(empty), size: 2, data: 'e30=' },
        layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer, size: badVersionDoc.length, annotations: { 'org.opencontainers.image.title': 'bad.spdx.json' } }],
        subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: subjectBytes.length },
      }),
    );
    const put = await registryFetch(f, `/v2/${repository}/manifests/${sha256Digest(manifest)}`, {
      method: 'PUT',
      body: manifest,
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    });
    const text = await put.text();
    assert.equal(put.status, 400, text);
    const error = JSON.parse(text) as { errors: Array<{ code: string; message: string }> };
    assert.equal(error.errors[0]!.code, 'MANIFEST_INVALID');
    assert.match(error.errors[0]!.message, /spdxVersion "SPDX-9\.9"/);
    const stored = await registryFetch(f, `/v2/${repository}/manifests/${sha256Digest(manifest)}`, { method: 'HEAD', headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(stored.status, 404);
    await nothingStored('pkg:npm/bad-version-marker@1.0.0');
  });

  test('the API refuses the same documents for the image with 400 InvalidDocument and pushes no referrer', async () => {
    const viaApi = await api('POST', `/api/v1/supplychain/records?${qs({ repository, reference: digest })}`, badVersionDoc, { 'content-type': 'application/spdx+json' });
    assert.equal(viaApi.status, 400, viaApi.text);
    assert.match(viaApi.text, /InvalidDocument/);
    assert.match(viaApi.text, /SPDX-9\.9/);
    const purl = await api('POST', `/api/v1/supplychain/records?${qs({ repository, reference: 'v1' })}`, badPurl, { 'content-type': 'application/vnd.cyclonedx+json' });
    assert.equal(purl.status, 400, purl.text);
    assert.match(purl.text, /invalid purl/);
    await nothingStored('pkg:npm/bad-purl-marker@1.0.0');
  });
});

// ================================================================================================
// 3. Package queries over a corpus of SBOMs

/** mulberry32: a small deterministic PRNG, so the corpus is the same on every run. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Eco = 'maven' | 'npm' | 'pypi';
const pool: Array<{ eco: Eco; group?: string; name: string; versions: string[]; license: string }> = [
  ...(
    [
      ['com.fasterxml.jackson.core', 'jackson-databind', ['2.13.4.2', '2.15.2', '2.17.0']],
      ['com.fasterxml.jackson.core', 'jackson-core', ['2.13.4', '2.15.2']],
      ['org.springframework', 'spring-core', ['5.3.27', '6.0.11', '6.1.4']],
      ['org.springframework', 'spring-web', ['5.3.27', '6.1.4']],
      ['com.google.guava', 'guava', ['31.1-jre', '32.1.2-jre', '33.0.0-jre']],
      ['org.apache.commons', 'commons-lang3', ['3.12.0', '3.14.0']],
      ['org.apache.commons', 'commons-text', ['1.9', '1.10.0']],
      ['commons-io', 'commons-io', ['2.11.0', '2.15.1']],
      ['org.slf4j', 'slf4j-api', ['1.7.36', '2.0.9']],
      ['io.netty', 'netty-handler', ['4.1.94.Final', '4.1.100.Final']],
      ['io.netty', 'netty-codec-http', ['4.1.94.Final', '4.1.100.Final']],
      ['org.yaml', 'snakeyaml', ['1.33', '2.0', '2.2']],
      ['com.h2database', 'h2', ['2.1.214', '2.2.224']],
      ['org.apache.httpcomponents', 'httpclient', ['4.5.13', '4.5.14']],
      ['junit', 'junit', ['4.13.2']],
      ['org.hibernate.orm', 'hibernate-core', ['6.2.7.Final', '6.4.1.Final']],
      ['ch.qos.logback', 'logback-classic', ['1.2.11', '1.4.14']],
      ['org.bouncycastle', 'bcprov-jdk18on', ['1.76', '1.77']],
      ['com.squareup.okhttp3', 'okhttp', ['4.11.0', '4.12.0']],
      ['org.postgresql', 'postgresql', ['42.6.0', '42.7.1']],
    ] as const
  ).map(([group, name, versions]) => ({ eco: 'maven' as const, group, name, versions: [...versions], license: 'Apache-2.0' })),
  ...(
    [
      ['lodash', ['4.17.20', '4.17.21']],
      ['express', ['4.18.2', '4.19.2']],
      ['react', ['18.2.0', '18.3.1']],
      ['react-dom', ['18.2.0', '18.3.1']],
      ['axios', ['0.27.2', '1.6.7']],
      ['minimist', ['1.2.5', '1.2.8']],
      ['chalk', ['4.1.2', '5.3.0']],
      ['debug', ['2.6.9', '4.3.4']],
      ['semver', ['5.7.1', '7.5.4']],
      ['uuid', ['8.3.2', '9.0.1']],
      ['@babel/core', ['7.22.5', '7.23.9']],
      ['@types/node', ['18.19.3', '20.11.5']],
      ['moment', ['2.29.4']],
      ['qs', ['6.11.0', '6.11.2']],
      ['ws', ['7.5.9', '8.16.0']],
      ['yargs', ['17.7.2']],
      ['commander', ['9.5.0', '11.1.0']],
      ['glob', ['7.2.3', '10.3.10']],
      ['tslib', ['2.6.2']],
    ] as const
  ).map(([name, versions]) => ({ eco: 'npm' as const, name, versions: [...versions], license: 'MIT' })),
  ...(
    [
      ['requests', ['2.28.2', '2.31.0']],
      ['urllib3', ['1.26.18', '2.1.0']],
      ['django', ['4.2.9', '5.0.1']],
      ['flask', ['2.3.3', '3.0.1']],
      ['numpy', ['1.24.4', '1.26.3']],
      ['pyyaml', ['6.0.1']],
      ['jinja2', ['3.1.3']],
      ['certifi', ['2023.11.17', '2024.2.2']],
      ['idna', ['3.6']],
      ['cryptography', ['41.0.7', '42.0.2']],
      ['setuptools', ['68.2.2', '69.0.3']],
      ['six', ['1.16.0']],
      ['pillow', ['10.2.0']],
      ['click', ['8.1.7']],
      ['werkzeug', ['2.3.8', '3.0.1']],
    ] as const
  ).map(([name, versions]) => ({ eco: 'pypi' as const, name, versions: [...versions], license: 'BSD-3-Clause' })),
];

function purlOf(eco: Eco, name: string, version: string, group?: string): string {
  if (eco === 'maven') return `pkg:maven/${group}/${name}@${version}`;
  if (eco === 'npm') return name.startsWith('@') ? `pkg:npm/${name.replace('@', '%40')}@${version}` : `pkg:npm/${name}@${version}`;
  return `pkg:pypi/${name}@${version}`;
}

/**
 * log4j-core variants, one per artifact in turn, and whether each lies in >=2.0.0,<2.15.0 by the
 * documented order (numeric segments, pre-releases before their release): 2.0-beta9 < 2.0.0 <= 2.9.1
 * < 2.14.1 < 2.15.0-rc1 < 2.15.0.
 */
const log4jVariants: Array<{ version: string; qualifiers?: string; inRange: boolean } | undefined> = [
  { version: '2.14.1', inRange: true },
  { version: '2.17.1', inRange: false },
  { version: '2.15.0-rc1', inRange: true },
  undefined,
  { version: '2.9.1', inRange: true },
  { version: '2.14.1', qualifiers: '?type=jar', inRange: true },
  { version: '2.15.0', inRange: false },
  { version: '2.0.0', inRange: true },
  undefined,
  { version: '2.0-beta9', inRange: false },
  { version: '2.16.0', inRange: false },
  { version: '2.14.1', inRange: true },
  undefined,
];
/** Rank of the in-range versions in the documented order, to check the answer's order. */
const log4jOrder = ['2.0-beta9', '2.0.0', '2.9.1', '2.14.1', '2.15.0-rc1', '2.15.0', '2.16.0', '2.17.1'];
/** Versions of the npm package that is also called log4j-core (a decoy for purl queries): 2.3.0 in range, 3.1.0 not. */
const npmDecoyVersions: Record<string, boolean> = { '2.3.0': true, '3.1.0': false };

interface Artifact {
  /** s3:<bucket>/<key> or oci:<repository>@<digest> */
  id: string;
  bucket?: string;
  key?: string;
  repository?: string;
  reference?: string;
  subject: string;
  format: 'spdx' | 'cyclonedx-1.5' | 'cyclonedx-1.6';
  packages: Pkg[];
  document: Buffer;
  /** The maven log4j-core version listed, if any. */
  log4j?: string;
}

const artifactIdOf = (m: { bucket?: string; key?: string; repository?: string; subject: string }) =>
  m.bucket !== undefined ? `s3:${m.bucket}/${m.key}` : `oci:${m.repository}@${m.subject}`;

function packagesFor(index: number, random: () => number): { packages: Pkg[]; log4j?: string } {
  const count = 20 + Math.floor(random() * 31); // 20..50 in all
  const order = pool.map((p, i) => ({ p, r: random(), i })).sort((a, b) => a.r - b.r || a.i - b.i).map((x) => x.p);
  const packages: Pkg[] = [];
  const variant = log4jVariants[index % log4jVariants.length];
  if (variant) {
    // Nested under the previous component in some CycloneDX documents; in some the version is only in the purl.
    packages.push({
      group: 'org.apache.logging.log4j',
      name: 'log4j-core',
      ...(index % 4 !== 3 && { version: variant.version }),
      purl: `pkg:maven/org.apache.logging.log4j/log4j-core@${variant.version}${variant.qualifiers ?? ''}`,
      license: 'Apache-2.0',
      nested: index % 2 === 0,
    });
    // Same group and version, another package: must not match a log4j-core query.
    if (index % 3 === 0) packages.push({ group: 'org.apache.logging.log4j', name: 'log4j-api', version: variant.version, purl: `pkg:maven/org.apache.logging.log4j/log4j-api@${variant.version}`, license: 'Apache-2.0' });
  }
  // A package whose name starts like log4j-core's: neither purl nor name queries may match it.
  if (index % 5 === 1) packages.push({ group: 'org.apache.logging.log4j', name: 'log4j-core-test', version: '2.14.1', purl: 'pkg:maven/org.apache.logging.log4j/log4j-core-test@2.14.1', license: 'Apache-2.0' });
  // An npm package that is also named log4j-core: found by name, never by the maven purl.
  if (index % 7 === 2) {
    const version = index % 14 === 2 ? '2.3.0' : '3.1.0';
    packages.push({ name: 'log4j-core', version, purl: `pkg:npm/log4j-core@${version}`, license: 'MIT' });
  }
  for (const p of order) {
    if (packages.length >= count) break;
    const version = p.versions[Math.floor(random() * p.versions.length)]!;
    packages.push({ ...(p.group !== undefined && { group: p.group }), name: p.name, version, purl: purlOf(p.eco, p.name, version, p.group), license: p.license, nested: random() < 0.2 });
  }
  // Shuffle so log4j is not always first (the first component can never be nested).
  const shuffled = packages.map((p, i) => ({ p, r: random(), i })).sort((a, b) => a.r - b.r || a.i - b.i).map((x) => x.p);
  return { packages: shuffled, ...(variant && { log4j: variant.version }) };
}

function documentFor(index: number, name: string, packages: Pkg[]): { format: Artifact['format']; document: Buffer } {
  switch (index % 3) {
    case 0:
      return { format: 'spdx', document: spdxDocument(name, packages) };
    case 1:
      return { format: 'cyclonedx-1.5', document: cycloneDxDocument('1.5', name, packages, 1000 + index) };
    default:
      return { format: 'cyclonedx-1.6', document: cycloneDxDocument('1.6', name, packages, 1000 + index) };
  }
}

const log4jPurlBase = 'pkg:maven/org.apache.logging.log4j/log4j-core';
const range = '>=2.0.0,<2.15.0';

describe('package queries across many artifacts', () => {
  const artifacts: Artifact[] = [];
  const random = prng(20260102);

  /** Every match of a query, following `next` with `limit`; checks page sizes and duplicates. */
  async function allMatches(params: Record<string, string | number | undefined>, auth = basicAuth()): Promise<{ matches: Match[]; pages: number }> {
    const matches: Match[] = [];
    const seen = new Set<string>();
    let after: string | undefined;
    for (let pages = 1; pages <= 500; pages++) {
      const res = await api('GET', `/api/v1/supplychain/packages?${qs({ ...params, ...(after !== undefined && { after }) })}`, undefined, { authorization: auth });
      assert.equal(res.status, 200, res.text);
      const page = res.json.matches as Match[];
      if (params.limit !== undefined) assert.ok(page.length <= Number(params.limit), `page of ${page.length} > limit ${params.limit}`);
      for (const m of page) {
        const identity = `${m.recordId} ${m.purl} ${m.name} ${m.version}`;
        assert.ok(!seen.has(identity), `duplicate match across pages: ${identity}`);
        seen.add(identity);
        matches.push(m);
      }
      after = res.json.next;
      if (after === undefined) return { matches, pages };
    }
    assert.fail('more than 500 pages');
  }

  const ids = (matches: Match[]) => [...new Set(matches.map(artifactIdOf))].sort();
  const expected = (pick: (a: Artifact) => boolean) => artifacts.filter(pick).map((a) => a.id).sort();
  const hasComponent = (a: Artifact, test: (p: Pkg) => boolean) => a.packages.some(test);
  const versionOf = (p: Pkg) => p.version ?? p.purl.slice(p.purl.lastIndexOf('@') + 1).split('?')[0]!;
  const isLog4j = (p: Pkg) => p.purl.startsWith(`${log4jPurlBase}@`);
  const log4jInRange = (p: Pkg) => isLog4j(p) && log4jVariants.some((v) => v?.version === versionOf(p) && v.inRange);
  const nameInRange = (p: Pkg) =>
    p.name === 'log4j-core' && (isLog4j(p) ? log4jInRange(p) : (npmDecoyVersions[versionOf(p)] ?? assert.fail(`no range answer for ${p.purl}`)));

  before(async () => {
    let index = 0;
    // 60 S3 objects: 35 in bucket-a, 25 in bucket-b (the first of those uploaded in two parts).
    for (const [bucket, count] of [['bucket-a', 35], ['bucket-b', 25]] as const) {
      for (let i = 0; i < count; i++, index++) {
        const key = `builds/app-${index}/app-${index}.${['jar', 'tar.gz', 'whl'][index % 3]}`;
        const multipart = bucket === 'bucket-b' && i === 0;
        let content: Buffer;
        if (multipart) {
          const part1 = Buffer.alloc(5 * 1024 * 1024, `multipart artifact ${index} `);
          const part2 = Buffer.from(`tail of artifact ${index}\n`);
          content = Buffer.concat([part1, part2]);
          const { UploadId } = await root.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
          const parts = [];
          for (const [n, body] of [part1, part2].entries()) {
            const { ETag } = await root.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: n + 1, Body: body }));
            parts.push({ ETag, PartNumber: n + 1 });
          }
          await root.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId, MultipartUpload: { Parts: parts } }));
        } else {
          content = Buffer.from(`artifact ${index} in ${bucket}: ${random().toString(36)}\n`);
          await root.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: content }));
        }
        const { packages, log4j } = packagesFor(index, random);
        const { format, document } = documentFor(index, `app-${index}`, packages);
        artifacts.push({ id: `s3:${bucket}/${key}`, bucket, key, subject: sha256Digest(content), format, packages, document, ...(log4j && { log4j }) });
      }
    }
    // 10 images: prod/svc-0..5 and dev/svc-6..9.
    for (let i = 0; i < 10; i++, index++) {
      const repository = `${i < 6 ? 'prod' : 'dev'}/svc-${i}`;
      const { digest } = await registry.pushImage(repository, '1.0', [Buffer.from(`svc-${i} layer ${random().toString(36)}`)]);
      const { packages, log4j } = packagesFor(index, random);
      const { format, document } = documentFor(index, repository, packages);
      artifacts.push({ id: `oci:${repository}@${digest}`, repository, reference: i % 2 === 0 ? '1.0' : digest, subject: digest, format, packages, document, ...(log4j && { log4j }) });
    }

    for (const [n, a] of artifacts.entries()) {
      for (const p of a.packages) assert.ok(p.purl.length > 0);
      assert.ok(a.packages.length >= 20 && a.packages.length <= 50, `${a.id} lists ${a.packages.length} packages`);
      const where = a.bucket !== undefined ? { bucket: a.bucket, key: a.key! } : { repository: a.repository!, reference: a.reference! };
      // Most with their specific type; every fourth object without one (recognised from its content).
      const contentType: Record<string, string> = a.bucket !== undefined && n % 4 === 3 ? {} : { 'content-type': a.format === 'spdx' ? 'application/spdx+json' : 'application/vnd.cyclonedx+json' };
      const res = await api('POST', `/api/v1/supplychain/records?${qs(where)}`, a.document, contentType);
      assert.equal(res.status, 201, `${a.id}: ${res.text}`);
      const records = res.json.records as RecordView[];
      assert.equal(records.length, 1, res.text);
      assert.equal(records[0]!.kind, 'sbom');
      assert.equal(records[0]!.format, a.format === 'spdx' ? 'spdx' : 'cyclonedx');
      assert.equal(records[0]!.subject, a.subject, `${a.id}: the subject is the sha256 of the whole content`);
      assert.equal(records[0]!.contentDigest, sha256Digest(a.document));
    }
    // The corpus is what the checks below need: each variant present, in both buckets and on images.
    const withLog4j = artifacts.filter((a) => a.log4j !== undefined);
    assert.ok(withLog4j.length >= 40, `${withLog4j.length} artifacts with log4j-core`);
    for (const v of log4jVariants) if (v) assert.ok(withLog4j.some((a) => a.log4j === v.version), `variant ${v.version} present`);
  });

  test(`purl ${log4jPurlBase}@2.14.1 finds exactly the artifacts whose SBOMs list it (qualified purls and version-less components included)`, async () => {
    const { matches } = await allMatches({ purl: `${log4jPurlBase}@2.14.1` });
    const want = expected((a) => a.log4j === '2.14.1');
    assert.ok(want.some((id) => id.startsWith('s3:bucket-a/')) && want.some((id) => id.startsWith('s3:bucket-b/')) && want.some((id) => id.startsWith('oci:')), 'the expectation spans both buckets and images');
    assert.deepEqual(ids(matches), want);
    assert.equal(matches.length, want.length, 'one match per artifact');
    const bySubject = new Map(artifacts.map((a) => [a.id, a]));
    for (const m of matches) {
      assert.equal(m.name, 'log4j-core');
      assert.match(m.purl ?? '', /^pkg:maven\/org\.apache\.logging\.log4j\/log4j-core@2\.14\.1(\?type=jar)?$/);
      assert.deepEqual(m.licenses, ['Apache-2.0']);
      assert.equal(m.subject, bySubject.get(artifactIdOf(m))!.subject);
    }
  });

  test(`purl ${log4jPurlBase} with versions=${range} finds exactly the artifacts with a version in the range, in version order`, async () => {
    const { matches } = await allMatches({ purl: log4jPurlBase, versions: range });
    const want = expected((a) => hasComponent(a, log4jInRange));
    assert.ok(want.length > 0);
    assert.deepEqual(ids(matches), want);
    assert.ok(matches.some((m) => (m.version ?? m.purl)?.includes('2.15.0-rc1')), '2.15.0-rc1 sorts before 2.15.0: in range');
    assert.ok(!matches.some((m) => m.purl?.includes('@2.0-beta9')), '2.0-beta9 sorts before 2.0.0: out of range');
    const ranks = matches.map((m) => log4jOrder.indexOf(m.version ?? m.purl!.slice(m.purl!.lastIndexOf('@') + 1).split('?')[0]!));
    assert.ok(!ranks.includes(-1), JSON.stringify(matches.map((m) => m.version)));
    assert.deepEqual(ranks, [...ranks].sort((a, b) => a - b), `ordered by version: ${matches.map((m) => m.version ?? m.purl).join(', ')}`);

    // A purl with a version plus a range: the range decides.
    const withVersion = await allMatches({ purl: `${log4jPurlBase}@2.17.1`, versions: range });
    assert.deepEqual(ids(withVersion.matches), want);
  });

  test(`name=log4j-core with versions=${range} finds every component of that name in range, whatever its ecosystem`, async () => {
    const { matches } = await allMatches({ name: 'log4j-core', versions: range });
    const want = expected((a) => hasComponent(a, nameInRange));
    assert.ok(want.some((id) => artifacts.find((a) => a.id === id)!.packages.some((p) => p.purl.startsWith('pkg:npm/log4j-core@'))), 'the npm log4j-core is part of the answer');
    assert.deepEqual(ids(matches), want);
    assert.ok(matches.every((m) => m.name === 'log4j-core'));
    // The purl query, by contrast, never finds the npm package of the same name.
    const byPurl = await allMatches({ purl: log4jPurlBase, versions: range });
    assert.ok(byPurl.matches.every((m) => m.purl?.startsWith(`${log4jPurlBase}@`)));
  });

  test('bucket= and repository= narrow the answer', async () => {
    for (const bucket of ['bucket-a', 'bucket-b']) {
      const { matches } = await allMatches({ purl: log4jPurlBase, versions: range, bucket });
      assert.deepEqual(ids(matches), expected((a) => a.bucket === bucket && hasComponent(a, log4jInRange)), bucket);
      assert.ok(matches.every((m) => m.bucket === bucket));
      const exact = await allMatches({ purl: `${log4jPurlBase}@2.14.1`, bucket });
      assert.deepEqual(ids(exact.matches), expected((a) => a.bucket === bucket && a.log4j === '2.14.1'), `${bucket} exact`);
    }
    const prod = await allMatches({ name: 'log4j-core', versions: range, repository: 'prod/' });
    const wantProd = expected((a) => a.repository?.startsWith('prod/') === true && hasComponent(a, nameInRange));
    assert.ok(wantProd.length > 0);
    assert.deepEqual(ids(prod.matches), wantProd);
  });

  test('limit=5: following next until it is absent yields the same set, no duplicates', async () => {
    for (const params of [
      { purl: log4jPurlBase, versions: range },
      { name: 'log4j-core', versions: range },
      { purl: `${log4jPurlBase}@2.14.1` },
      { purl: log4jPurlBase },
      { purl: log4jPurlBase, versions: range, bucket: 'bucket-a' },
    ]) {
      const whole = await allMatches(params);
      const paged = await allMatches({ ...params, limit: 5 });
      assert.ok(paged.pages >= Math.ceil(whole.matches.length / 5), `${JSON.stringify(params)}: ${paged.pages} pages for ${whole.matches.length} matches`);
      assert.equal(paged.matches.length, whole.matches.length, JSON.stringify(params));
      assert.deepEqual(
        paged.matches.map((m) => `${m.recordId} ${m.purl}`),
        whole.matches.map((m) => `${m.recordId} ${m.purl}`),
        `${JSON.stringify(params)}: same matches in the same order`,
      );
    }
    // Without a version every log4j-core artifact is found.
    const all = await allMatches({ purl: log4jPurlBase, limit: 5 });
    assert.deepEqual(ids(all.matches), expected((a) => a.log4j !== undefined));
  });

  test('a caller allowed supplychain:read on s3:bucket-a/* only sees only bucket-a matches; without the route resource, 403', async () => {
    const want = expected((a) => a.bucket === 'bucket-a' && hasComponent(a, log4jInRange));
    assert.ok(want.length > 0);
    const paged = await allMatches({ purl: log4jPurlBase, versions: range, limit: 5 }, auditorAuth);
    assert.deepEqual(ids(paged.matches), want);
    const whole = await allMatches({ name: 'log4j-core', versions: range }, auditorAuth);
    assert.deepEqual(ids(whole.matches), expected((a) => a.bucket === 'bucket-a' && hasComponent(a, nameInRange)));
    const exact = await allMatches({ purl: `${log4jPurlBase}@2.14.1` }, auditorAuth);
    assert.ok(exact.matches.every((m) => m.bucket === 'bucket-a'));
    assert.deepEqual(ids(exact.matches), expected((a) => a.bucket === 'bucket-a' && a.log4j === '2.14.1'));

    const denied = await api('GET', `/api/v1/supplychain/packages?${qs({ purl: log4jPurlBase })}`, undefined, { authorization: outsiderAuth });
    assert.equal(denied.status, 403, denied.text);
    assert.match(denied.text, /AccessDenied/);
  });
});

// ================================================================================================
// 4. Everything attached to a digest

describe('GET /records?subject=<digest>: everything attached to those bytes', () => {
  const repository = 'sc/everything';
  const image = buildOciImage([{ 'srv/index.html': '<h1>everything</h1>\n' }]);
  const digest = image.manifestDigest;

  before(async () => {
    // The image, and the same bytes (its manifest) as an object in each bucket: one digest, three places.
    for (const [d, blob] of image.blobs) assert.equal(await registry.pushBlob(repository, blob), d);
    const put = await registry.request('PUT', `/v2/${repository}/manifests/2.0`, { body: image.manifest, headers: { 'content-type': image.mediaType } });
    assert.equal(put.status, 201, await put.text());
    assert.equal(put.headers.get('docker-content-digest'), digest);
    await root.send(new PutObjectCommand({ Bucket: 'bucket-a', Key: 'mirror/everything.json', Body: image.manifest }));
    await root.send(new PutObjectCommand({ Bucket: 'bucket-b', Key: 'mirror/everything.json', Body: image.manifest }));

    const key = await api('PUT', '/api/v1/supplychain/keys/sbom-test', { algorithm: 'ecdsa-p256' });
    assert.equal(key.status, 201, key.text);

    // Image: an SBOM with oras, provenance through the API (a referrer), a signature by the server (.sig tag).
    const dir = join(f.work, 'everything');
    await mkdir(dir);
    await writeFile(join(dir, 'bom.json'), cycloneDxDocument('1.5', 'everything', [{ name: 'express', version: '4.19.2', purl: 'pkg:npm/express@4.19.2', license: 'MIT' }], 9001));
    await oras.ok(['attach', '--plain-http', '--artifact-type', 'application/vnd.cyclonedx+json', `${f.registry}/${repository}:2.0`, 'bom.json:application/vnd.cyclonedx+json'], { cwd: dir });
    const imageRef = qs({ repository, reference: digest });
    const att = await api('POST', `/api/v1/supplychain/records?${imageRef}`, provenanceEnvelope(digest, repository), { 'content-type': 'application/vnd.dsse.envelope.v1+json' });
    assert.equal(att.status, 201, att.text);
    const sig = await api('POST', `/api/v1/supplychain/signatures?${imageRef}`, { key: 'sbom-test' });
    assert.equal(sig.status, 201, sig.text);

    // bucket-a: an SBOM, a signature and the provenance; bucket-b: an SBOM.
    const a = qs({ bucket: 'bucket-a', key: 'mirror/everything.json' });
    const spdx = spdxDocument('everything', [{ name: 'flask', version: '3.0.1', purl: 'pkg:pypi/flask@3.0.1' }]);
    assert.equal((await api('POST', `/api/v1/supplychain/records?${a}`, spdx, { 'content-type': 'application/spdx+json' })).status, 201);
    assert.equal((await api('POST', `/api/v1/supplychain/signatures?${a}`, { key: 'sbom-test' })).status, 201);
    const attA = await api('POST', `/api/v1/supplychain/records?${a}`, provenanceEnvelope(digest, 'mirror/everything.json'), { 'content-type': 'application/vnd.dsse.envelope.v1+json' });
    assert.equal(attA.status, 201, attA.text);
    const b = qs({ bucket: 'bucket-b', key: 'mirror/everything.json' });
    assert.equal((await api('POST', `/api/v1/supplychain/records?${b}`, spdx, { 'content-type': 'application/spdx+json' })).status, 201);
  });

  const where = (r: RecordView) => (r.bucket !== undefined ? `s3:${r.bucket}/${r.key}` : `oci:${r.repository}`);

  test('every kind, from every bucket and repository, and nothing about other digests', async () => {
    const records = await recordsOf({ subject: digest });
    assert.ok(records.every((r) => r.subject === digest), 'only records of that digest');
    assert.deepEqual(
      records.map((r) => `${where(r)} ${r.kind} ${r.format}`).sort(),
      [
        `oci:${repository} sbom cyclonedx`,
        `oci:${repository} attestation dsse`,
        `oci:${repository} signature cosign`,
        's3:bucket-a/mirror/everything.json sbom spdx',
        's3:bucket-a/mirror/everything.json signature cosign',
        's3:bucket-a/mirror/everything.json attestation dsse',
        's3:bucket-b/mirror/everything.json sbom spdx',
      ].sort(),
    );
    assert.deepEqual([...new Set(records.map((r) => r.kind))].sort(), ['attestation', 'sbom', 'signature']);
    assert.equal(new Set(records.map((r) => r.id)).size, records.length, 'no duplicates');

    const attestations = await recordsOf({ subject: digest, kind: 'attestation' });
    assert.deepEqual(attestations.map(where).sort(), [`oci:${repository}`, 's3:bucket-a/mirror/everything.json']);

    // Paged three at a time: the same records.
    const paged: RecordView[] = [];
    let after: string | undefined;
    do {
      const res = await api('GET', `/api/v1/supplychain/records?${qs({ subject: digest, limit: 3, ...(after !== undefined && { after }) })}`);
      assert.equal(res.status, 200, res.text);
      assert.ok(res.json.records.length <= 3);
      paged.push(...res.json.records);
      after = res.json.next;
    } while (after !== undefined && paged.length < 100);
    assert.deepEqual(paged.map((r) => r.id), records.map((r) => r.id));
  });

  test('a caller allowed bucket-a only sees only the bucket-a records of the digest', async () => {
    const records = await recordsOf({ subject: digest }, auditorAuth);
    assert.deepEqual(records.map((r) => `${where(r)} ${r.kind}`).sort(), [
      's3:bucket-a/mirror/everything.json attestation',
      's3:bucket-a/mirror/everything.json sbom',
      's3:bucket-a/mirror/everything.json signature',
    ]);
    // Without api:supplychain/records the subject query itself is refused.
    const denied = await api('GET', `/api/v1/supplychain/records?${qs({ subject: digest })}`, undefined, { authorization: outsiderAuth });
    assert.equal(denied.status, 403, denied.text);
    assert.match(denied.text, /AccessDenied/);
  });
});
