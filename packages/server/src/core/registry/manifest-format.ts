import { z } from 'zod';
import { AstoreError } from '../errors.ts';
import { isDigest } from './references.ts';

/** The manifest media types astore stores: OCI image manifest and index, Docker schema 2 and list. */
export const mediaTypes = {
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
  dockerList: 'application/vnd.docker.distribution.manifest.list.v2+json',
} as const;

const manifestTypes: ReadonlySet<string> = new Set([mediaTypes.ociManifest, mediaTypes.dockerManifest]);
const indexTypes: ReadonlySet<string> = new Set([mediaTypes.ociIndex, mediaTypes.dockerList]);

/** Layers a registry need not hold (their bytes live elsewhere): never required to exist. */
const foreignLayerTypes = /nondistributable|^application\/vnd\.docker\.image\.rootfs\.foreign\./;

const annotations = z.record(z.string(), z.string());

const descriptor = z.looseObject({
  mediaType: z.string().min(1),
  digest: z.string().refine(isDigest, 'a sha256 or sha512 digest'),
  size: z.number().int().nonnegative(),
  artifactType: z.string().min(1).optional(),
  annotations: annotations.optional(),
  urls: z.array(z.string()).optional(),
});

const common = {
  schemaVersion: z.literal(2),
  mediaType: z.string().optional(),
  artifactType: z.string().min(1).optional(),
  subject: descriptor.optional(),
  annotations: annotations.optional(),
};

const imageManifest = z.looseObject({ ...common, config: descriptor, layers: z.array(descriptor) });
const imageIndex = z.looseObject({ ...common, manifests: z.array(descriptor) });

export interface ParsedManifest {
  mediaType: string;
  /** As the referrers API reports it: the manifest's artifactType, else (image manifest) its config's media type. */
  artifactType?: string;
  subject?: string;
  annotations?: Record<string, string>;
  blobs: string[];
  manifests: string[];
}

/**
 * Parses and validates a manifest body against its media type: `contentType` is the request's
 * Content-Type; the body's own `mediaType`, when present, must agree with it. Throws MANIFEST_INVALID
 * naming what is wrong.
 */
export function parseManifest(bytes: Buffer, contentType: string | undefined): ParsedManifest {
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    throw new AstoreError('ManifestInvalid', `the manifest is not JSON: ${(err as Error).message}`);
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw new AstoreError('ManifestInvalid', 'the manifest is not a JSON object');
  const declared = (json as { mediaType?: unknown }).mediaType;
  const headerType = contentType?.split(';')[0]?.trim().toLowerCase() || undefined;
  if (declared !== undefined && typeof declared !== 'string') throw new AstoreError('ManifestInvalid', 'mediaType must be a string');
  if (declared !== undefined && headerType !== undefined && declared !== headerType) {
    throw new AstoreError('ManifestInvalid', `the manifest's mediaType ${declared} differs from its Content-Type ${headerType}`);
  }
  const mediaType = declared ?? headerType ?? ('manifests' in json ? mediaTypes.ociIndex : mediaTypes.ociManifest);

  if (manifestTypes.has(mediaType)) {
    const m = check(imageManifest, json, mediaType);
    const layers = m.layers.filter((layer) => !foreignLayerTypes.test(layer.mediaType));
    return {
      mediaType,
      artifactType: m.artifactType ?? m.config.mediaType,
      subject: m.subject?.digest,
      annotations: m.annotations,
      blobs: [m.config.digest, ...layers.map((layer) => layer.digest)],
      manifests: [],
    };
  }
  if (indexTypes.has(mediaType)) {
    const m = check(imageIndex, json, mediaType);
    return {
      mediaType,
      artifactType: m.artifactType,
      subject: m.subject?.digest,
      annotations: m.annotations,
      blobs: [],
      manifests: m.manifests.map((entry) => entry.digest),
    };
  }
  throw new AstoreError('ManifestInvalid', `unsupported manifest media type ${JSON.stringify(mediaType)} (supported: ${Object.values(mediaTypes).join(', ')})`);
}

function check<T>(schema: z.ZodType<T>, json: unknown, mediaType: string): T {
  const result = schema.safeParse(json);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const where = issue.path.length > 0 ? issue.path.join('.') : '(root)';
  throw new AstoreError('ManifestInvalid', `invalid ${mediaType}: ${where}: ${issue.message}`);
}
