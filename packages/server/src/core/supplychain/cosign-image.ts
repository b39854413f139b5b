import { createHash } from 'node:crypto';
import { FormatError } from './types.ts';

/**
 * What cosign puts in a registry for a key-based image signature, built by astore so that
 * `cosign verify --key` accepts what the server signs. The shapes mirror cosign v2.6.5 byte for byte
 * (as read back from the CNCF registry after `cosign sign --key`): under the tag
 * `sha256-<hex>.sig` an OCI image manifest whose layers are simple-signing payloads, each carrying
 * its base64 signature in an annotation, and a config that only lists those layers.
 */

export const simpleSigningMediaType = 'application/vnd.dev.cosign.simplesigning.v1+json';
export const signatureAnnotation = 'dev.cosignproject.cosign/signature';
export const ociManifestMediaType = 'application/vnd.oci.image.manifest.v1+json';
export const ociConfigMediaType = 'application/vnd.oci.image.config.v1+json';
const dockerManifestMediaType = 'application/vnd.docker.distribution.manifest.v2+json';

/** The zero time Go's ggcr writes for `created` and each history entry. */
const zeroTime = '0001-01-01T00:00:00Z';
const digestPattern = /^(sha256:[0-9a-f]{64}|sha512:[0-9a-f]{128})$/;

/**
 * The simple-signing payload cosign signs for an image: the repository (registry host and path, no
 * tag or digest, as `ref.Context().Name()` gives it) and the manifest digest, in Go's key order.
 * `cosign verify` checks the digest claim only, not docker-reference; cosign itself writes the full
 * `host[:port]/path` there.
 */
export function simpleSigningPayload(dockerReference: string, manifestDigest: string): Buffer {
  checkDigest(manifestDigest);
  const lastSegment = dockerReference.slice(dockerReference.lastIndexOf('/') + 1);
  if (!/^[A-Za-z0-9][A-Za-z0-9._:/-]*$/.test(dockerReference) || lastSegment.includes(':') || lastSegment === '') {
    throw new FormatError(`docker-reference must be a repository such as registry.example/team/app (no tag or digest), not ${JSON.stringify(dockerReference)}`);
  }
  return Buffer.from(
    JSON.stringify({
      critical: { identity: { 'docker-reference': dockerReference }, image: { 'docker-manifest-digest': manifestDigest }, type: 'cosign container image signature' },
      optional: null,
    }),
  );
}

/** The tag cosign reads signatures of `manifestDigest` from when the registry has no referrers API: `sha256-<hex>.sig`. */
export function legacySignatureTag(manifestDigest: string): string {
  checkDigest(manifestDigest);
  return `${manifestDigest.replace(':', '-')}.sig`;
}

export interface SignatureLayer {
  /** The signed simple-signing payload (see simpleSigningPayload). */
  payload: Buffer;
  signatureBase64: string;
  /** Further layer annotations (dev.sigstore.cosign/certificate, /chain, /bundle), if any. */
  annotations?: Record<string, string>;
}

export interface SignatureImage {
  manifest: Buffer;
  mediaType: string;
  /** The config blob the manifest names. */
  config: Buffer;
  /** Blobs this call made (config and payload) to push before the manifest; empty when nothing changed. */
  blobs: { digest: string; content: Buffer }[];
  /** False when `existing` already held this exact layer: `manifest` is then `existing.manifest` unchanged. */
  appended: boolean;
}

interface Descriptor {
  mediaType: string;
  size: number;
  digest: string;
  annotations?: Record<string, string>;
}

/**
 * The `.sig` image with `layer` appended to the signatures already under the tag, as cosign's
 * `mutate.AppendSignatures` does: existing layer descriptors are kept verbatim, the config gets one
 * more diff_id and history entry. An identical layer (same payload, same annotations) is not added
 * twice. `readBlob` returns the existing config blob so its fields are kept; without it, or when it
 * returns nothing, the config is rebuilt the way cosign writes it (byte-identical for a `.sig` image
 * cosign made). Throws FormatError when `existing` is not an image manifest.
 */
