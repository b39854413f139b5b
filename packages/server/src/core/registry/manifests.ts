import type { ManifestRecord, ManifestSummary, MetaStore } from '../../storage/meta/types.ts';
import { AstoreError } from '../errors.ts';
import { mediaTypes, parseManifest } from './manifest-format.ts';
import { digestOf, parseDigest, parseReference, validateTag } from './references.ts';

export interface ManifestOptions {
  maxManifestBytes: number;
}

export interface PutManifestResult {
  digest: string;
  subject?: string;
  /** The tags now pointing at it. */
  tags: string[];
}

export interface Page<T> {
  items: T[];
  /** The last item, when more may follow (the `last` of the next page). */
  next?: string;
}

/**
 * Looks at a manifest before it is stored (throwing refuses the push, nothing stored) and returns
 * what to do once it is (record the signatures and SBOMs it carries), if anything.
 */
export type ManifestInspector = (manifest: ManifestRecord, tags: readonly string[]) => Promise<(() => Promise<void>) | undefined>;

/** Manifests, tags, referrers and the catalog of the registry. */
export class ManifestService {
  inspector?: ManifestInspector;
  /** Called after a manifest was deleted by digest. */
  onDelete?: (repository: string, digest: string) => Promise<void>;

  constructor(
    private readonly meta: MetaStore,
    private readonly options: ManifestOptions,
  ) {}

  get maxBytes(): number {
    return this.options.maxManifestBytes;
  }

  /**
   * Stores a manifest pushed to `reference` (a tag, or the digest it must have), also tagged with
   * `extraTags` (the `tag` query parameters of a push by digest). Its digest is over the
   * exact bytes: sha256, or the algorithm of the digest it was pushed by. Every blob and manifest it
   * references must already be in the repository.
   */
  async put(repository: string, reference: string, contentType: string | undefined, content: Buffer, extraTags: readonly string[] = []): Promise<PutManifestResult> {
    if (content.length > this.options.maxManifestBytes) {
      throw new AstoreError('ManifestTooLarge', `the manifest has ${content.length} bytes; the limit is ${this.options.maxManifestBytes}`);
    }
    const ref = parseReference(reference);
    const tags = [...('tag' in ref ? [ref.tag] : []), ...extraTags.map(validateTag)];
    const algorithm = 'digest' in ref ? parseDigest(ref.digest).algorithm : 'sha256';
    const digest = digestOf(algorithm, content);
    if ('digest' in ref && ref.digest !== digest) {
      throw new AstoreError('DigestInvalid', `the manifest's digest is ${digest}, not ${ref.digest}`, { digest: ref.digest });
    }
    const parsed = parseManifest(content, contentType);
    const record: ManifestRecord = {
      repository,
      digest,
      mediaType: parsed.mediaType,
      artifactType: parsed.artifactType,
      subject: parsed.subject,
      annotations: parsed.annotations,
      size: content.length,
      content,
      createdAt: new Date(),
      blobs: parsed.blobs,
      manifests: parsed.manifests,
    };
    const afterPut = await this.inspector?.(record, tags);
    await this.meta.registry.putManifest(record, tags);
    await afterPut?.();
    return { digest, subject: parsed.subject, tags };
  }

  async get(repository: string, reference: string): Promise<ManifestRecord> {
    const manifest = await this.meta.registry.getManifest(repository, parseReference(reference));
    if (!manifest) throw new AstoreError('ManifestUnknown', `manifest ${reference} is not in repository ${repository}`, { reference });
    return manifest;
  }

  /** By digest: the manifest and its tags; by tag: only the tag. */
  async delete(repository: string, reference: string): Promise<void> {
    const ref = parseReference(reference);
    const deleted = 'tag' in ref ? await this.meta.registry.deleteTag(repository, ref.tag) : await this.meta.registry.deleteManifest(repository, ref.digest);
    if (!deleted) throw new AstoreError('ManifestUnknown', `manifest ${reference} is not in repository ${repository}`, { reference });
    if ('digest' in ref) await this.onDelete?.(repository, ref.digest);
  }

  async tags(repository: string, limit: number, last?: string): Promise<Page<string>> {
    const items = await this.meta.registry.listTags(repository, last, limit + 1);
    if (items === null) throw new AstoreError('NameUnknown', `repository ${repository} is not known`, { name: repository });
    return page(items, limit);
  }

  async catalog(limit: number, last?: string): Promise<Page<string>> {
    return page(await this.meta.registry.listRepositories(last, limit + 1), limit);
  }

  /**
   * The referrers of `subject` as an OCI image index (always one, empty when there are none),
   * optionally only those of `artifactType`.
   */
  async referrers(repository: string, subject: string, artifactType?: string): Promise<{ index: object; filtered: boolean }> {
    const referrers = await this.meta.registry.listReferrers(repository, parseDigest(subject).digest, artifactType);
    return {
      index: { schemaVersion: 2, mediaType: mediaTypes.ociIndex, manifests: referrers.map(toDescriptor) },
      filtered: artifactType !== undefined,
    };
  }
}

function toDescriptor(m: ManifestSummary): object {
  return {
    mediaType: m.mediaType,
    digest: m.digest,
    size: m.size,
    ...(m.artifactType !== undefined && { artifactType: m.artifactType }),
    ...(m.annotations !== undefined && { annotations: m.annotations }),
  };
}

function page(items: string[], limit: number): Page<string> {
  if (items.length <= limit) return { items };
  const kept = items.slice(0, limit);
  return { items: kept, next: kept[kept.length - 1] };
}
