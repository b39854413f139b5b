import assert from 'node:assert/strict';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { requireTool, run } from '../helpers/clients.ts';
import { accessKeyId, repoRoot, secretKey, startServer, type TestServer } from '../helpers/server.ts';

/**
 * The OCI distribution-spec conformance suite (scripts/install-oci-tools.sh builds it at a pinned
 * version) against astore, with its OCI 1.1 defaults — referrers, subject, sha512 and every data
 * toggle but `sparse` on — plus the API toggles the defaults leave off: upload cancel, digest headers
 * and the `tag` parameter of a push by digest. `sparse` (manifests whose blobs were never pushed)
 * stays off: astore refuses those with MANIFEST_BLOB_UNKNOWN, as the spec allows.
 *
 * Its junit.xml, report.html and results.yaml are kept in test-results/oci-conformance/ (override
 * with ASTORE_TEST_RESULTS_DIR).
 */
const resultsDir = join(process.env.ASTORE_TEST_RESULTS_DIR ?? join(repoRoot, 'test-results'), 'oci-conformance');
let server: TestServer;

before(async () => {
  server = await startServer();
  await rm(resultsDir, { recursive: true, force: true });
  await mkdir(resultsDir, { recursive: true });
});

after(async () => {
  await server?.stop();
});

test('the OCI distribution-spec conformance suite passes with 0 failures', { timeout: 300_000 }, async (t) => {
  const conformance = requireTool('ASTORE_TEST_CONFORMANCE');
  const result = await run(conformance, [], {
    cwd: resultsDir,
    timeoutMs: 280_000,
    env: {
      PATH: process.env.PATH,
      HOME: resultsDir,
      OCI_REGISTRY: `127.0.0.1:${server.port}`,
      OCI_TLS: 'disabled',
      OCI_REPO1: 'conformance/repo1',
      OCI_REPO2: 'conformance/nested/repo2',
      OCI_USERNAME: accessKeyId,
      OCI_PASSWORD: secretKey,
      OCI_RESULTS_DIR: resultsDir,
      OCI_VERSION: '1.1',
      OCI_API_BLOBS_UPLOAD_CANCEL: 'true',
      OCI_API_BLOBS_DIGEST_HEADER: 'true',
      OCI_API_MANIFESTS_DIGEST_HEADER: 'true',
      OCI_API_MANIFESTS_TAG_PARAM: 'true',
    },
  });
  const junit = await readFile(join(resultsDir, 'junit.xml'), 'utf8').catch(() => '');
  const suite = /<testsuite [^>]*tests="(\d+)" failures="(\d+)" errors="(\d+)"/.exec(junit);
  const failedLines = `${result.stdout}\n${result.stderr}`.split('\n').filter((line) => line.includes('failed test'));
  assert.ok(suite, `no junit.xml with a test count in ${resultsDir}; exit ${result.code}\n${result.stderr.slice(-4000)}`);
  const [total, failures, errors] = suite.slice(1).map(Number) as [number, number, number];
  const passed = Number(/Pass\.+:\s+(\d+)/.exec(result.stdout)?.[1] ?? NaN);
  t.diagnostic(`OCI conformance: ${passed} passed, ${failures} failed, ${errors} errors of ${total}; report in ${resultsDir}`);
  assert.equal(failures + errors, 0, `conformance failures:\n${failedLines.join('\n').slice(0, 8000)}`);
  assert.equal(result.code, 0, `conformance exited ${result.code}:\n${result.stdout.slice(-4000)}`);
  assert.equal(passed, total, `every enabled spec passes (${passed} of ${total}); none skipped`);
  assert.ok(total > 900, `the full suite ran (${total} specs)`);
});
