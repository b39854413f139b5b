import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import type { Logger } from 'pino';
import type { AuditEntry, KeyRecord, MetaStore, SupplyChainRecord, VerificationRecord } from '../../storage/meta/types.ts';
import type { ContentStore } from '../content.ts';
import { AstoreError } from '../errors.ts';
import { currentActor } from '../identity/actor.ts';
import type { RegistryBlobService } from '../registry/blobs.ts';
import type { ManifestService } from '../registry/manifests.ts';
import { legacySignatureTag, signatureImage, simpleSigningPayload } from './cosign-image.ts';
import type { KeyProvider } from './keys.ts';
import { Keyring } from './keyring.ts';
import { type ArtifactTarget, isSupplyChainManifest, RecordService } from './records.ts';
import { type ArtifactLocation, type TrustMode, type TrustPolicy, TrustPolicySet, locationResource, parseTrustPolicy, stricter } from './trust-policy.ts';
import { type Evaluation, evaluatePolicy } from './verifier.ts';

export interface SupplyChainOptions {
  maxDocumentBytes: number;
  /** Share of allowed read decisions written to the audit log (refusals: always). */
  auditAllowedSampling: number;
  /** How often another replica's changes (keys, policies, records) are noticed. */
  refreshMs: number;
}

/** One covering policy's evaluation of an artifact, with the policy's mode. */
export type PolicyResult = Evaluation & { policy: string; mode: TrustMode };

/** Who reads, for the audit entry of a verification decision. */
export interface ReadActor {
  principal: string;
  accessKeyId?: string;
  sourceIp?: string;
  requestId?: string;
}

export interface ReadDecision {
  /** The artifact's digest (for an S3 object, computed if it was unknown). */
  digest: string;
  mode: TrustMode;
  /** Per covering policy. */
  results: (PolicyResult)[];
  verified: boolean;
}

/** How long an evaluation is reused without any change (keys and certificates expire with time). */
const evaluationTtlMs = 60_000;

/** The most an Ed25519 signature (which needs the whole message) is made over in memory. */
const maxEd25519MessageBytes = 64 * 1024 * 1024;

/**
 * Supply-chain security over both protocols: records (./records.ts), keys (./keyring.ts), trust
 * policies (./trust-policy.ts) and their verification (./verifier.ts), and the read gate the S3 and
 * OCI layers consult before serving an artifact a policy covers.
 *
 * Verification results are kept per (policy, artifact) for the current supply-chain generation (which
 * every change to keys, policies or records moves, here at once and on other replicas within
 * `refreshMs`), and stored in the MetaStore when computed.
 */
export class SupplyChainService {
  readonly records: RecordService;
  readonly keys: Keyring;
  private state?: { generation: number; policies: TrustPolicySet; checkedAt: number };
  private readonly evaluations = new Map<string, { generation: number; until: number; evaluation: Evaluation }>();

  constructor(
    private readonly meta: MetaStore,
    content: ContentStore,
    private readonly registryBlobs: RegistryBlobService,
    private readonly manifests: ManifestService,
    provider: KeyProvider,
    private readonly options: SupplyChainOptions,
    private readonly log: Logger,
  ) {
    this.records = new RecordService(meta, content, registryBlobs, options, log);
    this.keys = new Keyring(meta, provider);
    manifests.inspector = async (manifest, tags) => {
      const record = await this.records.inspectManifest(manifest, tags);
      return (
        record &&
        (async () => {
          await record();
          this.invalidate();
        })
      );
    };
    manifests.onDelete = async (repository, digest) => {
      if ((await this.meta.supplychain.deleteRecordsFromManifest(repository, digest)) > 0) this.invalidate();
    };
  }

  get maxDocumentBytes(): number {
    return this.options.maxDocumentBytes;
  }

  /** An image by tag or digest. */
  resolveImage(repository: string, reference: string): Promise<{ digest: string }> {
    return this.manifests.get(repository, reference);
  }

  /** Forget cached policies and results (after a change made through this process). */
  invalidate(): void {
    this.state = undefined;
  }

  private async current(): Promise<{ generation: number; policies: TrustPolicySet }> {
    const now = Date.now();
    if (this.state && now - this.state.checkedAt < this.options.refreshMs) return this.state;
    const generation = await this.meta.supplychain.generation();
    if (this.state?.generation === generation) {
      this.state.checkedAt = now;
      return this.state;
    }
    const policies: TrustPolicy[] = [];
    for (const stored of await this.meta.supplychain.listTrustPolicies()) {
      try {
        policies.push(parseTrustPolicy(stored.document));
      } catch (err) {
        this.log.error({ policy: stored.name, err: (err as Error).message }, 'stored trust policy is invalid; ignored');
      }
    }
    this.evaluations.clear();
    this.state = { generation, policies: new TrustPolicySet(policies), checkedAt: now };
    return this.state;
  }

