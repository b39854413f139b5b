import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { requireTool, run, type RunResult } from './clients.ts';
import { startServer, type TestServer } from './server.ts';

/**
 * The real aws-cli v1 (ASTORE_TEST_AWS) pointed at a test server. Every call pays ~0.5-1 s of Python
 * start-up, so tests group their assertions per invocation.
 */
export interface AwsCli {
  /** Environment of every call: the server's client credentials plus this CLI's config file. */
  readonly env: NodeJS.ProcessEnv;
  /** `aws --endpoint-url <server> ...args`; never throws. `env` is merged over `this.env`; `input` goes to stdin. */
  run(args: string[], options?: AwsCallOptions): Promise<RunResult>;
  /** Like run, but the command must exit 0; returns stdout. */
  ok(args: string[], options?: AwsCallOptions): Promise<string>;
  /** An s3api call that must succeed, its JSON output parsed (no output → {}). */
  json<T = Record<string, any>>(args: string[], options?: AwsCallOptions): Promise<T>;
  /** A call that must fail; returns the code of `An error occurred (<Code>)` (a bare status for HEAD/304). */
  fails(args: string[], options?: AwsCallOptions): Promise<string>;
}

export interface AwsCallOptions {
  env?: NodeJS.ProcessEnv;
  input?: string;
}

export interface AwsCliOptions {
  /**
   * aws-cli v1 presigns with Signature V2 unless `s3.signature_version = s3v4` is configured (astore
   * accepts both). On by default; off gives the CLI's out-of-the-box behaviour.
   */
  presignV4?: boolean;
}

/** `aws` bound to `server`, with a config file written under `workDir` (pinned multipart sizes). */
export async function openAwsCli(server: TestServer, workDir: string, options: AwsCliOptions = {}): Promise<AwsCli> {
  const aws = requireTool('ASTORE_TEST_AWS');
  const configFile = join(workDir, options.presignV4 === false ? 'aws-config-default' : 'aws-config');
  // Pinned so tests can compute multipart ETags: 8 MiB parts from 8 MiB on (the aws-cli defaults).
  const s3Settings = ['multipart_threshold = 8MB', 'multipart_chunksize = 8MB', 'max_concurrent_requests = 4'];
  if (options.presignV4 !== false) s3Settings.push('signature_version = s3v4');
  await mkdir(workDir, { recursive: true });
  await writeFile(configFile, `[default]\noutput = json\ns3 =\n${s3Settings.map((s) => `    ${s}\n`).join('')}`);
  const env: NodeJS.ProcessEnv = { ...server.clientEnv, AWS_CONFIG_FILE: configFile };

  const cli: AwsCli = {
    env,
    run(args, opts = {}) {
      return run(aws, ['--endpoint-url', server.endpoint, ...args], { env: { ...env, ...opts.env }, input: opts.input });
    },
    async ok(args, opts) {
      const result = await cli.run(args, opts);
      if (result.code !== 0) throw new Error(`aws ${args.join(' ')} exited ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
      return result.stdout;
    },
    async json(args, opts) {
      const stdout = await cli.ok([...args, '--output', 'json'], opts);
      return (stdout.trim() === '' ? {} : JSON.parse(stdout)) as never;
    },
    async fails(args, opts) {
      const result = await cli.run(args, opts);
      const code = /An error occurred \(([^)]+)\)/.exec(result.stderr)?.[1];
      if (result.code === 0 || code === undefined) {
        throw new Error(`aws ${args.join(' ')} was expected to fail with an S3 error, exited ${result.code}\nstdout: ${result.stdout}\nstderr: ${result.stderr}`);
      }
      return code;
    },
  };
  return cli;
}

export const md5Hex = (data: Buffer): string => createHash('md5').update(data).digest('hex');
export const sha256Hex = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** S3 ETag of a multipart object: md5 of the concatenated binary part md5s, then `-<part count>`. */
export function multipartEtag(parts: Buffer[]): string {
  const md5s = parts.map((p) => createHash('md5').update(p).digest());
  return `"${md5Hex(Buffer.concat(md5s))}-${parts.length}"`;
}

/** Splits `data` into `size`-byte parts, as the CLI's multipart upload does. */
export function chunk(data: Buffer, size: number): Buffer[] {
  const parts: Buffer[] = [];
  for (let offset = 0; offset < data.length; offset += size) parts.push(data.subarray(offset, offset + size));
  return parts;
}

/** Every regular file under `dir`, by path relative to it ('/'-separated), with its sha256. */
export async function treeDigests(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (current: string): Promise<void> => {
    for (const entry of await readdir(current, { withFileTypes: true })) {
      const path = join(current, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile()) out[relative(dir, path).split('\\').join('/')] = sha256Hex(await readFile(path));
    }
  };
  await walk(dir);
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

export interface AwsCliFixture {
  server: TestServer;
  /** A temp dir for the test's local files and the CLI config. */
  work: string;
  aws: AwsCli;
}

/** A fresh server, a work dir and `aws` bound to them, with `bucket` created. */
export async function openAwsCliFixture(name: string, bucket: string): Promise<AwsCliFixture> {
  const work = await mkdtemp(join(tmpdir(), `astore-awscli-${name}-`));
  let server: TestServer | undefined;
  try {
    server = await startServer();
    const aws = await openAwsCli(server, work);
    await server.app.buckets.create(bucket);
    return { server, work, aws };
  } catch (err) {
    // A missing aws-cli (or a failed start) must not leave the server running or the dir behind.
    await closeAwsCliFixture({ server, work });
    throw err;
  }
}

/** Undoes openAwsCliFixture; safe after a failed or partial open. */
export async function closeAwsCliFixture(fixture: Partial<AwsCliFixture>): Promise<void> {
  await fixture.server?.stop();
  if (fixture.work) await rm(fixture.work, { recursive: true, force: true });
}
