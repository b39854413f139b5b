import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { requireTool, run, type RunResult, type TestTool } from './clients.ts';
import { sha256Digest } from './registry-http.ts';
import { accessKeyId, secretKey, startServer, type TestServer } from './server.ts';

/**
 * Registry clients (oras, crane, regctl, helm, skopeo) against a test server. Every client keeps its
 * state in the fixture's work dir, never in $HOME: the environment points HOME, DOCKER_CONFIG and
 * REGISTRY_AUTH_FILE (a config.json with the server's credentials, which oras, crane and skopeo read),
 * REGCTL_CONFIG, HELM_* and XDG_* there.
 */
export interface OciFixture {
  server: TestServer;
  /** `127.0.0.1:<port>`: the registry part of every image reference. */
  registry: string;
  /** A temp dir for the test's files and the clients' configuration. */
  work: string;
  /** Environment of every client call. */
  env: NodeJS.ProcessEnv;
}

/** `Basic <base64 user:password>`, with the test server's root credentials by default. */
export function basicAuth(user = accessKeyId, password = secretKey): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** A fresh server and work dir, with a docker config.json holding the server's credentials. */
export async function openOciFixture(name: string): Promise<OciFixture> {
  const work = await mkdtemp(join(tmpdir(), `astore-oci-${name}-`));
  let server: TestServer;
  try {
    server = await startServer();
  } catch (err) {
    await rm(work, { recursive: true, force: true });
    throw err;
  }
  const registry = `127.0.0.1:${server.port}`;
  const dockerConfig = join(work, 'docker');
  await mkdir(dockerConfig, { recursive: true });
  await writeFile(join(dockerConfig, 'config.json'), JSON.stringify({ auths: { [registry]: { auth: basicAuth().slice('Basic '.length) } } }));
  const home = join(work, 'home');
  await mkdir(home, { recursive: true });
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HOME: home,
    DOCKER_CONFIG: dockerConfig,
    REGISTRY_AUTH_FILE: join(dockerConfig, 'config.json'),
    REGCTL_CONFIG: join(work, 'regctl.json'),
    HELM_REGISTRY_CONFIG: join(work, 'helm', 'registry.json'),
    HELM_CACHE_HOME: join(work, 'helm', 'cache'),
    HELM_CONFIG_HOME: join(work, 'helm', 'config'),
    HELM_DATA_HOME: join(work, 'helm', 'data'),
    XDG_CONFIG_HOME: join(work, 'xdg', 'config'),
    XDG_CACHE_HOME: join(work, 'xdg', 'cache'),
    XDG_DATA_HOME: join(work, 'xdg', 'data'),
  };
  return { server, registry, work, env };
}

/** Undoes openOciFixture; safe after a failed or partial open. */
export async function closeOciFixture(fixture: Partial<OciFixture>): Promise<void> {
  await fixture.server?.stop();
  if (fixture.work) await rm(fixture.work, { recursive: true, force: true });
}

export interface CliCallOptions {
  /** Goes to stdin. */
  input?: string;
  cwd?: string;
  /** Merged over the fixture's environment. */
  env?: NodeJS.ProcessEnv;
}

/** One registry client bound to a fixture's environment. */
export interface Cli {
  /** Runs the client; never throws. */
  run(args: string[], options?: CliCallOptions): Promise<RunResult>;
  /** Like run, but the command must exit 0; returns stdout. */
  ok(args: string[], options?: CliCallOptions): Promise<string>;
  /** Like run, but the command must exit non-zero; returns its result. */
  fails(args: string[], options?: CliCallOptions): Promise<RunResult>;
  /** A command that must exit 0, its standard output as bytes (run decodes it as UTF-8). */
  bytes(args: string[]): Promise<Buffer>;
}