  /** Whether any trust policy (not `off`) covers the artifact. */
  async covers(location: ArtifactLocation): Promise<boolean> {
    return (await this.current()).policies.covering(location).length > 0;
  }

  /** The read gate of S3 GET/HEAD (see checkRead); the object's digest is computed if unknown. */
  async gateObject(bucket: string, key: string, object: { digest?: string }, mayAttach: () => Promise<boolean>): Promise<ReadDecision | undefined> {
    const location: ArtifactLocation = { kind: 's3', bucket, key };
    if (!(await this.covers(location))) return undefined;
    const digest = object.digest ?? (await this.records.objectWithDigest(bucket, key)).digest;
    return this.checkRead(location, digest, currentActor() ?? { principal: 'anonymous' }, () => new AstoreError('NoSuchKey', undefined, { Key: key }), mayAttach);
  }

  /**
   * An S3 listing as a reader may see it: objects an `enforce-write` policy keeps quarantined
   * (unverified) are left out unless `mayAttach(key)`. Other modes never hide keys.
   */
  async filterListing<T extends { key: string; digest?: string }>(bucket: string, objects: T[], mayAttach: (key: string) => Promise<boolean>): Promise<T[]> {
    const { policies } = await this.current();
    if (policies.empty) return objects;
    const visible: T[] = [];
    for (const object of objects) {
      const location: ArtifactLocation = { kind: 's3', bucket, key: object.key };
      if (!policies.covering(location).some((p) => p.mode === 'enforce-write')) {
        visible.push(object);
        continue;
      }
      const digest = object.digest ?? (await this.records.objectWithDigest(bucket, object.key)).digest;
      const results = await this.evaluate(location, digest);
      if (results.every((r) => r.status === 'verified') || (await mayAttach(object.key))) visible.push(object);
    }
    return visible;
  }

  /**
   * The read gate of OCI manifest GET/HEAD. Supply-chain documents themselves (signature, attestation
   * and SBOM manifests: every layer a supply-chain document) are not gated, as verifiers must read
   * them; whether a manifest is one is decided by its content, never by its tag or `subject`.
   */
  async gateManifest(repository: string, manifest: { digest: string; content: Buffer }, reference: string, mayAttach: () => Promise<boolean>): Promise<ReadDecision | undefined> {
    if (isSupplyChainManifest(manifest.content)) return undefined;
    const location: ArtifactLocation = { kind: 'oci', repository };
    if (!(await this.covers(location))) return undefined;
    const hidden = () => new AstoreError('ManifestUnknown', `manifest ${reference} is not in repository ${repository}`, { reference });
    // A platform manifest of a multi-platform image is covered by the index that lists it: signing
    // the index (what `cosign sign` and `notation sign` do for a tag) vouches for its platforms.
    const parents = await this.meta.registry.listParents(repository, manifest.digest, 16);
    for (const parent of parents) {
      const results = await this.evaluate(location, parent);
      if (results.length > 0 && results.every((r) => r.status === 'verified')) {
        return this.checkRead(location, parent, currentActor() ?? { principal: 'anonymous' }, hidden, mayAttach);
      }
    }
    return this.checkRead(location, manifest.digest, currentActor() ?? { principal: 'anonymous' }, hidden, mayAttach);
  }

  /** Evaluates every trust policy that covers the artifact (none: an empty list). */
  async evaluate(location: ArtifactLocation, digest: string): Promise<(PolicyResult)[]> {
    const { generation, policies } = await this.current();
    const covering = policies.covering(location);
    if (covering.length === 0) return [];
    const results: (PolicyResult)[] = [];
    let subject: Parameters<typeof evaluatePolicy>[1] | undefined;
    for (const policy of covering) {
      const cacheKey = `${policy.name}\u0000${digest}\u0000${locationResource(location)}`;
      const cached = this.evaluations.get(cacheKey);
      if (cached?.generation === generation && Date.now() < cached.until) {
        const { changesAt: _changesAt, ...result } = cached.evaluation;
        results.push({ policy: policy.name, mode: policy.mode, ...result });
        continue;
      }
      subject ??= await this.subject(location, digest);
      const source = {
        document: (r: SupplyChainRecord) => this.records.document(r),
        keys: (names: readonly string[]) => this.keysNamed(names),
        ...(location.kind === 's3' && { message: () => this.objectBytes(location.bucket, location.key, digest) }),
      };
      const evaluation = await evaluatePolicy(policy, subject, source, new Date());
      if (this.evaluations.size > 100_000) this.evaluations.clear();
      const until = Math.min(Date.now() + evaluationTtlMs, evaluation.changesAt?.getTime() ?? Infinity);
      this.evaluations.set(cacheKey, { generation, until, evaluation });
      const { changesAt: _changesAt, ...result } = evaluation;
      const stored: VerificationRecord = { subject: digest, policy: policy.name, ...result, evaluatedAt: new Date(), generation };
      await this.meta.supplychain.putVerification(stored);
      results.push({ policy: policy.name, mode: policy.mode, ...result });
    }
    return results;
  }

