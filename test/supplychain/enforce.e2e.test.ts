import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { CreateBucketCommand, GetObjectCommand, ListObjectsV2Command, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { basicAuth, closeOciFixture, openCli, openOciFixture, registryFetch, type Cli, type OciFixture } from '../helpers/oci.ts';
import { RegistryHttp } from '../helpers/registry-http.ts';
import { sdkClient } from '../helpers/sdk-js.ts';
import { signRequest } from '../helpers/sign.ts';
import { apiCall } from '../helpers/api.ts';

/**
 * Trust policies enforced on both protocols, with signatures made by the real cosign (key pair,
 * offline) and by the server's own keys: an unsigned S3 object and an unsigned image are refused
 * under enforce-read (403 in each protocol's error format, with the reason) and become readable once
 * a trusted signature is attached; a changed byte, a wrong key, a revoked key and an expired key
 * each fail; under enforce-write the unverified artifact is invisible to readers. The audit log holds
 * every decision.
 */
let f: OciFixture;
let cosign: Cli;
let root: S3Client;
let reader: S3Client;
let readerAuth: string;
let readerKey: { accessKeyId: string; secretKey: string };
const readerPassword = 'reader-password-0123';

const api = (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) => apiCall(f.server.endpoint, method, path, body, headers);

/** A GET signed with the reader's access key, answered as it is (XML errors, astore's headers). */
async function readerGet(bucket: string, key: string): Promise<Response> {
  const host = new URL(f.server.endpoint).host;
  const headers = await signRequest(host, { method: 'GET', path: `/${bucket}/${key}` }, readerKey);
  return fetch(`${f.server.endpoint}/${bucket}/${key}`, { headers });
}

before(async () => {
  f = await openOciFixture('supplychain-enforce');
  cosign = openCli('ASTORE_TEST_COSIGN', f);
  f.env.COSIGN_PASSWORD = 'cosign-test-password';
  f.env.TUF_ROOT = join(f.work, 'tuf');
  await cosign.ok(['generate-key-pair'], { cwd: f.work });
  await cosign.ok(['generate-key-pair', '--output-key-prefix', 'stranger'], { cwd: f.work });

  // A reader who may read the bucket and pull the repository, and nothing else.
  assert.equal((await api('POST', '/api/v1/users', { name: 'reader', password: readerPassword })).status, 201);
  const keys = await api('POST', '/api/v1/users/reader/access-keys', {});
  assert.equal(keys.status, 201);
  const policy = await api('PUT', '/api/v1/policies/reader', {
    statements: [
      { effect: 'allow', principals: ['user:reader'], actions: ['s3:GetObject', 's3:ListBucket'], resources: ['s3:releases', 's3:releases/*', 's3:staging', 's3:staging/*'] },
      { effect: 'allow', principals: ['user:reader'], actions: ['oci:pull'], resources: ['oci:app/*', 'oci:tamper/*'] },
      { effect: 'allow', principals: ['user:reader'], actions: ['s3:GetObject'], resources: ['s3:rotation/*'] },
    ],
  });
  assert.equal(policy.status, 201, policy.text);
  readerAuth = basicAuth('reader', readerPassword);
  readerKey = { accessKeyId: keys.json.accessKeyId, secretKey: keys.json.secretAccessKey };
  root = sdkClient(f.server.endpoint);
  reader = sdkClient(f.server.endpoint, { credentials: { accessKeyId: keys.json.accessKeyId, secretAccessKey: keys.json.secretAccessKey } });
  await root.send(new CreateBucketCommand({ Bucket: 'releases' }));
  await root.send(new CreateBucketCommand({ Bucket: 'staging' }));
  await root.send(new CreateBucketCommand({ Bucket: 'rotation' }));

  const publicKey = await readFile(join(f.work, 'cosign.pub'), 'utf8');
  assert.equal((await api('PUT', '/api/v1/supplychain/keys/release', { publicKey })).status, 201);
  const trust = await api('PUT', '/api/v1/supplychain/policies/releases', { mode: 'enforce-read', resources: ['s3:releases/*', 'oci:app/*'], keys: ['release'] });
  assert.equal(trust.status, 201, trust.text);
});

after(async () => {
  root?.destroy();
  reader?.destroy();
  await closeOciFixture(f ?? {});
});

async function putObject(bucket: string, key: string, body: Buffer): Promise<void> {
  await root.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
}

async function readerGetObject(bucket: string, key: string): Promise<{ ok: true; body: Buffer; verification?: string } | { ok: false; name: string; status?: number; message: string }> {
  try {
    const out = await reader.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    const body = Buffer.from(await out.Body!.transformToByteArray());
    return { ok: true, body };
  } catch (err) {
    const e = err as Error & { $metadata?: { httpStatusCode?: number } };
    return { ok: false, name: e.name, status: e.$metadata?.httpStatusCode, message: e.message };
  }
}

/** A cosign blob bundle (old format: what `--bundle` writes by default) for a file's bytes. */
async function signBlob(bytes: Buffer, keyFile = 'cosign.key', newFormat = false): Promise<Buffer> {
  const file = join(f.work, `blob-${randomBytes(4).toString('hex')}`);
  await writeFile(file, bytes);
  const format = newFormat ? ['--new-bundle-format'] : [];
  await cosign.ok(['sign-blob', '--yes', '--key', keyFile, '--tlog-upload=false', ...format, '--bundle', `${file}.bundle`, file], { cwd: f.work });
  return readFile(`${file}.bundle`);
}

async function attach(bucket: string, key: string, document: Buffer | string, contentType?: string) {
  return api('POST', `/api/v1/supplychain/records?bucket=${bucket}&key=${encodeURIComponent(key)}`, document, contentType ? { 'content-type': contentType } : {});
}

describe('S3 objects under enforce-read', () => {
  const tarball = Buffer.concat([Buffer.from('tool 1.0\n'), randomBytes(64 * 1024)]);

  test('an unsigned object is refused with AccessDenied and the reason; a trusted cosign bundle makes it readable', async () => {
    await putObject('releases', 'tool-1.0.tar.gz', tarball);
    const refused = await readerGetObject('releases', 'tool-1.0.tar.gz');
    assert.equal(refused.ok, false);
    if (!refused.ok) {
      assert.equal(refused.name, 'AccessDenied');
      assert.equal(refused.status, 403);
      assert.match(refused.message, /not verified.*no signature/);
    }
    // The XML error names the reason too, for clients that show only the body.
    const raw = await readerGet('releases', 'tool-1.0.tar.gz');
    assert.equal(raw.status, 403);
    assert.match(await raw.text(), /<Code>AccessDenied<\/Code>.*releases: missing: no signature is attached/s);

    const attached = await attach('releases', 'tool-1.0.tar.gz', await signBlob(tarball));
    assert.equal(attached.status, 201, attached.text);
    assert.equal(attached.json.records[0].kind, 'signature');
    const read = await readerGetObject('releases', 'tool-1.0.tar.gz');
    assert.ok(read.ok, JSON.stringify(read));
    if (read.ok) assert.deepEqual(read.body, tarball);
    const head = await readerGet('releases', 'tool-1.0.tar.gz');
    assert.equal(head.headers.get('x-astore-verification'), 'verified');

    const audit = await api('GET', `/api/v1/audit?action=supplychain:VerifyRead&resource=s3:releases/tool-1.0.tar.gz`);
    const outcomes = (audit.json.entries as { outcome: string; principal: string }[]).map((e) => `${e.principal} ${e.outcome}`);
    assert.ok(outcomes.includes('user:reader denied'), outcomes.join(', '));
    assert.ok(outcomes.includes('user:reader allowed'), outcomes.join(', '));
  });

  test('a changed byte: the object no longer matches its signature and is refused', async () => {
    const changed = Buffer.from(tarball);
    changed[100] = changed[100]! ^ 1;
    await putObject('releases', 'tool-1.0.tar.gz', changed);
    const refused = await readerGetObject('releases', 'tool-1.0.tar.gz');
    assert.equal(refused.ok, false);
    if (!refused.ok) assert.match(refused.message, /failed: the object's content .* changed after it was signed/);
    const verification = await api('GET', '/api/v1/supplychain/verification?bucket=releases&key=tool-1.0.tar.gz');
    assert.equal(verification.json.verified, false);
    assert.equal(verification.json.results[0].status, 'failed');
  });

  test('a signature by a key the policy does not trust fails', async () => {
    const bytes = randomBytes(1024);
    await putObject('releases', 'stranger.bin', bytes);
    assert.equal((await attach('releases', 'stranger.bin', await signBlob(bytes, 'stranger.key'))).status, 201);
    const refused = await readerGetObject('releases', 'stranger.bin');
    assert.equal(refused.ok, false);
    if (!refused.ok) assert.match(refused.message, /failed: .*no trusted key verifies it/);
  });

  test('a bundle for other bytes is refused on upload, naming both digests; garbage is refused too', async () => {
    const bytes = randomBytes(512);
    await putObject('releases', 'other.bin', bytes);
    // A Sigstore bundle names the digest it signs (the old cosign bundle does not: it fails later).
    const wrong = await attach('releases', 'other.bin', await signBlob(randomBytes(512), 'cosign.key', true), 'application/vnd.dev.sigstore.bundle.v0.3+json');
    assert.equal(wrong.status, 400, wrong.text);
    assert.match(wrong.text, /covers sha256:[0-9a-f]{64}, not sha256:[0-9a-f]{64}/);
    const garbage = await attach('releases', 'other.bin', '{"spdxVersion":"SPDX-9.9"}', 'application/spdx+json');
    assert.equal(garbage.status, 400);
    assert.match(garbage.text, /SPDX/);
    const records = await api('GET', '/api/v1/supplychain/records?bucket=releases&key=other.bin');
    assert.deepEqual(records.json.records, [], 'nothing half-stored');
  });
});

describe('server-side signing keys', () => {
  test('astore signs with its own key; cosign verify-blob accepts it; revoking the key fails the object', async () => {
    const created = await api('PUT', '/api/v1/supplychain/keys/builder', { algorithm: 'ecdsa-p256' });
    assert.equal(created.status, 201, created.text);
    assert.equal(JSON.stringify(created.json).includes('PRIVATE'), false, 'the private key never leaves');
    const trust = await api('PUT', '/api/v1/supplychain/policies/releases', { mode: 'enforce-read', resources: ['s3:releases/*', 'oci:app/*'], keys: ['release', 'builder'] });
    assert.equal(trust.status, 200, trust.text);

    const bytes = Buffer.concat([Buffer.from('built by astore\n'), randomBytes(8192)]);
    await putObject('releases', 'built.tar', bytes);
    assert.equal((await readerGetObject('releases', 'built.tar')).ok, false);
    const signed = await api('POST', '/api/v1/supplychain/signatures?bucket=releases&key=built.tar', { key: 'builder' });
    assert.equal(signed.status, 201, signed.text);
    assert.equal(signed.json.key, 'builder/1');
    assert.equal((await readerGetObject('releases', 'built.tar')).ok, true);

    const file = join(f.work, 'built.tar');
    await writeFile(file, bytes);
    await writeFile(`${file}.sig`, signed.json.signature);
    await writeFile(join(f.work, 'builder.pub'), (await api('GET', '/api/v1/supplychain/keys/builder/public')).text);
    await cosign.ok(['verify-blob', '--key', 'builder.pub', '--signature', `${file}.sig`, '--insecure-ignore-tlog=true', file], { cwd: f.work });

    assert.equal((await api('POST', '/api/v1/supplychain/keys/builder/revoke', {})).status, 200);
    const refused = await readerGetObject('releases', 'built.tar');
    assert.equal(refused.ok, false);
    if (!refused.ok) assert.match(refused.message, /revoked/);
    const again = await api('POST', '/api/v1/supplychain/signatures?bucket=releases&key=built.tar', { key: 'builder' });
    assert.equal(again.status, 400, 'a revoked key signs nothing');
  });

  test('a signature by a key that has expired fails', async () => {
    const expiresAt = new Date(Date.now() + 1500).toISOString();
    const publicKey = await readFile(join(f.work, 'stranger.pub'), 'utf8');
    assert.equal((await api('PUT', '/api/v1/supplychain/keys/shortlived', { publicKey, expiresAt })).status, 201);
    await api('PUT', '/api/v1/supplychain/policies/releases', { mode: 'enforce-read', resources: ['s3:releases/*', 'oci:app/*'], keys: ['release', 'shortlived'] });
    const bytes = randomBytes(2048);
    await putObject('releases', 'short.bin', bytes);
    assert.equal((await attach('releases', 'short.bin', await signBlob(bytes, 'stranger.key'))).status, 201);
    assert.equal((await readerGetObject('releases', 'short.bin')).ok, true);
    await new Promise((resolve) => setTimeout(resolve, 1600));
    const refused = await readerGetObject('releases', 'short.bin');
    assert.equal(refused.ok, false);
    if (!refused.ok) assert.match(refused.message, /expired/);
  });
});

describe('images under enforce-read', () => {
  test('an unsigned image is refused with DENIED; cosign sign makes it pullable, and cosign verify agrees', async () => {
    const registry = new RegistryHttp(f.server.endpoint);
    const { digest } = await registry.pushImage('app/web', 'v1', [Buffer.from('web layer')]);
    const pull = () => fetch(`${f.server.endpoint}/v2/app/web/manifests/v1`, { headers: { authorization: readerAuth, accept: 'application/vnd.oci.image.manifest.v1+json' } });
    const refused = await pull();
    assert.equal(refused.status, 403);
    const error = (await refused.json()) as { errors: { code: string; message: string }[] };
    assert.equal(error.errors[0]!.code, 'DENIED');
    assert.match(error.errors[0]!.message, /no signature is attached/);

    const image = `${f.registry}/app/web@${digest}`;
    const flags = ['--allow-http-registry', '--allow-insecure-registry'];
    await cosign.ok(['sign', '--yes', '--key', 'cosign.key', '--tlog-upload=false', ...flags, image], { cwd: f.work });
    const afterSign = await pull();
    assert.equal(afterSign.status, 200, await afterSign.text());
    await cosign.ok(['verify', '--key', 'cosign.pub', '--insecure-ignore-tlog=true', ...flags, image], { cwd: f.work });
    const records = await api('GET', `/api/v1/supplychain/records?repository=app/web&reference=${digest}`);
    assert.equal(records.json.records.length, 1);
    assert.equal(records.json.records[0].format, 'cosign');

    // The audit log shows both decisions.
    const audit = await api('GET', '/api/v1/audit?action=supplychain:VerifyRead&resource=oci:app/web');
    const outcomes = new Set((audit.json.entries as { outcome: string }[]).map((e) => e.outcome));
    assert.deepEqual([...outcomes].sort(), ['allowed', 'denied']);
  });

  test('signing a multi-platform index covers its platform manifests; an unsigned one stays refused', async () => {
    const registry = new RegistryHttp(f.server.endpoint);
    const amd64 = await registry.pushImage('app/multi', 'amd64', [Buffer.from('amd64 layer')]);
    const arm64 = await registry.pushImage('app/multi', 'arm64', [Buffer.from('arm64 layer')]);
    const sizeOf = async (digest: string) => Number((await registry.request('HEAD', `/v2/app/multi/manifests/${digest}`)).headers.get('content-length'));
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: amd64.digest, size: await sizeOf(amd64.digest), platform: { os: 'linux', architecture: 'amd64' } },
          { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: arm64.digest, size: await sizeOf(arm64.digest), platform: { os: 'linux', architecture: 'arm64' } },
        ],
      }),
    );
    const put = await registry.request('PUT', '/v2/app/multi/manifests/v1', { body: index, headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' } });
    assert.equal(put.status, 201);
    const indexDigest = put.headers.get('docker-content-digest')!;
    const pull = (ref: string) => fetch(`${f.server.endpoint}/v2/app/multi/manifests/${ref}`, { headers: { authorization: readerAuth } });
    assert.equal((await pull(amd64.digest)).status, 403);
    await cosign.ok(['sign', '--yes', '--key', 'cosign.key', '--tlog-upload=false', '--allow-http-registry', '--allow-insecure-registry', `${f.registry}/app/multi@${indexDigest}`], { cwd: f.work });
    assert.equal((await pull('v1')).status, 200);
    assert.equal((await pull(amd64.digest)).status, 200, 'a platform of the signed index');
    assert.equal((await pull(arm64.digest)).status, 200);
    const loose = await registry.pushImage('app/multi', 'loose', [Buffer.from('not in the index')]);
    assert.equal((await pull(loose.digest)).status, 403, 'a manifest no signed index lists');
  });

  test('astore signs an image with its own key; cosign verify accepts the signature', async () => {
    assert.equal((await api('PUT', '/api/v1/supplychain/keys/images', { algorithm: 'ecdsa-p256' })).status, 201);
    await api('PUT', '/api/v1/supplychain/policies/releases', { mode: 'enforce-read', resources: ['s3:releases/*', 'oci:app/*'], keys: ['release', 'images'] });
    const { digest } = await new RegistryHttp(f.server.endpoint).pushImage('app/api', 'v2', [Buffer.from('api layer')]);
    const signed = await api('POST', `/api/v1/supplychain/signatures?repository=app/api&reference=v2`, { key: 'images' });
    assert.equal(signed.status, 201, signed.text);
    const pulled = await fetch(`${f.server.endpoint}/v2/app/api/manifests/${digest}`, { headers: { authorization: readerAuth } });
    assert.equal(pulled.status, 200);
    await writeFile(join(f.work, 'images.pub'), signed.json.publicKey);
    await cosign.ok(['verify', '--key', 'images.pub', '--insecure-ignore-tlog=true', '--allow-http-registry', '--allow-insecure-registry', `${f.registry}/app/api@${digest}`], { cwd: f.work });
  });
});

