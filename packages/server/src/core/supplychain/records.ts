import { createHash, type KeyObject, randomUUID, X509Certificate } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { AttestationFactsRow, ComponentRow, ManifestRecord, MetaStore, ObjectRecord, SupplyChainRecord } from '../../storage/meta/types.ts';
import type { ContentStore } from '../content.ts';
import { AstoreError } from '../errors.ts';
import { readSmallBody } from '../small-body.ts';
import type { RegistryBlobService } from '../registry/blobs.ts';
import { documentsInManifest, parseDocument, parseSbomValue, type ParsedDocument } from './formats/index.ts';
import { verifySignedMessage } from './formats/verify.ts';
import { FormatError } from './types.ts';

/**
 * A cosign signature layer is a payload blob plus a manifest annotation holding the signature: the
 * record keeps both in one small JSON document of this type, so it verifies from its own bytes.
 */
export const cosignLayerMediaType = 'application/vnd.astore.cosign.layer.v1+json';

const documentMediaTypes = new Set([
  'application/vnd.dev.cosign.simplesigning.v1+json',
  'application/vnd.dsse.envelope.v1+json',
  'application/vnd.in-toto+json',
  'application/jose+json',
  'application/cose',
  'application/spdx+json',
  'text/spdx+json',
  'application/vnd.cyclonedx+json',
  'application/vnd.cncf.notary.signature',
  'application/vnd.dev.cosign.artifact.sig.v1+json',
  'application/vnd.dev.cosign.artifact.sbom.v1+json',
]);
const isDocumentType = (type: string | undefined) => type !== undefined && (documentMediaTypes.has(type) || type.startsWith('application/vnd.dev.sigstore.bundle'));
const runnableConfigTypes = new Set(['application/vnd.oci.image.config.v1+json', 'application/vnd.docker.container.image.v1+json']);

/**
 * Whether a manifest is a supply-chain document (signature, attestation, SBOM) rather than an
 * artifact: every layer is a document type, or its artifactType is one and its config is not a
 * runnable image's. Decided on content only: a tag or a `subject` proves nothing.
 */
export function isSupplyChainManifest(content: Buffer): boolean {
  let manifest: { artifactType?: string; config?: { mediaType?: string }; layers?: { mediaType?: string }[] };
  try {
    manifest = JSON.parse(content.toString('utf8')) as typeof manifest;
  } catch {
    return false;
  }
  const layers = Array.isArray(manifest.layers) ? manifest.layers : [];
  if (layers.length > 0 && layers.every((l) => isDocumentType(l?.mediaType))) return true;
  return isDocumentType(manifest.artifactType) && !runnableConfigTypes.has(manifest.config?.mediaType ?? '');
}

export type ArtifactTarget = { kind: 's3'; bucket: string; key: string } | { kind: 'oci'; repository: string; digest: string };

export interface RecordOptions {
  /** Documents (and registry layers read as documents) larger than this are refused. */
  maxDocumentBytes: number;
}

/**
 * Supply-chain records: documents attached through the REST API, and the signatures, attestations
 * and SBOMs the registry receives as referrers (or cosign's `sha256-<hex>.sig/.att` tags). Each is
 * parsed and checked before anything is stored; a malformed one is refused with InvalidDocument.
 */
export class RecordService {
  private readonly parsed = new Map<string, ParsedDocument>();

  constructor(
    private readonly meta: MetaStore,
    private readonly content: ContentStore,
    private readonly registryBlobs: RegistryBlobService,
    private readonly options: RecordOptions,
    private readonly log: Logger,
  ) {}

  /** The S3 object (its digest computed and kept if it was unknown, as for multipart objects). */
  async objectWithDigest(bucket: string, key: string): Promise<ObjectRecord & { digest: string }> {
    const object = await this.meta.objects.get(bucket, key);
    if (!object) throw new AstoreError('NoSuchKey', `no object ${key} in bucket ${bucket}`, { Key: key });
    if (object.digest !== undefined) return object as ObjectRecord & { digest: string };
    const hash = createHash('sha256');
    for await (const chunk of await this.content.read(object.segments)) hash.update(chunk as Buffer);
    const digest = `sha256:${hash.digest('hex')}`;
    await this.meta.objects.setDigest(bucket, key, object.etag, digest);
    return { ...object, digest };
  }

  /** The subject digest of a target: the object's sha256 or the manifest's digest (which must exist). */
  async subjectOf(target: ArtifactTarget): Promise<string> {
    if (target.kind === 's3') return (await this.objectWithDigest(target.bucket, target.key)).digest;
    const manifest = await this.meta.registry.getManifest(target.repository, { digest: target.digest });
    if (!manifest) throw new AstoreError('ManifestUnknown', `manifest ${target.digest} is not in repository ${target.repository}`);
    return manifest.digest;
  }

