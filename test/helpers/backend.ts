import { randomBytes } from 'node:crypto';
import { after } from 'node:test';
import { startMinio, type MinioServer } from './minio.ts';
import { startPostgres, type PostgresServer } from './postgres.ts';

/**
 * Which storage the in-process test servers use: the embedded defaults (local disk + SQLite), or with
 * ASTORE_TEST_BACKEND=s3-postgres the S3 blob driver on a MinIO and the PostgreSQL MetaStore on a
 * throwaway cluster. scripts/test.sh runs the S3 and registry end-to-end suites a second time that way.
 *
 * One MinIO and one PostgreSQL serve a whole test file (started on first use, stopped after the file);
 * every server gets a bucket and a database of its own.
 */
export const testBackend = process.env.ASTORE_TEST_BACKEND ?? 'fs-sqlite';
if (testBackend !== 'fs-sqlite' && testBackend !== 's3-postgres') {
  throw new Error(`ASTORE_TEST_BACKEND=${testBackend}: expected fs-sqlite or s3-postgres`);
}

let services: Promise<{ minio: MinioServer; postgres: PostgresServer }> | undefined;
let databases = 0;

// Registered when the module loads (a test file's imports run at its top level), so the services
// stop after the whole file, not after whichever suite happened to start them. Whatever the backend:
// sharedBackendConfig starts them too; when nothing did, the hook has nothing to stop.
after(async () => {
  const started = await services?.catch(() => undefined);
  await Promise.all([started?.minio.stop(), started?.postgres.stop()]);
});

function shared(): Promise<{ minio: MinioServer; postgres: PostgresServer }> {
  services ??= Promise.all([startMinio(), startPostgres()]).then(([minio, postgres]) => ({ minio, postgres }));
  return services;
}

/** The storage part of a test server's configuration (nothing for the embedded defaults). */
export async function backendConfig(): Promise<Record<string, unknown>> {
  if (testBackend === 'fs-sqlite') return {};
  return s3PostgresConfig();
}

/**
 * The storage part of the configuration of several test servers that share it, as replicas do: a new
 * MinIO bucket and PostgreSQL database, always (whatever ASTORE_TEST_BACKEND says; the embedded
 * defaults cannot be shared). Pass the one result to every server of the group. The rest of what
 * replicas must share (auth.serverKey, the root credentials, supplychain.keys.path: docs/replicas.md)
 * is the test's to configure.
 */
export function sharedBackendConfig(): Promise<Record<string, unknown>> {
  return s3PostgresConfig();
}

async function s3PostgresConfig(): Promise<Record<string, unknown>> {
  const { minio, postgres } = await shared();
  const bucket = await minio.createBucket();
  const database = `astore_${process.pid}_${++databases}_${randomBytes(3).toString('hex')}`;
  const connectionString = await postgres.createDatabase(database);
  return {
    storage: {
      blob: {
        driver: 's3',
        s3: { endpoint: minio.endpoint, region: minio.region, bucket, forcePathStyle: true, accessKeyId: minio.accessKeyId, secretAccessKey: minio.secretAccessKey },
      },
      meta: { driver: 'postgres', postgres: { connectionString } },
    },
  };
}
