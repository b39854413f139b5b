import { execFile } from 'node:child_process';

export type TestTool =
  | 'ASTORE_TEST_AWS'
  | 'ASTORE_TEST_PYTHON'
  | 'ASTORE_TEST_CONFORMANCE'
  | 'ASTORE_TEST_ORAS'
  | 'ASTORE_TEST_CRANE'
  | 'ASTORE_TEST_REGCTL'
  | 'ASTORE_TEST_HELM'
  | 'ASTORE_TEST_COSIGN'
  | 'ASTORE_TEST_NOTATION'
  | 'ASTORE_TEST_SKOPEO'
  | 'ASTORE_TEST_PODMAN'
  | 'ASTORE_TEST_KEYCLOAK'
  | 'ASTORE_TEST_MINIO'
  | 'ASTORE_TEST_AZURITE'
  | 'ASTORE_TEST_FAKE_GCS'
  | 'ASTORE_TEST_POSTGRES';

/**
 * The real clients installed by the test setup (scripts/setup-test-tools.sh for aws-cli and boto3,
 * scripts/install-oci-tools.sh for the registry clients, install-debian-tools.sh, install-keycloak.sh). A missing client fails the test loudly:
 * end-to-end tests never skip.
 */
export function requireTool(envName: TestTool): string {
  const path = process.env[envName];
  if (!path) {
    throw new Error(`${envName} is not set: run the tests through \`npm test\`, which installs the clients and services (scripts/setup-test-tools.sh, install-oci-tools.sh, install-debian-tools.sh, install-keycloak.sh, install-minio.sh, install-fake-gcs.sh, install-postgres.sh)`);
  }
  return path;
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command, never throwing on a non-zero exit; output is captured. */
export function run(cmd: string, args: string[], options: { env?: NodeJS.ProcessEnv; input?: string; cwd?: string; timeoutMs?: number } = {}): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { env: options.env, cwd: options.cwd, timeout: options.timeoutMs ?? 120_000, maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' },
      (err, stdout, stderr) => {
        const code = err ? (typeof (err as NodeJS.ErrnoException).code === 'number' ? Number((err as NodeJS.ErrnoException).code) : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    if (options.input !== undefined) child.stdin?.end(options.input);
  });
}
