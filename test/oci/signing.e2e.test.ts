import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { RegistryHttp } from '../helpers/registry-http.ts';
import { closeOciFixture, openCli, openOciFixture, registryFetch, type OciFixture } from '../helpers/oci.ts';

/**
 * The signing tools work against the registry unmodified: cosign (key pair, offline: no Rekor, no
 * Fulcio) with its legacy `sha256-<hex>.sig` tag and with OCI 1.1 referrers, and notation (a test CA)
 * through the referrers API. Verification fails for another key. Supply-chain enforcement builds on
 * this; here the registry only has to carry the signatures faithfully.
 */
let f: OciFixture;
let image: string;
let digest: string;

before(async () => {
  f = await openOciFixture('signing');
  const pushed = await new RegistryHttp(f.server.endpoint).pushImage('app/signed', 'v1', [Buffer.from('a layer to sign')]);
  digest = pushed.digest;
  image = `${f.registry}/app/signed@${digest}`;
  f.env.COSIGN_PASSWORD = 'test-password';
  f.env.TUF_ROOT = join(f.work, 'tuf');
});

after(async () => {
  await closeOciFixture(f ?? {});
});

test('cosign signs and verifies, with the legacy signature tag and with referrers', async () => {
  const cosign = openCli('ASTORE_TEST_COSIGN', f);
  await cosign.ok(['generate-key-pair'], { cwd: f.work });
  const common = ['--allow-http-registry'];
  await cosign.ok(['sign', '--yes', '--key', 'cosign.key', '--tlog-upload=false', ...common, '--allow-insecure-registry', image], { cwd: f.work });
  const tags = (await (await registryFetch(f, '/v2/app/signed/tags/list')).json()) as { tags: string[] };
  assert.ok(tags.tags.includes(`${digest.replace(':', '-')}.sig`), `the legacy signature tag is there: ${tags.tags.join(', ')}`);
  const verified = await cosign.ok(['verify', '--key', 'cosign.pub', '--insecure-ignore-tlog=true', ...common, image], { cwd: f.work });
  assert.match(verified, /docker-manifest-digest/);

  await cosign.ok(['sign', '--yes', '--key', 'cosign.key', '--tlog-upload=false', '--registry-referrers-mode=oci-1-1', ...common, '--allow-insecure-registry', image], {
    cwd: f.work,
    env: { COSIGN_EXPERIMENTAL: '1' },
  });
  const referrers = (await (await registryFetch(f, `/v2/app/signed/referrers/${digest}`)).json()) as { manifests: { artifactType?: string }[] };
  assert.ok(referrers.manifests.some((m) => m.artifactType === 'application/vnd.dev.cosign.artifact.sig.v1+json'), JSON.stringify(referrers));

  // Another key does not verify.
  await cosign.ok(['generate-key-pair', '--output-key-prefix', 'other'], { cwd: f.work });
  await cosign.fails(['verify', '--key', 'other.pub', '--insecure-ignore-tlog=true', ...common, image], { cwd: f.work });
});

test('notation signs through the referrers API and verifies against its trust policy', async () => {
  const notation = openCli('ASTORE_TEST_NOTATION', f);
  const login = ['--insecure-registry'];
  await notation.ok(['cert', 'generate-test', '--default', 'astore.test']);
  await notation.ok(['sign', ...login, image]);
  const policy = join(f.work, 'trustpolicy.json');
  await writeFile(
    policy,
    JSON.stringify({
      version: '1.0',
      trustPolicies: [{ name: 'test', registryScopes: ['*'], signatureVerification: { level: 'strict' }, trustStores: ['ca:astore.test'], trustedIdentities: ['*'] }],
    }),
  );
  await notation.ok(['policy', 'import', '--force', policy]);
  const verified = await notation.ok(['verify', ...login, image]);
  assert.match(verified, /Successfully verified/);
  const listed = await notation.ok(['ls', ...login, image]);
  assert.match(listed, /application\/vnd\.cncf\.notary\.signature/);
  const referrers = (await (await registryFetch(f, `/v2/app/signed/referrers/${digest}?artifactType=application/vnd.cncf.notary.signature`)).json()) as { manifests: unknown[] };
  assert.equal(referrers.manifests.length, 1);
});