export function openCli(tool: TestTool, fixture: OciFixture): Cli {
  const path = requireTool(tool);
  const label = tool.slice('ASTORE_TEST_'.length).toLowerCase();
  const report = (args: string[], result: RunResult) =>
    `${label} ${args.join(' ')} exited ${result.code}\nstdout: ${result.stdout.slice(-4000)}\nstderr: ${result.stderr.slice(-4000)}`;
  const cli: Cli = {
    run: (args, { env, ...options } = {}) => run(path, args, { env: { ...fixture.env, ...env }, timeoutMs: 60_000, ...options }),
    async ok(args, options) {
      const result = await cli.run(args, options);
      if (result.code !== 0) throw new Error(report(args, result));
      return result.stdout;
    },
    async fails(args, options) {
      const result = await cli.run(args, options);
      if (result.code === 0) throw new Error(`expected a failure: ${report(args, result)}`);
      return result;
    },
    bytes(args) {
      return new Promise((resolve, reject) => {
        execFile(path, args, { env: fixture.env, timeout: 60_000, maxBuffer: 64 * 1024 * 1024, encoding: 'buffer' }, (err, stdout, stderr) => {
          if (err) reject(new Error(`${label} ${args.join(' ')} failed: ${err.message}\nstderr: ${stderr.toString('utf8').slice(-4000)}`));
          else resolve(stdout);
        });
      });
    },
  };
  return cli;
}

/** A request to the registry's HTTP API, authenticated unless `auth` is false. */
export function registryFetch(fixture: OciFixture, path: string, init: RequestInit & { auth?: boolean } = {}): Promise<Response> {
  const { auth = true, ...rest } = init;
  const headers = new Headers(rest.headers);
  if (auth) headers.set('authorization', basicAuth());
  return fetch(`${fixture.server.endpoint}${path}`, { ...rest, headers });
}

// --- tar archives, written and read here independently of the clients ------------------------------

/** A ustar archive of regular files (mode 0644, mtime 0), in the given order. */
export function tarArchive(files: Record<string, string | Buffer>): Buffer {
  const blocks: Buffer[] = [];
  for (const [name, content] of Object.entries(files)) {
    const data = typeof content === 'string' ? Buffer.from(content) : content;
    if (Buffer.byteLength(name) > 100) throw new Error(`tarArchive: name too long: ${name}`);
    const header = Buffer.alloc(512);
    header.write(name, 0, 100, 'utf8');
    header.write('0000644\0', 100, 'ascii');
    header.write('0000000\0', 108, 'ascii');
    header.write('0000000\0', 116, 'ascii');
    header.write(`${data.length.toString(8).padStart(11, '0')}\0`, 124, 'ascii');
    header.write('00000000000\0', 136, 'ascii');
    header.write('        ', 148, 'ascii'); // the checksum is computed with its own field as spaces
    header.write('0', 156, 'ascii');
    header.write('ustar\0', 257, 'ascii');
    header.write('00', 263, 'ascii');
    let sum = 0;
    for (const byte of header) sum += byte;
    header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'ascii');
    blocks.push(header, data, Buffer.alloc((512 - (data.length % 512)) % 512));
  }
  blocks.push(Buffer.alloc(1024));
  return Buffer.concat(blocks);
}

/** The regular files of a ustar archive (as crane and docker write them), by name. */
export function untar(archive: Buffer): Map<string, Buffer> {
  const files = new Map<string, Buffer>();
  const field = (header: Buffer, start: number, length: number) => header.subarray(start, start + length).toString('utf8').replace(/\0.*$/s, '');
  for (let offset = 0; offset + 512 <= archive.length; ) {
    const header = archive.subarray(offset, offset + 512);
    if (header.every((b) => b === 0)) break;
    const prefix = field(header, 345, 155);
    const name = prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100);
    const size = parseInt(field(header, 124, 12).trim() || '0', 8);
    const type = field(header, 156, 1);
    if (type === '0' || type === '') files.set(name, archive.subarray(offset + 512, offset + 512 + size));
    offset += 512 + Math.ceil(size / 512) * 512;
  }
  return files;
}

// --- a small OCI image, built here so tests know every digest before a client touches it ------------

