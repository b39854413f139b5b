import { z } from 'zod';
import { AstoreError } from '../core/errors.ts';
import { principalName } from '../core/identity/service.ts';
import { validateObjectKey } from '../core/names.ts';
import { parseDigest, parseReference, validateRepositoryName } from '../core/registry/references.ts';
import { keyView } from '../core/supplychain/keyring.ts';
import type { ArtifactTarget } from '../core/supplychain/records.ts';
import type { SupplyChainService } from '../core/supplychain/service.ts';
import { parseTrustPolicy } from '../core/supplychain/trust-policy.ts';
import { readSmallBody } from '../core/small-body.ts';
import type { ArtifactRef, ComponentQuery, MetaStore, SupplyChainRecord, TrustPolicyRecord } from '../storage/meta/types.ts';
import { type ApiCall, intQuery, readJson, sendJson } from './http.ts';
import type { ApiRoute } from './router.ts';

/** Checks one more action for the caller (beyond the route's own), throwing AccessDenied. */
export type ApiAuthorizer = (call: ApiCall, action: string, resource: string) => Promise<boolean>;

const base = '/api/v1/supplychain';

/**
 * Supply chain under /api/v1/supplychain/: records attached to artifacts, server-side signing,
 * verification against trust policies, package and provenance queries, keys and trust policies.
 *
 * An artifact is named by query parameters: `bucket` and `key` (an S3 object), or `repository` and
 * `reference` (a tag or digest of an image). Record endpoints authorize on the artifact's resource
 * (`s3:<bucket>/<key>`, `oci:<repository>`) with `supplychain:read` / `supplychain:attach` /
 * `supplychain:sign`; keys and trust policies with `supplychain:read` / `supplychain:policy` on
 * `api:supplychain/keys/<name>` and `api:supplychain/policies/<name>`. Query answers list only
 * artifacts the caller may read.
 */