  /**
   * Decides whether an artifact may be read: nothing to decide when no policy covers it; otherwise
   * evaluated, audited, and under `enforce-read` refused with ArtifactNotVerified, under
   * `enforce-write` hidden (`hidden` is the protocol's not-found error), either unless `mayAttach`
   * (a signer reading what it is about to sign).
   */
  async checkRead(location: ArtifactLocation, digest: string, actor: ReadActor, hidden: () => AstoreError, mayAttach: () => Promise<boolean>): Promise<ReadDecision | undefined> {
    const results = await this.evaluate(location, digest);
    if (results.length === 0) return undefined;
    const mode = results.reduce<TrustMode>((m, r) => stricter(m, r.mode), 'audit');
    const verified = results.every((r) => r.status === 'verified');
    const failing = results.filter((r) => r.status !== 'verified');
    const reason = failing.map((r) => `${r.policy}: ${r.status}: ${r.reason}`).join('; ');
    const refused = !verified && mode !== 'audit' && !(await mayAttach());
    const entry: AuditEntry = {
      at: new Date(),
      principal: actor.principal,
      ...(actor.accessKeyId !== undefined && { accessKeyId: actor.accessKeyId }),
      action: 'supplychain:VerifyRead',
      resource: locationResource(location),
      outcome: refused ? 'denied' : 'allowed',
      ...(actor.sourceIp !== undefined && { sourceIp: actor.sourceIp }),
      ...(actor.requestId !== undefined && { requestId: actor.requestId }),
      detail: { digest, mode, results: results.map((r) => ({ policy: r.policy, status: r.status, reason: r.reason, ...(r.verifiedBy !== undefined && { verifiedBy: r.verifiedBy }) })) },
    };
    if (refused) {
      await this.meta.audit.append([entry]);
      if (mode === 'enforce-write') throw hidden();
      throw new AstoreError('ArtifactNotVerified', `${digest} is not verified: ${reason}`);
    }
    if (Math.random() < this.options.auditAllowedSampling) {
      this.meta.audit.append([entry]).catch((err: unknown) => this.log.error({ err }, 'audit append failed'));
    }
    return { digest, mode, results, verified };
  }

  /**
   * Attaches a document: to an S3 object as a record; to an image as an OCI referrer (an artifact
   * manifest whose one layer is the document), which the registry then records like any pushed one.
   */
  async attach(target: ArtifactTarget, body: Buffer, mediaType: string | undefined, createdBy: string): Promise<SupplyChainRecord[]> {
    let records: SupplyChainRecord[];
    if (target.kind === 's3') {
      records = [await this.records.attachToObject(target.bucket, target.key, body, mediaType, createdBy)];
    } else {
      records = await this.attachReferrer(target.repository, target.digest, body, mediaType);
    }
    this.invalidate();
    return records;
  }

