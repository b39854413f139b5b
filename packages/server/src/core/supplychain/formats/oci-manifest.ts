import { cosignAnnotations, cosignSignatureFromLayer } from './cosign.ts';
import { attestationDocument, bundleDocument, isGenericMediaType, normalizeMediaType, type ParsedDocument, sbomDocument, supplyChainMediaTypes as types } from './documents.ts';
import { parseDigest, parseJson, pemBlocks } from './encoding.ts';
import { parseNotationCose, parseNotationJws } from './notation.ts';
import type { SbomFormat } from './sbom.ts';
import { isSigstoreBundleMediaType } from './sigstore-bundle.ts';

/**
 * Which OCI manifests carry supply-chain documents, as the real tools push them (cosign v2.6.5,
 * notation v1.3.2, oras v1.3.6, read back from the CNCF registry):
 * - cosign signature: OCI image manifest under the tag `sha256-<hex>.sig` (config
 *   application/vnd.oci.image.config.v1+json), or with --registry-referrers-mode=oci-1-1 a referrer
 *   whose config media type and artifactType are application/vnd.dev.cosign.artifact.sig.v1+json;
 *   one application/vnd.dev.cosign.simplesigning.v1+json layer per signature;
 * - cosign attestation: tag `sha256-<hex>.att`, layers application/vnd.dsse.envelope.v1+json;
 * - cosign --new-bundle-format (sign and attest): a referrer with artifactType
 *   application/vnd.dev.sigstore.bundle.v0.3+json, empty config, one bundle layer;
 * - cosign attach sbom: tag `sha256-<hex>.sbom` (or artifactType
 *   application/vnd.dev.cosign.artifact.sbom.v1+json), layer text/spdx+json or
 *   application/vnd.cyclonedx+json;
 * - notation: a referrer whose config media type (no artifactType field) is
 *   application/vnd.cncf.notary.signature, one application/jose+json or application/cose layer;
 * - oras attach --artifact-type application/spdx+json: artifactType on the manifest, empty config,
 *   the file as a layer application/vnd.oci.image.layer.v1.tar (oras's default for an untyped
 *   file; the bytes are the file itself) or with the type given after the file name.
 */

export interface ManifestLike {
  mediaType?: string;
  artifactType?: string;
  config?: { mediaType: string; digest: string; size: number };
  layers?: { mediaType: string; digest: string; size: number; annotations?: Record<string, string> }[];
  subject?: { digest: string };
  annotations?: Record<string, string>;
}

export interface ManifestDocument {
  layerIndex: number;
  subject: string;
  document: ParsedDocument;
}

const legacyTag = /^sha256-([0-9a-f]{64})\.(sig|att|sbom)$/;
/** Config media types that say nothing about the artifact. */
const imageConfigTypes = new Set(['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json', types.ociEmpty]);

const sbomArtifactTypes: Record<string, SbomFormat | undefined> = {
  [types.spdxJson]: 'spdx',
  [types.spdxJsonText]: 'spdx',
  [types.cyclonedxJson]: 'cyclonedx',
  [types.cosignSbomArtifact]: undefined, // the layer media type says which
};

type Carried = 'cosign-signature' | 'cosign-attestation' | 'notation' | 'sigstore-bundle' | 'sbom';

/**
 * The supply-chain documents an OCI manifest carries ([] for anything else, such as an ordinary
 * image, or a document attached to nothing: no subject and no cosign tag). `subject` is the
 * manifest's subject digest, or for a cosign tag the digest the tag encodes; what each document
 * claims to cover is in the document, and the caller compares the two. Layers that are not
 * documents (and SBOM layers in a format astore does not read: SPDX tag-value, CycloneDX XML) are
 * skipped. Throws FormatError when a document is malformed.
 */