export function supplyChainRoutes(meta: MetaStore, supplyChain: SupplyChainService, allowed: ApiAuthorizer): ApiRoute[] {
  const author = (call: ApiCall) => principalName(call.caller.principal);
  const visible = async (call: ApiCall, ref: { bucket?: string; key?: string; repository?: string; subject: string }) =>
    ref.bucket !== undefined || ref.repository !== undefined ? allowed(call, 'supplychain:read', refResource(ref)) : allowed(call, 'supplychain:read', 'api:supplychain/records');

  return [
    {
      method: 'GET',
      url: `${base}/records`,
      action: 'supplychain:read',
      resource: (c) => (hasTarget(c) ? resourceOf(targetOf(c)) : 'api:supplychain/records'),
      handler: async (call) => {
        const q = call.query;
        const limit = intQuery(q, 'limit', 100, 1000);
        let filter: { subject?: string; bucket?: string; key?: string; repository?: string } = {};
        if (hasTarget(call)) {
          const target = targetOf(call);
          filter = target.kind === 's3' ? { bucket: target.bucket, key: target.key } : { repository: target.repository, subject: await resolveDigest(supplyChain, target) };
        } else if (q.get('subject')) {
          filter = { subject: parseDigest(q.get('subject')!).digest };
        } else {
          throw new AstoreError('InvalidArgument', 'name an artifact (bucket and key, or repository and reference) or a subject digest');
        }
        const kind = q.get('kind');
        if (kind !== null && !['signature', 'sbom', 'attestation'].includes(kind)) throw new AstoreError('InvalidArgument', 'kind must be signature, sbom or attestation');
        const page = await meta.supplychain.listRecords({ ...filter, ...(kind !== null && { kind: kind as SupplyChainRecord['kind'] }), ...(q.get('after') && { after: q.get('after')! }), limit });
        const items: SupplyChainRecord[] = [];
        for (const record of page.items) if (await visible(call, { ...record })) items.push(record);
        return sendJson(call.reply, 200, { records: items.map(recordView), ...(page.next !== undefined && { next: page.next }) });
      },
    },
    {
      // The body is the document itself (SPDX, CycloneDX, DSSE envelope, Sigstore bundle, notation
      // JWS, or a cosign blob signature in base64); Content-Type names it or it is recognised.
      method: 'POST',
      url: `${base}/records`,
      action: 'supplychain:attach',
      resource: (c) => resourceOf(targetOf(c)),
      handler: async (call) => {
        const target = await resolvedTarget(supplyChain, targetOf(call));
        const body = await readSmallBody(call.req.raw, supplyChain.maxDocumentBytes, () => new AstoreError('InvalidDocument', `the document exceeds ${supplyChain.maxDocumentBytes} bytes`));
        const contentType = call.req.headers['content-type'];
        // Parameters stay: Sigstore bundle v0.1/v0.2 media types carry their version in one.
        const mediaType = contentType === undefined || /^application\/octet-stream\b/.test(contentType) ? undefined : contentType.trim();
        const records = await supplyChain.attach(target, body, mediaType, author(call));
        return sendJson(call.reply, 201, { records: records.map(recordView) });
      },
    },
    {
      method: 'GET',
      url: `${base}/records/:id`,
      action: 'supplychain:read',
      resource: async (c) => refResource(await recordOf(meta, c.params.id!)),
      handler: async (call) => sendJson(call.reply, 200, recordView(await recordOf(meta, call.params.id!))),
    },
    {
      method: 'GET',
      url: `${base}/records/:id/content`,
      action: 'supplychain:read',
      resource: async (c) => refResource(await recordOf(meta, c.params.id!)),
      handler: async (call) => {
        const record = await recordOf(meta, call.params.id!);
        const bytes = await supplyChain.records.readStored(record.contentDigest, record.size);
        return call.reply.code(200).header('content-type', record.mediaType).header('docker-content-digest', record.contentDigest).send(bytes);
      },
    },
    {
      method: 'DELETE',
      url: `${base}/records/:id`,
      action: 'supplychain:attach',
      resource: async (c) => refResource(await recordOf(meta, c.params.id!)),
      handler: async (call) => {
        if (!(await meta.supplychain.deleteRecord(call.params.id!))) throw new AstoreError('NoSuchEntity', `no record ${call.params.id}`);
        supplyChain.invalidate();
        return call.reply.code(204).send();
      },
    },
    {
      // Signs with a server-held key: an object's sha256 (cosign verify-blob --key accepts it), or an
      // image as a cosign signature under its sha256-<hex>.sig tag (cosign verify --key accepts it).
      method: 'POST',
      url: `${base}/signatures`,
      action: 'supplychain:sign',
      resource: (c) => resourceOf(targetOf(c)),
      handler: async (call) => {
        const body = await readJson(call.req, z.strictObject({ key: z.string().min(1) }));
        if (!(await allowed(call, 'supplychain:sign', `api:supplychain/keys/${body.key}`))) throw new AstoreError('AccessDenied', `not allowed to sign with key ${body.key}`);
        const target = await resolvedTarget(supplyChain, targetOf(call));
        const host = call.req.headers.host ?? 'localhost';
        const reference = target.kind === 'oci' ? `${host}/${target.repository}` : undefined;
        const signed = await supplyChain.sign(target, body.key, author(call), reference);
        return sendJson(call.reply, 201, {
          key: signed.key.id,
          publicKey: signed.key.publicPem,
          signature: signed.signature,
          records: signed.records.map(recordView),
        });
      },
    },
    {
      // Verifies now against every trust policy covering the artifact; the results are also stored.
      method: 'GET',
      url: `${base}/verification`,
      action: 'supplychain:read',
      resource: (c) => resourceOf(targetOf(c)),
      handler: async (call) => {
        const target = await resolvedTarget(supplyChain, targetOf(call));
        const digest = target.kind === 's3' ? (await supplyChain.records.objectWithDigest(target.bucket, target.key)).digest : target.digest;
        const location = target.kind === 's3' ? target : { kind: 'oci' as const, repository: target.repository };
        const results = await supplyChain.evaluate(location, digest);
        return sendJson(call.reply, 200, {
          digest,
          verified: results.length > 0 && results.every((r) => r.status === 'verified'),
          covered: results.length > 0,
          results,
        });
      },
    },
    {
      // Artifacts whose SBOMs list a package: by purl (exact, or without version plus a range), or by
      // name and a range; `versions` is e.g. ">=2.0.0,<2.15.0".
      method: 'GET',
      url: `${base}/packages`,
      action: 'supplychain:read',
      resource: () => 'api:supplychain/packages',
      handler: async (call) => {
        const q = call.query;
        const query: ComponentQuery = { limit: intQuery(q, 'limit', 100, 1000), ...versionBounds(q.get('versions')) };
        if (q.get('purl')) query.purl = q.get('purl')!;
        if (q.get('name')) query.name = q.get('name')!;
        if (query.purl === undefined && query.name === undefined) throw new AstoreError('InvalidArgument', 'give purl or name');
        if (q.get('bucket')) query.bucket = q.get('bucket')!;
        if (q.get('repository')) query.repository = q.get('repository')!;
        if (q.get('after')) query.after = q.get('after')!;
        const page = await meta.supplychain.findComponents(query);
        const matches = [];
        for (const match of page.items) if (await visible(call, match)) matches.push(match);
        return sendJson(call.reply, 200, { matches, ...(page.next !== undefined && { next: page.next }) });
      },
    },
    {
      // Artifacts in a bucket (key prefix) or under a repository prefix without a matching attestation.
      method: 'GET',
      url: `${base}/lacking`,
      action: 'supplychain:read',
      resource: () => 'api:supplychain/packages', // the queries share one resource
      handler: async (call) => {
        const q = call.query;
        const predicateType = q.get('predicateType') ?? 'https://slsa.dev/provenance/v1';
        const bucket = q.get('bucket') ?? undefined;
        const repositoryPrefix = q.get('repositoryPrefix') ?? undefined;
        if ((bucket === undefined) === (repositoryPrefix === undefined)) throw new AstoreError('InvalidArgument', 'give bucket (and keyPrefix) or repositoryPrefix');
        const page = await meta.supplychain.findLacking({
          predicateType,
          ...(q.get('builderId') && { builderId: q.get('builderId')! }),
          ...(bucket !== undefined && { bucket }),
          ...(q.get('keyPrefix') && { keyPrefix: q.get('keyPrefix')! }),
          ...(repositoryPrefix !== undefined && { repositoryPrefix }),
          ...(q.get('after') && { after: q.get('after')! }),
          limit: intQuery(q, 'limit', 100, 1000),
        });
        const artifacts: ArtifactRef[] = [];
        for (const ref of page.items) if (await visible(call, ref)) artifacts.push(ref);
        return sendJson(call.reply, 200, { artifacts, ...(page.next !== undefined && { next: page.next }) });
      },
    },
    ...keyRoutes(meta, supplyChain),
    ...trustPolicyRoutes(meta, supplyChain),
  ];
}

