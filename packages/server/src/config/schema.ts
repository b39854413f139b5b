import { z } from 'zod';

/**
 * The one configuration schema. Every object is strict: an unknown key is refused with its path.
 * Defaults give the embedded setup: local disk + SQLite under ./data, port 8080.
 */
const duration = z.number().int().nonnegative();

export const configSchema = z.strictObject({
  dataDir: z.string().min(1).default('./data').describe('Directory for blobs, metadata and generated credentials'),
  server: z
    .strictObject({
      host: z.string().default('0.0.0.0').describe('Address to listen on'),
      port: z.number().int().min(0).max(65535).default(8080),
      maxHeaderBytes: z.number().int().positive().default(16 * 1024).describe('Larger request header sections are refused'),
      requestTimeoutSeconds: duration.default(0).describe('0 disables; uploads of large objects can take long'),
      shutdownGraceSeconds: duration.default(30).describe('How long in-flight requests may run after SIGTERM'),
      trustProxy: z.boolean().default(false),
    })
    .prefault({}),
  log: z
    .strictObject({
      level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
    })
    .prefault({}),
  storage: z
    .strictObject({
      blob: z
        .strictObject({
          driver: z.enum(['fs', 's3', 'azure', 'gcs']).default('fs'),
          fs: z.strictObject({ path: z.string().optional().describe('Default: <dataDir>/blobs') }).prefault({}),
          s3: z
            .strictObject({
              bucket: z.string().min(3).describe('The bucket that holds the blobs (it must exist unless createBucket)'),
              region: z.string().default('us-east-1'),
              endpoint: z.url().optional().describe('S3-compatible service URL (MinIO, Ceph...); default: AWS'),
              prefix: z.string().optional().describe('Key prefix inside the bucket, e.g. `astore/`'),
              accessKeyId: z.string().optional().describe('With secretAccessKey; default: the AWS SDK credential chain (env, profile, IAM role)'),
              secretAccessKey: z.string().optional(),
              forcePathStyle: z.boolean().default(false).describe('Path-style requests (MinIO and most S3-compatible services need it)'),
              partSizeBytes: z.number().int().min(5 * 1024 ** 2).optional().describe('Multipart part size (default 16 MiB: blobs up to 156 GiB)'),
              queueSize: z.number().int().min(1).max(64).optional().describe('Parts uploaded at once per blob (default 4)'),
              presignedGetSeconds: z.number().int().min(1).max(604800).optional().describe('Enables redirects of large registry blob GETs to presigned URLs valid this long'),
              checksums: z.enum(['when_supported', 'when_required']).optional().describe('when_required for services that refuse the SDK\'s CRC32 headers'),
              createBucket: z.boolean().default(false),
            })
            .optional(),
          azure: z
            .strictObject({
              container: z.string().regex(/^[a-z0-9](?:[a-z0-9-]{1,61}[a-z0-9])$/),
              connectionString: z.string().optional().describe('Shared-key connection string; or accountUrl + accountName + accountKey'),
              accountUrl: z.url().optional(),
              accountName: z.string().optional(),
              accountKey: z.string().optional(),
              prefix: z.string().optional(),
              blockSizeBytes: z.number().int().positive().optional().describe('Block size of staged uploads (default 8 MiB)'),
              concurrency: z.number().int().min(1).max(64).optional(),
              createContainer: z.boolean().default(false),
            })
            .optional(),
          gcs: z
            .strictObject({
              bucket: z.string().min(3),
              prefix: z.string().optional(),
              projectId: z.string().optional(),
              apiEndpoint: z.url().optional().describe('Another endpoint than storage.googleapis.com, e.g. an emulator'),
              keyFilename: z.string().optional().describe('Service-account key file; default: Application Default Credentials'),
              chunkSizeBytes: z.number().int().positive().optional().describe('Resumable upload chunk, a multiple of 256 KiB (default 8 MiB)'),
              createBucket: z.boolean().default(false),
            })
            .optional(),
          resilience: z
            .strictObject({
              maxAttempts: z.number().int().min(1).max(10).default(3).describe('Attempts of an idempotent backend call'),
              initialDelayMs: z.number().int().min(1).default(100),
              maxDelayMs: z.number().int().min(1).default(2000),
              breakAfterFailures: z.number().int().min(1).default(5).describe('Consecutive failed calls that open the circuit (503 at once)'),
              halfOpenAfterMs: z.number().int().min(100).default(5000).describe('How long an open circuit waits before a trial call'),
            })
            .prefault({}),
        })
        .prefault({})
        .refine((b) => b.driver === 'fs' || b[b.driver] !== undefined, { message: 'storage.blob: the chosen driver needs its section (storage.blob.<driver>)' }),
      meta: z
        .strictObject({
          driver: z.enum(['sqlite', 'postgres']).default('sqlite'),
          sqlite: z
            .strictObject({
              path: z.string().optional().describe('Default: <dataDir>/meta.db'),
              synchronous: z
                .enum(['full', 'normal'])
                .default('full')
                .describe('full: every commit is on disk before it is acknowledged; normal: survives a process crash, a power loss may lose the last commits'),
            })
            .prefault({}),
          postgres: z
            .strictObject({
              connectionString: z.string().regex(/^postgres(ql)?:\/\//, 'a postgresql:// URL').describe('postgresql://user:password@host:5432/astore?sslmode=require'),
              poolSize: z.number().int().min(1).max(1000).default(10).describe('Connections per replica'),
              statementTimeoutMs: z.number().int().nonnegative().default(30000).describe('statement_timeout of the store\'s connections; 0: the server\'s default'),
              connectTimeoutMs: z.number().int().positive().default(30000).describe('How long a request waits for a connection'),
            })
            .optional(),
        })
        .prefault({})
        .refine((m) => m.driver !== 'postgres' || m.postgres !== undefined, { message: 'storage.meta: the postgres driver needs storage.meta.postgres.connectionString' }),
    })
    .prefault({}),
  auth: z
    .strictObject({
      rootAccessKey: z.string().min(3).max(128).optional().describe('Root access key id; generated on first start when unset'),
      rootSecretKey: z.string().min(8).max(128).optional().describe('Root secret key; generated on first start when unset'),
      serverKey: z
        .string()
        .regex(/^[A-Za-z0-9+/]{43}=$/, 'base64 of 32 bytes')
        .optional()
        .describe('Key that encrypts access-key secrets at rest (base64 of 32 bytes); default: <dataDir>/server-key, generated'),
      oidc: z
        .strictObject({
          issuer: z.url().describe('The provider\'s issuer URL, e.g. https://keycloak.example/realms/astore'),
          audience: z.array(z.string().min(1)).min(1).default(['astore']).describe('Accepted `aud` values'),
          jwksUri: z.url().optional().describe('Default: from the issuer\'s discovery document'),
          usernameClaim: z.string().default('preferred_username'),
          usernamePrefix: z.string().default('').describe('Prepended to user names from tokens (e.g. `kc:`)'),
          groupsClaim: z.string().default('groups').describe('Dot path of the claim listing groups'),
          rolesClaim: z.string().default('realm_access.roles').describe('Dot path of the claim listing roles'),
          clockToleranceSeconds: z.number().int().nonnegative().default(30),
        })
        .optional(),
      sts: z
        .strictObject({
          defaultDurationSeconds: z.number().int().min(900).max(43200).default(3600),
          maxDurationSeconds: z.number().int().min(900).max(43200).default(43200),
        })
        .prefault({}),
      bootstrapAdmin: z
        .strictObject({ name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._@-]{0,127}$/), password: z.string().max(1024) })
        .optional()
        .describe('A user created on start when missing, with a policy allowing it everything'),
    })
    .prefault({})
    .refine((a) => (a.bootstrapAdmin === undefined) || (a.bootstrapAdmin.password.length >= 12), {
      message: 'auth.bootstrapAdmin.password must have at least 12 characters',
    })
    .refine((a) => (a.rootAccessKey === undefined) === (a.rootSecretKey === undefined), {
      message: 'auth.rootAccessKey and auth.rootSecretKey must be set together',
    }),
  s3: z
    .strictObject({
      region: z.string().regex(/^[a-z0-9-]+$/).default('us-east-1'),
      domain: z.string().optional().describe('Enables virtual-host style: <bucket>.<domain>'),
      maxClockSkewSeconds: duration.default(900),
      anonymousReadBuckets: z.array(z.string()).default([]).describe('Buckets whose objects anyone may read and list'),
      maxObjectSizeBytes: z.number().int().positive().default(5 * 1024 ** 4),
      minPartSizeBytes: z.number().int().nonnegative().default(5 * 1024 ** 2).describe('Every multipart part but the last must be at least this big'),
    })
    .prefault({}),
  oci: z
    .strictObject({
      anonymousPullRepositories: z
        .array(z.string().regex(/^(\*|[a-z0-9._/-]+(\/\*)?)$/))
        .default([])
        .describe('Repositories anyone may pull from: exact names, `prefix/*`, or `*`'),
      autoMount: z.boolean().default(true).describe('A mount request without `from` links the blob from any repository that has it'),
      tokenAuth: z
        .boolean()
        .default(true)
        .describe('Answer 401 with a Bearer challenge and issue registry tokens at /v2/token (basic credentials are accepted either way)'),
      tokenTtlSeconds: z.number().int().min(30).max(3600).default(300),
      tokenRealm: z.url().optional().describe('The token endpoint URL clients are sent to; default <scheme>://<host>/v2/token of the request'),
      maxManifestBytes: z.number().int().positive().default(4 * 1024 ** 2),
      maxBlobBytes: z.number().int().positive().default(5 * 1024 ** 4),
      redirectBlobsAboveBytes: z
        .number()
        .int()
        .nonnegative()
        .default(16 * 1024 ** 2)
        .describe('With a presigning blob store (storage.blob.s3.presignedGetSeconds): blob GETs at least this big answer 307 to a presigned URL'),
    })
    .prefault({}),
  supplychain: z
    .strictObject({
      maxDocumentBytes: z
        .number()
        .int()
        .positive()
        .default(64 * 1024 ** 2)
        .describe('Largest signature, SBOM or attestation accepted (through the API or as a registry layer)'),
      refreshSeconds: z.number().min(0).max(60).default(1).describe('How soon a change made on another replica (keys, trust policies, records) is noticed'),
      keys: z
        .strictObject({
          provider: z.enum(['file']).default('file').describe('Where private signing keys are kept'),
          path: z.string().optional().describe('Directory of the file provider (default <dataDir>/signing-keys); keys are sealed with the server key'),
        })
        .prefault({}),
    })
    .prefault({}),
  audit: z
    .strictObject({
      allowedReadSampling: z
        .number()
        .min(0)
        .max(1)
        .default(1)
        .describe('Share of allowed read decisions recorded (denials, writes and changes: always)'),
    })
    .prefault({}),
  gc: z
    .strictObject({
      enabled: z.boolean().default(true),
      intervalSeconds: duration.default(300),
      graceSeconds: duration.default(3600).describe('Unreferenced blobs younger than this are kept'),
      multipartExpirySeconds: duration.default(7 * 24 * 3600).describe('Multipart uploads older than this are aborted'),
      registryUploadExpirySeconds: duration.default(24 * 3600).describe('Registry upload sessions idle for longer are cancelled'),
      untaggedManifestsAfterSeconds: duration
        .default(0)
        .describe('Untagged manifests older than this (not in an index, subject gone) are deleted; 0 keeps them'),
    })
    .prefault({}),
});

export type Config = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;