  /**
   * Attaches a document to an S3 object: parsed, checked against the object's digest, stored.
   * (Documents for images go through the registry as referrers: see SupplyChainService.attach.)
   */
  async attachToObject(bucket: string, key: string, body: Buffer, mediaType: string | undefined, createdBy: string): Promise<SupplyChainRecord> {
    if (body.length > this.options.maxDocumentBytes) throw new AstoreError('InvalidDocument', `the document has ${body.length} bytes; the limit is ${this.options.maxDocumentBytes}`);
    const subject = (await this.objectWithDigest(bucket, key)).digest;
    const document = this.parse(body, mediaType, subject);
    const { digest, size } = await this.content.ingest(Readable.from([body]), { md5: false });
    const record: SupplyChainRecord = {
      id: randomUUID(),
      subject,
      kind: document.kind,
      format: document.format,
      mediaType: document.mediaType,
      contentDigest: digest,
      size,
      bucket,
      key,
      ...describe(document),
      createdBy,
      createdAt: new Date(),
    };
    await this.meta.supplychain.putRecord(record, indexed(document));
    this.parsed.set(digest, document);
    return record;
  }

  /**
   * Reads a pushed manifest's supply-chain documents before it is stored (so a malformed one refuses
   * the push with nothing stored), and returns what records them once the manifest is in; undefined
   * for an ordinary manifest.
   */
  async inspectManifest(manifest: ManifestRecord, tags: readonly string[]): Promise<(() => Promise<void>) | undefined> {
    const json = JSON.parse(manifest.content.toString('utf8')) as Parameters<typeof documentsInManifest>[0];
    const tag = tags.find((t) => /^sha256-[a-f0-9]{64}\.(sig|att|sbom)$/.test(t));
    let documents: Awaited<ReturnType<typeof documentsInManifest>>;
    try {
      documents = await documentsInManifest(json, { ...(tag !== undefined && { tag }) }, (digest) => this.readLayer(manifest.repository, digest));
    } catch (err) {
      if (err instanceof FormatError) throw new AstoreError('ManifestInvalid', `${err.message}`);
      throw err;
    }
    if (documents.length === 0) return undefined;
    for (const { subject, document } of documents) checkDocument(document, subject);
    return async () => {
      // cosign appends to its `.sig` image: the signatures already recorded come again, unchanged.
      const known = new Set<string>();
      for (const subject of new Set(documents.map((d) => d.subject))) {
        const existing = await this.meta.supplychain.listRecords({ subject, repository: manifest.repository, limit: 1000 });
        for (const r of existing.items) known.add(`${r.subject} ${r.kind} ${r.contentDigest}`);
      }
      for (const { layerIndex, subject, document } of documents) {
        const layer = json.layers?.[layerIndex];
        const stored = document.format === 'cosign' && layer
          ? await this.storeCosignLayer(manifest.repository, layer)
          : await this.layerBlob(manifest.repository, layer?.digest);
        const record: SupplyChainRecord = {
          id: randomUUID(),
          subject,
          kind: document.kind,
          format: document.format,
          mediaType: document.format === 'cosign' ? cosignLayerMediaType : document.mediaType,
          contentDigest: stored.digest,
          size: stored.size,
          repository: manifest.repository,
          sourceManifest: manifest.digest,
          sourceLayer: layerIndex,
          ...describe(document),
          createdBy: 'registry',
          createdAt: new Date(),
        };
        this.parsed.set(stored.digest, document);
        if (known.has(`${subject} ${document.kind} ${stored.digest}`)) continue;
        await this.meta.supplychain.putRecord(record, indexed(document));
      }
    };
  }

  /** Parses a document about `subjectDigest`; InvalidDocument naming what is wrong. */
  parse(body: Buffer, mediaType: string | undefined, subjectDigest: string): ParsedDocument {
    try {
      return checkDocument(parseDocument(body, { ...(mediaType !== undefined && { mediaType }), subjectDigest }), subjectDigest);
    } catch (err) {
      if (err instanceof FormatError) throw new AstoreError('InvalidDocument', err.message);
      throw err;
    }
  }

  /** The parsed document of a stored record (documents are immutable: cached by content digest). */
  async document(record: SupplyChainRecord): Promise<ParsedDocument> {
    const cached = this.parsed.get(record.contentDigest);
    if (cached) return cached;
    const bytes = await this.readStored(record.contentDigest, record.size);
    let document: ParsedDocument;
    if (record.mediaType === cosignLayerMediaType) {
      const { payload, annotations, mediaType } = JSON.parse(bytes.toString('utf8')) as { payload: string; annotations: Record<string, string>; mediaType: string };
      const found = await documentsInManifest(
        { layers: [{ mediaType, digest: 'sha256:' + createHash('sha256').update(Buffer.from(payload, 'base64')).digest('hex'), size: 0, annotations }] },
        { tag: `${record.subject.replace(':', '-')}.sig` },
        async () => Buffer.from(payload, 'base64'),
      );
      if (!found[0]) throw new FormatError('the stored cosign layer is not a signature');
      document = found[0].document;
    } else {
      document = this.parse(bytes, record.mediaType, record.subject);
    }
    if (this.parsed.size > 10_000) this.parsed.clear();
    this.parsed.set(record.contentDigest, document);
    return document;
  }