const newKeyBody = z
  .strictObject({
    algorithm: z.enum(['ecdsa-p256', 'ed25519', 'rsa-3072', 'rsa-4096']).optional(),
    privateKey: z.string().optional(),
    passphrase: z.string().optional(),
    publicKey: z.string().optional(),
    certificate: z.string().optional(),
    expiresAt: z.iso.datetime({ offset: true }).optional(),
  })
  .refine((b) => [b.algorithm, b.privateKey, b.publicKey, b.certificate].filter((v) => v !== undefined).length <= 1, {
    message: 'give one of algorithm (generate), privateKey, publicKey or certificate',
  });

function newKeySpec(body: z.infer<typeof newKeyBody>) {
  if (body.expiresAt !== undefined && new Date(body.expiresAt) <= new Date()) throw new AstoreError('InvalidArgument', 'expiresAt is in the past');
  if (body.privateKey !== undefined) return { privateKeyPem: body.privateKey, ...(body.passphrase !== undefined && { passphrase: body.passphrase }) };
  if (body.publicKey !== undefined) return { publicKeyPem: body.publicKey };
  if (body.certificate !== undefined) return { certificatePem: body.certificate };
  return { generate: body.algorithm ?? ('ecdsa-p256' as const) };
}

function keyRoutes(meta: MetaStore, supplyChain: SupplyChainService): ApiRoute[] {
  const keyResource = (c: ApiCall) => `api:supplychain/keys/${c.params.name}`;
  return [
    {
      method: 'GET',
      url: `${base}/keys`,
      action: 'supplychain:read',
      resource: () => 'api:supplychain/keys',
      handler: async (call) => sendJson(call.reply, 200, { keys: (await meta.supplychain.listKeys()).map(keyView) }),
    },
    {
      // Creates a key: generated here (algorithm), or imported (privateKey PEM, publicKey PEM for
      // verification only, or a CA certificate PEM for notation chains).
      method: 'PUT',
      url: `${base}/keys/:name`,
      action: 'supplychain:policy',
      resource: keyResource,
      handler: async (call) => {
        const body = await readJson(call.req, newKeyBody);
        const key = await supplyChain.keys.create(call.params.name!, newKeySpec(body), principalName(call.caller.principal), body.expiresAt ? new Date(body.expiresAt) : undefined);
        supplyChain.invalidate();
        return sendJson(call.reply, 201, keyView(key));
      },
    },
    {
      method: 'GET',
      url: `${base}/keys/:name`,
      action: 'supplychain:read',
      resource: keyResource,
      handler: async (call) => sendJson(call.reply, 200, { versions: (await supplyChain.keys.versions(call.params.name!)).map(keyView) }),
    },
    {
      // The PEM of the newest version: what `cosign verify --key` takes.
      method: 'GET',
      url: `${base}/keys/:name/public`,
      action: 'supplychain:read',
      resource: keyResource,
      handler: async (call) => {
        const versions = (await supplyChain.keys.versions(call.params.name!)).filter((v) => v.revokedAt === undefined);
        const newest = versions[versions.length - 1];
        if (!newest) throw new AstoreError('NoSuchEntity', `every version of key ${call.params.name} is revoked`);
        return call.reply.code(200).header('content-type', 'application/x-pem-file').send(newest.publicPem);
      },
    },
    {
      method: 'POST',
      url: `${base}/keys/:name/rotate`,
      action: 'supplychain:policy',
      resource: keyResource,
      handler: async (call) => {
        const body = await readJson(call.req, z.union([newKeyBody, z.null()]));
        // Without new material the next version is generated like the current one.
        const given = body && [body.algorithm, body.privateKey, body.publicKey, body.certificate].some((v) => v !== undefined);
        if (body?.expiresAt !== undefined) newKeySpec(body);
        const key = await supplyChain.keys.rotate(call.params.name!, given ? newKeySpec(body) : undefined, principalName(call.caller.principal), body?.expiresAt ? new Date(body.expiresAt) : undefined);
        supplyChain.invalidate();
        return sendJson(call.reply, 201, keyView(key));
      },
    },
    {
      method: 'POST',
      url: `${base}/keys/:name/revoke`,
      action: 'supplychain:policy',
      resource: keyResource,
      handler: async (call) => {
        const body = await readJson(call.req, z.union([z.strictObject({ version: z.number().int().positive().optional() }), z.null()]));
        const revoked = await supplyChain.keys.revoke(call.params.name!, body?.version);
        supplyChain.invalidate();
        return sendJson(call.reply, 200, { versions: revoked.map(keyView) });
      },
    },
  ];
}