export function signatureImage(existing: { manifest: Buffer } | undefined, layer: SignatureLayer, readBlob?: (digest: string) => Buffer | undefined): SignatureImage {
  const annotations = sortedAnnotations({ ...layer.annotations, [signatureAnnotation]: layer.signatureBase64 });
  const descriptor: Descriptor = { mediaType: simpleSigningMediaType, size: layer.payload.length, digest: sha256(layer.payload), annotations };
  const base = existing ? parseSignatureManifest(existing.manifest) : undefined;
  const baseConfig = base && readBlob?.(base.config.digest);

  if (base?.layers.some((l) => l.mediaType === descriptor.mediaType && l.digest === descriptor.digest && sameAnnotations(l.annotations, annotations))) {
    const config = baseConfig ?? cosignConfig(base.layers);
    return { manifest: existing!.manifest, mediaType: base.mediaType ?? ociManifestMediaType, config, blobs: [], appended: false };
  }

  const layers = [...(base?.layers ?? []), descriptor];
  const config = baseConfig ? appendToConfig(baseConfig, descriptor.digest) : cosignConfig(layers);
  const configDescriptor: Descriptor = { mediaType: base?.config.mediaType ?? ociConfigMediaType, size: config.length, digest: sha256(config) };
  const manifest = base
    ? { ...base, config: configDescriptor, layers }
    : { schemaVersion: 2, mediaType: ociManifestMediaType, config: configDescriptor, layers };
  return {
    manifest: Buffer.from(JSON.stringify(manifest)),
    mediaType: manifest.mediaType ?? ociManifestMediaType,
    config,
    blobs: [
      { digest: configDescriptor.digest, content: config },
      { digest: descriptor.digest, content: layer.payload },
    ],
    appended: true,
  };
}

/** The config cosign writes for a `.sig` image: empty but for one diff_id (the layer digest, uncompressed) and history entry per layer. */
function cosignConfig(layers: Descriptor[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture: '',
      created: zeroTime,
      history: layers.map(() => ({ created: zeroTime })),
      os: '',
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
      config: {},
    }),
  );
}

function appendToConfig(config: Buffer, diffId: string): Buffer {
  let parsed: { history?: unknown; rootfs?: { diff_ids?: unknown } };
  try {
    parsed = JSON.parse(config.toString('utf8'));
  } catch {
    throw new FormatError('the config of the existing signature image is not JSON');
  }
  if (!parsed || typeof parsed !== 'object' || !Array.isArray(parsed.rootfs?.diff_ids)) throw new FormatError('the config of the existing signature image has no rootfs.diff_ids');
  parsed.rootfs.diff_ids = [...parsed.rootfs.diff_ids, diffId];
  parsed.history = [...(Array.isArray(parsed.history) ? parsed.history : []), { created: zeroTime }];
  return Buffer.from(JSON.stringify(parsed));
}

type ParsedManifest = { schemaVersion: number; mediaType?: string; config: Descriptor; layers: Descriptor[] } & Record<string, unknown>;

function parseSignatureManifest(bytes: Buffer): ParsedManifest {
  let parsed: ParsedManifest;
  try {
    parsed = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new FormatError('the manifest under the signature tag is not JSON');
  }
  const isDescriptor = (d: unknown): d is Descriptor =>
    !!d && typeof d === 'object' && typeof (d as Descriptor).mediaType === 'string' && Number.isSafeInteger((d as Descriptor).size) && typeof (d as Descriptor).digest === 'string';
  if (
    !parsed ||
    parsed.schemaVersion !== 2 ||
    (parsed.mediaType !== undefined && parsed.mediaType !== ociManifestMediaType && parsed.mediaType !== dockerManifestMediaType) ||
    !isDescriptor(parsed.config) ||
    !Array.isArray(parsed.layers) ||
    !parsed.layers.every(isDescriptor)
  ) {
    throw new FormatError('the manifest under the signature tag is not an image manifest (schemaVersion 2, a config and layers)');
  }
  return parsed;
}

/** Go serialises a map with its keys sorted; so does this, so that the bytes match cosign's. */
function sortedAnnotations(annotations: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(annotations).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

function sameAnnotations(a: Record<string, string> | undefined, b: Record<string, string>): boolean {
  const keys = Object.keys(a ?? {});
  return keys.length === Object.keys(b).length && keys.every((k) => a![k] === b[k]);
}

function checkDigest(digest: string): void {
  if (!digestPattern.test(digest)) throw new FormatError(`not a manifest digest (sha256:<64 hex> or sha512:<128 hex>): ${JSON.stringify(digest)}`);
}

function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

// --- DSSE, for attestations the server makes ------------------------------------------------------

/** DSSE pre-authentication encoding: `DSSEv1 <len(type)> <type> <len(payload)> <payload>`, lengths in bytes. */
export function dssePae(payloadType: string, payload: Buffer): Buffer {
  const type = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${type.length} `), type, Buffer.from(` ${payload.length} `), payload]);
}

/**
 * A DSSE envelope as cosign and in-toto write it: standard base64 payload and signatures, `keyid`
 * always present ("" when there is none), each signature made over dssePae(payloadType, payload).
 */
export function dsseEnvelope(payloadType: string, payload: Buffer, signatures: { keyid?: string; sig: Buffer }[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      payloadType,
      payload: payload.toString('base64'),
      signatures: signatures.map((s) => ({ keyid: s.keyid ?? '', sig: s.sig.toString('base64') })),
    }),
  );
}
