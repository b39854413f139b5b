import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { requireTool, run } from './clients.ts';
import type { TestServer } from './server.ts';

/**
 * boto3 end-to-end checks live in test/s3/boto3_suite.py, which prints one JSON line per check. A
 * node test runs one section of it and asserts that exactly the expected checks ran and passed, so a
 * check that disappears or stops running fails the test too.
 */
const suite = fileURLToPath(new URL('../s3/boto3_suite.py', import.meta.url));

export interface CheckResult {
  section: string;
  check: string;
  ok: boolean;
  ms: number;
  error?: string;
  trace?: string;
}

/** Runs one section of boto3_suite.py against `server` with the venv's python (ASTORE_TEST_PYTHON). */
export async function runBoto3Section(server: TestServer, section: string, expected: string[], env: NodeJS.ProcessEnv = {}): Promise<CheckResult[]> {
  const python = requireTool('ASTORE_TEST_PYTHON');
  const result = await run(python, [suite, server.endpoint, section], { env: { ...server.clientEnv, ...env }, timeoutMs: 150_000 });
  const checks = result.stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as CheckResult);
  const stderr = result.stderr.slice(-3000);
  const failures = checks.filter((c) => !c.ok).map((c) => `✗ ${c.check}\n  ${c.error}\n${c.trace ?? ''}`);
  assert.deepEqual(failures, [], `boto3 section ${section} failed:\n${failures.join('\n')}\nstderr:\n${stderr}`);
  assert.deepEqual(checks.map((c) => c.check), expected, `checks run in section ${section} (exit ${result.code}); stderr:\n${stderr}`);
  assert.equal(result.code, 0, `boto3_suite.py exit code; stderr:\n${stderr}`);
  return checks;
}