export interface OciImage {
  mediaType: 'application/vnd.oci.image.manifest.v1+json';
  manifest: Buffer;
  manifestDigest: string;
  configDigest: string;
  /** The gzip-compressed layers in manifest order, with the uncompressed tar each holds. */
  layers: Array<{ digest: string; data: Buffer; tar: Buffer }>;
  /** Every blob (config and layers) by digest. */
  blobs: Map<string, Buffer>;
}

/** An OCI image manifest with one gzip layer per entry of `layers` (each a set of files) and a linux/amd64 config. */
export function buildOciImage(layers: Array<Record<string, string | Buffer>>, annotations?: Record<string, string>): OciImage {
  const built = layers.map((files) => {
    const tar = tarArchive(files);
    const data = gzipSync(tar);
    return { tar, data, digest: sha256Digest(data) };
  });
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: {},
      rootfs: { type: 'layers', diff_ids: built.map((layer) => sha256Digest(layer.tar)) },
    }),
  );
  const configDigest = sha256Digest(config);
  const mediaType = 'application/vnd.oci.image.manifest.v1+json';
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: built.map((layer) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer.digest, size: layer.data.length })),
      ...(annotations && { annotations }),
    }),
  );
  const blobs = new Map<string, Buffer>([[configDigest, config], ...built.map((layer) => [layer.digest, layer.data] as [string, Buffer])]);
  return { mediaType, manifest, manifestDigest: sha256Digest(manifest), configDigest, layers: built, blobs };
}

export interface OciIndex {
  mediaType: 'application/vnd.oci.image.index.v1+json';
  manifest: Buffer;
  manifestDigest: string;
  images: OciImage[];
}

/** An OCI image index of `images`, each with its platform. */
export function buildOciIndex(images: Array<{ image: OciImage; os: string; architecture: string }>): OciIndex {
  const mediaType = 'application/vnd.oci.image.index.v1+json';
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType,
      manifests: images.map(({ image, os, architecture }) => ({
        mediaType: image.mediaType,
        digest: image.manifestDigest,
        size: image.manifest.length,
        platform: { architecture, os },
      })),
    }),
  );
  return { mediaType, manifest, manifestDigest: sha256Digest(manifest), images: images.map((i) => i.image) };
}

const refNameAnnotation = 'org.opencontainers.image.ref.name';

/** Writes `root` (an image, or an index and its images) as an OCI image layout in `dir`, tagged `tag` in index.json. */
export async function writeOciLayout(dir: string, root: OciImage | OciIndex, tag: string): Promise<void> {
  const blobDir = join(dir, 'blobs', 'sha256');
  await mkdir(blobDir, { recursive: true });
  await writeFile(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  const images = 'images' in root ? root.images : [root];
  const blobs: Array<readonly [string, Buffer]> = [[root.manifestDigest, root.manifest]];
  for (const image of images) blobs.push(...image.blobs, [image.manifestDigest, image.manifest]);
  for (const [digest, data] of blobs) await writeFile(join(blobDir, digest.slice('sha256:'.length)), data);
  const index = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.index.v1+json',
    manifests: [{ mediaType: root.mediaType, digest: root.manifestDigest, size: root.manifest.length, annotations: { [refNameAnnotation]: tag } }],
  };
  await writeFile(join(dir, 'index.json'), JSON.stringify(index));
}

/** The manifest descriptors of an OCI image layout's index.json, with their tags. */
export async function readOciLayoutIndex(dir: string): Promise<Array<{ mediaType: string; digest: string; size: number; tag?: string }>> {
  const index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8')) as {
    manifests: Array<{ mediaType: string; digest: string; size: number; annotations?: Record<string, string> }>;
  };
  return index.manifests.map((m) => ({ mediaType: m.mediaType, digest: m.digest, size: m.size, tag: m.annotations?.[refNameAnnotation] }));
}

/** A blob of an OCI image layout by digest. */
export function readOciLayoutBlob(dir: string, digest: string): Promise<Buffer> {
  const [algorithm, hex] = digest.split(':') as [string, string];
  return readFile(join(dir, 'blobs', algorithm, hex));
}