  private async attachReferrer(repository: string, digest: string, body: Buffer, mediaType: string | undefined): Promise<SupplyChainRecord[]> {
    const subject = await this.manifests.get(repository, digest);
    const document = this.records.parse(body, mediaType, subject.digest);
    if (document.mediaType.startsWith('application/vnd.astore.')) {
      throw new AstoreError('InvalidDocument', 'a bare cosign signature or an old-format cosign bundle cannot be attached to an image: sign it with cosign, or POST /api/v1/supplychain/signatures');
    }
    // Notation finds its signatures by artifact type; it writes them with the config type set so.
    const notation = document.format === 'notation';
    const artifactType = notation ? 'application/vnd.cncf.notary.signature' : document.mediaType;
    const layer = await this.registryBlobs.putBlob(repository, sha256(body), Readable.from([body]), body.length);
    const empty = Buffer.from('{}');
    await this.registryBlobs.putBlob(repository, sha256(empty), Readable.from([empty]), empty.length);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType,
        config: { mediaType: notation ? artifactType : 'application/vnd.oci.empty.v1+json', digest: sha256(empty), size: 2, ...(!notation && { data: 'e30=' }) },
        layers: [{ mediaType: document.mediaType, digest: layer.digest, size: body.length }],
        subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
        annotations: { 'org.opencontainers.image.created': new Date().toISOString() },
      }),
    );
    const pushed = await this.manifests.put(repository, sha256(manifest), 'application/vnd.oci.image.manifest.v1+json', manifest);
    return (await this.meta.supplychain.listRecords({ repository, subject: subject.digest, limit: 1000 })).items.filter((r) => r.sourceManifest === pushed.digest);
  }

  /**
   * Signs an artifact with a server-held key, as cosign would: an S3 object's sha256 (the signature
   * `cosign verify-blob --key` accepts), or an image as a cosign signature under its
   * `sha256-<hex>.sig` tag (what `cosign verify --key` reads). `reference` is the image name clients
   * use (`<host>/<repository>`), written into the signed payload.
   */
  async sign(target: ArtifactTarget, keyName: string, createdBy: string, reference?: string): Promise<{ key: KeyRecord; signature: string; records: SupplyChainRecord[] }> {
    const key = await this.keys.signingVersion(keyName);
    if (target.kind === 's3') {
      const object = await this.records.objectWithDigest(target.bucket, target.key);
      const digest = Buffer.from(object.digest.slice('sha256:'.length), 'hex');
      let signature: Buffer;
      if (key.algorithm === 'ed25519') {
        if (object.size > maxEd25519MessageBytes) throw new AstoreError('InvalidArgument', `Ed25519 signs the whole message; objects over ${maxEd25519MessageBytes} bytes need an ECDSA or RSA key`);
        const message = await this.records.readSegments(object.segments, maxEd25519MessageBytes);
        signature = await this.keys.sign(key, { kind: 'message', message });
      } else {
        signature = await this.keys.sign(key, { kind: 'digest', algorithm: 'sha256', digest });
      }
      const encoded = signature.toString('base64');
      const record = await this.records.attachToObject(target.bucket, target.key, Buffer.from(encoded), undefined, createdBy);
      this.invalidate();
      return { key, signature: encoded, records: [record] };
    }
    const subject = await this.manifests.get(target.repository, target.digest);
    const payload = simpleSigningPayload(reference ?? target.repository, subject.digest);
    const signature = (await this.keys.sign(key, { kind: 'message', message: payload })).toString('base64');
    const tag = legacySignatureTag(subject.digest);
    const existing = await this.meta.registry.getManifest(target.repository, { tag });
    const image = signatureImage(existing ? { manifest: existing.content } : undefined, { payload, signatureBase64: signature });
    for (const blob of image.blobs) await this.registryBlobs.putBlob(target.repository, blob.digest, Readable.from([blob.content]), blob.content.length);
    const pushed = await this.manifests.put(target.repository, tag, image.mediaType, image.manifest);
    this.invalidate();
    const records = (await this.meta.supplychain.listRecords({ repository: target.repository, subject: subject.digest, limit: 1000 })).items.filter((r) => r.sourceManifest === pushed.digest);
    return { key, signature, records };
  }

  /** An object's bytes when small enough to hold (Ed25519 verification), if it still has `digest`. */
  private async objectBytes(bucket: string, key: string, digest: string): Promise<Buffer | undefined> {
    const object = await this.meta.objects.get(bucket, key);
    if (!object || object.digest !== digest || object.size > maxEd25519MessageBytes) return undefined;
    return this.records.readSegments(object.segments, maxEd25519MessageBytes);
  }

  private async subject(location: ArtifactLocation, digest: string): Promise<Parameters<typeof evaluatePolicy>[1]> {
    const records = await this.allRecords({ subject: digest });
    if (location.kind !== 's3') return { digest, records };
    const atKey = await this.allRecords({ bucket: location.bucket, key: location.key });
    const others = [...new Set(atKey.filter((r) => r.subject !== digest && r.kind === 'signature').map((r) => r.subject))];
    return { digest, records, otherDigestsAtKey: others };
  }

  private async allRecords(query: { subject?: string; bucket?: string; key?: string }): Promise<SupplyChainRecord[]> {
    const all: SupplyChainRecord[] = [];
    let after: string | undefined;
    do {
      const page = await this.meta.supplychain.listRecords({ ...query, limit: 1000, ...(after !== undefined && { after }) });
      all.push(...page.items);
      after = page.next;
    } while (after !== undefined && all.length < 10_000);
    return all;
  }

  private async keysNamed(names: readonly string[]): Promise<KeyRecord[]> {
    const keys: KeyRecord[] = [];
    for (const name of new Set(names)) keys.push(...(await this.meta.supplychain.listKeys(name)));
    return keys;
  }
}

function sha256(bytes: Buffer): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}
