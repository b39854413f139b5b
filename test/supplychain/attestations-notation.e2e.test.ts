import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { run } from '../helpers/clients.ts';
import { basicAuth, buildOciImage, closeOciFixture, openCli, openOciFixture, readOciLayoutBlob, readOciLayoutIndex, writeOciLayout, type Cli, type OciFixture, type OciImage } from '../helpers/oci.ts';
import { RegistryHttp, sha256Digest } from '../helpers/registry-http.ts';
import { sdkClient } from '../helpers/sdk-js.ts';
import { apiCall } from '../helpers/api.ts';

/**
 * Attestations and certificate chains under trust policies, made by the real tools:
 * - `cosign attest` (SLSA provenance v1, key pair, offline) on images: a policy requiring a signature
 *   and provenance from one builder refuses an image that lacks it or whose provenance comes from
 *   another builder (or is signed by an untrusted key); the records and the "lacking" query see it;
 * - `cosign attest-blob` / `sign-blob` bundles (old and new format) uploaded for S3 objects;
 * - `notation sign` with a test CA made by openssl (root -> code-signing leaf, configured through
 *   notation's signingkeys.json): trusted through a certificate key, a leaf from another CA and a
 *   policy naming another identity fail;
 * - documents attached to an image through the REST API become referrers (notation JWS, SPDX).
 */
let f: OciFixture;
let cosign: Cli;
let notation: Cli;
let registry: RegistryHttp;
let root: S3Client;
let reader: S3Client;
let readerAuth: string;
const readerPassword = 'reader-password-0123';

const slsa = 'https://slsa.dev/provenance/v1';
const builder = 'https://ci.example.com/builders/release';
const otherBuilder = 'https://ci.other.example/builders/nightly';
const imageFlags = ['--allow-http-registry', '--allow-insecure-registry'];
const corpSubject = 'C=US, ST=WA, O=Corp, CN=release.corp.example';

const api = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => apiCall(f.server.endpoint, method, path, body, headers);

/** A manifest pull by the reader: the status, the registry error (if any) and the verification header. */
async function readerPull(repository: string, reference: string): Promise<{ status: number; code?: string; message: string; verification: string | null }> {
  const res = await fetch(`${f.server.endpoint}/v2/${repository}/manifests/${reference}`, {
    headers: { authorization: readerAuth, accept: 'application/vnd.oci.image.manifest.v1+json' },
  });
  const text = await res.text();
  const error = res.status === 200 ? undefined : (JSON.parse(text) as { errors: { code: string; message: string }[] }).errors[0];
  return { status: res.status, ...(error && { code: error.code }), message: error?.message ?? '', verification: res.headers.get('x-astore-verification') };
}

async function putPolicy(name: string, document: Record<string, unknown>): Promise<void> {
  const put = await api('PUT', `/api/v1/supplychain/policies/${name}`, document);
  assert.ok(put.status === 201 || put.status === 200, put.text);
}

async function openssl(args: string[]): Promise<void> {
  const result = await run('openssl', args, { cwd: f.work });
  assert.equal(result.code, 0, `openssl ${args.join(' ')}: ${result.stderr}`);
}