describe('enforce-write', () => {
  test('an unsigned object is invisible to readers (404), visible to its signer, and appears once signed', async () => {
    await api('PUT', '/api/v1/supplychain/policies/staging', { mode: 'enforce-write', resources: ['s3:staging/*'], keys: ['release'] });
    const bytes = randomBytes(4096);
    await putObject('staging', 'candidate.bin', bytes);
    const hidden = await readerGetObject('staging', 'candidate.bin');
    assert.equal(hidden.ok, false);
    if (!hidden.ok) {
      assert.equal(hidden.name, 'NoSuchKey');
      assert.equal(hidden.status, 404);
    }
    const listed = async (client: S3Client) => ((await client.send(new ListObjectsV2Command({ Bucket: 'staging' }))).Contents ?? []).map((o) => o.Key);
    assert.deepEqual(await listed(reader), [], 'not even listed');
    assert.deepEqual(await listed(root), ['candidate.bin'], 'the signer lists it');
    const signer = await root.send(new GetObjectCommand({ Bucket: 'staging', Key: 'candidate.bin' }));
    assert.deepEqual(Buffer.from(await signer.Body!.transformToByteArray()), bytes);
    assert.equal((await attach('staging', 'candidate.bin', await signBlob(bytes))).status, 201);
    const visible = await readerGetObject('staging', 'candidate.bin');
    assert.ok(visible.ok);
    assert.deepEqual(await listed(reader), ['candidate.bin']);
  });

  test('a registry push to an enforce-write repository is not pullable by readers until signed', async () => {
    await api('PUT', '/api/v1/supplychain/policies/quarantine', { mode: 'enforce-write', resources: ['oci:app/quarantine'], keys: ['release'] });
    const { digest } = await new RegistryHttp(f.server.endpoint).pushImage('app/quarantine', 'rc1', [Buffer.from('rc layer')]);
    const hidden = await fetch(`${f.server.endpoint}/v2/app/quarantine/manifests/rc1`, { headers: { authorization: readerAuth } });
    assert.equal(hidden.status, 404);
    assert.equal(((await hidden.json()) as { errors: { code: string }[] }).errors[0]!.code, 'MANIFEST_UNKNOWN');
    await cosign.ok(['sign', '--yes', '--key', 'cosign.key', '--tlog-upload=false', '--allow-http-registry', '--allow-insecure-registry', `${f.registry}/app/quarantine@${digest}`], { cwd: f.work });
    assert.equal((await fetch(`${f.server.endpoint}/v2/app/quarantine/manifests/rc1`, { headers: { authorization: readerAuth } })).status, 200);
  });
});