const trustPolicyView = (p: TrustPolicyRecord) => ({ ...(JSON.parse(p.document) as object), createdAt: p.createdAt.toISOString(), updatedAt: p.updatedAt.toISOString() });

function trustPolicyRoutes(meta: MetaStore, supplyChain: SupplyChainService): ApiRoute[] {
  const policyResource = (c: ApiCall) => `api:supplychain/policies/${c.params.name}`;
  return [
    {
      method: 'GET',
      url: `${base}/policies`,
      action: 'supplychain:read',
      resource: () => 'api:supplychain/policies',
      handler: async (call) => sendJson(call.reply, 200, { policies: (await meta.supplychain.listTrustPolicies()).map(trustPolicyView) }),
    },
    {
      method: 'PUT',
      url: `${base}/policies/:name`,
      action: 'supplychain:policy',
      resource: policyResource,
      handler: async (call) => {
        const name = call.params.name!;
        const { createdAt: _c, updatedAt: _u, ...raw } = await readJson(call.req, z.record(z.string(), z.unknown()));
        const policy = parseTrustPolicy({ ...raw, name: raw.name ?? name });
        if (policy.name !== name) throw new AstoreError('InvalidArgument', `the document's name ${policy.name} differs from the URL's ${name}`);
        const now = new Date();
        const existing = await meta.supplychain.getTrustPolicy(name);
        const outcome = await meta.supplychain.putTrustPolicy({ name, document: JSON.stringify(policy), createdAt: existing?.createdAt ?? now, updatedAt: now });
        supplyChain.invalidate();
        return sendJson(call.reply, outcome === 'created' ? 201 : 200, trustPolicyView((await meta.supplychain.getTrustPolicy(name))!));
      },
    },
    {
      method: 'GET',
      url: `${base}/policies/:name`,
      action: 'supplychain:read',
      resource: policyResource,
      handler: async (call) => {
        const policy = await meta.supplychain.getTrustPolicy(call.params.name!);
        if (!policy) throw new AstoreError('NoSuchEntity', `no trust policy ${call.params.name}`);
        return sendJson(call.reply, 200, trustPolicyView(policy));
      },
    },
    {
      method: 'DELETE',
      url: `${base}/policies/:name`,
      action: 'supplychain:policy',
      resource: policyResource,
      handler: async (call) => {
        if (!(await meta.supplychain.deleteTrustPolicy(call.params.name!))) throw new AstoreError('NoSuchEntity', `no trust policy ${call.params.name}`);
        supplyChain.invalidate();
        return call.reply.code(204).send();
      },
    },
  ];
}

