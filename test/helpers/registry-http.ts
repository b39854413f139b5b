import { createHash } from 'node:crypto';
import { accessKeyId, secretKey } from './server.ts';

/**
 * A minimal registry client over fetch, speaking the distribution API as clients do (monolithic
 * POST + PUT uploads, HEAD before push), for tests that need many small, exact pushes and pulls.
 * The real clients (oras, crane, skopeo, regctl, helm) are exercised in their own tests.
 */
export class RegistryHttp {
  private readonly authorization = `Basic ${Buffer.from(`${accessKeyId}:${secretKey}`).toString('base64')}`;

  constructor(readonly endpoint: string) {}

  request(method: string, path: string, init: { body?: Buffer | string; headers?: Record<string, string> } = {}): Promise<Response> {
    const url = path.startsWith('http') ? path : `${this.endpoint}${path}`;
    return fetch(url, { method, headers: { authorization: this.authorization, ...init.headers }, body: init.body });
  }

  /** Uploads a blob unless the repository already has it; returns its sha256 digest. */
  async pushBlob(repository: string, bytes: Buffer): Promise<string> {
    const digest = sha256Digest(bytes);
    const head = await this.request('HEAD', `/v2/${repository}/blobs/${digest}`);
    if (head.status === 200) return digest;
    const start = await this.request('POST', `/v2/${repository}/blobs/uploads/`);
    await expectStatus(start, 202, `start upload to ${repository}`);
    const location = new URL(start.headers.get('location')!, this.endpoint);
    location.searchParams.set('digest', digest);
    const put = await this.request('PUT', location.toString(), { body: bytes, headers: { 'content-type': 'application/octet-stream' } });
    await expectStatus(put, 201, `finish upload of ${digest} to ${repository}`);
    return digest;
  }

  /** Pushes an OCI image manifest of `layers` (and a small config) under `tag`; returns its digest. */
  async pushImage(repository: string, tag: string, layers: Buffer[]): Promise<{ digest: string; layers: string[] }> {
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, repository, tag }));
    const configDigest = await this.pushBlob(repository, config);
    const layerDigests: string[] = [];
    for (const layer of layers) layerDigests.push(await this.pushBlob(repository, layer));
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
        layers: layers.map((layer, i) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigests[i], size: layer.length })),
      }),
    );
    const put = await this.request('PUT', `/v2/${repository}/manifests/${tag}`, {
      body: manifest,
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    });
    await expectStatus(put, 201, `push manifest ${repository}:${tag}`);
    return { digest: put.headers.get('docker-content-digest')!, layers: layerDigests };
  }

  /** Pulls `reference` and every layer, checking each layer's digest; returns the layers' bytes. */
  async pullImage(repository: string, reference: string): Promise<Buffer[]> {
    const res = await this.request('GET', `/v2/${repository}/manifests/${reference}`, {
      headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
    });
    await expectStatus(res, 200, `pull manifest ${repository}:${reference}`);
    const manifest = (await res.json()) as { layers: { digest: string }[] };
    const layers: Buffer[] = [];
    for (const { digest } of manifest.layers) {
      const blob = await this.request('GET', `/v2/${repository}/blobs/${digest}`);
      await expectStatus(blob, 200, `pull blob ${digest} of ${repository}:${reference}`);
      const bytes = Buffer.from(await blob.arrayBuffer());
      if (sha256Digest(bytes) !== digest) throw new Error(`blob ${digest} of ${repository}:${reference} came back with other bytes`);
      layers.push(bytes);
    }
    return layers;
  }

  async deleteManifest(repository: string, digest: string): Promise<void> {
    await expectStatus(await this.request('DELETE', `/v2/${repository}/manifests/${digest}`), 202, `delete ${repository}@${digest}`);
  }
}

export function sha256Digest(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

async function expectStatus(res: Response, status: number, what: string): Promise<void> {
  if (res.status === status) return;
  throw new Error(`${what}: HTTP ${res.status} (expected ${status}): ${await res.text()}`);
}