describe('tampering with image signatures', () => {
  const flags = ['--allow-http-registry', '--allow-insecure-registry'];
  const pull = (repository: string, reference: string) => fetch(`${f.server.endpoint}/v2/${repository}/manifests/${reference}`, { headers: { authorization: readerAuth } });
  const reasonOf = async (res: Response) => ((await res.json()) as { errors: { code: string; message: string }[] }).errors[0]!;
  const trust = (keys: string[]) => api('PUT', '/api/v1/supplychain/policies/tamper', { mode: 'enforce-read', resources: ['oci:tamper/*'], keys });

  before(async () => {
    assert.equal((await api('PUT', '/api/v1/supplychain/keys/tamper-signer', { algorithm: 'ecdsa-p256' })).status, 201);
    assert.equal((await trust(['release', 'tamper-signer'])).status, 201);
  });

  test('an image signed by a key the policy does not trust is refused', async () => {
    const { digest } = await new RegistryHttp(f.server.endpoint).pushImage('tamper/stranger', 'v1', [Buffer.from('stranger layer')]);
    await cosign.ok(['sign', '--yes', '--key', 'stranger.key', '--tlog-upload=false', ...flags, `${f.registry}/tamper/stranger@${digest}`], { cwd: f.work });
    const refused = await pull('tamper/stranger', 'v1');
    assert.equal(refused.status, 403);
    const error = await reasonOf(refused);
    assert.equal(error.code, 'DENIED');
    assert.match(error.message, /failed: .*no trusted key verifies it/);
  });

  test('a signature whose payload changed by one byte fails; deleting the good signature manifest removes its record', async () => {
    const registry = new RegistryHttp(f.server.endpoint);
    const { digest } = await registry.pushImage('tamper/payload', 'v1', [Buffer.from('payload layer')]);
    assert.equal((await api('POST', '/api/v1/supplychain/signatures?repository=tamper/payload&reference=v1', { key: 'tamper-signer' })).status, 201);
    assert.equal((await pull('tamper/payload', 'v1')).status, 200);

    // The signature image cosign reads: take its payload, change one byte, keep the signature.
    const tag = `${digest.replace(':', '-')}.sig`;
    const sigManifestRes = await registry.request('GET', `/v2/tamper/payload/manifests/${tag}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
    const sigDigest = sigManifestRes.headers.get('docker-content-digest')!;
    const sigManifest = (await sigManifestRes.json()) as { config: { digest: string }; layers: { digest: string; size: number; mediaType: string; annotations: Record<string, string> }[] };
    const payload = Buffer.from(await (await registry.request('GET', `/v2/tamper/payload/blobs/${sigManifest.layers[0]!.digest}`)).arrayBuffer());
    const tampered = Buffer.from(payload.toString('utf8').replace('tamper/payload', 'tamper/pavload'));
    assert.notDeepEqual(tampered, payload);
    await registry.deleteManifest('tamper/payload', sigDigest);
    assert.equal((await pull('tamper/payload', 'v1')).status, 403, 'the deleted signature no longer counts');
    const layerDigest = await registry.pushBlob('tamper/payload', tampered);
    const forged = { ...sigManifest, layers: [{ ...sigManifest.layers[0]!, digest: layerDigest, size: tampered.length }] };
    const put = await registry.request('PUT', `/v2/tamper/payload/manifests/${tag}`, { body: JSON.stringify(forged), headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
    assert.equal(put.status, 201);
    const refused = await pull('tamper/payload', 'v1');
    assert.equal(refused.status, 403);
    assert.match((await reasonOf(refused)).message, /failed: .*no trusted key verifies it/);
  });

  test('revoking the key that signed an image refuses it', async () => {
    assert.equal((await api('PUT', '/api/v1/supplychain/keys/tamper-revoked', { algorithm: 'ecdsa-p256' })).status, 201);
    await trust(['release', 'tamper-signer', 'tamper-revoked']);
    await new RegistryHttp(f.server.endpoint).pushImage('tamper/revoked', 'v1', [Buffer.from('revoked layer')]);
    assert.equal((await api('POST', '/api/v1/supplychain/signatures?repository=tamper/revoked&reference=v1', { key: 'tamper-revoked' })).status, 201);
    assert.equal((await pull('tamper/revoked', 'v1')).status, 200);
    assert.equal((await api('POST', '/api/v1/supplychain/keys/tamper-revoked/revoke', {})).status, 200);
    const refused = await pull('tamper/revoked', 'v1');
    assert.equal(refused.status, 403);
    assert.match((await reasonOf(refused)).message, /signed by key tamper-revoked\/1, revoked at/);
  });

  test('an image signed by a key that has expired is refused', async () => {
    const publicKey = await readFile(join(f.work, 'stranger.pub'), 'utf8');
    const expiresAt = new Date(Date.now() + 2000).toISOString();
    assert.equal((await api('PUT', '/api/v1/supplychain/keys/tamper-short', { publicKey, expiresAt })).status, 201);
    await trust(['release', 'tamper-signer', 'tamper-short']);
    const { digest } = await new RegistryHttp(f.server.endpoint).pushImage('tamper/expired', 'v1', [Buffer.from('expiring layer')]);
    await cosign.ok(['sign', '--yes', '--key', 'stranger.key', '--tlog-upload=false', ...flags, `${f.registry}/tamper/expired@${digest}`], { cwd: f.work });
    assert.equal((await pull('tamper/expired', 'v1')).status, 200);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, new Date(expiresAt).getTime() - Date.now() + 100)));
    const refused = await pull('tamper/expired', 'v1');
    assert.equal(refused.status, 403);
    assert.match((await reasonOf(refused)).message, /expired at/);
  });

  test('cosign signatures in OCI 1.1 referrers mode verify like the legacy tag', async () => {
    const { digest } = await new RegistryHttp(f.server.endpoint).pushImage('tamper/referrers', 'v1', [Buffer.from('referrers layer')]);
    assert.equal((await pull('tamper/referrers', 'v1')).status, 403);
    await cosign.ok(['sign', '--yes', '--key', 'cosign.key', '--tlog-upload=false', '--registry-referrers-mode=oci-1-1', ...flags, `${f.registry}/tamper/referrers@${digest}`], {
      cwd: f.work,
      env: { COSIGN_EXPERIMENTAL: '1' },
    });
    const referrers = (await (await registryFetch(f, `/v2/tamper/referrers/referrers/${digest}`)).json()) as { manifests: { artifactType?: string }[] };
    assert.ok(referrers.manifests.some((m) => m.artifactType === 'application/vnd.dev.cosign.artifact.sig.v1+json'), JSON.stringify(referrers));
    assert.equal((await pull('tamper/referrers', 'v1')).status, 200);
  });
});

describe('key rotation', () => {
  test('a rotated key keeps verifying what its old version signed; the new version signs; revoking one version refuses only its signatures', async () => {
    assert.equal((await api('PUT', '/api/v1/supplychain/keys/rotating', { algorithm: 'rsa-3072' })).status, 201);
    await api('PUT', '/api/v1/supplychain/policies/rotation', { mode: 'enforce-read', resources: ['s3:rotation/*'], keys: ['rotating'] });
    await putObject('rotation', 'old.bin', randomBytes(1000));
    await putObject('rotation', 'new.bin', randomBytes(1000));
    assert.equal((await api('POST', '/api/v1/supplychain/signatures?bucket=rotation&key=old.bin', { key: 'rotating' })).json.key, 'rotating/1');
    const rotated = await api('POST', '/api/v1/supplychain/keys/rotating/rotate', {});
    assert.equal(rotated.status, 201, rotated.text);
    assert.equal(rotated.json.id, 'rotating/2');
    assert.equal(rotated.json.algorithm, 'rsa', 'the next version is generated like the current one');
    const versions = (await api('GET', '/api/v1/supplychain/keys/rotating')).json.versions as { id: string; status: string }[];
    assert.deepEqual(versions.map((v) => `${v.id} ${v.status}`), ['rotating/1 retired', 'rotating/2 active']);
    assert.equal((await api('POST', '/api/v1/supplychain/signatures?bucket=rotation&key=new.bin', { key: 'rotating' })).json.key, 'rotating/2');
    assert.equal((await readerGetObject('rotation', 'old.bin')).ok, true, 'signed by the retired version');
    assert.equal((await readerGetObject('rotation', 'new.bin')).ok, true);
    assert.equal((await api('POST', '/api/v1/supplychain/keys/rotating/revoke', { version: 1 })).status, 200);
    const refused = await readerGetObject('rotation', 'old.bin');
    assert.equal(refused.ok, false);
    if (!refused.ok) assert.match(refused.message, /rotating\/1, revoked/);
    assert.equal((await readerGetObject('rotation', 'new.bin')).ok, true);
  });
});