export async function documentsInManifest(manifest: ManifestLike, context: { tag?: string }, readBlob: (digest: string) => Promise<Buffer>): Promise<ManifestDocument[]> {
  const layers = manifest.layers ?? [];
  const tag = context.tag === undefined ? undefined : legacyTag.exec(context.tag);
  const subject = manifest.subject?.digest ?? (tag ? `sha256:${tag[1]}` : undefined);
  const carried = classify(manifest, tag?.[2]);
  if (carried === undefined || subject === undefined || layers.length === 0) return [];
  parseDigest(subject, 'the manifest subject digest');
  const artifactType = artifactTypeOf(manifest);

  const documents: ManifestDocument[] = [];
  for (const [layerIndex, layer] of layers.entries()) {
    const mediaType = normalizeMediaType(layer.mediaType);
    const read = async (what: string) => parseJson(await readBlob(layer.digest), `${what} (layer ${layerIndex})`);
    let document: ParsedDocument | undefined;
    switch (carried) {
      case 'cosign-signature':
        if (mediaType !== types.cosignSimpleSigning) break;
        document = { kind: 'signature', format: 'cosign', mediaType, signature: cosignSignatureFromLayer(await readBlob(layer.digest), layer.annotations ?? {}) };
        break;
      case 'cosign-attestation':
        if (mediaType !== types.dsseEnvelope) break;
        document = attestationDocument(await read('the DSSE envelope'), certificatesOf(layer.annotations));
        break;
      case 'notation':
        if (mediaType === types.jose) document = { kind: 'signature', format: 'notation', mediaType, signature: parseNotationJws(await readBlob(layer.digest)) };
        else if (mediaType === types.cose) document = { kind: 'signature', format: 'notation', mediaType, signature: parseNotationCose(await readBlob(layer.digest)) };
        break;
      case 'sigstore-bundle':
        if (isSigstoreBundleMediaType(mediaType) || (isGenericMediaType(mediaType) && artifactType !== undefined && isSigstoreBundleMediaType(artifactType))) {
          document = bundleDocument(await read('the Sigstore bundle'), subject);
        }
        break;
      case 'sbom': {
        const format = sbomFormatOfLayer(mediaType, artifactType);
        if (format) document = sbomDocument(await read(format === 'spdx' ? 'the SPDX SBOM' : 'the CycloneDX SBOM'), format);
        break;
      }
    }
    if (document) documents.push({ layerIndex, subject, document });
  }
  return documents;
}

function artifactTypeOf(manifest: ManifestLike): string | undefined {
  if (manifest.artifactType) return normalizeMediaType(manifest.artifactType);
  const config = manifest.config?.mediaType;
  return config !== undefined && !imageConfigTypes.has(normalizeMediaType(config)) ? normalizeMediaType(config) : undefined;
}

function classify(manifest: ManifestLike, tagKind: string | undefined): Carried | undefined {
  const artifactType = artifactTypeOf(manifest);
  const layerTypes = (manifest.layers ?? []).map((l) => normalizeMediaType(l.mediaType));
  if (artifactType === types.cosignSignatureArtifact) return 'cosign-signature';
  if (artifactType === types.notarySignature) return 'notation';
  if (artifactType !== undefined && isSigstoreBundleMediaType(artifactType)) return 'sigstore-bundle';
  if (artifactType === types.dsseEnvelope) return 'cosign-attestation';
  if (artifactType !== undefined && artifactType in sbomArtifactTypes) return 'sbom';
  if (tagKind === 'sig') return 'cosign-signature';
  if (tagKind === 'att') return 'cosign-attestation';
  if (tagKind === 'sbom') return 'sbom';
  if (layerTypes.length === 0) return undefined;
  if (layerTypes.every((t) => t === types.cosignSimpleSigning)) return 'cosign-signature';
  if (layerTypes.every((t) => t === types.dsseEnvelope)) return 'cosign-attestation';
  if (layerTypes.some((t) => isSigstoreBundleMediaType(t))) return 'sigstore-bundle';
  if (layerTypes.some((t) => t === types.spdxJson || t === types.spdxJsonText || t === types.cyclonedxJson)) return 'sbom';
  return undefined;
}

/** The SBOM format of a layer: its own media type, else (an untyped file) the artifact type's. */
function sbomFormatOfLayer(mediaType: string, artifactType: string | undefined): SbomFormat | undefined {
  if (mediaType === types.spdxJson || mediaType === types.spdxJsonText) return 'spdx';
  if (mediaType === types.cyclonedxJson) return 'cyclonedx';
  if (isGenericMediaType(mediaType) && artifactType !== undefined) return sbomArtifactTypes[artifactType];
  return undefined;
}

/** The signing certificate chain cosign puts in layer annotations (keyless signing), if any. */
function certificatesOf(annotations: Record<string, string> | undefined): Buffer[] | undefined {
  const leaf = annotations?.[cosignAnnotations.certificate];
  if (!leaf) return undefined;
  const chain = annotations[cosignAnnotations.chain];
  return [...pemBlocks(leaf, 'CERTIFICATE', `the ${cosignAnnotations.certificate} annotation`), ...(chain ? pemBlocks(chain, 'CERTIFICATE', `the ${cosignAnnotations.chain} annotation`) : [])];
}