  /** The stored bytes of a record. */
  readStored(digest: string, size: number): Promise<Buffer> {
    return this.readSegments([{ digest, size }], size);
  }

  /** The bytes of stored segments (an object's, a record's), in memory: at most `maxBytes`. */
  async readSegments(segments: readonly { digest: string; size: number }[], maxBytes: number): Promise<Buffer> {
    const tooLarge = () => new AstoreError('InvalidArgument', `more than ${maxBytes} bytes to hold in memory`);
    return readSmallBody(await this.content.read(segments), maxBytes, tooLarge);
  }

  private async readLayer(repository: string, digest: string): Promise<Buffer> {
    const read = await this.registryBlobs.readBlob(repository, digest);
    if (read.layer.size > this.options.maxDocumentBytes) {
      throw new FormatError(`layer ${digest} has ${read.layer.size} bytes; supply-chain documents are limited to ${this.options.maxDocumentBytes}`);
    }
    return readSmallBody(await read.body(), this.options.maxDocumentBytes, () => new AstoreError('InvalidDocument', `layer ${digest} exceeds ${this.options.maxDocumentBytes} bytes`));
  }

  private async layerBlob(repository: string, digest: string | undefined): Promise<{ digest: string; size: number }> {
    if (digest === undefined) throw new AstoreError('ManifestInvalid', 'a supply-chain document names no layer');
    const layer = await this.meta.registry.getLayer(repository, digest);
    if (!layer) throw new AstoreError('ManifestBlobUnknown', `blob ${digest} is not in repository ${repository}`);
    return { digest: layer.blob, size: layer.size };
  }

  private async storeCosignLayer(repository: string, layer: { mediaType: string; digest: string; annotations?: Record<string, string> }): Promise<{ digest: string; size: number }> {
    const payload = await this.readLayer(repository, layer.digest);
    const body = Buffer.from(JSON.stringify({ mediaType: layer.mediaType, payload: payload.toString('base64'), annotations: layer.annotations ?? {} }));
    const { digest, size } = await this.content.ingest(Readable.from([body]), { md5: false });
    return { digest, size };
  }
}


/**
 * What is checked on upload, before anything is stored: the document is about this subject, an
 * attestation is signed, and a signature that carries its certificate verifies with it (a tampered
 * notation envelope is refused here; one signed by a key is checked against trust policies later).
 */
function checkDocument(document: ParsedDocument, subject: string): ParsedDocument {
  if (document.kind === 'signature') {
    const { signature } = document;
    if (signature.subjectDigest !== subject) throw new AstoreError('InvalidDocument', `the signature covers ${signature.subjectDigest}, not ${subject}`);
    const chain = signature.message.certificates;
    if (chain?.length) {
      let leafKey: KeyObject;
      try {
        leafKey = new X509Certificate(chain[0]!).publicKey;
      } catch (err) {
        throw new AstoreError('InvalidDocument', `the signing certificate cannot be read: ${(err as Error).message}`);
      }
      if (!verifySignedMessage(signature.message, leafKey)) throw new AstoreError('InvalidDocument', 'the signature does not verify with the certificate it carries');
    }
  }
  if (document.kind === 'attestation') {
    const { attestation } = document;
    if (!attestation.subjectDigests.includes(subject)) {
      throw new AstoreError('InvalidDocument', `the attestation's subjects (${attestation.subjectDigests.join(', ') || 'none'}) do not include ${subject}`);
    }
    if (attestation.signatures.length === 0) throw new AstoreError('InvalidDocument', 'the attestation envelope carries no signature');
  }
  return document;
}

function describe(document: ParsedDocument): Pick<SupplyChainRecord, 'predicateType' | 'keyHint'> {
  if (document.kind === 'attestation') return { predicateType: document.attestation.facts.predicateType };
  if (document.kind === 'signature' && document.signature.message.keyHint !== undefined) return { keyHint: document.signature.message.keyHint };
  return {};
}

/** SBOM components and attestation facts to index with the record. */
function indexed(document: ParsedDocument): { components?: ComponentRow[]; facts?: AttestationFactsRow } {
  if (document.kind === 'sbom') return { components: document.sbom.components };
  if (document.kind === 'attestation') {
    const { facts, predicate } = document.attestation;
    return { facts, ...sbomPredicate(facts.predicateType, predicate) };
  }
  return {};
}

/** An SBOM carried as an attestation's predicate (cosign attest --type spdxjson / cyclonedx) is indexed too. */
function sbomPredicate(predicateType: string, predicate: unknown): { components?: ComponentRow[] } {
  const format = /spdx/i.test(predicateType) ? 'spdx' : /cyclonedx/i.test(predicateType) ? 'cyclonedx' : undefined;
  if (format === undefined) return {};
  try {
    return { components: parseSbomValue(predicate, format).components };
  } catch {
    return {}; // the attestation stands on its own; an unreadable predicate is simply not indexed
  }
}
