// What the OCI benchmark pushes: the large image's layer files (written once per run by layers.ts, read
// from images.json) and the OCI image manifests and config blobs built around them in memory.

import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';

export const MANIFEST_MEDIA_TYPE = 'application/vnd.oci.image.manifest.v1+json';
export const CONFIG_MEDIA_TYPE = 'application/vnd.oci.image.config.v1+json';
/** Layers are random bytes, not tars; registries do not look inside a layer. */
export const LAYER_MEDIA_TYPE = 'application/vnd.oci.image.layer.v1.tar';

export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

/** A blob to push: small ones are held in memory, layers are streamed from their file. */
export type BlobSource = (Descriptor & { bytes: Buffer }) | (Descriptor & { path: string });

/** One generated layer file: random bytes, digest computed while it was written. */
export interface LayerFile {
  path: string;
  size: number;
  digest: string;
}

/** images.json, written by layers.ts: one set of layer files per large workload. */
export interface ImagesFile {
  sets: Record<string, LayerFile[]>;
}

export function loadImages(path: string): ImagesFile {
  return JSON.parse(readFileSync(path, 'utf8')) as ImagesFile;
}

export function sha256Digest(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

export function blobOf(mediaType: string, bytes: Buffer): Descriptor & { bytes: Buffer } {
  return { mediaType, digest: sha256Digest(bytes), size: bytes.length, bytes };
}

export function layerBlob(layer: LayerFile): Descriptor & { path: string } {
  return { mediaType: LAYER_MEDIA_TYPE, digest: layer.digest, size: layer.size, path: layer.path };
}

/**
 * A minimal image config unique to `label` (a run id and a manifest's index), so that every manifest of
 * the small workloads has a config blob of its own that the registry has never seen.
 */
export function configBlob(label: string, layers: readonly Descriptor[]): Descriptor & { bytes: Buffer } {
  const config = {
    architecture: 'amd64',
    os: 'linux',
    config: { Labels: { 'org.astore.bench': label } },
    rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
  };
  return blobOf(CONFIG_MEDIA_TYPE, Buffer.from(JSON.stringify(config)));
}

/** A tiny layer of random bytes: the one layer every small manifest shares within a repository. */
export function tinyLayer(): Descriptor & { bytes: Buffer } {
  return blobOf(LAYER_MEDIA_TYPE, randomBytes(1024));
}

/** The manifest's bytes as pushed; its digest is sha256 of exactly these bytes. */
export function imageManifest(config: Descriptor, layers: readonly Descriptor[]): Buffer {
  const strip = (d: Descriptor): Descriptor => ({ mediaType: d.mediaType, digest: d.digest, size: d.size });
  const manifest = {
    schemaVersion: 2,
    mediaType: MANIFEST_MEDIA_TYPE,
    config: strip(config),
    layers: layers.map(strip),
  };
  return Buffer.from(JSON.stringify(manifest));
}

/** The blobs a pulled manifest names (config first), checked to be what a pull needs. */
export function blobsOf(manifestBytes: Buffer): Descriptor[] {
  const manifest = JSON.parse(manifestBytes.toString('utf8')) as { config?: Descriptor; layers?: Descriptor[] };
  if (manifest.config === undefined || !Array.isArray(manifest.layers)) {
    throw new Error('pulled manifest has no config or no layers');
  }
  return [manifest.config, ...manifest.layers];
}