type UnresolvedTarget = { kind: 's3'; bucket: string; key: string } | { kind: 'oci'; repository: string; reference: string };

function hasTarget(call: ApiCall): boolean {
  return call.query.has('bucket') || call.query.has('repository');
}

/** The artifact the query names; InvalidArgument when it names none or half of one. */
function targetOf(call: ApiCall): UnresolvedTarget {
  const q = call.query;
  const bucket = q.get('bucket');
  const repository = q.get('repository');
  if (bucket !== null && repository === null) {
    const key = q.get('key');
    if (!key) throw new AstoreError('InvalidArgument', 'key is required with bucket');
    validateObjectKey(key);
    return { kind: 's3', bucket, key };
  }
  if (repository !== null && bucket === null) {
    const reference = q.get('reference') ?? q.get('digest');
    if (!reference) throw new AstoreError('InvalidArgument', 'reference (a tag or digest) is required with repository');
    parseReference(reference);
    return { kind: 'oci', repository: validateRepositoryName(repository), reference };
  }
  throw new AstoreError('InvalidArgument', 'name an artifact: bucket and key (an S3 object), or repository and reference (an image)');
}

function resourceOf(target: UnresolvedTarget): string {
  return target.kind === 's3' ? `s3:${target.bucket}/${target.key}` : `oci:${target.repository}`;
}

function refResource(ref: { bucket?: string; key?: string; repository?: string }): string {
  if (ref.bucket !== undefined) return `s3:${ref.bucket}/${ref.key ?? ''}`;
  if (ref.repository !== undefined) return `oci:${ref.repository}`;
  return 'api:supplychain/records';
}

async function resolveDigest(supplyChain: SupplyChainService, target: { repository: string; reference: string }): Promise<string> {
  return (await supplyChain.resolveImage(target.repository, target.reference)).digest;
}

async function resolvedTarget(supplyChain: SupplyChainService, target: UnresolvedTarget): Promise<ArtifactTarget> {
  if (target.kind === 's3') return target;
  return { kind: 'oci', repository: target.repository, digest: await resolveDigest(supplyChain, target) };
}

async function recordOf(meta: MetaStore, id: string): Promise<SupplyChainRecord> {
  const record = await meta.supplychain.getRecord(id);
  if (!record) throw new AstoreError('NoSuchEntity', `no record ${id}`);
  return record;
}

/** `>=2.0.0,<2.15.0` (also `>`, `<=`, `=`) into query bounds. */
export function versionBounds(text: string | null): Pick<ComponentQuery, 'versionMin' | 'versionMax'> {
  if (text === null || text.trim() === '') return {};
  const bounds: Pick<ComponentQuery, 'versionMin' | 'versionMax'> = {};
  for (const part of text.split(',').map((p) => p.trim())) {
    const match = /^(>=|<=|>|<|=)\s*(\S+)$/.exec(part);
    if (!match) throw new AstoreError('InvalidArgument', `invalid version constraint ${JSON.stringify(part)} (expected e.g. >=2.0.0,<2.15.0)`);
    const [, op, version] = match as unknown as [string, string, string];
    if (op === '=' ) {
      bounds.versionMin = { version, inclusive: true };
      bounds.versionMax = { version, inclusive: true };
    } else if (op.startsWith('>')) {
      bounds.versionMin = { version, inclusive: op === '>=' };
    } else {
      bounds.versionMax = { version, inclusive: op === '<=' };
    }
  }
  return bounds;
}

function recordView(record: SupplyChainRecord): Record<string, unknown> {
  return {
    id: record.id,
    subject: record.subject,
    kind: record.kind,
    format: record.format,
    mediaType: record.mediaType,
    contentDigest: record.contentDigest,
    size: record.size,
    ...(record.bucket !== undefined && { bucket: record.bucket, key: record.key }),
    ...(record.repository !== undefined && { repository: record.repository }),
    ...(record.sourceManifest !== undefined && { sourceManifest: record.sourceManifest, sourceLayer: record.sourceLayer }),
    ...(record.predicateType !== undefined && { predicateType: record.predicateType }),
    ...(record.keyHint !== undefined && { keyHint: record.keyHint }),
    createdBy: record.createdBy,
    createdAt: record.createdAt.toISOString(),
  };
}