/** A self-signed root CA (CA:TRUE, keyCertSign) with an RSA 3072 key, in `<name>.crt` / `<name>.key`. */
async function makeRootCa(name: string, subject: string): Promise<void> {
  await openssl(['req', '-x509', '-newkey', 'rsa:3072', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '30', '-subj', subject,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
}

/**
 * A code-signing leaf issued by `ca` (digitalSignature, EKU codeSigning, CA:FALSE), as notation
 * requires; `<name>.chain.pem` holds the leaf then the root, what notation's certPath takes.
 */
async function makeLeaf(name: string, ca: string, subject: string, key: 'rsa' | 'ec'): Promise<void> {
  const newkey = key === 'rsa' ? ['-newkey', 'rsa:3072'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
  await writeFile(join(f.work, `${name}.ext`), 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=codeSigning\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n');
  await openssl(['req', '-new', ...newkey, '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', subject]);
  await openssl(['x509', '-req', '-in', `${name}.csr`, '-CA', `${ca}.crt`, '-CAkey', `${ca}.key`, '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', '10',
    '-extfile', `${name}.ext`, '-out', `${name}.crt`]);
  const chain = (await readFile(join(f.work, `${name}.crt`), 'utf8')) + (await readFile(join(f.work, `${ca}.crt`), 'utf8'));
  await writeFile(join(f.work, `${name}.chain.pem`), chain);
}

/** Pushes an image built here (so the same bytes, and digest, can go to several places). */
async function pushBuilt(repository: string, tag: string, image: OciImage): Promise<void> {
  for (const blob of image.blobs.values()) await registry.pushBlob(repository, blob);
  const put = await registry.request('PUT', `/v2/${repository}/manifests/${tag}`, { body: image.manifest, headers: { 'content-type': image.mediaType } });
  assert.equal(put.status, 201, await put.text());
}

/** A SLSA provenance v1 predicate from `builderId`. */
function provenance(builderId: string): string {
  return JSON.stringify({
    buildDefinition: {
      buildType: 'https://ci.example.com/buildtypes/make@v1',
      externalParameters: { target: 'release' },
      resolvedDependencies: [{ uri: 'git+https://git.example.com/app@refs/heads/main', digest: { gitCommit: '0123456789abcdef0123456789abcdef01234567' } }],
    },
    runDetails: { builder: { id: builderId }, metadata: { invocationId: `run-${randomBytes(4).toString('hex')}` } },
  });
}

before(async () => {
  f = await openOciFixture('supplychain-attest-notation');
  cosign = openCli('ASTORE_TEST_COSIGN', f);
  notation = openCli('ASTORE_TEST_NOTATION', f);
  registry = new RegistryHttp(f.server.endpoint);
  f.env.COSIGN_PASSWORD = 'cosign-test-password';
  f.env.TUF_ROOT = join(f.work, 'tuf');
  await cosign.ok(['generate-key-pair'], { cwd: f.work });
  await cosign.ok(['generate-key-pair', '--output-key-prefix', 'stranger'], { cwd: f.work });
  await writeFile(join(f.work, 'prov.json'), provenance(builder));
  await writeFile(join(f.work, 'prov-other.json'), provenance(otherBuilder));

  // Two CAs: corp (trusted by astore and notation below) and rogue (trusted by nobody).
  await makeRootCa('corp-root', '/C=US/O=Corp/CN=Corp Root CA');
  await makeLeaf('corp-leaf', 'corp-root', '/C=US/ST=WA/O=Corp/CN=release.corp.example', 'rsa');
  await makeRootCa('rogue-root', '/C=US/O=Rogue/CN=Rogue Root CA');
  await makeLeaf('rogue-leaf', 'rogue-root', '/C=US/ST=WA/O=Rogue/CN=release.corp.example', 'ec');
  const notationDir = join(f.env.XDG_CONFIG_HOME!, 'notation');
  await mkdir(notationDir, { recursive: true });
  await writeFile(
    join(notationDir, 'signingkeys.json'),
    JSON.stringify({
      default: 'corp',
      keys: [
        { name: 'corp', keyPath: join(f.work, 'corp-leaf.key'), certPath: join(f.work, 'corp-leaf.chain.pem') },
        { name: 'rogue', keyPath: join(f.work, 'rogue-leaf.key'), certPath: join(f.work, 'rogue-leaf.chain.pem') },
      ],
    }),
  );
  const keys = await notation.ok(['key', 'ls']);
  assert.match(keys, /\* corp\b/, keys);
  // notation's own verification trusts the corp CA, for the corp leaf's subject only.
  await notation.ok(['cert', 'add', '--type', 'ca', '--store', 'corp', join(f.work, 'corp-root.crt')]);
  const trust = join(f.work, 'notation-trustpolicy.json');
  await writeFile(
    trust,
    JSON.stringify({
      version: '1.0',
      trustPolicies: [{ name: 'corp', registryScopes: ['*'], signatureVerification: { level: 'strict' }, trustStores: ['ca:corp'], trustedIdentities: [`x509.subject: ${corpSubject}`] }],
    }),
  );
  await notation.ok(['policy', 'import', '--force', trust]);

  assert.equal((await api('POST', '/api/v1/users', { name: 'reader', password: readerPassword })).status, 201);
  const accessKey = await api('POST', '/api/v1/users/reader/access-keys', {});
  assert.equal(accessKey.status, 201);
  const policy = await api('PUT', '/api/v1/policies/reader', {
    statements: [
      { effect: 'allow', principals: ['user:reader'], actions: ['s3:GetObject', 's3:ListBucket'], resources: ['s3:attested', 's3:attested/*'] },
      { effect: 'allow', principals: ['user:reader'], actions: ['oci:pull'], resources: ['oci:app/*', 'oci:corp/*', 'oci:attach/*'] },
    ],
  });
  assert.equal(policy.status, 201, policy.text);
  readerAuth = basicAuth('reader', readerPassword);
  root = sdkClient(f.server.endpoint);
  reader = sdkClient(f.server.endpoint, { credentials: { accessKeyId: accessKey.json.accessKeyId, secretAccessKey: accessKey.json.secretAccessKey } });
  await root.send(new CreateBucketCommand({ Bucket: 'attested' }));

  const publicKey = await readFile(join(f.work, 'cosign.pub'), 'utf8');
  const imported = await api('PUT', '/api/v1/supplychain/keys/ci-cosign', { publicKey });
  assert.equal(imported.status, 201, imported.text);
  const ca = await api('PUT', '/api/v1/supplychain/keys/corp-ca', { certificate: await readFile(join(f.work, 'corp-root.crt'), 'utf8') });
  assert.equal(ca.status, 201, ca.text);
  assert.equal(ca.json.kind, 'certificate');
});

after(async () => {
  root?.destroy();
  reader?.destroy();
  await closeOciFixture(f ?? {});
});

describe('images: cosign attest with SLSA provenance under enforce-read', () => {
  const digests = new Map<string, string>();
  const image = (repository: string) => `${f.registry}/${repository}@${digests.get(repository)}`;
  const attest = (repository: string, predicate: string, key = 'cosign.key') =>
    cosign.ok(['attest', '--yes', '--key', key, '--tlog-upload=false', '--type', 'slsaprovenance1', '--predicate', predicate, ...imageFlags, image(repository)], { cwd: f.work });
  const sign = (repository: string) => cosign.ok(['sign', '--yes', '--key', 'cosign.key', '--tlog-upload=false', ...imageFlags, image(repository)], { cwd: f.work });

  before(async () => {
    for (const repository of ['app/web', 'app/api', 'app/untrusted', 'app/bare']) {
      digests.set(repository, (await registry.pushImage(repository, 'v1', [Buffer.from(`${repository} layer`)])).digest);
    }
    await putPolicy('provenance', {
      mode: 'enforce-read',
      resources: ['oci:app/*'],
      keys: ['ci-cosign'],
      requireSignature: true,
      attestations: [{ predicateType: slsa, builderId: builder }],
    });
  });

  test('signed but without provenance: refused; with provenance from the builder: pulled, and cosign verify-attestation agrees', async () => {
    const unsigned = await readerPull('app/web', 'v1');
    assert.equal(unsigned.status, 403);
    assert.equal(unsigned.code, 'DENIED');
    assert.match(unsigned.message, /provenance: missing: no signature is attached/);

    await sign('app/web');
    const signedOnly = await readerPull('app/web', 'v1');
    assert.equal(signedOnly.status, 403, 'a signature alone does not satisfy the policy');
    assert.equal(signedOnly.code, 'DENIED');
    assert.equal(signedOnly.message, `${digests.get('app/web')} is not verified: provenance: missing: no ${slsa} attestation from builder ${builder} is attached`);

    await attest('app/web', 'prov.json');
    const pulled = await readerPull('app/web', 'v1');
    assert.equal(pulled.status, 200, pulled.message);
    assert.equal(pulled.verification, 'verified');
    const byDigest = await readerPull('app/web', digests.get('app/web')!);
    assert.equal(byDigest.status, 200, byDigest.message);

    const verified = await cosign.run(['verify-attestation', '--key', 'cosign.pub', '--type', 'slsaprovenance1', '--insecure-ignore-tlog=true', ...imageFlags, image('app/web')], { cwd: f.work });
    assert.equal(verified.code, 0, verified.stderr);
    const envelope = JSON.parse(verified.stdout.trim().split('\n')[0]!) as { payload: string };
    const statement = JSON.parse(Buffer.from(envelope.payload, 'base64').toString('utf8')) as { predicateType: string; predicate: { runDetails: { builder: { id: string } } }; subject: { digest: { sha256: string } }[] };
    assert.equal(statement.predicateType, slsa);
    assert.equal(statement.predicate.runDetails.builder.id, builder);
    assert.equal(`sha256:${statement.subject[0]!.digest.sha256}`, digests.get('app/web'));
    // Another key does not verify the attestation.
    await cosign.fails(['verify-attestation', '--key', 'stranger.pub', '--type', 'slsaprovenance1', '--insecure-ignore-tlog=true', ...imageFlags, image('app/web')], { cwd: f.work });

    const verification = await api('GET', `/api/v1/supplychain/verification?repository=app/web&reference=v1`);
    assert.equal(verification.status, 200, verification.text);
    assert.equal(verification.json.verified, true);
    assert.deepEqual(verification.json.results.map((r: { policy: string; status: string }) => [r.policy, r.status]), [['provenance', 'verified']]);
    assert.match(verification.json.results[0].reason, /key ci-cosign\/1/);
  });

  test('the records of the image: the cosign signature and the provenance attestation', async () => {
    const records = await api('GET', `/api/v1/supplychain/records?repository=app/web&reference=${digests.get('app/web')}`);
    assert.equal(records.status, 200, records.text);
    const list = records.json.records as { kind: string; format: string; subject: string; repository: string; predicateType?: string; sourceManifest?: string }[];
    assert.deepEqual(list.map((r) => r.kind).sort(), ['attestation', 'signature']);
    for (const record of list) {
      assert.equal(record.subject, digests.get('app/web'));
      assert.equal(record.repository, 'app/web');
      assert.match(record.sourceManifest ?? '', /^sha256:[0-9a-f]{64}$/);
    }
    const signature = list.find((r) => r.kind === 'signature')!;
    assert.equal(signature.format, 'cosign');
    assert.equal(signature.predicateType, undefined);
    const attestation = list.find((r) => r.kind === 'attestation')!;
    assert.equal(attestation.format, 'dsse');
    assert.equal(attestation.predicateType, slsa);
    const onlyAttestations = await api('GET', `/api/v1/supplychain/records?repository=app/web&reference=v1&kind=attestation`);
    assert.deepEqual(onlyAttestations.json.records.map((r: { predicateType: string }) => r.predicateType), [slsa]);
  });

  test('provenance from another builder, or signed by an untrusted key, leaves the image failed', async () => {
    await sign('app/api');
    await attest('app/api', 'prov-other.json');
    const other = await readerPull('app/api', 'v1');
    assert.equal(other.status, 403);
    assert.equal(other.code, 'DENIED');
    assert.match(other.message, new RegExp(`provenance: failed: no ${slsa} attestation from builder ${builder} verifies: attestation [0-9a-f-]+ is from builder ${otherBuilder}`));
    const verification = await api('GET', `/api/v1/supplychain/verification?repository=app/api&reference=v1`);
    assert.equal(verification.json.verified, false);
    assert.equal(verification.json.results[0].status, 'failed');

    await sign('app/untrusted');
    await attest('app/untrusted', 'prov.json', 'stranger.key');
    const untrusted = await readerPull('app/untrusted', 'v1');
    assert.equal(untrusted.status, 403);
    assert.match(untrusted.message, /provenance: failed: .*attestation [0-9a-f-]+: no trusted key verifies it/);
  });

  test('lacking lists exactly the images without such provenance, never the .sig/.att manifests', async () => {
    const tags = (await (await registry.request('GET', '/v2/app/web/tags/list')).json()) as { tags: string[] };
    const hex = digests.get('app/web')!.slice('sha256:'.length);
    assert.deepEqual(tags.tags.sort(), [`sha256-${hex}.att`, `sha256-${hex}.sig`, 'v1'], 'cosign wrote its legacy tags');

    const lacking = async (query: string) => {
      const res = await api('GET', `/api/v1/supplychain/lacking?${query}`);
      assert.equal(res.status, 200, res.text);
      return (res.json.artifacts as { subject: string; repository: string }[]).map((a) => `${a.repository}@${a.subject}`).sort();
    };
    const expect = (...repositories: string[]) => repositories.map((r) => `${r}@${digests.get(r)}`).sort();
    // From the builder: app/api's is from another builder; app/untrusted's counts though its signer is not trusted.
    assert.deepEqual(await lacking(`repositoryPrefix=app/&predicateType=${encodeURIComponent(slsa)}&builderId=${encodeURIComponent(builder)}`), expect('app/api', 'app/bare'));
    // Any builder: only the image with no provenance at all.
    assert.deepEqual(await lacking(`repositoryPrefix=app/&predicateType=${encodeURIComponent(slsa)}`), expect('app/bare'));
    assert.deepEqual(await lacking('repositoryPrefix=app/'), expect('app/bare'), 'SLSA provenance v1 is the default predicate type');
  });
});

describe('S3 objects: cosign attest-blob bundles under enforce-read', () => {
  before(async () => {
    await putPolicy('blobs', {
      mode: 'enforce-read',
      resources: ['s3:attested/*'],
      keys: ['ci-cosign'],
      attestations: [{ predicateType: slsa, builderId: builder }],
    });
  });

  /** Writes `bytes` to a fresh file in the work dir; returns its name. */
  async function file(bytes: Buffer): Promise<string> {
    const name = `blob-${randomBytes(4).toString('hex')}`;
    await writeFile(join(f.work, name), bytes);
    return name;
  }

  async function bundle(command: 'sign-blob' | 'attest-blob', bytes: Buffer, newFormat: boolean): Promise<Buffer> {
    const name = await file(bytes);
    const attestation = command === 'attest-blob' ? ['--type', 'slsaprovenance1', '--predicate', 'prov.json'] : [];
    await cosign.ok([command, '--yes', '--key', 'cosign.key', '--tlog-upload=false', ...attestation, ...(newFormat ? ['--new-bundle-format'] : []), '--bundle', `${name}.bundle`, name], { cwd: f.work });
    return readFile(join(f.work, `${name}.bundle`));
  }

  const attach = (key: string, document: Buffer) => api('POST', `/api/v1/supplychain/records?bucket=attested&key=${encodeURIComponent(key)}`, document, { 'content-type': 'application/json' });
  const verification = async (key: string) => (await api('GET', `/api/v1/supplychain/verification?bucket=attested&key=${encodeURIComponent(key)}`)).json as { digest: string; verified: boolean; covered: boolean; results: { policy: string; status: string; reason: string }[] };

  async function readerGet(key: string): Promise<{ ok: true; body: Buffer } | { ok: false; name: string; status?: number; message: string }> {
    try {
      const out = await reader.send(new GetObjectCommand({ Bucket: 'attested', Key: key }));
      return { ok: true, body: Buffer.from(await out.Body!.transformToByteArray()) };
    } catch (err) {
      const e = err as Error & { $metadata?: { httpStatusCode?: number } };
      return { ok: false, name: e.name, status: e.$metadata?.httpStatusCode, message: e.message };
    }
  }

  for (const newFormat of [false, true]) {
    const format = newFormat ? 'new bundle format' : 'old bundle format';
    test(`${format}: the signature and the provenance attestation verify the object`, async () => {
      const key = `app/${newFormat ? 'new' : 'old'}/app.tar.gz`;
      const bytes = Buffer.concat([Buffer.from(`${format}\n`), randomBytes(16 * 1024)]);
      await root.send(new PutObjectCommand({ Bucket: 'attested', Key: key, Body: bytes }));
      const nothing = await verification(key);
      assert.equal(nothing.digest, sha256Digest(bytes));
      assert.deepEqual(nothing.results.map((r) => [r.policy, r.status, r.reason]), [['blobs', 'missing', 'no signature is attached']]);

      const signed = await attach(key, await bundle('sign-blob', bytes, newFormat));
      assert.equal(signed.status, 201, signed.text);
      assert.equal(signed.json.records[0].kind, 'signature');
      assert.equal(signed.json.records[0].format, 'sigstore-bundle');
      const signedOnly = await verification(key);
      assert.equal(signedOnly.verified, false);
      assert.deepEqual(signedOnly.results.map((r) => [r.status, r.reason]), [['missing', `no ${slsa} attestation from builder ${builder} is attached`]]);
      const refused = await readerGet(key);
      assert.equal(refused.ok, false);
      if (!refused.ok) {
        assert.equal(refused.name, 'AccessDenied');
        assert.equal(refused.status, 403);
        assert.match(refused.message, /attestation from builder .* is attached/);
      }

      const attested = await attach(key, await bundle('attest-blob', bytes, newFormat));
      assert.equal(attested.status, 201, attested.text);
      assert.equal(attested.json.records.length, 1);
      const record = attested.json.records[0];
      assert.equal(record.kind, 'attestation');
      assert.equal(record.format, 'sigstore-bundle');
      assert.equal(record.predicateType, slsa);
      assert.equal(record.subject, sha256Digest(bytes));
      assert.equal(record.bucket, 'attested');
      assert.equal(record.key, key);

      const result = await verification(key);
      assert.equal(result.covered, true);
      assert.equal(result.verified, true, JSON.stringify(result));
      assert.equal(result.results[0]!.status, 'verified');
      assert.match(result.results[0]!.reason, /verified by key ci-cosign\/1/);
      const read = await readerGet(key);
      assert.ok(read.ok, JSON.stringify(read));
      if (read.ok) assert.deepEqual(read.body, bytes);

      const listed = await api('GET', `/api/v1/supplychain/records?bucket=attested&key=${encodeURIComponent(key)}&kind=attestation`);
      assert.deepEqual(listed.json.records.map((r: { id: string; predicateType: string }) => [r.id, r.predicateType]), [[record.id, slsa]]);
    });

    test(`${format}: an attestation about another file is refused on upload, naming the subjects`, async () => {
      const key = `app/${newFormat ? 'new' : 'old'}/app.tar.gz`;
      const before = await api('GET', `/api/v1/supplychain/records?bucket=attested&key=${encodeURIComponent(key)}`);
      const other = randomBytes(2048);
      const refused = await attach(key, await bundle('attest-blob', other, newFormat));
      assert.equal(refused.status, 400, refused.text);
      assert.equal(refused.json.code, 'InvalidDocument', refused.text);
      const objectDigest = (await verification(key)).digest;
      assert.equal(refused.json.detail, `the attestation's subjects (${sha256Digest(other)}) do not include ${objectDigest}`);
      const after = await api('GET', `/api/v1/supplychain/records?bucket=attested&key=${encodeURIComponent(key)}`);
      assert.equal(after.json.records.length, before.json.records.length, 'nothing stored');
    });
  }

  test('lacking lists the objects of the bucket without provenance', async () => {
    const bytes = randomBytes(1024);
    await root.send(new PutObjectCommand({ Bucket: 'attested', Key: 'app/unattested.bin', Body: bytes }));
    const res = await api('GET', `/api/v1/supplychain/lacking?bucket=attested&keyPrefix=app/&builderId=${encodeURIComponent(builder)}`);
    assert.equal(res.status, 200, res.text);
    assert.deepEqual(res.json.artifacts, [{ subject: sha256Digest(bytes), bucket: 'attested', key: 'app/unattested.bin' }]);
  });
});

describe('notation with a CA made by openssl', () => {
  const digests = new Map<string, string>();
  const image = (repository: string) => `${f.registry}/${repository}@${digests.get(repository)}`;

  before(async () => {
    for (const repository of ['corp/web', 'corp/rogue', 'corp/unsigned']) {
      digests.set(repository, (await registry.pushImage(repository, 'v1', [Buffer.from(`${repository} layer`)])).digest);
    }
    await putPolicy('corp', { mode: 'enforce-read', resources: ['oci:corp/*'], certificates: ['corp-ca'] });
  });

  test('signed by the corp leaf: pulled, and notation verify trusts the CA too', async () => {
    const before = await readerPull('corp/web', 'v1');
    assert.equal(before.status, 403);
    assert.match(before.message, /corp: missing: no signature is attached/);

    await notation.ok(['sign', '--insecure-registry', image('corp/web')]);
    const pulled = await readerPull('corp/web', 'v1');
    assert.equal(pulled.status, 200, pulled.message);
    assert.equal(pulled.verification, 'verified');
    const verification = await api('GET', '/api/v1/supplychain/verification?repository=corp/web&reference=v1');
    assert.equal(verification.json.verified, true, verification.text);
    assert.equal(verification.json.results[0].reason, `verified by certificate ${corpSubject}`);

    const records = await api('GET', `/api/v1/supplychain/records?repository=corp/web&reference=${digests.get('corp/web')}`);
    assert.deepEqual(records.json.records.map((r: { kind: string; format: string; mediaType: string }) => [r.kind, r.format, r.mediaType]), [['signature', 'notation', 'application/jose+json']]);

    const verified = await notation.run(['verify', '--insecure-registry', image('corp/web')]);
    assert.equal(verified.code, 0, verified.stderr);
    assert.match(verified.stdout, /Successfully verified signature/);
  });

  test('signed by a leaf of another CA: refused, the reason naming the chain; notation verify fails too', async () => {
    await notation.ok(['sign', '--insecure-registry', '--key', 'rogue', '--signature-format', 'cose', image('corp/rogue')]);
    const refused = await readerPull('corp/rogue', 'v1');
    assert.equal(refused.status, 403);
    assert.equal(refused.code, 'DENIED');
    assert.match(refused.message, /corp: failed: signature [0-9a-f-]+: the chain does not lead to a trusted root \(its last certificate is issued by C=US, O=Rogue, CN=Rogue Root CA\)/);
    const records = await api('GET', `/api/v1/supplychain/records?repository=corp/rogue&reference=v1`);
    assert.deepEqual(records.json.records.map((r: { format: string; mediaType: string }) => [r.format, r.mediaType]), [['notation', 'application/cose']]);
    const verify = await notation.fails(['verify', '--insecure-registry', image('corp/rogue')]);
    assert.match(verify.stderr, /signature verification failed/i);

    const unsigned = await readerPull('corp/unsigned', 'v1');
    assert.equal(unsigned.status, 403);
    assert.match(unsigned.message, /corp: missing: no signature is attached/);
  });

  test('a policy naming another identity leaves the image failed; the leaf subject itself verifies', async () => {
    await putPolicy('corp', { mode: 'enforce-read', resources: ['oci:corp/*'], certificates: ['corp-ca'], identities: ['CN=someone-else.corp.example'] });
    const refused = await readerPull('corp/web', 'v1');
    assert.equal(refused.status, 403);
    assert.match(refused.message, /corp: failed: signature [0-9a-f-]+: the signing certificate's subject \(C=US, ST=WA, O=Corp, CN=release\.corp\.example\) is not a trusted identity/);

    await putPolicy('corp', { mode: 'enforce-read', resources: ['oci:corp/*'], certificates: ['corp-ca'], identities: ['CN=someone-else.corp.example', corpSubject] });
    const pulled = await readerPull('corp/web', 'v1');
    assert.equal(pulled.status, 200, pulled.message);
    // The rogue leaf has the same CN but its chain still leads nowhere trusted.
    assert.equal((await readerPull('corp/rogue', 'v1')).status, 403);
  });

  test('identities match a part of the subject, as documented ("CN=release.corp.example")', async () => {
    await putPolicy('corp', { mode: 'enforce-read', resources: ['oci:corp/*'], certificates: ['corp-ca'], identities: ['CN=release.corp.example'] });
    const pulled = await readerPull('corp/web', 'v1');
    assert.equal(pulled.status, 200, `docs/supplychain.md: "the leaf certificate's subject must contain one of these strings, such as CN=release.example.com": ${pulled.message}`);
  });
});

describe('documents attached to an image through the REST API become referrers', () => {
  let built: OciImage;
  let envelope: Buffer;

  before(async () => {
    // The image, and a notation signature for it made offline in an OCI layout (same bytes, same digest).
    built = buildOciImage([{ 'hello.txt': `attached ${randomBytes(4).toString('hex')}\n` }]);
    await pushBuilt('attach/web', 'v1', built);
    const layout = join(f.work, 'layout');
    await writeOciLayout(layout, built, 'v1');
    await notation.ok(['sign', '--oci-layout', `${layout}@${built.manifestDigest}`], { env: { NOTATION_EXPERIMENTAL: '1' } });
    const signatureManifest = (await readOciLayoutIndex(layout)).find((m) => m.digest !== built.manifestDigest);
    assert.ok(signatureManifest, 'notation wrote its signature into the layout');
    const manifest = JSON.parse((await readOciLayoutBlob(layout, signatureManifest.digest)).toString('utf8')) as { config: { mediaType: string }; layers: { mediaType: string; digest: string }[] };
    assert.equal(manifest.config.mediaType, 'application/vnd.cncf.notary.signature');
    assert.equal(manifest.layers[0]!.mediaType, 'application/jose+json');
    envelope = await readOciLayoutBlob(layout, manifest.layers[0]!.digest);
    await putPolicy('attached', { mode: 'enforce-read', resources: ['oci:attach/*'], certificates: ['corp-ca'] });
  });

  const referrers = async (query = '') => {
    const res = await registry.request('GET', `/v2/attach/web/referrers/${built.manifestDigest}${query}`);
    assert.equal(res.status, 200);
    return ((await res.json()) as { manifests: { artifactType?: string; digest: string }[] }).manifests;
  };

  test('a notation JWS envelope: a referrer of artifact type application/vnd.cncf.notary.signature that verifies the image', async () => {
    assert.equal((await readerPull('attach/web', 'v1')).status, 403);
    const attached = await api('POST', `/api/v1/supplychain/records?repository=attach/web&reference=v1`, envelope, { 'content-type': 'application/jose+json' });
    assert.equal(attached.status, 201, attached.text);
    assert.equal(attached.json.records.length, 1, attached.text);
    const record = attached.json.records[0];
    assert.deepEqual([record.kind, record.format, record.subject, record.repository], ['signature', 'notation', built.manifestDigest, 'attach/web']);

    const listed = await referrers();
    const notary = listed.filter((m) => m.artifactType === 'application/vnd.cncf.notary.signature');
    assert.equal(notary.length, 1, JSON.stringify(listed));
    assert.equal(notary[0]!.digest, record.sourceManifest);
    assert.deepEqual((await referrers('?artifactType=application/vnd.cncf.notary.signature')).map((m) => m.digest), [record.sourceManifest]);

    const pulled = await readerPull('attach/web', 'v1');
    assert.equal(pulled.status, 200, pulled.message);
    // notation itself finds the signature the API pushed, and verifies it (its trust policy trusts the corp CA).
    const reference = `${f.registry}/attach/web@${built.manifestDigest}`;
    const listedByNotation = await notation.ok(['ls', '--insecure-registry', reference]);
    assert.ok(listedByNotation.includes(record.sourceManifest), listedByNotation);
    const verified = await notation.run(['verify', '--insecure-registry', reference]);
    assert.equal(verified.code, 0, verified.stderr);
    assert.match(verified.stdout, /Successfully verified signature/);
  });

  test('an SPDX SBOM: a referrer of artifact type application/spdx+json, and its packages are queryable', async () => {
    const spdx = {
      spdxVersion: 'SPDX-2.3',
      dataLicense: 'CC0-1.0',
      SPDXID: 'SPDXRef-DOCUMENT',
      name: 'attach-web',
      documentNamespace: `https://example.com/spdx/attach-web-${randomBytes(4).toString('hex')}`,
      creationInfo: { created: '2026-01-01T00:00:00Z', creators: ['Tool: astore-test'] },
      packages: [
        { SPDXID: 'SPDXRef-Package-left-pad', name: 'left-pad', versionInfo: '1.3.0', downloadLocation: 'NOASSERTION', licenseConcluded: 'MIT', externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: 'pkg:npm/left-pad@1.3.0' }] },
      ],
    };
    const attached = await api('POST', `/api/v1/supplychain/records?repository=attach/web&reference=${built.manifestDigest}`, JSON.stringify(spdx), { 'content-type': 'application/spdx+json' });
    assert.equal(attached.status, 201, attached.text);
    const record = attached.json.records[0];
    assert.deepEqual([record.kind, record.format, record.mediaType, record.subject], ['sbom', 'spdx', 'application/spdx+json', built.manifestDigest]);

    const sboms = await referrers(`?artifactType=${encodeURIComponent('application/spdx+json')}`);
    assert.deepEqual(sboms.map((m) => m.digest), [record.sourceManifest]);
    const manifest = await registry.request('GET', `/v2/attach/web/manifests/${record.sourceManifest}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    const body = (await manifest.json()) as { artifactType: string; subject: { digest: string }; layers: { digest: string }[] };
    assert.equal(body.artifactType, 'application/spdx+json');
    assert.equal(body.subject.digest, built.manifestDigest);
    assert.equal(body.layers[0]!.digest, sha256Digest(Buffer.from(JSON.stringify(spdx))));
    assert.equal((await referrers()).length, 2, 'the notation signature and the SBOM');

    const packages = await api('GET', `/api/v1/supplychain/packages?purl=${encodeURIComponent('pkg:npm/left-pad@1.3.0')}`);
    assert.equal(packages.status, 200, packages.text);
    assert.deepEqual(packages.json.matches.map((m: { subject: string; repository: string; name: string }) => [m.subject, m.repository, m.name]), [[built.manifestDigest, 'attach/web', 'left-pad']]);
  });
});
